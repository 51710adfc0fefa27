"""Training objectives (objectives.py, iwae.py): finite differences of every objective, the IWAE bound against a
plain reference and against PyTorch autograd, β / warm-up / free bits against the ELBO, and the trainer's reporting."""
import numpy as np
import pytest

from minivae.errors import MinivaeError
from minivae.gradchecks import TOLERANCE, objective_checks
from minivae.iwae import iwae_backward, iwae_forward
from minivae.models import build_model
from minivae.gaussian import gaussian_kl_per_dimension
from minivae.objectives import ElboObjective, iwae_pair, kl_weight, make_objective

CHECKS = [*objective_checks(seed=0),
          *objective_checks(seed=1, image_shape=(1, 3, 4), latent=3, hidden=(5, 4), activation="softplus")]


@pytest.mark.parametrize("name,err", CHECKS, ids=[f"{i}-{n}" for i, (n, _) in enumerate(CHECKS)])
def test_objective_gradient_finite_differences(name, err):
    assert err <= TOLERANCE, f"{name}: max relative error {err:.3e} > {TOLERANCE}"


def small(seed=0, dtype=np.float64, latent=3):
    rng = np.random.default_rng(seed)
    vae = build_model("mlp", rng=rng, dtype=dtype, image_shape=(1, 4, 5), latent=latent, hidden=(7, 6),
                      activation="tanh")
    x = rng.random((4, 1, 4, 5)).astype(dtype)
    return vae, x, rng


def iwae_reference(vae, x, eps):
    """L_K per example the slow way: z-form densities, the likelihood's NumPy log_prob, one sample at a time."""
    B, K, _ = eps.shape
    mu, logvar = vae.encode(x)
    sigma = np.exp(0.5 * logvar)
    bounds = []
    for b in range(B):
        log_w = []
        for k in range(K):
            z = mu[b] + sigma[b] * eps[b, k]
            log_px = vae.likelihood.log_prob(vae.decode(z[None]), x[b].reshape(1, -1))[0]
            log_pz = np.sum(-0.5 * z ** 2 - 0.5 * np.log(2 * np.pi))
            log_qz = np.sum(-0.5 * ((z - mu[b]) / sigma[b]) ** 2 - 0.5 * logvar[b] - 0.5 * np.log(2 * np.pi))
            log_w.append(log_px + log_pz - log_qz)
        log_w = np.array(log_w)
        bounds.append(np.log(np.mean(np.exp(log_w - log_w.max()))) + log_w.max())
    return np.array(bounds)


def test_iwae_bound_matches_reference():
    vae, x, rng = small()
    eps = rng.standard_normal((4, 6, 3))
    terms, _ = iwae_forward(vae, x, eps)
    assert np.allclose(terms.bound, iwae_reference(vae, x, eps), rtol=1e-12, atol=0)
    assert np.all(-terms.bound <= terms.recon + terms.kl + 1e-12)  # log-mean-exp ≥ mean: L_K ≥ the K-average ELBO


def test_iwae_k1_is_the_single_sample_elbo_with_sampled_kl():
    vae, x, rng = small()
    eps = rng.standard_normal((4, 3))
    terms, _ = iwae_forward(vae, x, eps[:, None, :])
    elbo = vae.forward(x, eps)  # same z, closed-form KL
    mu, logvar = vae.posterior()
    z = mu + np.exp(0.5 * logvar) * eps
    sampled_kl = np.sum(-0.5 * eps ** 2 - 0.5 * logvar + 0.5 * z ** 2, axis=1)  # log q(z|x) − log p(z)
    assert np.allclose(terms.recon, elbo.recon, rtol=1e-13)
    assert np.allclose(terms.kl, sampled_kl, rtol=1e-12)
    assert np.allclose(-terms.bound, elbo.recon + sampled_kl, rtol=1e-13)


