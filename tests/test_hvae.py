"""Two stochastic layers (hvae.py): finite differences of every objective, the bound against a slow reference, the
closed-form top KL against its Monte Carlo estimate, and the model through training, resume and evaluate."""
import json

import numpy as np
import pytest

from minivae.cli import main
from minivae.errors import MinivaeError
from minivae.gradchecks import TOLERANCE, two_layer_checks
from minivae.hvae import hvae_iwae_forward, stacked_forward
from minivae.models import build_model

CHECKS = two_layer_checks(seed=0)
SMALL = {"image_shape": (1, 4, 5), "latent": (4, 3), "hidden": ((7, 6), (5,))}


@pytest.mark.parametrize("name,err", CHECKS, ids=[n for n, _ in CHECKS])
def test_two_layer_gradient_finite_differences(name, err):
    assert err <= TOLERANCE, f"{name}: max relative error {err:.3e} > {TOLERANCE}"


def small(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    vae = build_model("mlp2", rng=rng, dtype=dtype, **SMALL)
    x = (rng.random((4, 1, 4, 5)) < 0.5).astype(dtype)
    return vae, x, rng


def log_normal(z, mu, sigma):
    return np.sum(-0.5 * ((z - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi))


def bound_reference(vae, x, eps):
    """L_K per example the slow way: one example and one sample at a time, σ-form densities, the likelihood's
    log_prob."""
    (Z1, Z2), (B, K, _) = vae.latents, eps.shape

    def gaussian(net, h):
        out = net.forward(h[None])[0]
        return out[:len(out) // 2], np.exp(0.5 * out[len(out) // 2:])
    bounds = []
    for b in range(B):
        mu1, s1 = gaussian(vae.encoder1, x[b].reshape(-1))
        log_w = []
        for k in range(K):
            z1 = mu1 + s1 * eps[b, k, :Z1]
            mu2, s2 = gaussian(vae.encoder2, z1)
            z2 = mu2 + s2 * eps[b, k, Z1:]
            mu1p, s1p = gaussian(vae.decoder2, z2)
            log_px = vae.likelihood.log_prob(vae.decoder1.forward(z1[None]), x[b].reshape(1, -1))[0]
            log_w.append(log_px + log_normal(z1, mu1p, s1p) + log_normal(z2, 0, 1) - log_normal(z1, mu1, s1)
                         - log_normal(z2, mu2, s2))
        bounds.append(np.logaddexp.reduce(log_w) - np.log(K))
    return np.array(bounds)


def test_two_layer_bound_matches_reference():
    vae, x, rng = small()
    eps = rng.standard_normal((4, 6, vae.noise_size))
    terms, _ = hvae_iwae_forward(vae, x, eps)
    assert np.allclose(terms.bound, bound_reference(vae, x, eps), rtol=1e-12, atol=0)
    assert np.all(-terms.bound <= terms.recon + terms.kl + 1e-12)  # L_K ≥ the K-average ELBO


def test_closed_form_top_kl_is_the_mean_of_the_sampled_one():
    """Given z₁, the top term's closed form is the expectation of log q(z₂|z₁) − log p(z₂) over ε₂ (same ε₁): the
    ELBO objective and the paper's all-sampled bound estimate the same number."""
    vae, x, rng = small(seed=1)
    K, Z1 = 20000, vae.latents[0]
    eps = rng.standard_normal((4, K, vae.noise_size))
    eps[:, :, :Z1] = eps[:, :1, :Z1]                      # one z₁ per example, K draws of z₂
    sampled = stacked_forward(vae, x, eps, analytic_top=False)[0]
    analytic = stacked_forward(vae, x, eps, analytic_top=True)[0]
    assert np.allclose(sampled.recon, analytic.recon, rtol=1e-13)
    top_error = sampled.kl - analytic.kl                  # (log q(z₂|z₁) − log p(z₂)) − KL: the middle terms cancel
    stderr = top_error.std(1) / np.sqrt(K)
    assert np.all(np.abs(top_error.mean(1)) < 4 * stderr), (top_error.mean(1), stderr)
    assert np.all(stderr > 0)


def test_elbo_is_the_closed_form_top_with_one_sample():
    vae, x, rng = small(seed=2)
    eps = rng.standard_normal((4, vae.noise_size))
    elbo = vae.forward(x, eps)
    sampled = hvae_iwae_forward(vae, x, eps[:, None])[0]
    assert np.allclose(elbo.recon, sampled.recon, rtol=1e-13)
    assert not np.allclose(elbo.kl, sampled.kl)          # different estimators of the same KL
    assert np.allclose(elbo.loss, elbo.recon + elbo.kl)


def test_burda_architecture_by_default():
    vae = build_model("mlp2", rng=np.random.default_rng(0))
    shapes = {k: v.shape for k, v in vae.params.items() if k.endswith(".W")}
    assert shapes == {"encoder1.0.W": (784, 200), "encoder1.1.W": (200, 200), "encoder1.2.W": (200, 200),
                      "encoder2.0.W": (100, 100), "encoder2.1.W": (100, 100), "encoder2.2.W": (100, 100),
                      "decoder2.0.W": (50, 100), "decoder2.1.W": (100, 100), "decoder2.2.W": (100, 200),
                      "decoder1.0.W": (100, 200), "decoder1.1.W": (200, 200), "decoder1.2.W": (200, 784)}
    assert vae.config["activation"] == "tanh" and (vae.latents, vae.latent, vae.noise_size) == ((100, 50), 50, 150)


@pytest.mark.parametrize("kwargs, needle", [
    ({"name": "mlp2", "latent": 5}, "latent = (Z1, Z2)"),
    ({"name": "mlp2", "hidden": (5, 4)}, "latent = (Z1, Z2)"),
    ({"name": "mlp", "latent": (5, 4)}, "mlp2 only"),
    ({"name": "mlp", "hidden": ((5,), (4,))}, "mlp2 only"),
    ({"name": "mlp2", "latent": (5, 0)}, "≥ 1"),
])
def test_bad_sizes_are_one_clear_error(kwargs, needle):
    with pytest.raises(MinivaeError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        build_model(kwargs.pop("name"), rng=np.random.default_rng(0), **kwargs)


def test_train_resume_and_evaluate_from_the_command_line(tmp_path, capsys):
    """mlp2 through the CLI: ELBO then IWAE from its weights, a resume that is bitwise the uninterrupted run, free bits
    refused, and `evaluate` with both layers' weights and active units per layer."""
    common = ["train", "--dataset", "shapes", "--model", "mlp2", "--latent", "3,2", "--hidden", "8/6", "--n-train",
              "32", "--n-test", "8", "--batch-size", "8", "--activation", "tanh", "--quiet"]
    assert main([*common, "--epochs", "2", "--out", str(tmp_path / "whole")]) == 0
    assert main([*common, "--epochs", "1", "--out", str(tmp_path / "part")]) == 0
    assert main(["train", "--resume", str(tmp_path / "part"), "--epochs", "2", "--quiet"]) == 0
    whole, part = (np.load(tmp_path / d / "checkpoint.npz") for d in ("whole", "part"))
    for name in whole.files:
        if name.startswith("param/"):
            np.testing.assert_array_equal(whole[name], part[name], err_msg=name)
    assert main([*common, "--epochs", "1", "--objective", "iwae", "--k", "3", "--init-from",
                 str(tmp_path / "whole"), "--out", str(tmp_path / "iwae")]) == 0
    assert main([*common, "--free-bits", "0.5", "--out", str(tmp_path / "fb")]) == 2
    assert "free bits" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "iwae"), "--k", "20", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["k"] == 20 and r["latent"] == 5 and len(r["active_units_per_layer"]) == 2
    assert r["nll"] <= -r["elbo_mean_k"] + 1e-9


def test_free_bits_are_refused_in_python_too():
    from minivae.objectives import make_objective
    vae, x, rng = small()
    with pytest.raises(MinivaeError, match="free bits"):
        make_objective(free_bits=0.5).loss_and_grads(vae, x, rng.standard_normal((4, vae.noise_size)))
