"""Mixture of discretized logistics over the 256 8-bit levels (Salimans et al. 2017, PixelCNN++), per value.

Value d is the level i ∈ {0, …, 255}, stored as x = i/255; its bin is [x − δ, x + δ] with δ = 1/(2·255), and the two
end bins reach to ∓∞ so that the 256 masses sum to 1. (PixelCNN++ writes the same thing on [−1, 1] with δ = 1/255;
a probability mass does not change under that rescaling.) Each value has a mixture of M logistics, 3M outputs:

    columns (j·D + d):  j = 0..M−1 mixture logits π_k,  M..2M−1 means μ_k,  2M..3M−1 log-scales s_k

With F = σ the logistic CDF, e^{−s} the inverse scale, b = (x + δ − μ)e^{−s}, a = (x − δ − μ)e^{−s}, t = b − a = 2δe^{−s}:

    P_k(i) = σ(b)                 i = 0        (everything below the first upper edge)
           = 1 − σ(a) = σ(−a)     i = 255      (everything above the last lower edge)
           = σ(b) − σ(a)          otherwise
    log p(x) = LSE_k [log softmax(π)_k + log P_k(i)]                 summed over the D values (nats; bits/dim)

σ(b) − σ(a) underflows (and cancels) when both are ≈ 1 or the bin is far in a tail; PixelCNN++ switches to the density
at the bin centre there, an approximation with its own kink. Here instead the exact identity

    σ(b) − σ(a) = σ(b) · σ(−a) · (1 − e^{−(b−a)})
    log P_k = log σ(b) + log σ(−a) + log(1 − e^{−t}),   log σ(y) = −softplus(−y),
    log(1 − e^{−t}) = log(−expm1(−t)) for t < ln 2, log1p(−e^{−t}) otherwise      (Mächler's log1mexp)

is finite and accurate for every μ, s. The edge levels drop the factor that does not apply: i = 0 keeps only log σ(b),
i = 255 only log σ(−a).

The log-scale is bounded below, as in PixelCNN++: every formula here uses s = max(s_out, S_MIN), S_MIN = −7 (scale
e^{−7} ≈ 9e-4, under half a bin, so a component can still put ~all its mass on one level). Unbounded, a far bin's
log σ(b) ≈ b = (x + δ − μ)e^{−s} and its gradient grow like e^{−s}: one decoder output drifting to s ≈ −100 overflows
float32 (e^{100}) and the next backward pass is NaN. The clamp's exact gradient is ∂s/∂s_out = [s_out > S_MIN].

Gradient per component, from ∂ log σ(b)/∂b = σ(−b), ∂ log σ(−a)/∂a = −σ(a), ∂ log(1 − e^{−t})/∂t = e^{−t}/(1 − e^{−t})
and ∂b/∂μ = ∂a/∂μ = −e^{−s}, ∂b/∂s = −b, ∂a/∂s = −a, ∂t/∂s = −t:

    ∂ log P_k/∂μ_k = −e^{−s}(g_b + g_a),   ∂ log P_k/∂s_k = −(b·g_b + a·g_a + t·g_t)·[s_out > S_MIN]
    with g_b = [i < 255]σ(−b), g_a = −[i > 0]σ(a), g_t = [0 < i < 255] e^{−t}/(1 − e^{−t}),

and, through the mixture, with responsibilities r_k = softmax_k(log w_k + log P_k) and weights w = softmax(π):

    ∂ log p/∂π_k = r_k − w_k,   ∂ log p/∂μ_k = r_k ∂ log P_k/∂μ_k,   ∂ log p/∂s_k = r_k ∂ log P_k/∂s_k.

Pictures: `mean` is the exact mean of the discretized mixture, E[x] = (1/255) Σ_{i=1}^{255} P(x ≥ i/255), and
`sample` picks a component, draws y = μ + e^s log(u/(1 − u)) and rounds it to the nearest level (clipped to 0..255),
which is exactly a draw from the masses above.
"""
import math

import numpy as np
from numba import njit, prange

from ..activations import sigmoid, softplus
from ..errors import MinivaeError
from ..logspace import log_softmax, logsumexp
from .support import LEVELS, Likelihood, check_8bit_grid, level_index

HALF_BIN = 0.5 / (LEVELS - 1)  # δ: half the distance between two levels i/255
S_MIN = -7.0  # lower bound of the log-scale (PixelCNN++'s)
LN2 = math.log(2.0)


