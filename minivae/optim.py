"""Adam as an explicit update rule on parameter/gradient arrays (updated in place).

Adam (Kingma & Ba 2015, as PyTorch's torch.optim.Adam without weight decay), step t = 1, 2, ...:
    m ← β₁ m + (1 − β₁) g                 first-moment estimate
    v ← β₂ v + (1 − β₂) g²                second-moment estimate
    θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
`adam_update` is the NumPy specification (the reference engine's); `fast_adam_update` runs `adam_kernel`, which
fuses the three lines into one pass over memory in the parameters' own precision (as PyTorch does). Either runs
over all parameters at once when they are packed in one buffer (flat.py).
"""
import numpy as np
from numba import njit, prange

from .flat import pack, tiled_buffer


def adam_update(theta, g, m, v, t, lr, beta1, beta2, eps):
    """One Adam step on arrays θ, g, m, v (in place) at step t ≥ 1."""
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    theta -= (lr / (1 - beta1 ** t)) * m / (np.sqrt(v) / np.sqrt(1 - beta2 ** t) + eps)


@njit(cache=True, parallel=True)
def adam_kernel(theta, g, m, v, step_size, beta1, beta2, inv_sqrt_bc2, eps):
    """adam_update over flat arrays, with step_size = lr / (1 − β₁ᵗ) and inv_sqrt_bc2 = 1 / √(1 − β₂ᵗ).

    The scalars must come as the arrays' dtype (`fast_adam_update` does this): a Python float would make Numba
    compute a float32 model's update in float64, at half the SIMD width. Parallel, because the update streams
    seven parameter-sized arrays mostly from memory (docs/performance.md).
    """
    one = theta.dtype.type(1)
    for i in prange(theta.size):
        gi = g[i]
        mi = beta1 * m[i] + (one - beta1) * gi
        vi = beta2 * v[i] + (one - beta2) * gi * gi
        m[i] = mi
        v[i] = vi
        theta[i] -= step_size * mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps)


def fast_adam_update(theta, g, m, v, t, lr, beta1, beta2, eps):
    """`adam_update` on flat arrays through `adam_kernel`, its scalars in the arrays' dtype."""
    f = theta.dtype.type
    adam_kernel(theta, g, m, v, f(lr / (1 - beta1 ** t)), f(beta1), f(beta2), f(1 / np.sqrt(1 - beta2 ** t)), f(eps))


class Adam:
    """Adam on a dict of parameter arrays; the moments m, v live in `self.m`, `self.v` (same names), each dict packed
    in one buffer. When the parameters and the gradients are each packed in one buffer in the same order (a VAE's
    are), a step is one update over all of them; otherwise one per array. `update` is the engine's rule
    (engines.py): `fast_adam_update` (default) or `adam_update`."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, update=fast_adam_update):
        self.params, self.lr, (self.beta1, self.beta2), self.eps = params, lr, betas, eps
        self.update = update
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self._m_flat, self._v_flat = pack([self.m]), pack([self.v])
        self._theta_flat = tiled_buffer(list(params.values()))
        self.t = 0

    def state(self):
        """Moments by name ("m.<param>", "v.<param>"), for checkpoints."""
        return {**{"m." + k: a for k, a in self.m.items()}, **{"v." + k: a for k, a in self.v.items()}}

    def step(self, grads):
        self.t += 1
        g_flat = tiled_buffer(list(grads.values())) if list(grads) == list(self.params) else None
        if self._theta_flat is not None and g_flat is not None:
            blocks = [(self._theta_flat, g_flat, self._m_flat, self._v_flat)]
        else:
            blocks = [(p.reshape(-1), grads[k].reshape(-1), self.m[k].reshape(-1), self.v[k].reshape(-1))
                      for k, p in self.params.items()]
        for theta, g, m, v in blocks:
            self.update(theta, g, m, v, self.t, self.lr, self.beta1, self.beta2, self.eps)
