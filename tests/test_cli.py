"""The command line, through a subprocess: the main jobs work, bad input is one line with exit status 2."""
import json
import subprocess
import sys

import numpy as np


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "minivae", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_train_then_sample(tmp_path):
    r = run("train", "--epochs", 1, "--n-train", 64, "--n-test", 16, "--hidden", 16, "--latent", 3,
            "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert "epoch   1" in r.stdout
    r = run("sample", "--checkpoint", tmp_path / "run" / "checkpoint.npz", "--n", 9, "--out", tmp_path / "s.png")
    assert r.returncode == 0, r.stderr
    from PIL import Image
    assert Image.open(tmp_path / "s.png").size == (3 * 66 + 2, 3 * 66 + 2)  # 3 x 3 grid of 64 x 64, 2 px gaps


def test_gradcheck_json():
    r = run("gradcheck", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert {"name", "max_rel_error"} <= set(rows[0])
    assert any(row["name"].startswith("elbo") for row in rows)
    assert max(row["max_rel_error"] for row in rows) <= 1e-7


def assert_one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert any(all(n in line for n in needles) for line in lines), r.stderr


def test_bad_flags(tmp_path):
    assert_one_line_error(run("train", "--epochs", "-1"), "--epochs", "positive integer")
    assert_one_line_error(run("train", "--batch-size", "0"), "--batch-size")
    assert_one_line_error(run("train", "--latent", "0"), "--latent")
    assert_one_line_error(run("train", "--lr", "nan"), "--lr", "finite")


def test_missing_data(tmp_path):
    assert_one_line_error(run("train", "--dataset", "mnist"), "--data-dir is required")
    r = run("train", "--dataset", "mnist", "--data-dir", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert_one_line_error(r, "nowhere")
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_checkpoints(tmp_path):
    assert_one_line_error(run("sample", "--checkpoint", tmp_path / "none.npz"), "not found")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    assert_one_line_error(run("sample", "--checkpoint", tmp_path / "junk.npz"), "junk.npz")
    np.savez(tmp_path / "pickled.npz", meta=np.array([{"format": 1}], dtype=object))
    assert_one_line_error(run("sample", "--checkpoint", tmp_path / "pickled.npz"), "pickled.npz")
