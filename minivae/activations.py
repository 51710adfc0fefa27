"""Elementwise activations, fused with the bias add of the layer before them.

Each activation is written so that its derivative needs only the *output* y = f(z), which lets a layer keep just y
for its backward pass (no copy of the pre-activation z):

    identity   y = z                              f'(z) = 1
    relu       y = max(z, 0)                      f'(z) = [y > 0]
    tanh       y = tanh(z)                        f'(z) = 1 - y²
    sigmoid    y = 1 / (1 + e^{-z})               f'(z) = y (1 - y)
    softplus   y = log(1 + e^{z})                 f'(z) = sigmoid(z) = 1 - e^{-y}

Shapes: channels last. The fused kernels work on a pre-activation laid out as (N, S, C) with one bias per C, which
covers a dense layer (B, O) -> (B, 1, O) and a convolution's NHWC output (B, H·W, C) alike.

`bias_act_forward` / `bias_act_backward` are the plain NumPy specification; `bias_act_forward_kernel` /
`bias_act_backward_kernel` are the (serial) Numba versions that run, tested against them.
"""
import numpy as np
from numba import njit

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
    """y = f(z + b), z: (..., C) channels last, b: (C,) -> y: (..., C)."""
    return activation_forward(z + b, name)


def bias_act_backward(dy, y, name):
    """dz = dy · f'(z) and db = Σ over every axis but the last of dz.   dy, y: (..., C) -> dz: (..., C), db: (C,)."""
    dz = activation_backward(dy, y, name)
    return dz, dz.reshape(-1, dz.shape[-1]).sum(axis=0)


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
def _act_backward(dy, y, code):
    """dy · f'(z), written from y = f(z) (table above)."""
    if code == 1:
        return dy if y > 0 else 0.0 * dy
    if code == 2:
        return dy * (1 - y * y)
    if code == 3:
        return dy * y * (1 - y)
    if code == 4:
        return dy * -np.expm1(-y)
    return dy


@njit(cache=True, nogil=True)
def bias_act_forward_kernel(z, b, code):
    """In place: z[n, s, c] <- f(z[n, s, c] + b[c]).   z: (N, S, C) channels last, b: (C,).

    A dense layer's (B, O) is (B, 1, O); a convolution's NHWC output is (B, H·W, C). Serial, with the channels of a
    row in the inner loop (contiguous, so it vectorizes), because waking Numba's threads costs more than this work
    for every layer here; nogil, so that the convolutions' workers (layers/workers.py) run it at the same time.
    """
    N, S, C = z.shape
    for n in range(N):
        for s in range(S):
            row = z[n, s]
            for c in range(C):
                row[c] = _act(row[c] + b[c], code)


@njit(cache=True, nogil=True)
def bias_act_backward_kernel(dy, y, code):
    """In place: dy[n, s, c] <- dz = dy · f'(z), written from y.   dy, y: (N, S, C) channels last. Serial, nogil.

    The bias gradient db = Σ_{n, s} dz is `bias_grad(dz)`, a separate pass on BLAS, far faster than per-thread
    partial sums here. For the identity f'(z) = 1: dz = dy already, and the pass is skipped (the output layers).
    """
    if code == 0:
        return
    N, S, C = dy.shape
    for n in range(N):
        for s in range(S):
            d, yi = dy[n, s], y[n, s]
            for c in range(C):
                d[c] = _act_backward(d[c], yi[c], code)


def bias_grad(dz):
    """dL/db = Σ over every axis but the last of dz (..., C) -> (C,).

    For C-contiguous rows this is the GEMV 1ᵀ dz on BLAS, much faster than np.sum(axis=0), which adds one short row
    at a time; a strided view (NCHW storage) goes to np.sum, which walks it in memory order.
    """
    if dz.flags.c_contiguous:
        rows = dz.reshape(-1, dz.shape[-1])
        return np.ones(rows.shape[0], dtype=dz.dtype) @ rows
    return dz.sum(axis=tuple(range(dz.ndim - 1)))
