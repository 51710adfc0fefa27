"""Continuous Bernoulli likelihood (Loaiza-Ganem & Cunningham, 2019) from logits l, for data x in [0, 1].

The Bernoulli "likelihood" on grayscale x ∈ [0, 1] is not normalized: ∫₀¹ λˣ(1 − λ)¹⁻ˣ dx ≠ 1. The continuous
Bernoulli is that same shape made a density on [0, 1] by its normalizing constant:

    p(x|λ) = C(λ) λˣ (1 − λ)¹⁻ˣ,    C(λ) = 2 artanh(1 − 2λ) / (1 − 2λ),   C(½) = 2

In terms of the logit l (λ = σ(l)): 1 − 2λ = −tanh(l/2) and artanh(−tanh(l/2)) = −l/2, so

    C = l / tanh(l/2),    log C(l) = log|l| − log tanh(|l|/2)        (even in l, C(0) = 2)
    log p(x|l) = x·l − softplus(l) + log C(l)                        (the Bernoulli part as in bernoulli.py)
    ∂ log p / ∂l = x − σ(l) + (log C)'(l),     (log C)'(l) = 1/l − 1/sinh(l)

summed over the D values (nats; a density, so no bits/dim). Near λ = ½ (l → 0) both log C and (log C)' are 0/0
forms that cancel catastrophically (1/l − 1/sinh l loses every digit at l = 1e-8), so for |l| < 0.1 we use their
Taylor series in l (radius of convergence π; five terms leave < 1e-18 at |l| = 0.1):

    log C(l)    = log 2 + l²/12 − 7l⁴/1440 + 31l⁶/90720 − 127l⁸/4838400 + 73l¹⁰/34214400 − …
    (log C)'(l) = l/6 − 7l³/360 + 31l⁵/15120 − 127l⁷/604800 + 73l⁹/3421440 − …

and for |l| ≥ 0.1 the closed forms, written without overflow for large |l| (a = |l|):
    log C = log a − log(1 − e^{−a}) + log(1 + e^{−a}),     (log C)' = sign(l) · (1/a − 2e^{−a}/(1 − e^{−2a})).

The mean is E[x] = λ/(2λ − 1) + 1/(2 artanh(1 − 2λ)) = ½ + ½ coth(l/2) − 1/l (= ½ + l/12 − l³/720 + … near 0), not
λ: the paper's point is that using λ as the picture is biased toward ½. Samples invert the CDF:
x = log(1 + u(e^l − 1)) / l, u ~ U(0, 1).
"""
import numpy as np
from numba import njit, prange

from .support import Likelihood
from ..activations import sigmoid, softplus

TAYLOR_BELOW = 0.1  # |l| below which log C and its derivative use the series
LOG2 = np.log(2.0)


def log_normalizer(l):
    """log C(l) = log(l / tanh(l/2)), elementwise; series for |l| < 0.1."""
    l2 = l * l
    series = LOG2 + l2 * (1 / 12 + l2 * (-7 / 1440 + l2 * (31 / 90720 + l2 * (-127 / 4838400 + l2 * 73 / 34214400))))
    a = np.maximum(np.abs(l), TAYLOR_BELOW)  # keeps the unused branch finite
    e = np.exp(-a)
    closed = np.log(a) - np.log(-np.expm1(-a)) + np.log1p(e)
    return np.where(np.abs(l) < TAYLOR_BELOW, series, closed)


def log_normalizer_grad(l):
    """(log C)'(l) = 1/l − 1/sinh(l), elementwise; series for |l| < 0.1."""
    l2 = l * l
    series = l * (1 / 6 + l2 * (-7 / 360 + l2 * (31 / 15120 + l2 * (-127 / 604800 + l2 * 73 / 3421440))))
    a = np.maximum(np.abs(l), TAYLOR_BELOW)
    e = np.exp(-a)
    closed = np.sign(l) * (1 / a - 2 * e / -np.expm1(-2 * a))
    return np.where(np.abs(l) < TAYLOR_BELOW, series, closed)


def continuous_bernoulli_log_prob(logits, x):
    """Σ_D x·l − softplus(l) + log C(l).   logits, x: (B, D) -> (B,) nats."""
    return np.sum(x * logits - softplus(logits) + log_normalizer(logits), axis=1)


def continuous_bernoulli_log_prob_backward(logits, x):
    """∂ log p / ∂l = x − σ(l) + (log C)'(l).   -> (B, D)."""
    return x - sigmoid(logits) + log_normalizer_grad(logits)