def log1mexp(t):
    """log(1 − e^{−t}) for t > 0, accurate for tiny and large t alike (Mächler 2012)."""
    return np.where(t < LN2, np.log(-np.expm1(-np.minimum(t, LN2))), np.log1p(-np.exp(-np.maximum(t, LN2))))


def split_params(out, M, D):
    """(B, 3M·D) -> mixture logits, means, log-scales s_out (unbounded), each (B, M, D)."""
    p = out.reshape(out.shape[0], 3, M, D)
    return p[:, 0], p[:, 1], p[:, 2]


def bounded_log_scale(s_out):
    """s = max(s_out, S_MIN), the log-scale every formula uses."""
    return np.maximum(s_out, S_MIN)


def component_terms(mu, s_out, x):
    """Per component: log P_k(i) and its derivatives w.r.t. μ_k and s_out_k.   mu, s_out: (B, M, D), x: (B, D)."""
    i = level_index(x)[:, None, :]
    lo, hi = i == 0, i == LEVELS - 1
    xx = x[:, None, :]
    inv_scale = np.exp(-bounded_log_scale(s_out))
    b, a, t = (xx + HALF_BIN - mu) * inv_scale, (xx - HALF_BIN - mu) * inv_scale, 2 * HALF_BIN * inv_scale
    log_p = np.where(hi, 0.0, -softplus(-b)) + np.where(lo, 0.0, -softplus(a)) + np.where(lo | hi, 0.0, log1mexp(t))
    g_b = np.where(hi, 0.0, sigmoid(-b))
    g_a = np.where(lo, 0.0, -sigmoid(a))
    g_t = np.where(lo | hi, 0.0, np.exp(-t) / -np.expm1(-t))
    return log_p, -inv_scale * (g_b + g_a), -(b * g_b + a * g_a + t * g_t) * (s_out > S_MIN)


def discretized_logistic_log_prob(out, x, M):
    """Σ_D LSE_k [log w_k + log P_k(i)].   out: (B, 3M·D), x: (B, D) levels i/255 -> (B,) nats."""
    logits, mu, s = split_params(out, M, x.shape[1])
    log_p, _, _ = component_terms(mu, s, x)
    return np.sum(logsumexp(log_softmax(logits, 1) + log_p, axis=1), axis=1)


def discretized_logistic_log_prob_backward(out, x, M):
    """[∂/∂π | ∂/∂μ | ∂/∂s] = [r − w | r ∂log P/∂μ | r ∂log P/∂s].   -> (B, 3M·D)."""
    B, D = x.shape
    logits, mu, s = split_params(out, M, D)
    log_p, dmu, ds = component_terms(mu, s, x)
    log_w = log_softmax(logits, 1)
    r = np.exp(log_softmax(log_w + log_p, 1))
    return np.concatenate([r - np.exp(log_w), r * dmu, r * ds], axis=1).reshape(B, 3 * M * D)


def component_means(mu, s_out):
    """E_k[x] = (1/255) Σ_{i=1}^{255} P_k(level ≥ i) = (1/255) Σ_{i=1}^{255} σ(−(i/255 − δ − μ_k)e^{−s_k}), exact for
    the discretized logistic (a mean of levels is the sum of its tail probabilities).   mu, s_out: (B, M, D) float64."""
    inv_scale = np.exp(-bounded_log_scale(s_out))
    total = np.zeros_like(mu)
    for i in range(1, LEVELS):
        total += sigmoid(-(i / (LEVELS - 1) - HALF_BIN - mu) * inv_scale)
    return total / (LEVELS - 1)


SATURATED = 40.0  # |t| beyond which σ(−t) is 1 to float64 rounding (t < −37) or below 4.3e-18 (t > 40)


