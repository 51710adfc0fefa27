"""Normal likelihoods for data in [0, 1]: a fixed variance ("normal-fixed") or a learned one ("normal").

normal-fixed: one output per value, the mean μ; the variance σ² is a constant (constructor argument `variance`).

    log p(x|μ) = Σ_D −(x − μ)²/(2σ²) − ½ log(2πσ²)
    ∂ log p / ∂μ = (x − μ)/σ²

Equivalence with the squared error: −log p = (1/(2σ²)) · Σ_D (x − μ)² + (D/2) log(2πσ²), i.e. (D/(2σ²)) · MSE plus
a constant. A VAE trained on "reconstruction MSE + KL" is this model with σ² = D/2 (MSE averaged over the D values)
or σ² = ½ (squared error summed); "β · KL + Σ squared error" is σ² = β/2. The variance only weighs reconstruction
against the KL: too large and the decoder ignores z (blurry, posterior collapse), too small and the KL is ignored.
The default σ² = 0.01 (σ = 0.1 intensity, about 25 of 255 levels) suits images scaled to [0, 1].

normal: two outputs per value, the mean μ (columns 0..D−1) and a raw log-variance s (columns D..2D−1). The variance
the density uses is bounded below by a floor σ²_min:

    σ² = σ²_min + e^s,    i.e.  logvar = log(σ²_min + e^s) = logaddexp(log σ²_min, s)
    log p(x|μ, s) = Σ_D −½ [log 2π + logvar + (x − μ)² e^{−logvar}]
    ∂ log p / ∂μ = (x − μ) e^{−logvar}
    ∂ log p / ∂s = ½ [(x − μ)² e^{−logvar} − 1] · ∂logvar/∂s,    ∂logvar/∂s = e^s/(σ²_min + e^s) = sigmoid(s − log σ²_min)

Why a floor: the data are 8-bit, i.e. discrete. A density can then put a spike of width σ → 0 on a value the decoder
predicts exactly (a background pixel, a memorized training image), and log p = −½ log(2πσ²) → +∞: the likelihood
is unbounded, training diverges to NaN and the "nats" measure only how thin the spike got. With the floor each value
contributes at most −½ log(2πσ²_min). The default σ²_min = (1/255)²/12 is the variance of one 8-bit bin, U(−½, ½)/255:
a Normal narrower than the quantization step would claim a precision the data do not have.
Why this form: logaddexp is smooth with a derivative in (0, 1), so the gradient check holds at and below the bound
(a hard clamp max(s, log σ²_min) would have a kink there and a zero gradient below it, where the network could never
learn its way back). For s ≫ log σ²_min, logvar ≈ s: the output still reads as a log-variance.

Both: data in [0, 1] (8-bit images / 255). The Normal itself lives on ℝ, but σ² and σ²_min are in those units, so
other ranges (raw 0..255) are rejected as a scaling mistake. `mean` is μ (clipped to [0, 1] by `to_unit` for
pictures); `sample` draws μ + σε and may leave [0, 1].
"""
import math

import numpy as np
from numba import njit, prange

from ..errors import MinivaeError
from .support import LEVELS, Likelihood

LOG_2PI = math.log(2 * math.pi)
BIN_VARIANCE = 1.0 / (12 * (LEVELS - 1) ** 2)  # the variance of U(−½, ½)/255, one 8-bit bin


# ---------------------------------------------------------------- normal-fixed

def normal_fixed_log_prob(mu, x, variance):
    """Σ_D −(x − μ)²/(2σ²) − ½ log(2πσ²).   mu, x: (B, D) -> (B,) nats."""
    r = x - mu
    return np.sum(-0.5 * r * r / variance - 0.5 * (LOG_2PI + np.log(variance)), axis=1)


def normal_fixed_log_prob_backward(mu, x, variance):
    """∂ log p / ∂μ = (x − μ)/σ².   -> (B, D)."""
    return (x - mu) / variance


