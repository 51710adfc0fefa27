"""Elementwise activations, fused with the bias add of the layer before them.

Each activation is written so that its derivative needs only the *output* y = f(z), which lets a layer keep just y
for its backward pass (no copy of the pre-activation z):

    identity   y = z                              f'(z) = 1
    relu       y = max(z, 0)                      f'(z) = [y > 0]
    tanh       y = tanh(z)                        f'(z) = 1 - y²
    sigmoid    y = 1 / (1 + e^{-z})               f'(z) = y (1 - y)
    softplus   y = log(1 + e^{z})                 f'(z) = sigmoid(z) = 1 - e^{-y}

Shapes: the fused kernels work on a pre-activation laid out as (N, C, S) with one bias per C, which covers a dense
layer (B, O) -> (B, O, 1) and a convolution (B, C, H, W) -> (B, C, H·W) alike.

`bias_act_forward` / `bias_act_backward` are the plain NumPy specification; `bias_act_forward_kernel` /
`bias_act_backward_kernel` are the Numba versions that run, tested against them.
"""
import numpy as np
from numba import njit, prange

from .errors import MinivaeError

ACTIVATIONS = ("identity", "relu", "tanh", "sigmoid", "softplus")


def activation_code(name):
    """The integer code the Numba kernels use for activation `name`."""
    if name not in ACTIVATIONS:
        raise MinivaeError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS.index(name)


# ---------------------------------------------------------------- NumPy reference (the specification)

def sigmoid(z):
    """σ(z) = 1 / (1 + e^{-z}), evaluated without overflow: e^{-|z|} never exceeds 1."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(z):
    """log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}), which neither overflows nor loses small values."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def activation_forward(z, name):
    """y = f(z) for the activation `name`."""
    if name == "identity":
        return z.copy()
    if name == "relu":
        return np.maximum(z, 0)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "softplus":
        return softplus(z)
    raise MinivaeError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")


def activation_backward(dy, y, name):
    """dL/dz = dL/dy · f'(z), with f'(z) written in terms of y (table above)."""
    if name == "identity":
        return dy.copy()
    if name == "relu":
        return dy * (y > 0)
    if name == "tanh":
        return dy * (1 - y * y)
    if name == "sigmoid":
        return dy * y * (1 - y)
    if name == "softplus":
        return dy * -np.expm1(-y)  # 1 - e^{-y}, accurate when y is tiny
    raise MinivaeError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")


def bias_act_forward(z, b, name):
    """y = f(z + b), z: (N, C, S), b: (C,) -> y: (N, C, S)."""
    return activation_forward(z + b[None, :, None], name)


def bias_act_backward(dy, y, name):
    """dz = dy · f'(z) and db = Σ_{N,S} dz.   dy, y: (N, C, S) -> dz: (N, C, S), db: (C,)."""
    dz = activation_backward(dy, y, name)
    return dz, dz.sum(axis=(0, 2))


# ---------------------------------------------------------------- Numba kernels (what runs)

@njit(cache=True, inline="always")
def _act(z, code):
    if code == 1:
        return z if z > 0 else 0.0 * z
    if code == 2:
        return np.tanh(z)
    if code == 3:
        if z >= 0:
            return 1.0 / (1.0 + np.exp(-z))
        e = np.exp(z)
        return e / (1.0 + e)
    if code == 4:
        return max(z, 0.0) + np.log1p(np.exp(-abs(z)))
    return z


@njit(cache=True, inline="always")
def _act_grad(y, code):
    if code == 1:
        return 1.0 if y > 0 else 0.0
    if code == 2:
        return 1.0 - y * y
    if code == 3:
        return y * (1.0 - y)
    if code == 4:
        return -np.expm1(-y)
    return 1.0


@njit(cache=True, parallel=True)
def bias_act_forward_kernel(z, b, code):
    """In place: z[n, c, s] <- f(z[n, c, s] + b[c]).   z: (N, C, S), b: (C,)."""
    N, C, S = z.shape
    for n in prange(N):
        for c in range(C):
            bc = b[c]
            for s in range(S):
                z[n, c, s] = _act(z[n, c, s] + bc, code)


@njit(cache=True, parallel=True)
def bias_act_backward_kernel(dy, y, code, db_rows):
    """In place: dy[n, c, s] <- dy · f'(z), written from y; per-row bias sums into db_rows (N, C).

    The caller reduces db = Σ_n db_rows[n] (a parallel loop over n cannot share one accumulator).
    """
    N, C, S = dy.shape
    for n in prange(N):
        for c in range(C):
            acc = 0.0
            for s in range(S):
                g = dy[n, c, s] * _act_grad(y[n, c, s], code)
                dy[n, c, s] = g
                acc += g
            db_rows[n, c] = acc