@njit(cache=True, parallel=True)
def component_means_kernel(mu, s_out, means):
    """`component_means` into `means`, to ~1e-14: only the levels whose t_i = (i/255 − δ − μ)e^{−s} lies within ±40
    are summed (those below count 1 each, as σ(−t) rounds to 1; those above add < 4.3e-18 each), and along them
    e^{t_i} = e^{t_first}·(e^{e^{−s}/255})^{i − first} is one multiplication a level, not one exp.
    mu, s_out, means: (B, M, D) float64."""
    B, M, D = mu.shape
    top = LEVELS - 1
    for n in prange(B):
        for k in range(M):
            for d in range(D):
                m, s = mu[n, k, d], max(s_out[n, k, d], S_MIN)
                reach, inv_scale = SATURATED * np.exp(s), np.exp(-s)
                first = int(np.ceil(min(max((m + HALF_BIN - reach) * top, 1.0), float(LEVELS))))
                last = int(np.floor(min(max((m + HALF_BIN + reach) * top, 0.0), float(top))))
                total, e_t, ratio = float(first - 1), np.exp((first / top - HALF_BIN - m) * inv_scale), np.exp(
                    inv_scale / top)
                for _ in range(first, last + 1):
                    total += 1.0 / (1.0 + e_t)
                    e_t *= ratio
                means[n, k, d] = total / top


@njit(cache=True, inline="always")
def _log_sigmoid(y):
    """log σ(y) = −softplus(−y)."""
    return min(y, 0.0) - np.log1p(np.exp(-abs(y)))


@njit(cache=True, inline="always")
def _sigmoid(y):
    e = np.exp(-abs(y))
    return 1.0 / (1.0 + e) if y >= 0 else e / (1.0 + e)


@njit(cache=True, parallel=True)
def discretized_logistic_nll_kernel(out, x, M, scale, nll, dout):
    """nll[b] = −Σ_D log p(x_d);  dout = −scale · ∂ log p/∂out, the module docstring's formulas, one value at a time."""
    B, D = x.shape
    for b in prange(B):
        joint = np.empty(M)
        dmu = np.empty(M)
        ds = np.empty(M)
        acc = 0.0
        for d in range(D):
            i = int(np.rint(x[b, d] * (LEVELS - 1)))
            lo, hi = i == 0, i == LEVELS - 1
            # log-softmax of the mixture logits
            m = -np.inf
            for k in range(M):
                m = max(m, out[b, k * D + d])
            z = 0.0
            for k in range(M):
                z += np.exp(out[b, k * D + d] - m)
            lse_w = m + np.log(z)
            # per component: log w_k + log P_k, and ∂ log P_k/∂μ_k, ∂ log P_k/∂s_k
            mj = -np.inf
            for k in range(M):
                mu = out[b, (M + k) * D + d]
                s_out = out[b, (2 * M + k) * D + d]
                inv_scale = np.exp(-max(s_out, S_MIN))
                ub = (x[b, d] + HALF_BIN - mu) * inv_scale
                ua = (x[b, d] - HALF_BIN - mu) * inv_scale
                t = 2 * HALF_BIN * inv_scale
                lp, g_b, g_a, g_t = 0.0, 0.0, 0.0, 0.0
                if not hi:
                    lp += _log_sigmoid(ub)
                    g_b = _sigmoid(-ub)
                if not lo:
                    lp += _log_sigmoid(-ua)
                    g_a = -_sigmoid(ua)
                if not lo and not hi:
                    lp += np.log(-np.expm1(-t)) if t < LN2 else np.log1p(-np.exp(-t))
                    g_t = np.exp(-t) / -np.expm1(-t)
                joint[k] = out[b, k * D + d] - lse_w + lp
                dmu[k] = -inv_scale * (g_b + g_a)
                ds[k] = -(ub * g_b + ua * g_a + t * g_t) if s_out > S_MIN else 0.0
                mj = max(mj, joint[k])
            zj = 0.0
            for k in range(M):
                zj += np.exp(joint[k] - mj)
            lse = mj + np.log(zj)
            acc -= lse
            for k in range(M):
                r = np.exp(joint[k] - lse)
                dout[b, k * D + d] = -scale * (r - np.exp(out[b, k * D + d] - lse_w))
                dout[b, (M + k) * D + d] = -scale * r * dmu[k]
                dout[b, (2 * M + k) * D + d] = -scale * r * ds[k]
        nll[b] = acc


