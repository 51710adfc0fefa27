"""Training objectives: what the optimizer minimizes, one mini-batch at a time.

    elbo (default)  L = (1/B) Σ_b [ −log p(x_b|z_b) + β_t · KL_b ]                              β-VAE, KL warm-up
                    with free bits λ > 0:   L = (1/B) Σ_b −log p(x_b|z_b) + β_t · Σ_j max(λ, KL̄_j)
    iwae            L = −(1/B) Σ_b L_K(x_b),  L_K = log (1/K) Σ_k w_k                            (iwae.py)

β-VAE (Higgins et al. 2017): β weights the KL; β = 1 is the ELBO.
KL warm-up (Bowman et al. 2016; Sønderby et al. 2016): the weight rises linearly from 0 to β over the first N epochs,
    β_t = β · min(1, t / N),    t = steps done / steps per epoch   (in epochs, fractional: it rises every step).
Free bits (Kingma et al. 2016, the IAF paper): every latent dimension j keeps λ nats of KL for free,
    KL_bj = ½ (μ_bj² + exp(logvar_bj) − 1 − logvar_bj),     KL̄_j = (1/B) Σ_b KL_bj      (batch mean, per dimension)
    ∂L/∂KL_bj = β_t · [KL̄_j > λ] / B   — a dimension below the floor gets no KL gradient (max(λ, ·) is flat there).

Whatever the objective, `loss_and_grads` also returns the true negative ELBO per example (β = 1, no floor): the
training log shows it beside the surrogate, and the test loss (train.evaluate_elbo) is always the true −ELBO.

Each objective: `noise(rng, B, Z, dtype)` draws its ε ((B, Z), or (B, K, Z) for iwae; Z = the model's noise_size) and
`loss_and_grads(vae, x, eps, epochs_done)` -> (ElboTerms of the true −ELBO, surrogate L (float), gradients).

Data parallel (distributed.py): with `share`, x and ε are rows `share.rows` of a global batch of B = `share.total`
examples; the mean is still over B, so the gradients and L are this share's parts, and summed over the shares they
are the whole batch's. Free bits' KL̄_j is a mean over the global batch, so it is summed across ranks first.
"""
import math

import numpy as np

from .elbo import ElboTerms
from .errors import MinivaeError
from .gaussian import gaussian_kl_per_dimension
from .hvae import TwoLayerVAE, hvae_iwae_backward, hvae_iwae_forward
from .iwae import iwae_backward, iwae_forward

OBJECTIVES = ("elbo", "iwae")


def kl_weight(beta, warmup, epochs_done):
    """β_t = β · min(1, t / N) for N = `warmup` epochs (N = 0: β from the start), t = `epochs_done` (fractional)."""
    return beta if warmup <= 0 else beta * min(1.0, epochs_done / warmup)


class ElboObjective:
    """The negative ELBO with a KL weight β (optionally warmed up from 0) and an optional free-bits floor λ."""

    name = "elbo"

    def __init__(self, beta=1.0, warmup=0.0, free_bits=0.0):
        self.beta, self.warmup, self.free_bits = beta, warmup, free_bits

    def noise(self, rng, batch, latent, dtype):
        return rng.standard_normal((batch, latent)).astype(dtype)

    def loss_and_grads(self, vae, x, eps, epochs_done=math.inf, share=None):
        B = x.shape[0] if share is None else share.total
        terms = vae.forward(x, eps, B)                                              # elbo_forward, cached
        beta_t = kl_weight(self.beta, self.warmup, epochs_done)
        if self.free_bits > 0:
            mu, logvar = vae.posterior()
            kl_dims = gaussian_kl_per_dimension(mu, logvar).sum(0)                            # Σ_b KL_bj   (Z,)
            kl_dims = (kl_dims if share is None else share.world.sum(kl_dims)) / B   # KL̄_j   (Z,)
            floor = beta_t * np.sum(np.maximum(self.free_bits, kl_dims))
            value = terms.recon.sum() / B + (floor if share is None or share.rows.start == 0 else 0.0)
            dkl = np.broadcast_to(beta_t * (kl_dims > self.free_bits) / B, mu.shape)  # ∂L/∂KL_bj   (B, Z)
        else:
            value = np.sum(terms.recon + beta_t * terms.kl) / B
            dkl = np.full(x.shape[0], beta_t / B)                                   # ∂L/∂KL_b   (B,)
        return terms, float(value), vae.backward(dkl)                               # elbo_backward


def iwae_pair(vae):
    """The K-sample bound's (forward, backward) for vae's model: one stochastic layer (iwae.py) or two (hvae.py)."""
    return (hvae_iwae_forward, hvae_iwae_backward) if isinstance(vae, TwoLayerVAE) else (iwae_forward, iwae_backward)


class IwaeObjective:
    """The importance-weighted bound with K samples per example (iwae.py); K = 1 is the ELBO with a sampled KL."""

    name = "iwae"

    def __init__(self, k=5):
        self.k = k

    def noise(self, rng, batch, latent, dtype):
        return rng.standard_normal((batch, self.k, latent)).astype(dtype)

    def loss_and_grads(self, vae, x, eps, epochs_done=math.inf, share=None):
        B = x.shape[0] if share is None else share.total
        forward, backward = iwae_pair(vae)
        terms, cache = forward(vae, x, eps)
        grads = backward(vae, cache, B)
        return ElboTerms(terms.recon + terms.kl, terms.recon, terms.kl), float(-np.sum(terms.bound) / B), grads


def make_objective(name="elbo", *, k=None, beta=1.0, warmup=0.0, free_bits=0.0):
    """The objective called `name`, checking its settings; MinivaeError names the offending one."""
    if name not in OBJECTIVES:
        raise MinivaeError(f"unknown objective {name!r}; expected one of {', '.join(OBJECTIVES)}")
    for label, value in (("beta", beta), ("warmup", warmup), ("free_bits", free_bits)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise MinivaeError(f"{label} must be a finite number ≥ 0, got {value!r}")
    if beta <= 0:
        raise MinivaeError(f"beta must be positive, got {beta!r}")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise MinivaeError(f"k (importance samples) must be a positive integer, got {k!r}")
    if name == "iwae":
        if beta != 1 or warmup or free_bits:
            raise MinivaeError("the iwae objective has no KL term to weight: beta, warmup and free_bits apply to "
                               "--objective elbo only")
        return IwaeObjective(k or 5)
    if k not in (None, 1):
        raise MinivaeError(f"k = {k} importance samples applies to --objective iwae, not elbo")
    return ElboObjective(beta, warmup, free_bits)
