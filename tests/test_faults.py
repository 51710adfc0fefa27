"""The fault suite: every failure a user can cause, through the real command line in a subprocess.

Each case asserts the exit status, exactly one line on stderr, no traceback, and that a pre-existing run directory is
byte for byte what it was. Memory bombs run with an address-space limit (RLIMIT_AS) in the child, so a regression
fails the test instead of exhausting the machine. docs/reliability.md's fault table is this list, measured.
"""
import fcntl
import gzip
import io
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import minivae
from minivae.checkpoint import read_checkpoint
from test_data_frey import mat_header
from test_data_idx import idx_bytes, write_idx_dir

ROOT = Path(__file__).resolve().parents[1]
BOMB_LIMIT = 2 << 30  # RLIMIT_AS of the child in the memory-bomb cases: Python, NumPy and Numba fit well within


def run_cli(*args, limit=None, cwd=None):
    """`python -m minivae ARGS` -> CompletedProcess; `limit`: the child's address-space limit in bytes."""
    def preexec():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run([sys.executable, "-m", "minivae", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=300, preexec_fn=preexec if limit else None)


def snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One small trained run (2 epochs of a 64-16-3 VAE on 8 x 8 'MNIST' images) and its data directory."""
    root = tmp_path_factory.mktemp("faults")
    write_idx_dir(root / "mnist", n_train=48, n_test=16, size=(8, 8))
    minivae.train(root / "run", dataset="mnist", data_dir=str(root / "mnist"), epochs=2, hidden=(16,), latent=3,
                  batch_size=16, quiet=True)
    return root


def checkpoint_with(world, tmp_path, meta_change=None, arrays_change=None):
    """A copy of the run's checkpoint with its meta and arrays edited -> the path of the copy."""
    arrays, meta = read_checkpoint(world / "run")
    if meta_change:
        meta_change(meta)
    if arrays_change:
        arrays_change(arrays)
    path = tmp_path / "edited.npz"
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def set_config(key, value):
    return lambda meta: meta["config"].__setitem__(key, value)


def set_train(key, value):
    return lambda meta: meta["train"].__setitem__(key, value)


def npz_claiming(tmp_path, values, state_size=True):
    """A checkpoint whose one member's .npy header claims `values` float32 values, holding 64 bytes of them; with
    `state_size` the zip also states the member's uncompressed size as the header's: what a decompression bomb
    looks like before it is inflated."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (values,)})
    path = tmp_path / "claims.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("param/x.npy", header.getvalue() + bytes(64))
    if state_size:
        data = bytearray(path.read_bytes())
        for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
            struct.pack_into("<I", data, data.index(signature) + offset, len(header.getvalue()) + 4 * values)
        path.write_bytes(bytes(data))
    return path


def gzip_bomb(header_shape, data, inflated):
    """A gzip IDX file whose header claims `header_shape`, holding `data` bytes of images and then zeros to about
    `inflated` bytes: one member per 64 MiB of zeros (a gzip file may hold many), so building it costs one small
    compression."""
    first = gzip.compress(bytes([0, 0, 8, len(header_shape)]) + struct.pack(f">{len(header_shape)}i", *header_shape)
                          + bytes(data))
    block = gzip.compress(bytes(64 << 20), compresslevel=1)
    return first + block * (inflated // (64 << 20))


def mat_bomb(claimed):
    """A MAT file whose compressed element's inflated tag claims `claimed` bytes."""
    return mat_header() + struct.pack("<II", 15, 0) + zlib.compress(struct.pack("<II", 14, claimed) + bytes(1024))


def fix_compressed_size(mat):
    data = bytearray(mat)
    struct.pack_into("<I", data, 132, len(mat) - 136)
    return bytes(data)


# Each case: (id, a function of (world, tmp_path) -> (CLI arguments, keyword arguments of run_cli), exit status,
# words the one stderr line contains).
CASES = [
    # flags
    ("negative seed", lambda w, t: (["train", "--seed", -1, "--out", t / "o"], {}), 2, ["--seed", "≥ 0"]),
    ("no picture extension", lambda w, t: (["sample", "--checkpoint", w / "run", "--out", t / "samples"], {}), 2,
     ["extension"]),
    ("unknown picture extension", lambda w, t: (["manifold", "--checkpoint", w / "run", "--out", t / "m.xyz"], {}),
     2, ["'.xyz'"]),
    ("lr decay above 1", lambda w, t: (["train", "--lr-decay", 2, "--out", t / "o"], {}), 2, ["--lr-decay"]),
    ("latent 10^9", lambda w, t: (["train", "--latent", 10 ** 9, "--n-train", 8, "--n-test", 8, "--out", t / "o"],
                                  {}), 2, ["needs", "GB", "available"]),
    ("categorical 256 levels on 64x64x3 MLP", lambda w, t: (["train", "--likelihood", "categorical", "--n-train", 8,
                                                             "--n-test", 8, "--out", t / "o"], {"limit": BOMB_LIMIT}),
     2, ["training mlp 12288-400-20 (categorical", "needs", "GB"]),
    ("sample --n 10^9", lambda w, t: (["sample", "--checkpoint", w / "run", "--n", 10 ** 9, "--out", t / "s.png"],
                                      {}), 2, ["decoding 1000000000 pictures needs"]),
    ("evaluate --rows 10^8", lambda w, t: (["evaluate", "--checkpoint", w / "run", "--k", 10 ** 8, "--rows", 10 ** 8],
                                           {}), 2, ["evaluating", "needs"]),
    ("resume with a different --lr", lambda w, t: (["train", "--resume", w / "run", "--lr", 0.5], {}), 2,
     ["lr is 0.001 there"]),
    ("resume given the default --batch-size 128", lambda w, t: (["train", "--resume", w / "run", "--batch-size", 128],
                                                                {}), 2, ["batch_size is 16 there, not 128"]),
    # run directories
    ("train into a directory holding a run", lambda w, t: (["train", "--dataset", "mnist", "--data-dir", w / "mnist",
                                                             "--hidden", 16, "--latent", 3, "--out", w / "run"], {}),
     2, ["already holds a run", "--resume", "--force"]),
    # data
    ("IDX with zero training images", lambda w, t: (["train", "--dataset", "mnist", "--data-dir",
                                                     idx_dir(t, n_train=0), "--out", t / "o"], {}), 2, ["none zero"]),
    ("IDX with zero height", lambda w, t: (["train", "--dataset", "mnist", "--data-dir", idx_dir(t, size=(0, 8)),
                                            "--out", t / "o"], {}), 2, ["none zero"]),
    ("Frey file too small for a test split", lambda w, t: (["train", "--dataset", "frey", "--data-dir",
                                                            frey_dir(t, 5), "--out", t / "o"], {}), 2,
     ["too few"]),
    ("data that does not fit the model (evaluate)", lambda w, t: (["evaluate", "--checkpoint", w / "run", "--data-dir",
                                                                   idx_dir(t, size=(9, 9)), "--k", 2], {}), 2,
     ["(1, 8, 8)", "(1, 9, 9)"]),
    ("data that does not fit the model (interpolate)", lambda w, t: (["interpolate", "--checkpoint", w / "run",
                                                                      "--data-dir", idx_dir(t, size=(9, 9)), "--out",
                                                                      t / "i.png"], {}), 2, ["(1, 9, 9)"]),
    ("data that does not fit the model (traverse)", lambda w, t: (["traverse", "--checkpoint", w / "run",
                                                                   "--data-dir", idx_dir(t, size=(9, 9)), "--out",
                                                                   t / "t.png"], {}), 2, ["(1, 9, 9)"]),
    # memory bombs
    ("gzip IDX inflating to 5 GB", lambda w, t: (["train", "--dataset", "mnist", "--data-dir",
                                                  idx_dir(t, bomb=gzip_bomb((16, 8, 8), 16 * 64, 5 << 30)),
                                                  "--out", t / "o"], {"limit": BOMB_LIMIT}), 2, ["trailing bytes"]),
    ("gzip IDX whose header claims 4 GB", lambda w, t: (["train", "--dataset", "mnist", "--data-dir",
                                                         idx_dir(t, bomb=gzip_bomb((65536, 256, 256), 0, 0)), "--out",
                                                         t / "o"], {"limit": BOMB_LIMIT}), 2,
     ["needs 4.3 GB", "available"]),
    ("MAT element claiming 4 GB", lambda w, t: (["train", "--dataset", "frey", "--data-dir",
                                                 frey_dir(t, mat=fix_compressed_size(mat_bomb(0xFFFFFF00))), "--out",
                                                 t / "o"], {"limit": BOMB_LIMIT}), 2, ["needs 4.3 GB"]),
    ("MAT element inflating past its tag", lambda w, t: (["train", "--dataset", "frey", "--data-dir",
                                                          frey_dir(t, mat=fix_compressed_size(mat_bomb(64))), "--out",
                                                          t / "o"], {"limit": BOMB_LIMIT}), 2,
     ["does not end after"]),
    ("npz member claiming 3.9 GB", lambda w, t: (["sample", "--checkpoint", npz_claiming(t, 975_000_000), "--out",
                                                  t / "s.png"], {"limit": BOMB_LIMIT}), 2, ["needs 3.9 GB"]),
    ("npz header claiming 10^13 values", lambda w, t: (["sample", "--checkpoint", npz_claiming(t, 10 ** 13, False),
                                                        "--out", t / "s.png"], {"limit": BOMB_LIMIT}), 2,
     ["needs 40000.0 GB", "the member holds"]),
    ("stored config of 16 hidden layers of 16384", lambda w, t: (["sample", "--checkpoint", checkpoint_with(
        w, t, set_config("hidden", [16384] * 16)), "--out", t / "s.png"], {"limit": BOMB_LIMIT}), 2,
     ["the model of checkpoint", "needs", "GB"]),
    # checkpoints
    ("float16 in a stored config", lambda w, t: (["sample", "--checkpoint", checkpoint_with(
        w, t, set_config("dtype", "float16")), "--out", t / "s.png"], {}), 2, ["dtype 'float16'"]),
    ("int32 in a stored config", lambda w, t: (["sample", "--checkpoint", checkpoint_with(
        w, t, set_config("dtype", "int32")), "--out", t / "s.png"], {}), 2, ["dtype 'int32'"]),
    ("stored setting of the wrong type", lambda w, t: (["evaluate", "--checkpoint", checkpoint_with(
        w, t, set_train("batch_size", "128")), "--k", 2], {}), 2, ["batch_size", "'128'"]),
    ("stored negative epoch", lambda w, t: (["train", "--resume", checkpoint_with(w, t, lambda m: m.__setitem__(
        "epoch", -2)), "--epochs", 2], {}), 2, ["invalid training position", "-2"]),
    ("malformed meta", lambda w, t: (["sample", "--checkpoint", checkpoint_with(w, t, lambda m: m.__setitem__(
        "config", [1, 2])), "--out", t / "s.png"], {}), 2, ["edited.npz has no model config"]),
    # pictures
    ("picture with another format than its extension", lambda w, t: (["reconstruct", "--checkpoint", w / "run",
                                                                      "--data-dir", jpeg_named_png(t), "--out",
                                                                      t / "r.png"], {}), 2,
     ["not a readable picture", "PNG"]),
]


def idx_dir(tmp_path, n_train=8, size=(8, 8), bomb=None):
    directory = tmp_path / "data"
    write_idx_dir(directory, n_train=n_train, n_test=4, size=size)
    if bomb is not None:
        (directory / "train-images-idx3-ubyte").unlink()
        (directory / "train-images-idx3-ubyte.gz").write_bytes(bomb)
    return directory


def frey_dir(tmp_path, faces=None, mat=None):
    from test_data_frey import mat5_bytes
    directory = tmp_path / "frey"
    directory.mkdir()
    if mat is None:
        mat = mat5_bytes(np.zeros((560, faces), np.uint8))
    (directory / "frey_rawface.mat").write_bytes(mat)
    return directory


def jpeg_named_png(tmp_path):
    directory = tmp_path / "pictures"
    directory.mkdir()
    Image.new("L", (8, 8), 128).save(directory / "a.png", format="JPEG")
    return directory


@pytest.mark.parametrize("make, status, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fault(world, tmp_path, make, status, words):
    before = snapshot(world / "run")
    args, kwargs = make(world, tmp_path)
    r = run_cli(*args, **kwargs)
    assert r.returncode == status, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert snapshot(world / "run") == before, "the run directory changed"


def test_second_process_into_a_locked_run_is_refused(world):
    before = snapshot(world / "run")
    fd = os.open(world / "run" / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a training process holds it
        r = run_cli("train", "--resume", world / "run", "--epochs", 3)
    finally:
        os.close(fd)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "another process is training into" in r.stderr, r.stderr
    assert snapshot(world / "run") == before


def test_stdout_closed(world, tmp_path):
    """`minivae sample ... | true`: the output is written, one line says stdout was closed, exit 2."""
    proc = subprocess.Popen([sys.executable, "-m", "minivae", "sample", "--checkpoint", str(world / "run"), "--out",
                             str(tmp_path / "s.png")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()  # the reader is gone before the command prints
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 2, err
    assert "Traceback" not in err and err.count("\n") == 1 and "broken pipe" in err, err
    assert (tmp_path / "s.png").is_file()


def test_outputs_replace_symlinks_and_never_write_their_targets(world, tmp_path):
    target = tmp_path / "precious.png"
    target.write_bytes(b"not to be overwritten")
    (tmp_path / "s.png").symlink_to(target)
    r = run_cli("sample", "--checkpoint", world / "run", "--n", 4, "--out", tmp_path / "s.png")
    assert r.returncode == 0, r.stderr
    assert target.read_bytes() == b"not to be overwritten"
    assert not (tmp_path / "s.png").is_symlink() and Image.open(tmp_path / "s.png").size[0] > 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_checkpoint_and_exit_128_plus_signal(tmp_path, signum):
    write_idx_dir(tmp_path / "mnist", n_train=64, n_test=16, size=(8, 8))
    args = ["train", "--dataset", "mnist", "--data-dir", tmp_path / "mnist", "--hidden", 8, "--latent", 2,
            "--batch-size", 16, "--epochs", 1000, "--out", tmp_path / "run"]
    proc = subprocess.Popen([sys.executable, "-m", "minivae", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout.readline().startswith("epoch   1")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert signal.Signals(signum).name in err and "--resume" in err
    _, meta = read_checkpoint(tmp_path / "run")
    assert 0 < meta["epoch"] < 1000
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows == meta["metrics"]  # metrics.jsonl is the checkpoint's rows


def test_force_starts_over(world, tmp_path):
    import shutil
    shutil.copytree(world / "run", tmp_path / "run")
    r = run_cli("train", "--dataset", "mnist", "--data-dir", world / "mnist", "--hidden", 8, "--latent", 2,
                "--epochs", 1, "--quiet", "--force", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    _, meta = read_checkpoint(tmp_path / "run")
    assert meta["epoch"] == 1 and meta["config"]["hidden"] == [8] and len(meta["metrics"]) == 1


if __name__ == "__main__":  # docs/reliability.md's fault table: python tests/test_faults.py (from the repository root)
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        write_idx_dir(root / "mnist", n_train=48, n_test=16, size=(8, 8))
        minivae.train(root / "run", dataset="mnist", data_dir=str(root / "mnist"), epochs=2, hidden=(16,), latent=3,
                      batch_size=16, quiet=True)
        print("| case | exit | stderr (one line) |\n|---|---|---|")
        for i, (name, make, _, _) in enumerate(CASES):
            (root / str(i)).mkdir()
            args, kwargs = make(root, root / str(i))
            r = run_cli(*args, **kwargs)
            line = r.stderr.strip().replace(d, "…").replace("|", "\\|")
            print(f"| {name}{' (under RLIMIT_AS 2 GiB)' if kwargs.get('limit') else ''} | {r.returncode} | {line} |")
