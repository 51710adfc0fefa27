"""Dense (fully connected) layer with a fused activation:  y = f(x W + b).

Shapes: x (B, I), W (I, O), b (O,) -> y (B, O). (PyTorch's nn.Linear stores Wᵀ; our W is its `weight.T`.)

Backward, with dz = dy · f'(z) (see activations.py):
    dL/dW = xᵀ dz          (I, O)
    dL/db = Σ_B dz         (O,)
    dL/dx = dz Wᵀ          (B, I)
The products stay on BLAS; the bias add, activation and their backward run in one fused Numba pass.
"""
import numpy as np

from ..activations import (activation_code, bias_act_backward, bias_act_backward_kernel, bias_act_forward,
                           bias_act_forward_kernel, bias_grad)


def dense_forward(x, W, b, activation):
    """y = f(x W + b).   x: (B, I), W: (I, O), b: (O,) -> y: (B, O)."""
    return bias_act_forward(x @ W, b, activation)


def dense_backward(dy, x, W, y, activation):
    """Given dL/dy (B, O) and the forward's y: returns dL/dx = dz Wᵀ, dL/dW = xᵀ dz, dL/db = Σ_B dz."""
    dz, db = bias_act_backward(dy, y, activation)
    return dz @ W.T, x.T @ dz, db


def uniform_init(rng, fan_in, shape, dtype):
    """U(-1/√fan_in, 1/√fan_in): PyTorch's default for nn.Linear/nn.Conv* weights (kaiming_uniform, a=√5) and biases.

    Drawn in float64 and then cast, so float32 and float64 models from one seed hold the same numbers.
    """
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Dense:
    """y = f(x W + b) with its gradients; see the module docstring for the formulas."""

    def __init__(self, n_in, n_out, activation="identity", *, rng, dtype=np.float32):
        self.activation = activation
        self.code = activation_code(activation)
        self.params = {"W": uniform_init(rng, n_in, (n_in, n_out), dtype),
                       "b": uniform_init(rng, n_in, (n_out,), dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        y = x @ W
        bias_act_forward_kernel(y[:, None], b, self.code)
        self.x, self.y = x, y
        return y

    def backward(self, dy, need_dx=True):
        """dy is overwritten with dz = dy · f'(z) (the caller no longer needs it)."""
        bias_act_backward_kernel(dy[:, None], self.y[:, None], self.code)
        dz = dy
        np.matmul(self.x.T, dz, out=self.grads["W"])
        self.grads["b"][...] = bias_grad(dz)
        return dz @ self.params["W"].T if need_dx else None
