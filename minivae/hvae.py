"""Two stochastic layers (Burda, Grosse & Salakhutdinov 2016, §5): one Gaussian layer stacked on another.

Generative model  p(z₂) p(z₁|z₂) p(x|z₁)      z₂ ~ N(0, I) → z₁ → x
Inference model   q(z₁|x) q(z₂|z₁)            x → z₁ → z₂
Every conditional is a network followed by the same diagonal Gaussian as the one-layer VAE (gaussian.py): the
network outputs [μ | logvar], a sample is z = μ + exp(½·logvar)·ε (`reparameterize`) and its log-density is
`gaussian_log_density`; the last one, p(x|z₁), is the likelihood (Bernoulli for binarized MNIST).

    network     maps              Burda et al.'s MNIST model (--model mlp2; tanh)
    encoder1    x  -> [μ₁ | logvar₁]      784 -> 200 -> 200 -> 2·100      q(z₁|x)
    encoder2    z₁ -> [μ₂ | logvar₂]      100 -> 100 -> 100 -> 2·50       q(z₂|z₁)
    decoder2    z₂ -> [μ̂₁ | logvar̂₁]      50 -> 100 -> 100 -> 2·100       p(z₁|z₂)
    decoder1    z₁ -> likelihood outputs   100 -> 200 -> 200 -> 784        p(x|z₁)

One sample (ε₁, ε₂ passed in, packed per example as ε = [ε₁ | ε₂], Z₁ + Z₂ values) gives the log-weight

    log w = log p(x|z₁) + log p(z₁|z₂) + log p(z₂) − log q(z₁|x) − log q(z₂|z₁),     E_q[log w] = ELBO ≤ log p(x).

Written as −log w = recon + kl with recon = −log p(x|z₁) and the KL estimate

    kl = [log q(z₁|x) − log p(z₁|z₂)] + top,      top = log q(z₂|z₁) − log p(z₂)            ("sampled")
                                                   or  KL(q(z₂|z₁) ‖ N(0, I)) in closed form ("analytic")

The middle-layer term must be Monte Carlo: its prior p(z₁|z₂) depends on a sample z₂. The top term has a closed
form given z₁, with the same expectation, so the ELBO objective (`TwoLayerVAE.forward`) uses it, as the one-layer
ELBO (elbo.py) does; the IWAE bound and the K = 5000 evaluation use the sampled log-weights throughout, as the paper
does. docs/derivation/09-two-stochastic-layers.md derives every line of the backward pass.

Shapes: batch B, K samples per example, N = B·K rows ordered b·K + k, latent sizes Z₁, Z₂, data D.
"""
from dataclasses import dataclass

import numpy as np

from .elbo import ElboTerms
from .errors import MinivaeError
from .flat import pack
from .gaussian import (gaussian_kl, gaussian_kl_backward, gaussian_log_density, gaussian_log_density_backward,
                       reparameterize, reparameterize_backward)
from .iwae import IwaeTerms, normalized_weights
from .logspace import log_mean_exp

NETWORKS = ("encoder1", "encoder2", "decoder2", "decoder1")


def split_gaussian(h, Z):
    """A network's output [μ | logvar] (N, 2Z) -> μ, logvar, each (N, Z)."""
    return h[:, :Z], h[:, Z:]


@dataclass
class StackedTerms:
    """Per sample (B, K), nats: recon = −log p(x|z₁); kl = log q(z₁|x) − log p(z₁|z₂) + top (see the module
    docstring); −log w = recon + kl."""
    recon: np.ndarray
    kl: np.ndarray


