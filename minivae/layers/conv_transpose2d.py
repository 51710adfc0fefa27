"""Transposed 2-D convolution (PyTorch's nn.ConvTranspose2d) with a fused activation:  y = f(convᵀ(x, W) + b).

The transposed convolution is the *adjoint* of the convolution with the same weight, stride and padding: for the
linear map conv_W : (B, O, Ho, Wo) -> (B, C, H, W) that a Conv2d(O→C) with weight W (C, O, k, k) computes,
convᵀ_W is the unique linear map with

    ⟨conv_W(u), v⟩ = ⟨u, convᵀ_W(v)⟩        for all u (B, O, Ho, Wo), v (B, C, H, W)

(tests/test_conv.py checks this identity). It is therefore exactly the input-gradient path of a convolution: a GEMM
followed by col2im. Every input pixel spreads a k×k stamp, weighted by W, onto the output at stride s:

    y[b, o, h, w] = f( b[o] + Σ_{c, hi, wi, i, j : hi·s + i − p = h, wi·s + j − p = w} x[b, c, hi, wi] W[c, o, i, j] )

Shapes: x (B, C_in, Hi, Wi), W (C_in, C_out, k, k) (= nn.ConvTranspose2d.weight), b (C_out,)
        -> y (B, C_out, Ho, Wo),  Ho = (Hi − 1)·s − 2p + k  (so that a Conv2d with the same k, s, p maps Ho back to Hi)

With X = x as the matrix (B·Hi·Wi, C_in) (rows (b, hi, wi)) and W_m = W rearranged to (C_in, k·k·C_out)
(im2col.py's column order):
    cols = X W_m                        (B·Hi·Wi, k·k·C_out)   GEMM
    y    = f(col2im(cols) + b)          (B, C_out, Ho, Wo)     col2im (im2col.py), then the fused Numba pass
Backward, with dz = dy · f'(z); the backward of col2im is im2col, its adjoint:
    dL/dcols = im2col(dz)               (B·Hi·Wi, k·k·C_out)
    dL/dW_m  = Xᵀ dL/dcols              (C_in, k·k·C_out)      GEMM
    dL/dX    = dL/dcols W_mᵀ            (B·Hi·Wi, C_in)        GEMM
    dL/db    = Σ_{b, h, w} dz           (C_out,)

`conv_transpose2d_forward` / `conv_transpose2d_backward` are the NumPy specification that `ConvTranspose2d` (the
reference engine) runs; fast_layers.FastConvTranspose2d runs the same math on Numba kernels.
"""
import numpy as np

from ..activations import activation_code, bias_act_backward, bias_act_forward
from ..errors import MinivaeError
from .conv2d import check_image
from .dense import uniform_init
from .im2col import col2im_reference, im2col_reference, weight_from_matrix, weight_matrix


def conv_transpose_output_shape(x_shape, k, stride, padding):
    """(Ho, Wo) = ((Hi − 1)·s − 2p + k, (Wi − 1)·s − 2p + k); MinivaeError if that is not a valid image."""
    _, _, Hi, Wi = x_shape
    if k < 1 or stride < 1 or padding < 0:
        raise MinivaeError(f"transposed convolution needs kernel size ≥ 1, stride ≥ 1 and padding ≥ 0; got kernel "
                           f"{k}, stride {stride}, padding {padding}")
    Ho, Wo = (Hi - 1) * stride - 2 * padding + k, (Wi - 1) * stride - 2 * padding + k
    if Ho < 1 or Wo < 1:
        raise MinivaeError(f"transposed convolution of a {Hi}×{Wi} image with kernel {k}, stride {stride}, padding "
                           f"{padding} has no output pixels ({Ho}×{Wo}); use less padding")
    return Ho, Wo


def conv_transpose2d_forward(x, W, b, stride, padding, activation):
    """y = f(convᵀ(x, W) + b).   x: (B, C_in, Hi, Wi), W: (C_in, C_out, k, k), b: (C_out,) -> (B, C_out, Ho, Wo)."""
    B, C_in, Hi, Wi = x.shape
    C_out, k = W.shape[1], W.shape[2]
    Ho, Wo = conv_transpose_output_shape(x.shape, k, stride, padding)
    X = x.transpose(0, 2, 3, 1).reshape(B * Hi * Wi, C_in)
    z = col2im_reference(X @ weight_matrix(W), (B, C_out, Ho, Wo), k, stride, padding)
    return bias_act_forward(z.transpose(0, 2, 3, 1), b, activation).transpose(0, 3, 1, 2)


def conv_transpose2d_backward(dy, x, W, y, stride, padding, activation):
    """Given dL/dy (B, C_out, Ho, Wo) and the forward's y: returns dL/dx, dL/dW, dL/db (see the module doc)."""
    B, C_out, Ho, Wo = dy.shape
    _, C_in, Hi, Wi = x.shape
    k = W.shape[2]
    dz, db = bias_act_backward(dy.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1), activation)  # NHWC
    dcols = im2col_reference(dz.transpose(0, 3, 1, 2), k, stride, padding)
    X = x.transpose(0, 2, 3, 1).reshape(B * Hi * Wi, C_in)
    dW = weight_from_matrix(X.T @ dcols, W.shape)
    dx = (dcols @ weight_matrix(W).T).reshape(B, Hi, Wi, C_in).transpose(0, 3, 1, 2)
    return dx, dW, db


class ConvTranspose2d:
    """y = f(convᵀ(x, W) + b) with its gradients; W (in_ch, out_ch, k, k), b (out_ch,) as nn.ConvTranspose2d.

    Initialized as PyTorch does: W and b ~ U(±1/√fan_in), where torch takes fan_in from weight.shape[1]·k·k, which
    for a transposed convolution is out_ch·k·k (torch.nn.init._calculate_fan_in_and_fan_out). bias=False drops b.
    """

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, activation="identity", bias=True, *, rng,
                 dtype=np.float32):
        self.in_ch, self.out_ch, self.k, self.stride, self.padding = in_ch, out_ch, kernel_size, stride, padding
        self.activation, self.code = activation, activation_code(activation)
        fan_in = out_ch * kernel_size * kernel_size
        self.params = {"W": uniform_init(rng, fan_in, (in_ch, out_ch, kernel_size, kernel_size), dtype)}
        if bias:
            self.params["b"] = uniform_init(rng, fan_in, (out_ch,), dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._no_bias = np.zeros(out_ch, dtype=dtype)  # what the bias add adds when bias=False

    def _bias(self):
        return self.params.get("b", self._no_bias)

    def forward(self, x):
        check_image(x, self.in_ch, f"ConvTranspose2d({self.in_ch}→{self.out_ch})")
        self.x = x
        self.y = conv_transpose2d_forward(x, self.params["W"], self._bias(), self.stride, self.padding,
                                          self.activation)
        return self.y

    def backward(self, dy, need_dx=True):
        dx, dW, db = conv_transpose2d_backward(dy, self.x, self.params["W"], self.y, self.stride, self.padding,
                                               self.activation)
        self.grads["W"][...] = dW
        if "b" in self.grads:
            self.grads["b"][...] = db
        return dx if need_dx else None
