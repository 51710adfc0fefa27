"""The importance-weighted bound (IWAE, Burda, Grosse & Salakhutdinov 2016), forward and backward.

For one example x and K reparametrized samples z_k = μ + σ·ε_k from q(z|x) = N(μ, diag(σ²)), σ = exp(½·logvar),
the importance weights and the K-sample bound are

    log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x)                                            (K,)
    log p(z_k)    = −½ Σ_Z (z_k² + log 2π)                      the prior N(0, I)
    log q(z_k|x)  = −½ Σ_Z (ε_k² + logvar + log 2π)             N(z_k; μ, σ²) written with ε_k = (z_k − μ)/σ
    L_K(x) = log (1/K) Σ_k w_k = logsumexp_k(log w_k) − log K   ≤ log p(x), and L_1 = the one-sample ELBO

(with a *sampled* KL, log q − log p, where elbo.py uses the closed form). L_K rises to log p(x) as K grows. Training
minimizes the batch mean L = −(1/B) Σ_b L_K(x_b), in nats per example.

Gradient. ∂ logsumexp_k(a_k) / ∂a_k = softmax(a)_k, so with the normalized weights w̃_k = w_k / Σ_j w_j,

    ∇L_K = Σ_k w̃_k ∇ log w_k

each sample's ELBO gradient, weighted by w̃_k (the VAE weights every sample by 1/K). Term by term, with ε fixed and
g_bk = w̃_bk / B = ∂L/∂(−log w_bk):
    ∂L/∂out_bk    = g_bk · ∂(−log p(x_b|out_bk))/∂out_bk      the likelihood's gradient, row bk scaled by g_bk
    ∂L/∂z_bk      = decoder.backward(∂L/∂out) + g_bk · z_bk     (−log p(z) = ½ Σ z² + c)
    ∂L/∂μ_b       = Σ_k ∂L/∂z_bk                               (∂z/∂μ = 1)
    ∂L/∂logvar_b  = Σ_k ∂L/∂z_bk · ½σ_b ε_bk − ½/B             (∂z/∂logvar = ½σε; log q = −½ Σ (ε² + logvar) + c
                                                                 gives ∂(log q)/∂logvar = −½, and Σ_k g_bk = 1/B)
The B·K samples go through the decoder as one stacked batch of rows ordered b·K + k.

`log_importance_weights` and `normalized_weights` are the shared math; evaluation.py uses the first, with
logspace.log_mean_exp, for the K = 5000 log-likelihood estimate.
"""
from dataclasses import dataclass

import numpy as np

from .gaussian import LOG_2PI, reparameterize
from .logspace import log_mean_exp


def gaussian_log_prior(z):
    """log N(z; 0, I) = −½ Σ_Z (z² + log 2π).   (..., Z) -> (...) nats."""
    return -0.5 * np.sum(z * z + LOG_2PI, axis=-1)


def gaussian_log_posterior(eps, logvar):
    """log N(z; μ, exp(logvar)) at z = μ + exp(½·logvar)·ε, i.e. −½ Σ_Z (ε² + logvar + log 2π).   (..., Z) -> (...)."""
    return -0.5 * np.sum(eps * eps + logvar + LOG_2PI, axis=-1)


def log_importance_weights(log_px_given_z, z, eps, logvar):
    """log w = log p(x|z) + log p(z) − log q(z|x).   log_px_given_z (B, K); z, eps (B, K, Z); logvar (B, 1, Z)."""
    return log_px_given_z + gaussian_log_prior(z) - gaussian_log_posterior(eps, logvar)


def log_mean_exp_stderr(log_w, axis=-1):
    """The standard error of L_K = log_mean_exp(log w) as an estimate of log E[w], by the delta method:
    Var(log ŵ) ≈ Var(w) / (K · E[w]²), with Var(w)/E[w]² estimated by Σ_k (w_k/ŵ − 1)² / (K − 1), ŵ = the mean
    weight. Its square root over √K is the relative error of ŵ; it says nothing of L_K's bias, which is of order
    Var(w)/(2K E[w]²) and negative.   (…, K) -> (…) nats."""
    K = log_w.shape[axis]
    ratio = np.exp(log_w - np.expand_dims(log_mean_exp(log_w, axis), axis))   # w_k / ŵ
    return np.sqrt(np.sum((ratio - 1) ** 2, axis=axis) / ((K - 1) * K))


def normalized_weights(log_w):
    """w̃_k = w_k / Σ_j w_j = softmax(log w) over the last axis, = ∂ log_mean_exp / ∂ log w_k.   (B, K) -> (B, K)."""
    e = np.exp(log_w - np.max(log_w, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


@dataclass
class IwaeTerms:
    """Per example (B,): bound = L_K (nats, ≤ log p(x)); recon = mean_k −log p(x|z_k); kl = mean_k (log q − log p)(z_k).

    recon + kl is the negative ELBO averaged over the K samples (the true −ELBO estimate; −bound ≤ recon + kl).
    """
    bound: np.ndarray
    recon: np.ndarray
    kl: np.ndarray


def iwae_forward(vae, x, eps):
    """L_K for data x (B, ...) and noise ε (B, K, Z) -> (IwaeTerms, cache for `iwae_backward`)."""
    B, K, Z = eps.shape
    mu, logvar = vae.encode(x)
    z = reparameterize(mu[:, None, :], logvar[:, None, :], eps)          # (B, K, Z)
    out = vae.decoder.forward(z.reshape(B * K, Z))                        # (B·K, ...): row b·K + k decodes z_bk
    x_rows = np.repeat(x.reshape(B, -1), K, axis=0)                       # (B·K, D): row b·K + k holds x_b
    nll, dnll = vae.engine.nll_and_grad(vae.likelihood, out.reshape(B * K, -1), x_rows, 1.0)
    nll = nll.reshape(B, K)
    log_w = log_importance_weights(-nll, z, eps, logvar[:, None, :])      # (B, K)
    terms = IwaeTerms(log_mean_exp(log_w), nll.mean(1), (-nll - log_w).mean(1))  # −log w − nll = log q − log p
    return terms, (logvar, eps, z, out.shape, dnll, normalized_weights(log_w))


def iwae_backward(vae, cache, total=None):
    """Gradients of L = −(1/B) Σ_b L_K(x_b) w.r.t. every parameter (dict, the names of `vae.params`); B = `total`
    when the cached batch is one share of a larger one (distributed.py)."""
    logvar, eps, z, out_shape, dnll, w_tilde = cache
    B, K, Z = eps.shape
    total = total or B
    g = w_tilde / total                                                   # ∂L/∂(−log w_bk)          (B, K)
    dout = dnll * g.reshape(B * K, 1)                                     # ∂L/∂out                   (B·K, k·D)
    dz = vae.decoder.backward(dout.reshape(out_shape)).reshape(B, K, Z)
    dz += g[:, :, None] * z                                               # + g · ∂(−log p(z))/∂z
    dmu = dz.sum(1)                                                       # (B, Z)
    dlogvar = np.sum(dz * eps, axis=1) * 0.5 * np.exp(0.5 * logvar) - 0.5 / total
    vae.encoder.backward(np.concatenate([dmu, dlogvar], axis=1), need_dx=False)
    return vae.grads
