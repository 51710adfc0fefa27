"""2-D convolution (cross-correlation, as in PyTorch's nn.Conv2d) with a fused activation:  y = f(conv(x, W) + b).

    y[b, o, ho, wo] = f( b[o] + Σ_{c, i, j} W[o, c, i, j] · x_pad[b, c, ho·s + i, wo·s + j] )

Shapes: x (B, C, H, W), W (O, C, k, k) (= nn.Conv2d.weight), b (O,) -> y (B, O, Ho, Wo), Ho = ⌊(H + 2p − k)/s⌋ + 1.

With cols = im2col(x) (B·Ho·Wo, k·k·C) and W_m = W rearranged to (O, k·k·C) (see im2col.py) this is a dense layer
applied to every patch at once:

    z = cols W_mᵀ                     (B·Ho·Wo, O)       one GEMM; its rows are output pixels, so z is "NHWC"
    y = f(z + b)                                         fused Numba pass (activations.py)
Backward, with dz = dy · f'(z), read as a (B·Ho·Wo, O) matrix:
    dL/dW_m  = dzᵀ cols               (O, k·k·C)         GEMM
    dL/db    = Σ_{b, ho, wo} dz       (O,)
    dL/dcols = dz W_m                 (B·Ho·Wo, k·k·C)   GEMM
    dL/dx    = col2im(dL/dcols)       (B, C, H, W)       im2col is linear, so its backward is its adjoint

`conv2d_forward` / `conv2d_backward` are the NumPy specification that `Conv2d` (the reference engine) runs;
fast_layers.FastConv2d runs the same math on Numba kernels, a few images at a time on every core.
"""
import numpy as np

from ..activations import activation_code, bias_act_backward, bias_act_forward
from ..errors import MinivaeError
from .dense import uniform_init
from .im2col import col2im_reference, conv_output_shape, im2col_reference, weight_from_matrix, weight_matrix


def conv2d_forward(x, W, b, stride, padding, activation):
    """y = f(conv(x, W) + b).   x: (B, C, H, W), W: (O, C, k, k), b: (O,) -> y: (B, O, Ho, Wo)."""
    B, O, k = x.shape[0], W.shape[0], W.shape[2]
    Ho, Wo = conv_output_shape(x.shape, k, stride, padding)
    z = im2col_reference(x, k, stride, padding) @ weight_matrix(W).T                  # (B·Ho·Wo, O)
    return bias_act_forward(z, b, activation).reshape(B, Ho, Wo, O).transpose(0, 3, 1, 2)


def conv2d_backward(dy, x, W, y, stride, padding, activation):
    """Given dL/dy (B, O, Ho, Wo) and the forward's y: returns dL/dx, dL/dW, dL/db (formulas in the module doc)."""
    B, O, Ho, Wo = dy.shape
    k = W.shape[2]
    dz, db = bias_act_backward(dy.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1), activation)  # NHWC
    dz = dz.reshape(B * Ho * Wo, O)                                                  # rows (b, ho, wo)
    cols = im2col_reference(x, k, stride, padding)
    dW = weight_from_matrix(dz.T @ cols, W.shape)
    dx = col2im_reference(dz @ weight_matrix(W), x.shape, k, stride, padding)
    return dx, dW, db


def check_image(x, n_channels, layer):
    """MinivaeError unless x is a batch of images (B, n_channels, H, W)."""
    if x.ndim != 4 or x.shape[1] != n_channels:
        raise MinivaeError(f"{layer} expects images shaped (B, {n_channels}, H, W), got an array of shape {x.shape}")


class Conv2d:
    """y = f(conv(x, W) + b) with its gradients; W (out_ch, in_ch, k, k), b (out_ch,) as nn.Conv2d.

    Initialized as PyTorch does: W and b ~ U(±1/√fan_in) with fan_in = in_ch·k·k. bias=False drops b.
    """

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, activation="identity", bias=True, *, rng,
                 dtype=np.float32):
        self.in_ch, self.out_ch, self.k, self.stride, self.padding = in_ch, out_ch, kernel_size, stride, padding
        self.activation, self.code = activation, activation_code(activation)
        fan_in = in_ch * kernel_size * kernel_size
        self.params = {"W": uniform_init(rng, fan_in, (out_ch, in_ch, kernel_size, kernel_size), dtype)}
        if bias:
            self.params["b"] = uniform_init(rng, fan_in, (out_ch,), dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._no_bias = np.zeros(out_ch, dtype=dtype)  # what the bias add adds when bias=False

    def _bias(self):
        return self.params.get("b", self._no_bias)

    def forward(self, x):
        check_image(x, self.in_ch, f"Conv2d({self.in_ch}→{self.out_ch})")
        self.x = x
        self.y = conv2d_forward(x, self.params["W"], self._bias(), self.stride, self.padding, self.activation)
        return self.y

    def backward(self, dy, need_dx=True):
        dx, dW, db = conv2d_backward(dy, self.x, self.params["W"], self.y, self.stride, self.padding, self.activation)
        self.grads["W"][...] = dW
        if "b" in self.grads:
            self.grads["b"][...] = db
        return dx if need_dx else None