class DiscretizedLogistic(Likelihood):
    """Mixture of M discretized logistics per value; 3M outputs per value; data: 8-bit levels i/255 (a mass)."""

    name = "discretized-logistic"
    discrete = True

    def __init__(self, components=5):
        if isinstance(components, bool) or not isinstance(components, (int, np.integer)) or components < 1:
            raise MinivaeError(f"discretized-logistic components must be a positive integer, got {components!r}")
        self.components = int(components)
        self.outputs_per_value = 3 * self.components

    def options(self):
        return {"components": self.components}

    def output_offset(self):
        """Means start at ½ and log-scales at −log 2π: a logistic of scale 1/(2π) has the standard deviation 1/√12 of
        the uniform distribution on [0, 1]. At s = 0 (scale 1, all 256 levels within one scale) a value costs ~1 nat
        more, and Adam moves a bias by about lr a step: ~2000 steps at lr 1e-3 to walk the way."""
        M = self.components
        return np.repeat([0.0, 0.5, -math.log(2 * math.pi)], M)

    def check_data(self, x):
        check_8bit_grid(self.name, x)

    log_prob_fn = staticmethod(discretized_logistic_log_prob)
    log_prob_backward_fn = staticmethod(discretized_logistic_log_prob_backward)
    nll_kernel = staticmethod(discretized_logistic_nll_kernel)

    def args(self):
        return (self.components,)

    def mean(self, out):
        """E[x] = Σ_k w_k E_k[x], each component's mean by `component_means_kernel`.   out: (B, 3M·D) -> (B, D)."""
        logits, mu, s = (p.astype(np.float64) for p in split_params(out, self.components, out.shape[1] //
                                                                       self.outputs_per_value))
        means = np.empty_like(mu)
        component_means_kernel(mu, s, means)
        return np.sum(np.exp(log_softmax(logits, 1)) * means, axis=1).astype(out.dtype)

    def sample(self, out, rng):
        """Component k ~ w, y = μ_k + e^{s_k} log(u/(1 − u)) (s_k bounded), x = round(255·y)/255 clipped to [0, 1].

        -> (B, D)."""
        B, D = out.shape[0], out.shape[1] // self.outputs_per_value
        logits, mu, s = (p.astype(np.float64) for p in split_params(out, self.components, D))
        cdf = np.cumsum(np.exp(log_softmax(logits, 1)), axis=1)
        k = np.minimum(np.sum(cdf < rng.random((B, 1, D)) * cdf[:, -1:], axis=1), self.components - 1)[:, None]
        u = rng.uniform(1e-12, 1 - 1e-12, (B, D))
        y = (np.take_along_axis(mu, k, 1)[:, 0] + np.exp(bounded_log_scale(np.take_along_axis(s, k, 1)[:, 0])) *
             (np.log(u) - np.log1p(-u)))
        return (np.clip(np.rint(y * (LEVELS - 1)), 0, LEVELS - 1) / (LEVELS - 1)).astype(out.dtype)

    def to_unit(self, x):
        """Levels i/255 (or means) -> pictures in [0, 1]: already there."""
        return x

    def gradcheck_points(self, rng):
        """Two examples of three values, levels including 0 and 255: typical; mixture logits ±30; bins far in a
        tail (|x − μ| ≈ 14 scales: σ(b) − σ(a) would cancel to 0); flat components (scales 1.6 … 7.4, small t = 2δe^{−s}).

        Much sharper scales (s = −8, scale 3e-4 < δ) are exact too but cannot be checked with the fixed step
        h = 1e-3, which moves μ by three scales; tests check them with h = 1e-6 (tests/test_likelihoods.py).
        """
        M = self.components
        x = np.array([[0, 128, 255], [255, 3, 0]]) / 255.0
        shape = (2, M, 3)

        def params(logits, mu, s):
            return np.concatenate([logits, mu, s], axis=1).reshape(2, 3 * M * 3)

        near = x[:, None, :] + 0.1 * rng.standard_normal(shape)
        log_scale = np.log(0.1) + 0.3 * rng.standard_normal(shape)  # scale ≫ h, so the stencil's O(h⁴) stays small
        side = np.where(x[:, None, :] > 0.5, -1.0, 1.0)  # the tail lies inside [0, 1] for every level
        return {"typical, x at 0 and 255": (params(rng.standard_normal(shape), near, log_scale), x),
                "mixture logits ±30": (params(rng.choice([-30.0, 30.0], size=shape), near, log_scale), x),
                "bins far in a tail": (params(rng.standard_normal(shape), x[:, None, :] + side * 1.4
                                              + 0.05 * rng.standard_normal(shape), np.full(shape, np.log(0.1))), x),
                "flat scales": (params(rng.standard_normal(shape), x[:, None, :] + side * rng.uniform(0.3, 1, shape),
                                       rng.uniform(0.5, 2, shape)), x)}