@njit(cache=True, parallel=True)
def normal_fixed_nll_kernel(mu, x, variance, scale, nll, dmu):
    """nll[b] = Σ_D (x − μ)²/(2σ²) + ½ log(2πσ²);  dmu = scale · (μ − x)/σ²."""
    B, D = x.shape
    const = 0.5 * (LOG_2PI + np.log(variance))
    inv = 1.0 / variance
    for b in prange(B):
        acc = 0.0
        for d in range(D):
            r = x[b, d] - mu[b, d]
            acc += 0.5 * r * r * inv + const
            dmu[b, d] = -scale * r * inv
        nll[b] = acc


class NormalFixed(Likelihood):
    """p(x|μ) = Π_D N(x; μ, σ²) with a fixed σ² (`variance`); one output per value; data in [0, 1]."""

    name = "normal-fixed"
    outputs_per_value = 1
    discrete = False

    def __init__(self, variance=0.01):
        if not (isinstance(variance, (int, float)) and math.isfinite(variance) and variance > 0):
            raise MinivaeError(f"normal-fixed variance must be a positive finite number, got {variance!r}")
        self.variance = float(variance)

    def options(self):
        return {"variance": self.variance}

    log_prob_fn = staticmethod(normal_fixed_log_prob)
    log_prob_backward_fn = staticmethod(normal_fixed_log_prob_backward)
    nll_kernel = staticmethod(normal_fixed_nll_kernel)

    def args(self):
        return (self.variance,)

    def mean(self, mu):
        return mu.copy()

    def sample(self, mu, rng):
        return (mu + math.sqrt(self.variance) * rng.standard_normal(mu.shape)).astype(mu.dtype)

    def to_unit(self, x):
        """Means or samples (which may leave [0, 1]) -> pictures in [0, 1], by clipping."""
        return np.clip(x, 0, 1)

    def gradcheck_points(self, rng):
        x = rng.integers(0, 256, size=(3, 5)) / 255.0
        return {"typical": (x + 0.3 * rng.standard_normal((3, 5)), x),
                "mean ±30": (rng.choice([-30.0, 30.0], size=(3, 5)) + rng.uniform(-0.5, 0.5, (3, 5)), x)}


# ---------------------------------------------------------------- normal (learned variance with a floor)

def floored_logvar(s, log_floor):
    """logvar = log(σ²_min + e^s) = max(s, m) + log1p(e^{−|s − m|}), m = log σ²_min (never overflows)."""
    return np.maximum(s, log_floor) + np.log1p(np.exp(-np.abs(s - log_floor)))


def normal_log_prob(out, x, log_floor):
    """Σ_D −½ [log 2π + logvar + (x − μ)² e^{−logvar}].   out: (B, 2D) = [μ | s], x: (B, D) -> (B,) nats."""
    D = x.shape[1]
    mu, logvar = out[:, :D], floored_logvar(out[:, D:], log_floor)
    r = x - mu
    return np.sum(-0.5 * (LOG_2PI + logvar + r * r * np.exp(-logvar)), axis=1)


def normal_log_prob_backward(out, x, log_floor):
    """[∂/∂μ | ∂/∂s] = [(x − μ) e^{−logvar} | ½((x − μ)² e^{−logvar} − 1) · sigmoid(s − m)].   -> (B, 2D)."""
    D = x.shape[1]
    mu, s = out[:, :D], out[:, D:]
    inv_var = np.exp(-floored_logvar(s, log_floor))
    r = x - mu
    dlogvar_ds = 1.0 / (1.0 + np.exp(log_floor - s))  # sigmoid(s − m); exp overflow → inf → 0, which is right
    return np.concatenate([r * inv_var, 0.5 * (r * r * inv_var - 1.0) * dlogvar_ds], axis=1)


