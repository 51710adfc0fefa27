"""The VAE and its objective, the evidence lower bound (ELBO), forward and backward in one place.

For one example x (D values) with encoder q(z|x) = N(μ(x), diag(exp(logvar(x)))), prior p(z) = N(0, I) and a decoder
whose output `out(z)` parametrizes p(x|z):

    log p(x) ≥ ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))

estimated with one reparametrized sample z = μ + exp(½·logvar)·ε, ε ~ N(0, I) passed in. Training *minimizes* the
negative ELBO, averaged over a batch of B examples (nats per example):

    L = (1/B) Σ_b [ −log p(x_b | z_b) + KL_b ]        ("recon" + "kl")

Forward, step by step (shapes for batch B, latent Z, data D, k outputs per value):
    h = encoder(x)                      (B, 2Z)       μ = h[:, :Z], logvar = h[:, Z:]
    z = μ + exp(½·logvar)·ε             (B, Z)        gaussian.py
    KL = ½ Σ_Z (μ² + exp(logvar) − 1 − logvar)        (B,)
    out = decoder(z)                    (B, k·D)
    recon = −log p(x | out)             (B,)          likelihoods/
Backward, each line the derivative of one line above, with ∂L/∂loss_b = 1/B:
    ∂L/∂out = (1/B) · ∂(−log p)/∂out                                  (B, k·D)
    ∂L/∂z = decoder.backward(∂L/∂out)                                 (B, Z)
    ∂L/∂μ = ∂L/∂z + μ/B,   ∂L/∂logvar = ∂L/∂z · ½σε + ½(σ² − 1)/B     (B, Z) each
    encoder.backward([∂L/∂μ, ∂L/∂logvar])                             parameter gradients

`elbo_forward(vae, x, eps) -> (terms, cache)` and `elbo_backward(vae, cache, dkl)` are those two columns; the
model's engine (engines.py) decides whether the sampler, KL and likelihood run as the NumPy reference or the fused
Numba kernels. `VAE.forward` / `VAE.backward` keep the cache between the two for callers that do one step at a time.
"""
from dataclasses import dataclass

import numpy as np

from .flat import pack


@dataclass
class ElboTerms:
    """Per-example terms of the negative ELBO, in nats: loss = recon + kl, each (B,)."""
    loss: np.ndarray
    recon: np.ndarray
    kl: np.ndarray


def elbo_forward(vae, x, eps, total=None):
    """Negative ELBO per example for data x (B, ...) and noise ε (B, Z) -> (ElboTerms, cache for `elbo_backward`).

    `total`: the batch the mean L runs over, when x is one share of it (distributed.py); default B."""
    B = x.shape[0]
    total = total or B
    mu, logvar = vae.encode(x)                                            # (B, Z) each
    z, kl = vae.engine.sample_and_kl(mu, logvar, eps)                     # (B, Z), (B,)
    out = vae.decoder.forward(z)                                          # (B, k·D) or (B, k·C, H, W)
    recon, dout = vae.engine.nll_and_grad(vae.likelihood, out.reshape(B, -1), x.reshape(B, -1), 1.0 / total)
    return ElboTerms(recon + kl, recon, kl), (mu, logvar, eps, out.shape, dout, total)


def elbo_backward(vae, cache, dkl=None):
    """Gradients of L = mean_b(recon_b) + Σ dkl·KL w.r.t. every parameter (dict, same names as `vae.params`).

    dkl = ∂L/∂KL: None for the ELBO (1/B for every example; 1/total for a share); (B,) weights each example's KL
    (β/B for a β-VAE); (B, Z) weights each example's and latent dimension's KL_bj = ½(μ² + σ² − 1 − logvar)
    (free bits, objectives.py).
    """
    mu, logvar, eps, out_shape, dout, total = cache
    B = mu.shape[0]
    dz = vae.decoder.backward(dout.reshape(out_shape))                   # ∂L/∂z   (B, Z)
    dkl = np.full(B, 1.0 / total, dtype=mu.dtype) if dkl is None else np.asarray(dkl, dtype=mu.dtype)
    dmu, dlogvar = vae.engine.sample_and_kl_backward(dz, dkl, mu, logvar, eps)
    vae.encoder.backward(np.concatenate([dmu, dlogvar], axis=1), need_dx=False)
    return vae.grads


class VAE:
    """Encoder, latent Gaussian, decoder and likelihood; parameters named "encoder.*" and "decoder.*".

    `image_shape` is the data's (C, H, W); the encoder receives x reshaped to `encoder_input_shape` (flat for an MLP,
    (C, H, W) for a convolutional encoder). `config` holds the arguments that rebuild the model (checkpoints);
    `engine` (engines.py) the implementation its layers were built with, used by the sampler and likelihood too.
    All parameters live in one flat buffer, all gradients in another (flat.py), so that the optimizer makes one pass.
    """

    def __init__(self, encoder, decoder, likelihood, latent, image_shape, encoder_input_shape, config, engine):
        self.encoder, self.decoder, self.likelihood, self.engine = encoder, decoder, likelihood, engine
        layers = [*encoder.layers, *decoder.layers]
        pack([layer.params for layer in layers])
        pack([layer.grads for layer in layers])
        self.latent, self.image_shape, self.encoder_input_shape = latent, tuple(image_shape), tuple(encoder_input_shape)
        self.noise_size = latent  # values of ε per sample (hvae.py's two layers need more)
        self.config = config

    @property
    def params(self):
        return {**{"encoder." + k: v for k, v in self.encoder.params.items()},
                **{"decoder." + k: v for k, v in self.decoder.params.items()}}

    @property
    def grads(self):
        return {**{"encoder." + k: v for k, v in self.encoder.grads.items()},
                **{"decoder." + k: v for k, v in self.decoder.grads.items()}}

    @property
    def dtype(self):
        return next(iter(self.params.values())).dtype

    def encode(self, x):
        """μ, logvar of q(z|x), each (B, Z)."""
        h = self.encoder.forward(x.reshape(x.shape[0], *self.encoder_input_shape))
        return h[:, :self.latent], h[:, self.latent:]

    def decode(self, z):
        """The likelihood's parameters for each example, (B, k·D) (a conv decoder's (B, k·C, H, W) flattened)."""
        out = self.decoder.forward(z)
        return out.reshape(out.shape[0], -1)

    def forward(self, x, eps, total=None):
        """`elbo_forward`, keeping its cache for `backward`."""
        terms, self._cache = elbo_forward(self, x, eps, total)
        return terms

    def posterior(self):
        """μ, logvar of q(z|x) from the last `forward`, each (B, Z)."""
        return self._cache[0], self._cache[1]

    def backward(self, dkl=None):
        """`elbo_backward` of the last `forward`."""
        return elbo_backward(self, self._cache, dkl)
