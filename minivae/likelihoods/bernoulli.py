"""Bernoulli likelihood from logits l (sigmoid output → Bernoulli), for data x in [0, 1].

With σ(l) = 1/(1 + e^{-l}) and softplus(l) = log(1 + e^l), use log σ(l) = l − softplus(l) and
log(1 − σ(l)) = −softplus(l); then, per value,

    log p(x|l) = x log σ(l) + (1 − x) log(1 − σ(l)) = x·l − softplus(l)
    ∂ log p / ∂l = x − σ(l)

summed over the D values of an example (nats). The softplus form never evaluates log(sigmoid), which is −inf for a
logit of −40 in float32. For x strictly inside (0, 1) (grayscale MNIST as in the PyTorch example) this is the
binary cross-entropy, not a normalized density (see the continuous Bernoulli for that); with dynamic binarization
(x ~ Bernoulli(pixel) each batch) it is an exact log-likelihood.
"""
import numpy as np
from numba import njit, prange

from ..activations import sigmoid, softplus
from ..errors import MinivaeError


def bernoulli_log_prob(logits, x):
    """Σ_D x·l − softplus(l).   logits, x: (B, D) -> (B,) nats."""
    return np.sum(x * logits - softplus(logits), axis=1)


def bernoulli_log_prob_backward(logits, x):
    """∂ log p(x|l) / ∂l = x − σ(l).   (B, D) -> (B, D)."""
    return x - sigmoid(logits)


@njit(cache=True, parallel=True)
def bernoulli_nll_kernel(logits, x, scale, nll, dlogits):
    """One pass over (B, D): nll[b] = Σ_D softplus(l) − x·l and dlogits = scale · (σ(l) − x)."""
    B, D = logits.shape
    for b in prange(B):
        acc = 0.0
        for d in range(D):
            l = logits[b, d]
            e = np.exp(-abs(l))
            acc += max(l, 0.0) + np.log1p(e) - x[b, d] * l
            s = 1.0 / (1.0 + e) if l >= 0 else e / (1.0 + e)
            dlogits[b, d] = scale * (s - x[b, d])
        nll[b] = acc


class Bernoulli:
    """p(x|l) = Π_D σ(l)^x (1 − σ(l))^{1−x}; one logit per value; data in [0, 1]."""

    name = "bernoulli"
    outputs_per_value = 1

    def check_data(self, x):
        if x.size and (np.min(x) < 0 or np.max(x) > 1):
            raise MinivaeError(f"bernoulli likelihood needs data in [0, 1], got values in "
                               f"[{np.min(x):.4g}, {np.max(x):.4g}]")

    def from_uint8(self, images, dtype=np.float32):
        """8-bit intensities 0..255 -> [0, 1]."""
        return images.astype(dtype) / dtype(255)

    log_prob = staticmethod(bernoulli_log_prob)
    log_prob_backward = staticmethod(bernoulli_log_prob_backward)

    def nll_and_grad(self, logits, x, scale):
        nll = np.empty(logits.shape[0], dtype=logits.dtype)
        dlogits = np.empty_like(logits)
        bernoulli_nll_kernel(logits, x, scale, nll, dlogits)
        return nll, dlogits

    def mean(self, logits):
        return sigmoid(logits)

    def to_unit(self, x):
        """Data or means in this distribution's scale -> pictures in [0, 1] (already there)."""
        return x

    def sample(self, logits, rng):
        return (rng.random(logits.shape) < sigmoid(logits)).astype(logits.dtype)
