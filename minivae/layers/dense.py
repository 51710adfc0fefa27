"""Dense (fully connected) layer with a fused activation:  y = f(x W + b).

Shapes: x (B, I), W (I, O), b (O,) -> y (B, O). (PyTorch's nn.Linear stores Wᵀ; our W is its `weight.T`.)

Backward, with dz = dy · f'(z) (see activations.py):
    dL/dW = xᵀ dz          (I, O)
    dL/db = Σ_B dz         (O,)
    dL/dx = dz Wᵀ          (B, I)
`dense_forward` / `dense_backward` are the NumPy specification that `Dense` (the reference engine) runs;
fast_layers.FastDense runs the same math with the bias add and activation in one fused Numba pass.
"""
import numpy as np

from ..activations import activation_code, bias_act_backward, bias_act_forward


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
    """y = f(x W + b) with its gradients, through `dense_forward` / `dense_backward`."""

    def __init__(self, n_in, n_out, activation="identity", *, rng, dtype=np.float32):
        self.activation = activation
        self.code = activation_code(activation)  # also rejects an unknown name
        self.params = {"W": uniform_init(rng, n_in, (n_in, n_out), dtype),
                       "b": uniform_init(rng, n_in, (n_out,), dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        self.x = x
        self.y = dense_forward(x, self.params["W"], self.params["b"], self.activation)
        return self.y

    def backward(self, dy, need_dx=True):
        dx, self.grads["W"][...], self.grads["b"][...] = dense_backward(dy, self.x, self.params["W"], self.y,
                                                                        self.activation)
        return dx if need_dx else None