@njit(cache=True, inline="always")
def _log_c_and_grad(l):
    """(log C(l), (log C)'(l)) for one logit: the scalar twin of log_normalizer and log_normalizer_grad."""
    if abs(l) < TAYLOR_BELOW:
        l2 = l * l
        v = LOG2 + l2 * (1 / 12 + l2 * (-7 / 1440 + l2 * (31 / 90720 + l2 * (-127 / 4838400 + l2 * 73 / 34214400))))
        g = l * (1 / 6 + l2 * (-7 / 360 + l2 * (31 / 15120 + l2 * (-127 / 604800 + l2 * 73 / 3421440))))
        return v, g
    a = abs(l)
    e = np.exp(-a)
    v = np.log(a) - np.log(-np.expm1(-a)) + np.log1p(e)
    g = 1 / a - 2 * e / -np.expm1(-2 * a)
    return v, (g if l > 0 else -g)


@njit(cache=True, parallel=True)
def continuous_bernoulli_nll_kernel(logits, x, scale, nll, dlogits):
    """nll[b] = Σ_D softplus(l) − x·l − log C(l);  dlogits = scale · (σ(l) − x − (log C)'(l))."""
    B, D = logits.shape
    for b in prange(B):
        acc = 0.0
        for d in range(D):
            l = np.float64(logits[b, d])  # (log C)' cancels (1/l − 2e/(1 − e^{−2l}) near l = 0.1): never in float32
            e = np.exp(-abs(l))
            log_c, dlog_c = _log_c_and_grad(l)
            acc += max(l, 0.0) + np.log1p(e) - x[b, d] * l - log_c
            s = 1.0 / (1.0 + e) if l >= 0 else e / (1.0 + e)
            dlogits[b, d] = scale * (s - x[b, d] - dlog_c)
        nll[b] = acc


class ContinuousBernoulli(Likelihood):
    """p(x|l) = Π_D C(σ(l)) σ(l)ˣ (1 − σ(l))¹⁻ˣ; one logit per value; data in [0, 1] (a density)."""

    name = "continuous-bernoulli"
    outputs_per_value = 1
    discrete = False

    log_prob_fn = staticmethod(continuous_bernoulli_log_prob)
    log_prob_backward_fn = staticmethod(continuous_bernoulli_log_prob_backward)
    nll_kernel = staticmethod(continuous_bernoulli_nll_kernel)

    def mean(self, logits):
        """E[x] = ½ + ½ coth(l/2) − 1/l (series l/12 − l³/720 + l⁵/30240 − … for |l| < 0.1).   -> (B, D)."""
        l = logits.astype(np.float64)
        l2 = l * l
        series = l * (1 / 12 + l2 * (-1 / 720 + l2 * (1 / 30240 + l2 * (-1 / 1209600 + l2 / 47900160))))
        safe = np.where(np.abs(l) < TAYLOR_BELOW, TAYLOR_BELOW, l)
        closed = 0.5 / np.tanh(safe / 2) - 1 / safe
        return (0.5 + np.where(np.abs(l) < TAYLOR_BELOW, series, closed)).astype(logits.dtype)

    def sample(self, logits, rng):
        """Inverse CDF x = log(1 + u(e^l − 1))/l = 1 + log(u + (1 − u)e^{−l})/l (the form that cannot overflow
        for l > 0); x ≈ u + ½u(1 − u)l for |l| < 1e-6.   -> (B, D) in [0, 1]."""
        l = logits.astype(np.float64)
        u = rng.random(l.shape)
        safe = np.where(np.abs(l) < 1e-6, 1.0, l)
        x = np.where(safe > 0, 1 + np.log(u + (1 - u) * np.exp(-np.abs(safe))) / safe,
                     np.log1p(u * np.expm1(-np.abs(safe))) / safe)
        x = np.where(np.abs(l) < 1e-6, u + 0.5 * u * (1 - u) * l, x)
        return np.clip(x, 0, 1).astype(logits.dtype)

    def to_unit(self, x):
        """Data or means in [0, 1] -> pictures: already there."""
        return x

    def gradcheck_points(self, rng):
        """Typical logits; logits ±30; λ near ½: l = 0, ±1e-9, ±1e-4 and both sides of the series' switch at 0.1."""
        x = rng.integers(0, 256, size=(3, 5)) / 255.0
        x[0, 0], x[1, 0] = 0.0, 1.0
        near_half = np.array([[0.0, 1e-9, -1e-9, 1e-4, -1e-4],
                              [0.0999, 0.1001, -0.0999, -0.1001, 0.05],
                              [0.1, -0.1, 0.3, -0.02, 1e-3]])
        return {"typical": (2 * rng.standard_normal((3, 5)), x),
                "logits ±30": (rng.choice([-30.0, 30.0], size=(3, 5)) + rng.uniform(-0.5, 0.5, (3, 5)), x),
                "λ near ½": (near_half, x)}