def stacked_forward(model, x, eps, analytic_top):
    """recon and kl of every sample for data x (B, ...) and noise ε = [ε₁ | ε₂] (B, K, Z₁ + Z₂)
    -> (StackedTerms, cache for `stacked_backward`). `analytic_top`: the top term in closed form, else sampled.

        μ₁, logvar₁ = encoder1(x)                 (B, 1, Z₁)
        z₁ = μ₁ + σ₁ ε₁                           (B, K, Z₁) -> N rows
        μ₂, logvar₂ = encoder2(z₁)                (N, Z₂)
        z₂ = μ₂ + σ₂ ε₂                           (N, Z₂)
        μ̂₁, logvar̂₁ = decoder2(z₂)                (N, Z₁)
        out = decoder1(z₁),  recon = −log p(x | out)
        kl = log N(z₁; μ₁, σ₁²) − log N(z₁; μ̂₁, σ̂₁²) + top
    """
    B, K, _ = eps.shape
    Z1, Z2 = model.latents
    N, zero = B * K, model.dtype.type(0)
    eps1, eps2 = eps[..., :Z1], eps[..., Z1:].reshape(N, Z2)
    mu1, logvar1 = (a[:, None, :] for a in split_gaussian(model.encoder1.forward(x.reshape(B, -1)), Z1))
    z1 = reparameterize(mu1, logvar1, eps1)                                      # (B, K, Z₁)
    rows1 = z1.reshape(N, Z1)
    mu2, logvar2 = split_gaussian(model.encoder2.forward(rows1), Z2)
    z2 = reparameterize(mu2, logvar2, eps2)                                      # (N, Z₂)
    mu1_prior, logvar1_prior = split_gaussian(model.decoder2.forward(z2), Z1)
    out = model.decoder1.forward(rows1)
    recon, dout = model.engine.nll_and_grad(model.likelihood, out, np.repeat(x.reshape(B, -1), K, axis=0), 1.0)
    if analytic_top:
        top = gaussian_kl(mu2, logvar2)
    else:
        top = gaussian_log_density(z2, mu2, logvar2) - gaussian_log_density(z2, zero, zero)
    kl = gaussian_log_density(z1, mu1, logvar1).reshape(N) - gaussian_log_density(rows1, mu1_prior, logvar1_prior)
    kl += top
    cache = (analytic_top, eps1, eps2, mu1, logvar1, z1, mu2, logvar2, z2, mu1_prior, logvar1_prior, dout)
    return StackedTerms(recon.reshape(B, K), kl.reshape(B, K)), cache


def stacked_backward(model, cache, d_recon, d_kl):
    """Gradients of L = Σ_bk (d_recon_bk · recon_bk + d_kl_bk · kl_bk) w.r.t. every parameter (`model.grads`).

    d_recon, d_kl: (B, K) weights (1/B each for the ELBO, w̃_bk/B for the IWAE bound). Each line differentiates one
    line of `stacked_forward`, from the last to the first; ∂L/∂z₁ collects four paths (decoder1, both log-densities
    of z₁, encoder2) before it flows into encoder1 through z₁ = μ₁ + σ₁ε₁.
    """
    analytic_top, eps1, eps2, mu1, logvar1, z1, mu2, logvar2, z2, mu1_prior, logvar1_prior, dout = cache
    B, K, Z1 = z1.shape
    N, zero, dtype = B * K, model.dtype.type(0), model.dtype
    a, c = np.asarray(d_recon, dtype).reshape(N), np.asarray(d_kl, dtype).reshape(N)
    rows1 = z1.reshape(N, Z1)
    dz1 = model.decoder1.backward(dout * a[:, None])                            # recon through p(x|z₁)
    dz1_prior, dmu1_prior, dlogvar1_prior = gaussian_log_density_backward(-c, rows1, mu1_prior, logvar1_prior)
    dz1_q, dmu1, dlogvar1 = gaussian_log_density_backward(c.reshape(B, K), z1, mu1, logvar1)
    dz1 += dz1_prior + dz1_q.reshape(N, Z1)
    if analytic_top:
        dmu2, dlogvar2 = gaussian_kl_backward(c, mu2, logvar2)
        dz2 = np.zeros_like(z2)
    else:
        dz2, dmu2, dlogvar2 = gaussian_log_density_backward(c, z2, mu2, logvar2)
        dz2 += gaussian_log_density_backward(-c, z2, zero, zero)[0]
    dz2 += model.decoder2.backward(np.concatenate([dmu1_prior, dlogvar1_prior], axis=1))   # through p(z₁|z₂)
    dmu2_z, dlogvar2_z = reparameterize_backward(dz2, logvar2, eps2)            # z₂ = μ₂ + σ₂ε₂
    dz1 += model.encoder2.backward(np.concatenate([dmu2 + dmu2_z, dlogvar2 + dlogvar2_z], axis=1))
    dmu1_z, dlogvar1_z = reparameterize_backward(dz1.reshape(B, K, Z1), logvar1, eps1)   # z₁ = μ₁ + σ₁ε₁
    dh1 = np.concatenate([(dmu1 + dmu1_z).sum(1), (dlogvar1 + dlogvar1_z).sum(1)], axis=1)
    model.encoder1.backward(dh1, need_dx=False)
    return model.grads


