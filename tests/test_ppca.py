"""The linear-Gaussian VAE is probabilistic PCA, whose log p(x) and p(z|x) are exact (minivae/ppca.py): the ELBO's
gap, the importance-sampled bound and gradient training, checked where the truth is known. All float64."""
import numpy as np
import pytest

from minivae.gaussian import gaussian_kl
from minivae.gradchecks import TOLERANCE, elbo_check
from minivae.iwae import gaussian_log_prior, iwae_forward, log_mean_exp_stderr
from minivae.likelihoods.normal import normal_fixed_log_prob
from minivae.models import build_model
from minivae.optim import Adam
from minivae.ppca import (exact_elbo, kl_diagonal_to_full, linear_vae_parameters, ppca_log_likelihood, ppca_ml,
                          ppca_posterior, quadrature_noise)

D, Z = 6, 2


def ppca_data(rng, n, variance=0.3):
    """n rows from a known pPCA: two directions of scale 2 and 1, offset 0.5, noise variance `variance`."""
    W = rng.standard_normal((Z, D)) * np.array([[2.0], [1.0]])
    return rng.standard_normal((n, Z)) @ W + 0.5 + np.sqrt(variance) * rng.standard_normal((n, D))


def linear_vae(seed):
    return build_model("linear", rng=np.random.default_rng(seed), image_shape=(1, 1, D), latent=Z,
                       likelihood="normal", dtype=np.float64)


def set_linear_vae(vae, W, b, variance, widen=0.0, shift=0.0):
    """Decoder (W, b, σ²); encoder = the exact posterior's mean (shifted by `shift`·its row scale) and its diagonal
    log-variance plus `widen`."""
    p = vae.params
    p["decoder.0.W"][...], p["decoder.0.b"][...] = W, b
    p["decoder.1.s"][...] = np.log(variance - vae.likelihood.variance_floor)
    M = W @ W.T + variance * np.eye(Z)
    A = np.linalg.solve(M, W).T                                          # μ = (x − b) A,  A = Wᵀ M⁻¹   (D, Z)
    p["encoder.0.W"][...] = np.concatenate([A, np.zeros((D, Z))], axis=1)
    p["encoder.0.b"][...] = np.concatenate([-b @ A + shift, np.log(np.diag(variance * np.linalg.inv(M))) + widen])


def test_marginal_and_posterior_satisfy_bayes_rule():
    """log p(x) = log p(x|z) + log p(z) − log p(z|x) at every z: the closed forms checked against each other and the
    library's own Normal log-density and prior."""
    rng = np.random.default_rng(0)
    W, b, variance = rng.standard_normal((Z, D)), rng.standard_normal(D), 0.4
    x = ppca_data(rng, 20)
    mean, cov = ppca_posterior(x, W, b, variance)
    z = rng.standard_normal((20, Z))
    r = z - mean
    log_post = -0.5 * (np.einsum("ni,ij,nj->n", r, np.linalg.inv(cov), r) + np.linalg.slogdet(2 * np.pi * cov)[1])
    bayes = normal_fixed_log_prob(z @ W + b, x, variance) + gaussian_log_prior(z) - log_post
    np.testing.assert_allclose(ppca_log_likelihood(x, W, b, variance), bayes, rtol=0, atol=1e-11)


def test_quadrature_noise_gives_the_exact_expectation():
    """E_q log p(x|z) over the 2Z points equals the closed form log p(x|μ) − Σ_j v_j |W_j|² / (2σ²)."""
    rng = np.random.default_rng(1)
    vae = linear_vae(1)
    x = ppca_data(rng, 30)
    W, b, variance = linear_vae_parameters(vae)
    mu, logvar = (a.copy() for a in vae.encode(x))
    expected = (normal_fixed_log_prob(mu @ W + b, x, variance) - np.exp(logvar) @ np.sum(W * W, 1) / (2 * variance)
                - gaussian_kl(mu, logvar))
    np.testing.assert_allclose(exact_elbo(vae, x), expected, rtol=0, atol=1e-11)
    assert quadrature_noise(3).shape == (6, 3)


@pytest.mark.parametrize("seed", [2, 3])
def test_elbo_gap_is_the_kl_to_the_true_posterior(seed):
    """ELBO ≤ log p(x) for every example, and log p(x) − ELBO = KL(q(z|x) ‖ p(z|x)) to 1e-10 (chapter 3's identity),
    for a random model (seed 2) and one whose encoder is the exact posterior's mean with a wider variance (seed 3)."""
    rng = np.random.default_rng(seed)
    vae = linear_vae(seed)
    x = ppca_data(rng, 200)
    if seed == 3:
        W, b, variance = ppca_ml(x, Z)
        set_linear_vae(vae, W, b, variance, widen=0.7, shift=0.3)
    elbo = exact_elbo(vae, x)
    W, b, variance = linear_vae_parameters(vae)
    log_px = ppca_log_likelihood(x, W, b, variance)
    mu, logvar = vae.encode(x)
    kl = kl_diagonal_to_full(mu, logvar, *ppca_posterior(x, W, b, variance))
    assert np.all(elbo <= log_px)
    assert np.min(kl) > 1e-3  # a real gap, not a trivial one
    np.testing.assert_allclose(log_px - elbo, kl, rtol=0, atol=1e-10)