@pytest.mark.parametrize("model", ["mlp", "mlp2"])
def test_iwae_float32_gradients_follow_float64(model):
    """One stochastic layer (iwae.py) and two (hvae.py)."""
    rng = np.random.default_rng(2)
    sizes = {"latent": (4, 3), "hidden": ((7, 6), (5,))} if model == "mlp2" else {"latent": 3, "hidden": (7, 6)}
    vae64, vae32 = (build_model(model, rng=np.random.default_rng(0), dtype=dtype, image_shape=(1, 4, 5),
                                activation="tanh", **sizes) for dtype in (np.float64, np.float32))
    x = rng.random((4, 1, 4, 5))
    for name, p in vae64.params.items():
        vae32.params[name][...] = p
    forward, backward = iwae_pair(vae64)
    eps = rng.standard_normal((4, 5, vae64.noise_size))
    g64 = {k: v.copy() for k, v in backward(vae64, forward(vae64, x, eps)[1]).items()}
    g32 = backward(vae32, forward(vae32, x.astype(np.float32), eps.astype(np.float32))[1])
    for name, g in g64.items():
        assert g32[name].dtype == np.float32
        assert np.max(np.abs(g32[name] - g)) <= 1e-4 * max(1.0, np.max(np.abs(g))), name


def test_iwae_parity_with_pytorch_autograd():
    """Tier 3: the same weights, x and ε in a PyTorch float64 twin written from the formulas; autograd's gradients."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e .[bench])")
    vae, x, rng = small(seed=4)
    eps = rng.standard_normal((4, 7, 3))
    terms, cache = iwae_forward(vae, x, eps)
    loss = -terms.bound.mean()
    grads = {k: v.copy() for k, v in iwae_backward(vae, cache).items()}

    params = {k: torch.tensor(v, requires_grad=True) for k, v in vae.params.items()}

    def mlp(h, prefix, n_layers):
        for i in range(n_layers):
            h = h @ params[f"{prefix}.{i}.W"] + params[f"{prefix}.{i}.b"]
            h = torch.tanh(h) if i < n_layers - 1 else h
        return h

    xt, et = torch.tensor(x.reshape(4, -1)), torch.tensor(eps)
    h = mlp(xt, "encoder", 3)
    mu, logvar = h[:, :3], h[:, 3:]
    z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * et                       # (B, K, Z)
    logits = mlp(z.reshape(-1, 3), "decoder", 3).reshape(4, 7, -1)
    log_px = torch.sum(xt[:, None] * logits - torch.nn.functional.softplus(logits), -1)
    normal = torch.distributions.Normal
    log_pz = normal(0.0, 1.0).log_prob(z).sum(-1)
    log_qz = normal(mu[:, None], torch.exp(0.5 * logvar)[:, None]).log_prob(z).sum(-1)
    torch_loss = -(torch.logsumexp(log_px + log_pz - log_qz, 1) - np.log(7)).mean()
    torch_loss.backward()
    assert abs(loss - torch_loss.item()) <= 1e-12 * abs(loss)
    for name, g in grads.items():
        ref = params[name].grad.numpy()
        assert np.max(np.abs(g - ref)) <= 1e-10 * np.max(np.abs(ref)), name


def test_beta_one_is_the_elbo_and_beta_scales_only_the_kl():
    vae, x, rng = small()
    eps = rng.standard_normal((4, 3))
    terms = vae.forward(x, eps)
    plain = {k: v.copy() for k, v in vae.backward().items()}
    t1, value1, g1 = ElboObjective().loss_and_grads(vae, x, eps)
    assert value1 == pytest.approx(terms.loss.mean(), rel=1e-14)
    for name in plain:
        assert np.array_equal(g1[name], plain[name]), name
    t4, value4, g4 = ElboObjective(beta=4.0).loss_and_grads(vae, x, eps)
    assert value4 == pytest.approx(np.mean(terms.recon + 4 * terms.kl), rel=1e-14)
    assert np.array_equal(t4.loss, terms.loss)  # the reported terms stay the true −ELBO
    for name in plain:
        if name.startswith("decoder"):  # the KL does not reach the decoder
            assert np.array_equal(g4[name], plain[name]), name


def test_free_bits_floor_removes_the_kl_gradient():
    """λ above every dimension's KL: the objective is recon + Z·λ, its gradient that of the reconstruction alone."""
    vae, x, rng = small()
    eps = rng.standard_normal((4, 3))
    vae.forward(x, eps)
    recon_only = {k: v.copy() for k, v in vae.backward(np.zeros(4)).items()}
    terms, value, grads = make_objective(free_bits=50.0).loss_and_grads(vae, x, eps)
    assert value == pytest.approx(terms.recon.mean() + 3 * 50.0, rel=1e-14)
    for name in recon_only:
        assert np.allclose(grads[name], recon_only[name], rtol=0, atol=1e-15), name
    mu, logvar = vae.posterior()
    assert np.allclose(gaussian_kl_per_dimension(mu, logvar).sum(1), terms.kl, rtol=1e-13)


