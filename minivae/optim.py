"""Optimizers as explicit update rules on parameter/gradient arrays (updated in place).

SGD:   θ ← θ − lr · g
Adam (Kingma & Ba 2015, as PyTorch's torch.optim.Adam without weight decay), step t = 1, 2, ...:
    m ← β₁ m + (1 − β₁) g                 first-moment estimate
    v ← β₂ v + (1 − β₂) g²                second-moment estimate
    θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
`adam_update` is the NumPy specification; `adam_kernel` fuses the three lines into one pass over memory.
"""
import numpy as np
from numba import njit, prange


def sgd_update(theta, g, lr):
    theta -= lr * g


def adam_update(theta, g, m, v, t, lr, beta1, beta2, eps):
    """One Adam step on arrays θ, g, m, v (in place) at step t ≥ 1."""
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    theta -= (lr / (1 - beta1 ** t)) * m / (np.sqrt(v) / np.sqrt(1 - beta2 ** t) + eps)


@njit(cache=True, parallel=True)
def adam_kernel(theta, g, m, v, step_size, beta1, beta2, inv_sqrt_bc2, eps):
    """adam_update over flat arrays, with step_size = lr / (1 − β₁ᵗ) and inv_sqrt_bc2 = 1 / √(1 − β₂ᵗ)."""
    for i in prange(theta.size):
        gi = g[i]
        mi = beta1 * m[i] + (1 - beta1) * gi
        vi = beta2 * v[i] + (1 - beta2) * gi * gi
        m[i] = mi
        v[i] = vi
        theta[i] -= step_size * mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps)


class SGD:
    """Plain gradient descent on a dict of parameter arrays."""

    def __init__(self, params, lr=1e-2):
        self.params, self.lr = params, lr
        self.t = 0

    def state(self):
        return {}

    def step(self, grads):
        self.t += 1
        for name, theta in self.params.items():
            sgd_update(theta, grads[name], self.lr)


class Adam:
    """Adam on a dict of parameter arrays; the moments m, v live in `self.m`, `self.v` (same names)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, (self.beta1, self.beta2), self.eps = params, lr, betas, eps
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.t = 0

    def state(self):
        """Moments by name ("m.<param>", "v.<param>"), for checkpoints."""
        return {**{"m." + k: a for k, a in self.m.items()}, **{"v." + k: a for k, a in self.v.items()}}

    def step(self, grads):
        self.t += 1
        step_size = self.lr / (1 - self.beta1 ** self.t)
        inv_sqrt_bc2 = 1 / np.sqrt(1 - self.beta2 ** self.t)
        for name, theta in self.params.items():
            adam_kernel(theta.reshape(-1), grads[name].reshape(-1), self.m[name].reshape(-1),
                        self.v[name].reshape(-1), step_size, self.beta1, self.beta2, inv_sqrt_bc2, self.eps)