def test_importance_sampled_bound_rises_to_log_px():
    """Mean L_K over 100 examples, K = 1, 4, …, 4096 (nested samples): it rises with K while it is more than three
    standard errors (the delta method's, iwae.log_mean_exp_stderr) below the exact log p(x), and at K = 4096 it is
    within three of them. The encoder is the exact posterior's mean shifted by 0.2 with its variance doubled, so
    the one-sample bound sits nats below log p(x) and the weights keep a finite variance."""
    rng = np.random.default_rng(4)
    x = ppca_data(rng, 100)
    W, b, variance = ppca_ml(x, Z)
    vae = linear_vae(4)
    set_linear_vae(vae, W, b, variance, widen=0.7, shift=0.2)
    log_px = ppca_log_likelihood(x, W, b, variance)
    eps = rng.standard_normal((len(x), 4096, Z))
    gaps, errors = [], []
    for K in (1, 4, 16, 64, 256, 1024, 4096):
        terms, cache = iwae_forward(vae, x, eps[:, :K])
        gaps.append(np.mean(log_px - terms.bound))
        errors.append(np.sqrt(np.sum(log_mean_exp_stderr(np.log(cache[-1])) ** 2)) / len(x) if K > 1 else np.inf)
    assert gaps[0] > 1.0, gaps  # the one-sample bound is far below log p(x)
    for K_index in range(len(gaps) - 1):
        if gaps[K_index + 1] > 3 * errors[K_index + 1]:
            assert gaps[K_index + 1] < gaps[K_index], (K_index, gaps)
    assert abs(gaps[-1]) < 3 * errors[-1] < 0.02, (gaps, errors)


def test_gradient_training_reaches_the_ppca_ml_solution():
    """Adam on the exact ELBO gradient (the library's backward at the quadrature points) from a random start ends at
    the maximum-likelihood pPCA of the sample: the ELBO's maximum is log p(x) at θ_ML, where q can be the exact
    posterior (diagonal for W_ML's orthogonal rows). The learning rate is 0.1 for 1500 steps, then falls to 1e-4;
    measured at the end: σ² within 6e-9 (relative), WᵀW within 3e-7 of its size, the ELBO 3e-14 below max log p(x).
    The tolerances leave 100×, 30× and 3000× of margin for rounding on other machines; a gradient off by a factor
    anywhere misses them by orders of magnitude."""
    rng = np.random.default_rng(5)
    x = ppca_data(rng, 300)
    W_ml, b_ml, variance_ml = ppca_ml(x, Z)
    vae = linear_vae(6)
    adam, steps, flat = Adam(vae.params, lr=0.1), 2500, 1500
    for t in range(steps):
        adam.lr = 0.1 * min(1.0, 1e-3 ** ((t - flat) / (steps - flat)))
        exact_elbo(vae, x)
        adam.step(vae.backward())
    W, b, variance = linear_vae_parameters(vae)
    assert abs(variance / variance_ml - 1) < 1e-6, (variance, variance_ml)
    C, C_ml = W.T @ W, W_ml.T @ W_ml
    assert np.max(np.abs(C - C_ml)) < 1e-5 * np.max(np.abs(C_ml))
    np.testing.assert_allclose(b, b_ml, rtol=0, atol=1e-6)
    assert abs(exact_elbo(vae, x).mean() - ppca_log_likelihood(x, W_ml, b_ml, variance_ml).mean()) < 1e-10


def test_ml_solution_is_a_maximum():
    """ppca_ml's log-likelihood is above that of every perturbed (W, b, σ²) nearby."""
    rng = np.random.default_rng(7)
    x = ppca_data(rng, 100)
    W, b, variance = ppca_ml(x, Z)
    best = ppca_log_likelihood(x, W, b, variance).mean()
    for _ in range(20):
        assert ppca_log_likelihood(x, W + 1e-3 * rng.standard_normal(W.shape), b + 1e-3 * rng.standard_normal(D),
                                   variance * (1 + 1e-3 * rng.standard_normal())).mean() < best


def test_linear_model_gradients():
    """The linear VAE's whole-ELBO gradient (the shared log-variance included) against finite differences."""
    results = elbo_check("linear", seed=3, image_shape=(1, 3, 4), latent=2, likelihood="normal")
    assert any("decoder.1.s" in name for name, _ in results)
    for name, err in results:
        assert err < TOLERANCE, (name, err)