def hvae_iwae_forward(model, x, eps):
    """L_K for data x (B, ...) and noise ε (B, K, Z₁ + Z₂), every log-density sampled -> (IwaeTerms, cache)."""
    terms, cache = stacked_forward(model, x, eps, analytic_top=False)
    log_w = -(terms.recon + terms.kl)                                            # (B, K)
    return (IwaeTerms(log_mean_exp(log_w), terms.recon.mean(1), terms.kl.mean(1)),
            (cache, normalized_weights(log_w)))


def hvae_iwae_backward(model, cache, total=None):
    """Gradients of L = −(1/B) Σ_b L_K(x_b): each sample's −log w weighted by g_bk = w̃_bk / B (iwae.py); B = `total`
    when the cached batch is one share of a larger one (distributed.py)."""
    cache, w_tilde = cache
    g = w_tilde / (total or len(w_tilde))
    return stacked_backward(model, cache, g, g)


class TwoLayerVAE:
    """The four networks, the likelihood and the latent sizes (Z₁, Z₂); parameters named "{network}.{i}.{W|b}".

    Same interface as elbo.VAE, so training, checkpoints, evaluation and pictures take either: `latent` is the top
    size Z₂ (where the prior is N(0, I): `decode` maps a top code z₂ to x), `noise_size` = Z₁ + Z₂ the values of
    ε per sample, `forward`/`backward` the ELBO with the top KL in closed form.
    """

    def __init__(self, networks, likelihood, latents, image_shape, config, engine):
        self.encoder1, self.encoder2, self.decoder2, self.decoder1 = (networks[n] for n in NETWORKS)
        layers = [layer for n in NETWORKS for layer in networks[n].layers]
        pack([layer.params for layer in layers])
        pack([layer.grads for layer in layers])
        self.likelihood, self.latents = likelihood, tuple(latents)
        self.latent, self.noise_size = self.latents[1], sum(self.latents)
        self.image_shape, self.config, self.engine = tuple(image_shape), config, engine

    def networks(self):
        return {n: getattr(self, n) for n in NETWORKS}

    @property
    def params(self):
        return {f"{n}.{k}": v for n, net in self.networks().items() for k, v in net.params.items()}

    @property
    def grads(self):
        return {f"{n}.{k}": v for n, net in self.networks().items() for k, v in net.grads.items()}

    @property
    def dtype(self):
        return self.encoder1.layers[0].params["W"].dtype

    def posterior_means(self, x):
        """μ₁(x) (B, Z₁) of q(z₁|x) and μ₂ (B, Z₂) of q(z₂ | z₁ = μ₁(x)), with the top logvar₂ -> (μ₁, μ₂, logvar₂)."""
        mu1 = np.ascontiguousarray(split_gaussian(self.encoder1.forward(x.reshape(len(x), -1)), self.latents[0])[0])
        return (mu1, *split_gaussian(self.encoder2.forward(mu1), self.latent))

    def encode(self, x):
        """μ, logvar of the top posterior q(z₂ | z₁ = μ₁(x)), each (B, Z₂)."""
        return self.posterior_means(x)[1:]

    def decode(self, z2):
        """The likelihood's parameters (B, k·D) for top codes z₂ (B, Z₂), through z₁ = the mean of p(z₁|z₂)."""
        mu1, _ = split_gaussian(self.decoder2.forward(z2), self.latents[0])
        return self.decoder1.forward(np.ascontiguousarray(mu1))

    def forward(self, x, eps, total=None):
        """Negative ELBO per example (ElboTerms) for data x (B, ...) and ε = [ε₁ | ε₂] (B, Z₁ + Z₂); `total`: the
        global batch size when x is one share of it (the loss is a mean over `total`, default B)."""
        terms, cache = stacked_forward(self, x, eps[:, None, :], analytic_top=True)
        self._cache, self._total = cache, total or len(x)
        recon, kl = terms.recon[:, 0], terms.kl[:, 0]
        return ElboTerms(recon + kl, recon, kl)

    def posterior(self):
        """What free bits (objectives.py) would floor: a closed-form KL per latent dimension, which the middle layer
        does not have."""
        raise MinivaeError("free bits need a closed-form KL per latent dimension; the two-layer model's middle layer "
                           "has only a sampled one")

    def backward(self, dkl=None):
        """Gradients of L = Σ_b recon_b / total + Σ_b dkl_b·kl_b (dkl (B,), default 1/total: the ELBO; β/B: a β-VAE)."""
        B = len(self._cache[5])  # z₁ (B, 1, Z₁)
        d_recon = np.full((B, 1), 1.0 / self._total)
        d_kl = d_recon if dkl is None else np.reshape(dkl, (B, 1))
        return stacked_backward(self, self._cache, d_recon, d_kl)
