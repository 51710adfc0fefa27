"""The importance-sampled log-likelihood (evaluation.py): exact on a model we can integrate, a bound that tightens with
K, chunking that changes nothing, reproducible binarization, active units, and the `minivae evaluate` command."""
import json
import subprocess
import sys

import numpy as np
import pytest

from minivae.evaluation import (combine_chunks, evaluate, evaluate_checkpoint, float64_twin,
                              importance_sampled_log_likelihood)
from minivae.logspace import log_mean_exp
from minivae.models import build_model
from minivae.training import train


def tiny_model(seed=0, latent=1, dtype=np.float64):
    return build_model("mlp", rng=np.random.default_rng(seed), dtype=dtype, image_shape=(1, 3, 4), latent=latent,
                       hidden=(6,), activation="tanh")


def binary_images(seed, n, shape=(1, 3, 4)):
    return np.random.default_rng(seed).integers(0, 2, size=(n, *shape)).astype(np.float64)


def test_chunks_combine_to_the_whole():
    log_w = np.random.default_rng(0).normal(-80, 5, size=(4, 10))
    bounds = np.stack([log_mean_exp(log_w[:, :4]), log_mean_exp(log_w[:, 4:8]), log_mean_exp(log_w[:, 8:])], 1)
    assert np.allclose(combine_chunks(bounds, np.array([4.0, 4.0, 2.0])), log_mean_exp(log_w), rtol=0, atol=1e-12)


def test_estimate_matches_numerical_integration():
    """Z = 1: log p(x) = log ∫ p(x|z) N(z; 0, 1) dz by the trapezoid rule on a fine grid. The untrained encoder is a
    poor proposal (K = 5000 misses by up to 0.02 nats); K = 100 000 lands within 0.01."""
    vae = tiny_model(seed=3)
    x = binary_images(1, 4)
    z = np.linspace(-12, 12, 24001)[:, None]
    logits = vae.decode(z)
    exact = []
    for xn in x.reshape(4, -1):
        log_joint = vae.likelihood.log_prob(logits, np.broadcast_to(xn, logits.shape)) - 0.5 * (z[:, 0] ** 2
                                                                                                + np.log(2 * np.pi))
        m = log_joint.max()
        exact.append(m + np.log(np.trapezoid(np.exp(log_joint - m), z[:, 0])))
    estimate, mean_log_w = importance_sampled_log_likelihood(vae, x, k=100_000, seed=0)
    assert np.all(np.abs(estimate - np.array(exact)) < 0.01), (estimate, exact)
    assert np.all(mean_log_w < np.array(exact)), "the ELBO must lie below log p(x)"


def test_rows_do_not_change_the_estimate():
    vae, x = tiny_model(latent=3), binary_images(2, 7)
    a, ma = importance_sampled_log_likelihood(vae, x, k=50, seed=4, rows=2000)   # 7 images in one pass
    b, mb = importance_sampled_log_likelihood(vae, x, k=50, seed=4, rows=17)     # 3 chunks of 17, 17, 16
    c, mc = importance_sampled_log_likelihood(vae, x, k=50, seed=4, rows=120)    # 2 images a pass
    for other, mother in ((b, mb), (c, mc)):
        assert np.allclose(a, other, rtol=0, atol=1e-11) and np.allclose(ma, mother, rtol=0, atol=1e-11)


def test_float64_twin_holds_the_same_model():
    vae32 = tiny_model(latent=2, dtype=np.float32)
    twin = float64_twin(vae32)
    assert twin.dtype == np.float64 and vae32.dtype == np.float32
    for name, p in vae32.params.items():
        assert np.array_equal(twin.params[name], p.astype(np.float64)), name


def test_active_units_counts_only_latents_that_move():
    vae = tiny_model(latent=4)
    W, b = vae.encoder.params["1.W"], vae.encoder.params["1.b"]
    W[:, 1] = 0.0                  # μ_1(x) = b_1 for every x: inactive
    W[:, 3] *= 1e-3                # μ_3 barely moves: Var < 0.01
    W[:, 0] *= 20.0                # μ_0 and μ_2 vary a lot
    W[:, 2] *= 20.0
    b[1] = 3.0
    r = evaluate(vae, (binary_images(5, 200) * 255).astype(np.uint8), k=2, seed=0)
    variances = np.array(r["unit_variances"])
    assert r["active_units"] == 2, variances
    assert variances[1] == 0 and variances[3] < 0.01 and min(variances[0], variances[2]) > 0.01


@pytest.fixture(scope="module")
def brief_mnist_run(tmp_path_factory, mnist_dir):
    """784-64-8 tanh, dynamically binarized, 2 epochs on 2000 digits (a few seconds)."""
    out = tmp_path_factory.mktemp("brief")
    train(out, dataset="mnist", data_dir=str(mnist_dir), n_train=2000, n_test=100, epochs=2, hidden=(64,), latent=8,
          activation="tanh", binarize=True, batch_size=100, seed=0)
    return out / "checkpoint.npz"


def test_bound_holds_and_tightens_with_k(brief_mnist_run):
    """NLL ≤ −ELBO, and the estimate falls as K grows (E[L_K] rises with K); same seed, same figure."""
    results = {k: evaluate_checkpoint(brief_mnist_run, k=k) for k in (1, 10, 100, 1000)}
    nll = [results[k]["nll"] for k in (1, 10, 100, 1000)]
    assert nll[0] > nll[1] > nll[2] > nll[3], nll
    for k, r in results.items():
        assert r["nll"] <= -r["elbo_mean_k"] + 1e-9, (k, r["nll"], r["elbo_mean_k"])  # Jensen, per example
        assert r["n"] == 100 and r["binarize"] and r["bits_per_dim"] == pytest.approx(r["nll"] / (784 * np.log(2)))
    assert results[1000]["nll"] < -results[1000]["elbo"] - 1.0  # well below the one-sample −ELBO
    assert results[1]["nll"] == pytest.approx(-results[1]["elbo_mean_k"], abs=1e-9)  # K = 1: L_1 is the ELBO
    again = evaluate_checkpoint(brief_mnist_run, k=10)
    assert again["nll"] == results[10]["nll"] and again["elbo"] == results[10]["elbo"]
    other_seed = evaluate_checkpoint(brief_mnist_run, k=10, seed=7)
    assert other_seed["nll"] != results[10]["nll"]  # the seed fixes the binarization and the noise


def run(*args):
    return subprocess.run([sys.executable, "-m", "minivae", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_json_and_errors(tmp_path, capsys):
    from minivae.cli import main
    r = run("train", "--epochs", 1, "--n-train", 32, "--n-test", 8, "--hidden", 8, "--latent", 2, "--quiet",
            "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    r = run("evaluate", "--checkpoint", tmp_path / "checkpoint.npz", "--k", 20, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"elbo", "nll", "k", "kl", "active_units"} <= set(out) and out["k"] == 20 and out["n"] == 8
    assert out["bits_per_dim"] is None  # grayscale shapes under a Bernoulli: not a normalized likelihood
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "checkpoint.npz"), "--k", "5"]) == 0
    text = capsys.readouterr().out
    assert "NLL" in text and "active units" in text, text
    for bad in (("--k", "0"), ("--rows", "-1")):
        with pytest.raises(SystemExit) as exit_info:
            main(["evaluate", "--checkpoint", str(tmp_path / "checkpoint.npz"), *bad])
        assert exit_info.value.code == 2 and bad[0] in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.npz")]) == 2
    assert "not found" in capsys.readouterr().err