@njit(cache=True, parallel=True)
def normal_nll_kernel(out, x, log_floor, scale, nll, dout):
    """nll[b] = Σ_D ½ [log 2π + logvar + r² e^{−logvar}], r = x − μ;  dout = −scale · ∂ log p/∂[μ | s]."""
    B, D = x.shape
    for b in prange(B):
        acc = 0.0
        for d in range(D):
            s = out[b, D + d]
            e = np.exp(-abs(s - log_floor))
            logvar = max(s, log_floor) + np.log1p(e)
            inv_var = np.exp(-logvar)
            dlogvar_ds = 1.0 / (1.0 + e) if s >= log_floor else e / (1.0 + e)  # sigmoid(s − m)
            r = x[b, d] - out[b, d]
            rr = r * r * inv_var
            acc += 0.5 * (LOG_2PI + logvar + rr)
            dout[b, d] = -scale * r * inv_var
            dout[b, D + d] = -scale * 0.5 * (rr - 1.0) * dlogvar_ds
        nll[b] = acc


class Normal(Likelihood):
    """p(x|μ, s) = Π_D N(x; μ, σ²_min + e^s); two outputs per value [μ | s]; data in [0, 1]."""

    name = "normal"
    outputs_per_value = 2
    discrete = False

    def __init__(self, variance_floor=BIN_VARIANCE):
        if not (isinstance(variance_floor, (int, float)) and math.isfinite(variance_floor) and variance_floor > 0):
            raise MinivaeError(f"normal variance floor must be a positive finite number, got {variance_floor!r}")
        self.variance_floor = float(variance_floor)
        self.log_floor = math.log(self.variance_floor)

    def options(self):
        return {"variance_floor": self.variance_floor}

    log_prob_fn = staticmethod(normal_log_prob)
    log_prob_backward_fn = staticmethod(normal_log_prob_backward)
    nll_kernel = staticmethod(normal_nll_kernel)

    def args(self):
        return (self.log_floor,)

    def variance(self, out):
        """σ² = σ²_min + e^s per value.   (B, 2D) -> (B, D)."""
        D = out.shape[1] // 2
        return np.exp(floored_logvar(out[:, D:].astype(np.float64), self.log_floor)).astype(out.dtype)

    def mean(self, out):
        return out[:, :out.shape[1] // 2].copy()

    def sample(self, out, rng):
        D = out.shape[1] // 2
        return (out[:, :D] + np.sqrt(self.variance(out)) * rng.standard_normal((out.shape[0], D))).astype(out.dtype)

    def to_unit(self, x):
        """Means or samples (which may leave [0, 1]) -> pictures in [0, 1], by clipping."""
        return np.clip(x, 0, 1)

    def gradcheck_points(self, rng):
        """Typical; mean far from x; log-variance output s at and below the floor.

        Below the floor ∂logvar/∂s = sigmoid(s − m) ≈ e^{s − m}: at s = m − 30 the gradient (~1e-13 relative to the
        loss) is under the finite differences' rounding noise, so the bound is checked where the floor dominates but
        the gradient is still measurable, s = m − 4 … m − 1. Residuals avoid |x − μ| ≈ σ, where ∂/∂s passes through 0.
        """
        x = rng.integers(0, 256, size=(3, 5)) / 255.0
        m, sd = self.log_floor, math.sqrt(self.variance_floor)
        typical = np.concatenate([x + 0.3 * rng.standard_normal((3, 5)), rng.standard_normal((3, 5))], 1)
        far = np.concatenate([rng.choice([-30.0, 30.0], size=(3, 5)), rng.uniform(-3, 3, (3, 5))], 1)
        size = rng.uniform(0.2, 0.6, (3, 5)) + np.where(rng.random((3, 5)) < 0.5, 1.4, 0.0)  # in σ_min units
        r = sd * rng.choice([-1.0, 1.0], size=(3, 5)) * size
        at_floor = np.concatenate([x - r, m + rng.uniform(-4, -1, (3, 5))], 1)
        return {"typical": (typical, x), "mean ±30": (far, x), "variance at its floor": (at_floor, x)}
