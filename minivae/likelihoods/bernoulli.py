"""Bernoulli likelihood from logits l (sigmoid output → Bernoulli), for data x in [0, 1].

With σ(l) = 1/(1 + e^{-l}) and softplus(l) = log(1 + e^l), use log σ(l) = l − softplus(l) and
log(1 − σ(l)) = −softplus(l); then, per value,

    log p(x|l) = x log σ(l) + (1 − x) log(1 − σ(l)) = x·l − softplus(l)
    ∂ log p / ∂l = x − σ(l)

summed over the D values of an example (nats). The softplus form never evaluates log(sigmoid), which is −inf for a
logit of −40 in float32. For x strictly inside (0, 1) (grayscale MNIST as in the PyTorch example) this is the
binary cross-entropy, not a normalized density (see the continuous Bernoulli for that); with dynamic binarization
(x ~ Bernoulli(pixel) each batch) it is an exact log-likelihood.

`discrete` is True: on binarized data (x ∈ {0, 1}) log p is a log probability mass and bits/dim = nats/(D ln 2) is
meaningful; on grayscale data the same number is a cross-entropy and bits/dim should not be quoted.
"""
import numpy as np
from numba import njit

from ..activations import sigmoid, softplus
from ..vmath import exp_nonpositive, log1p_unit
from .support import Likelihood


def bernoulli_log_prob(logits, x):
    """Σ_D x·l − softplus(l).   logits, x: (B, D) -> (B,) nats."""
    return np.sum(x * logits - softplus(logits), axis=1)


def bernoulli_log_prob_backward(logits, x):
    """∂ log p(x|l) / ∂l = x − σ(l).   (B, D) -> (B, D).

    Evaluated over the common denominator 1 + e with e = exp(−|l|), x − σ(l) = (x·e − (1 − x)) / (1 + e) for l ≥ 0 and
    (x − e·(1 − x)) / (1 + e) for l < 0: x − 1/(1 + e) would cancel when σ(l) ≈ x (at l = 25, x = 1 it kept only five
    digits even in float64)."""
    e = np.exp(-np.abs(logits))
    return np.where(logits >= 0, x * e - (1 - x), x - e * (1 - x)) / (1 + e)


@njit(cache=True, error_model="numpy", fastmath={"contract", "reassoc"})
def bernoulli_nll_kernel(logits, x, scale, nll, dlogits):
    """One pass over (B, D), with e = exp(−|l|) ∈ (0, 1] (vmath.py, vectorized):
    nll[b] = Σ_D softplus(l) − x·l with softplus(l) = max(l, 0) + log1p(e), and dlogits = scale · (σ(l) − x) with
    σ(l) = 1/(1 + e) for l ≥ 0 and e/(1 + e) otherwise, over the common denominator:
        σ(l) − x = ((1 − x) − x·e) / (1 + e)   for l ≥ 0,      (e·(1 − x) − x) / (1 + e)   for l < 0.
    Subtracting x from a rounded σ(l) instead lost all but three digits in float32 at l = 9, x = 1 (σ − 1 = −1.2e-4).

    Every constant has the logits' dtype, so a float32 model computes in float32 (a float64 literal would make
    Numba convert each value and use half-width SIMD); fastmath "contract" lets LLVM fuse a·b + c into one FMA
    (one rounding instead of two) and "reassoc" lets it keep the row's sum in several partial sums, i.e. vectorize
    it (no less accurate than one running sum); error_model "numpy" lets the division vectorize (Python's error
    model checks every divisor for zero). No other fastmath flag: "nsz" made vmath's exp inaccurate. Serial, because
    waking Numba's threads costs about what splitting this pass saves (docs/performance.md).
    """
    B, D = logits.shape
    zero, one, scale = logits.dtype.type(0), logits.dtype.type(1), logits.dtype.type(scale)
    for b in range(B):
        acc = zero
        for d in range(D):
            l, xi = logits[b, d], x[b, d]
            e = exp_nonpositive(-abs(l))
            acc += max(l, zero) + log1p_unit(e) - xi * l
            num = (one - xi) - xi * e if l >= zero else e * (one - xi) - xi
            dlogits[b, d] = scale * num / (one + e)
        nll[b] = acc


class Bernoulli(Likelihood):
    """p(x|l) = Π_D σ(l)^x (1 − σ(l))^{1−x}; one logit per value; data in [0, 1]."""

    name = "bernoulli"
    outputs_per_value = 1
    discrete = True  # a mass on binarized data; see the module docstring

    log_prob_fn = staticmethod(bernoulli_log_prob)
    log_prob_backward_fn = staticmethod(bernoulli_log_prob_backward)
    nll_kernel = staticmethod(bernoulli_nll_kernel)

    def mean(self, logits):
        return sigmoid(logits)

    def to_unit(self, x):
        """Data or means in this distribution's scale -> pictures in [0, 1] (already there)."""
        return x

    def sample(self, logits, rng):
        return (rng.random(logits.shape) < sigmoid(logits)).astype(logits.dtype)

    def gradcheck_points(self, rng):
        """Typical logits and logits of ±30 (where log σ(l) would underflow), on grayscale and binary x.

        At ±30 the binary values disagree with the logit's sign (x = 1 where l ≈ −30): where they agree the
        gradient x − σ(l) is ~1e-13, below what finite differences of a loss of size ~30 can resolve.
        """
        x = rng.integers(0, 256, size=(3, 5)) / 255.0
        x[2] = np.round(x[2])
        saturated = rng.choice([-30.0, 30.0], size=(3, 5)) + rng.uniform(-0.5, 0.5, (3, 5))
        x_saturated = x.copy()
        x_saturated[2] = (saturated[2] < 0).astype(float)
        return {"typical": (rng.standard_normal((3, 5)), x), "logits ±30": (saturated, x_saturated)}
