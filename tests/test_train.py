"""The training loop: reproducibility, outputs, and learning on real data."""
import json

import numpy as np

from minivae.checkpoint import load_checkpoint
from minivae.training import evaluate_elbo, train

TINY = dict(dataset="shapes", n_train=96, n_test=32, hidden=(16,), latent=4, batch_size=32)


def test_same_seed_same_run_bit_for_bit(tmp_path):
    a = train(tmp_path / "a", epochs=2, seed=5, **TINY)
    b = train(tmp_path / "b", epochs=2, seed=5, **TINY)
    c = train(tmp_path / "c", epochs=2, seed=6, **TINY)
    for name, p in a.vae.params.items():
        assert np.array_equal(p, b.vae.params[name]), f"{name} differs between two runs with seed 5"
    assert any(not np.array_equal(p, c.vae.params[k]) for k, p in a.vae.params.items()), "seed 6 gave seed 5's run"
    assert (tmp_path / "a" / "metrics.jsonl").read_bytes().count(b"\n") == 2


def test_outputs_written(tmp_path):
    result = train(tmp_path, epochs=1, seed=0, **TINY)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    for key in ("epoch", "train_loss", "test_loss", "recon", "kl", "seconds", "psnr", "iou"):
        assert key in rows[0], f"metrics.jsonl lacks {key}"
    assert 0 < rows[0]["psnr"] < 60 and 0 <= rows[0]["iou"] <= 1
    assert abs(rows[0]["test_loss"] - rows[0]["recon"] - rows[0]["kl"]) < 1e-6 * abs(rows[0]["test_loss"])
    for name in ("samples.png", "reconstructions.png", "checkpoint.npz"):
        assert (tmp_path / name).stat().st_size > 0, f"{name} missing"
    vae, _, meta = load_checkpoint(tmp_path / "checkpoint.npz")
    assert meta["epoch"] == 1
    for name, p in result.vae.params.items():
        assert np.array_equal(vae.params[name], p), f"checkpoint parameter {name} differs from the trained one"


def test_mnist_subset_lowers_test_loss(tmp_path, mnist_dir):
    """784-400-20 on 3000 MNIST digits, three epochs: the test negative ELBO falls well below the untrained one."""
    result = train(tmp_path, dataset="mnist", data_dir=str(mnist_dir), n_train=3000, n_test=500, epochs=3, seed=0)
    losses = [row["test_loss"] for row in result.metrics]
    assert losses[2] < losses[0] < 300, f"test losses per epoch {losses}"
    assert 0 < result.metrics[-1]["kl"] < 60, f"KL {result.metrics[-1]['kl']} outside a plausible range"


def test_binarized_evaluation_is_reproducible(tmp_path, mnist_dir):
    result = train(tmp_path, dataset="mnist", data_dir=str(mnist_dir), n_train=256, n_test=200, epochs=1,
                   binarize=True, hidden=(32,))
    from minivae.data import load_dataset
    test = load_dataset("mnist", str(mnist_dir), n_test=200).test
    a = evaluate_elbo(result.vae, test, seed=0, binarize=True)
    b = evaluate_elbo(result.vae, test, seed=0, binarize=True)
    assert a == b
    assert abs(a["test_loss"] - result.metrics[0]["test_loss"]) < 1e-9


def test_bits_per_dim_only_for_probability_masses(tmp_path):
    grey = train(tmp_path / "grey", epochs=1, **TINY).metrics[0]
    binary = train(tmp_path / "binary", epochs=1, binarize=True, **TINY).metrics[0]
    assert "test_bits_per_dim" not in grey, "grayscale Bernoulli is a cross-entropy, not a mass: no bits/dim"
    D = 3 * 64 * 64
    assert abs(binary["test_bits_per_dim"] - binary["test_loss"] / (D * np.log(2))) < 1e-12


def test_paths_from_python_are_stored_as_text(tmp_path, mnist_dir):
    """data_dir given as a pathlib.Path trains and resumes; the checkpoint stores it as text (JSON)."""
    from pathlib import Path
    train(tmp_path / "run", dataset="mnist", data_dir=Path(mnist_dir), n_train=64, n_test=32, hidden=(8,), latent=2,
          epochs=1, quiet=True)
    resumed = train(resume=tmp_path / "run", epochs=2, data_dir=Path(mnist_dir), quiet=True)
    assert len(resumed.metrics) == 2
    _, _, meta = load_checkpoint(tmp_path / "run")
    assert meta["train"]["data_dir"] == str(mnist_dir)
