"""Categorical likelihood over the 256 8-bit levels of each value (softmax → Categorical), from 256 logits per value.

Value d of an example is the level i_d ∈ {0, …, 255}, stored as x_d = i_d/255 (support.py). The decoder gives 256
logits l_{j,d}, j = 0..255, at columns j·D + d. Per value, with a stable log-softmax:

    log p(x_d | l) = l_{i_d, d} − LSE_j(l_{j,d}),      LSE_j(l_j) = m + log Σ_j e^{l_j − m},  m = max_j l_j
    ∂ log p / ∂l_{j,d} = [j = i_d] − softmax_j(l_{·,d}),   softmax_j = e^{l_j − LSE}

summed over the D values (nats); bits/dim = nats / (D ln 2). Subtracting the max keeps every exponent ≤ 0 (no
overflow, and the largest term is exactly 1, so the log never sees 0): logits of ±1000 are fine.

Pictures: `mean` is the expected intensity Σ_j softmax_j · j/255; `mode` the most probable level (sharper).
"""
import numpy as np
from numba import njit, prange

from ..logspace import log_softmax
from .support import LEVELS, Likelihood, check_8bit_grid, level_index


def categorical_log_prob(out, x):
    """Σ_D log softmax(l)_{i_d}.   out: (B, 256·D), x: (B, D) levels i/255 -> (B,) nats."""
    B, D = x.shape
    logp = log_softmax(out.reshape(B, LEVELS, D), axis=1)
    return np.sum(np.take_along_axis(logp, level_index(x)[:, None, :], axis=1)[:, 0, :], axis=1)


def categorical_log_prob_backward(out, x):
    """∂ log p / ∂l_{j,d} = [j = i_d] − softmax_j.   -> (B, 256·D)."""
    B, D = x.shape
    g = -np.exp(log_softmax(out.reshape(B, LEVELS, D), axis=1))
    np.put_along_axis(g, level_index(x)[:, None, :], np.take_along_axis(g, level_index(x)[:, None, :], 1) + 1, 1)
    return g.reshape(B, LEVELS * D)


@njit(cache=True, parallel=True)
def categorical_nll_kernel(out, x, scale, nll, dout):
    """nll[b] = Σ_D LSE_j(l_{j,d}) − l_{i_d,d};  dout = scale · (softmax − onehot). Rows read contiguously in d.

    Three passes over a row: the max m_d; e = e^{l − m_d} (kept in dout) and its sum S_d; dout = scale · e / S_d,
    minus scale at the observed level. LSE_d = m_d + log S_d.
    """
    B, D = x.shape
    for b in prange(B):
        m = np.full(D, -np.inf)
        s = np.zeros(D)
        for j in range(LEVELS):
            for d in range(D):
                m[d] = max(m[d], out[b, j * D + d])
        for j in range(LEVELS):
            for d in range(D):
                e = np.exp(out[b, j * D + d] - m[d])
                dout[b, j * D + d] = e
                s[d] += e
        acc = 0.0
        for d in range(D):
            i = int(np.rint(x[b, d] * (LEVELS - 1)))
            acc += m[d] + np.log(s[d]) - out[b, i * D + d]
            s[d] = scale / s[d]
        nll[b] = acc
        for j in range(LEVELS):
            for d in range(D):
                dout[b, j * D + d] *= s[d]
        for d in range(D):
            dout[b, int(np.rint(x[b, d] * (LEVELS - 1))) * D + d] -= scale


class Categorical(Likelihood):
    """p(x|l) = Π_D softmax(l_{·,d})_{i_d}; 256 logits per value; data: 8-bit levels i/255."""

    name = "categorical"
    outputs_per_value = LEVELS
    discrete = True

    def check_data(self, x):
        check_8bit_grid(self.name, x)

    log_prob_fn = staticmethod(categorical_log_prob)
    log_prob_backward_fn = staticmethod(categorical_log_prob_backward)
    nll_kernel = staticmethod(categorical_nll_kernel)

    def probs(self, out):
        """softmax over the 256 levels: (B, 256·D) -> (B, 256, D)."""
        B = out.shape[0]
        return np.exp(log_softmax(out.reshape(B, LEVELS, -1), axis=1))

    def mean(self, out):
        """E[x] = Σ_j softmax_j · j/255.   -> (B, D) in [0, 1]."""
        levels = np.arange(LEVELS, dtype=out.dtype)[None, :, None] / (LEVELS - 1)
        return np.sum(self.probs(out) * levels, axis=1).astype(out.dtype)

    def mode(self, out):
        """The most probable level argmax_j l_{j,d}, as j/255.   -> (B, D)."""
        B = out.shape[0]
        return (np.argmax(out.reshape(B, LEVELS, -1), axis=1) / (LEVELS - 1)).astype(out.dtype)

    def sample(self, out, rng):
        """One level per value by inverting the CDF: i = #{j : CDF_j < u}, u ~ U(0, 1).   -> (B, D) levels i/255."""
        cdf = np.cumsum(self.probs(out), axis=1)
        u = rng.random((out.shape[0], 1, cdf.shape[2])) * cdf[:, -1:, :]  # scaled by the total: rounding-proof
        i = np.minimum(np.sum(cdf < u, axis=1), LEVELS - 1)
        return (i / (LEVELS - 1)).astype(out.dtype)

    def to_unit(self, x):
        """Levels i/255 (or means) -> pictures in [0, 1]: already there."""
        return x

    def gradcheck_points(self, rng):
        """Two examples of three values, levels including 0 and 255: typical logits and logits of ±30."""
        x = np.array([[0, 128, 255], [255, 1, 0]]) / 255.0
        typical = rng.standard_normal((2, LEVELS * 3))
        saturated = rng.choice([-30.0, 30.0], size=(2, LEVELS * 3)) + rng.uniform(-0.5, 0.5, (2, LEVELS * 3))
        saturated[0, 0 * 3 + 0] = -30.0  # the observed level of value 0 far below the others: log p ≈ −60
        saturated[1, 1 * 3 + 1] = 30.0
        return {"typical": (typical, x), "logits ±30, x at 0 and 255": (saturated, x)}
