"""Append one learned number, shared by every example, as extra columns:  y = [x | s·1].

Shapes: x (B, I), s (1,) -> y (B, I + width). The linear-Gaussian model (models.py "linear") uses it for the
Normal likelihood's log-variance output: one σ² for every value and every z (probabilistic PCA), not a function of z.

Backward: dL/dx = dy[:, :I],   dL/ds = Σ_B Σ_width dy[:, I:]   (s feeds every appended entry).
"""
import numpy as np


def append_shared_forward(x, s, width):
    """y = [x | s·1].   x: (B, I), s: (1,) -> (B, I + width)."""
    return np.concatenate([x, np.broadcast_to(s, (x.shape[0], width)).astype(x.dtype)], axis=1)


def append_shared_backward(dy, width):
    """Given dL/dy (B, I + width): dL/dx = dy[:, :I], dL/ds = Σ dy[:, I:] (1,)."""
    I = dy.shape[1] - width
    return np.ascontiguousarray(dy[:, :I]), dy[:, I:].sum(keepdims=True).reshape(1)


class AppendShared:
    """y = [x | s·1] with s one learned number (initialized to `init`); see the module docstring."""

    def __init__(self, width, init=0.0, *, dtype=np.float32):
        self.width = width
        self.params = {"s": np.full(1, init, dtype=dtype)}
        self.grads = {"s": np.zeros(1, dtype=dtype)}

    def forward(self, x):
        return append_shared_forward(x, self.params["s"], self.width)

    def backward(self, dy, need_dx=True):
        dx, self.grads["s"][...] = append_shared_backward(dy, self.width)
        return dx if need_dx else None