def test_warmup_schedule():
    assert kl_weight(2.0, 4, 0.0) == 0.0
    assert kl_weight(2.0, 4, 1.0) == 0.5
    assert kl_weight(2.0, 4, 4.0) == 2.0 and kl_weight(2.0, 4, 40.0) == 2.0
    assert kl_weight(0.5, 0, 0.0) == 0.5  # no warm-up


@pytest.mark.parametrize("kwargs,needle", [
    ({"name": "iwae", "beta": 2.0}, "iwae"), ({"name": "iwae", "free_bits": 0.5}, "iwae"),
    ({"name": "elbo", "k": 3}, "iwae"), ({"name": "nope"}, "unknown objective"), ({"free_bits": -1.0}, "free_bits"),
    ({"beta": 0.0}, "beta"), ({"warmup": float("nan")}, "warmup"), ({"name": "iwae", "k": 0}, "k"),
])
def test_bad_settings_are_one_clear_error(kwargs, needle):
    with pytest.raises(MinivaeError, match=needle):
        make_objective(**kwargs)


def test_trainer_reports_the_true_negative_elbo(tmp_path):
    """β = 4 with a warm-up, and IWAE: the logged losses are the −ELBO (β = 1), not the surrogate."""
    from minivae.data import load_dataset
    from minivae.training import evaluate_elbo, train
    tiny = dict(dataset="shapes", n_train=64, n_test=16, hidden=(16,), latent=3, batch_size=32, epochs=2)
    test = load_dataset("shapes", n_train=1, n_test=16).test
    for i, settings in enumerate(({"beta": 4.0, "warmup": 1.0}, {"objective": "iwae", "k": 3},
                                  {"free_bits": 0.5})):
        result = train(tmp_path / str(i), **tiny, **settings)
        row = result.metrics[-1]
        assert row["test_loss"] == pytest.approx(evaluate_elbo(result.vae, test, 0)["test_loss"], rel=1e-6)
        assert row["train_loss"] == pytest.approx(row["train_recon"] + row["train_kl"], rel=1e-6)


def test_init_from_starts_a_new_run_from_trained_weights(tmp_path):
    """--init-from: IWAE fine-tuning of a trained VAE starts from its parameters (fresh Adam, new run directory)."""
    from minivae.training import train
    tiny = dict(dataset="shapes", n_train=64, n_test=16, hidden=(16,), latent=3, batch_size=32)
    vae_run = train(tmp_path / "vae", epochs=1, **tiny)
    tuned = train(tmp_path / "iwae", epochs=1, lr=1e-9, objective="iwae", k=3, init_from=str(tmp_path / "vae"),
                  **tiny)
    for name, p in vae_run.vae.params.items():  # 2 Adam steps of at most ~lr each
        assert np.max(np.abs(tuned.vae.params[name] - p)) < 1e-7, name
    with pytest.raises(MinivaeError, match="the model expects"):
        train(tmp_path / "bad", epochs=1, init_from=str(tmp_path / "vae"), **{**tiny, "latent": 4})
