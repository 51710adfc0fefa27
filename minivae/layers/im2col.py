"""im2col and col2im: a convolution rewritten as one matrix product, and the adjoint of that rewriting.

A convolution with a k×k kernel, stride s and zero padding p reads, for every output pixel (ho, wo), the k×k patch
of the padded input whose top-left corner is (ho·s, wo·s). im2col copies each patch into one row of a matrix:

    cols[(b, ho, wo), (i, j, c)] = x_pad[b, c, ho·s + i, wo·s + j]        x: (B, C, H, W) -> cols: (B·Ho·Wo, k·k·C)
    Ho = ⌊(H + 2p − k) / s⌋ + 1,   Wo = ⌊(W + 2p − k) / s⌋ + 1

Rows run over (b, ho, wo) and columns over (i, j, c), in that order. With the weight W (O, C, k, k) rearranged to
the matrix W_m (O, k·k·C) of the same column order, the whole convolution of a batch is one GEMM,
y (B·Ho·Wo, O) = cols W_mᵀ, whose rows are the output pixels in (b, ho, wo) order: the output comes out "NHWC".
The channel runs fastest in the columns because the activations are stored NHWC too: then the k·C numbers of one
kernel row are contiguous both in the image and in `cols`, and the copy streams through memory. (PyTorch's weight
order would put (c, i, j) in the columns; rearranging a weight costs far less than a strided im2col.)

im2col is linear in x, and col2im is its adjoint (its transpose): every entry of cols is added back to the input
pixel it was copied from, and entries that were copied from the zero padding are dropped,

    col2im(cols)[b, c, h, w] = Σ_{(ho, wo, i, j) : ho·s + i − p = h, wo·s + j − p = w} cols[(b, ho, wo), (i, j, c)]

so that ⟨im2col(x), cols⟩ = ⟨x, col2im(cols)⟩. A pixel inside several overlapping patches receives several sums.

The reference functions take images (B, C, H, W) like the rest of the package. The kernels index images as
(B, H, W, C), which is how the layers store their activations, so that the inner loop over c runs through
contiguous memory in both the image and `cols`. They accept any strides (Numba compiles a variant per layout); the
layers hand them an NCHW array (the data, the likelihood's gradient) through its strides when it has few channels,
and copy it to NHWC first otherwise (`im2col_input`).

`im2col_reference` / `col2im_reference` are the NumPy specification (one slice per kernel offset (i, j));
`im2col_kernel` / `col2im_kernel` are the Numba versions that run, tested against them. They are serial and release
the GIL: the layers run them on several chunks of images at once, one per core (workers.py).
"""
import numpy as np
from numba import njit

from ..errors import MinivaeError


def conv_output_size(n, k, stride, padding):
    """Output length ⌊(n + 2p − k) / s⌋ + 1 of a convolution along one axis of length n."""
    return (n + 2 * padding - k) // stride + 1


def conv_output_shape(x_shape, k, stride, padding):
    """(Ho, Wo) of a convolution of an image (B, C, H, W); MinivaeError if the kernel does not fit."""
    _, _, H, W = x_shape
    if k < 1 or stride < 1 or padding < 0:
        raise MinivaeError(f"convolution needs kernel size ≥ 1, stride ≥ 1 and padding ≥ 0; got kernel {k}, "
                           f"stride {stride}, padding {padding}")
    if H + 2 * padding < k or W + 2 * padding < k:
        raise MinivaeError(f"kernel {k}×{k} is larger than the padded input {H + 2 * padding}×{W + 2 * padding} "
                           f"(image {H}×{W}, padding {padding})")
    return conv_output_size(H, k, stride, padding), conv_output_size(W, k, stride, padding)


# ---------------------------------------------------------------- NumPy reference (the specification)

def im2col_reference(x, k, stride, padding):
    """cols[(b, ho, wo), (i, j, c)] = x_pad[b, c, ho·s + i, wo·s + j].   x: (B, C, H, W) -> (B·Ho·Wo, k·k·C)."""
    B, C, H, W = x.shape
    Ho, Wo = conv_output_shape(x.shape, k, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((B, Ho, Wo, k, k, C), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            # kernel offset (i, j) reads rows i, i+s, ..., i+s(Ho−1) and columns j, j+s, ... of the padded image
            patch = xp[:, :, i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Wo - 1) + 1:stride]
            cols[:, :, :, i, j, :] = patch.transpose(0, 2, 3, 1)
    return cols.reshape(B * Ho * Wo, k * k * C)


def col2im_reference(cols, x_shape, k, stride, padding):
    """The adjoint of im2col: scatter-add every row of cols back onto its patch.   -> x: x_shape = (B, C, H, W)."""
    B, C, H, W = x_shape
    Ho, Wo = conv_output_shape(x_shape, k, stride, padding)
    cols = cols.reshape(B, Ho, Wo, k, k, C)
    xp = np.zeros((B, C, H + 2 * padding, W + 2 * padding), dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            xp[:, :, i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Wo - 1) + 1:stride] += \
                cols[:, :, :, i, j, :].transpose(0, 3, 1, 2)
    return xp[:, :, padding:padding + H, padding:padding + W]  # what landed on the padding is dropped


def weight_matrix(W):
    """A weight (A, C, k, k) as the matrix (A, k·k·C) whose columns are in im2col's (i, j, c) order (a copy)."""
    return W.transpose(0, 2, 3, 1).reshape(W.shape[0], -1)


def weight_from_matrix(W_m, W_shape):
    """The inverse of `weight_matrix`: (A, k·k·C) -> (A, C, k, k), a view."""
    A, C, k, _ = W_shape
    return W_m.reshape(A, k, k, C).transpose(0, 3, 1, 2)


# ---------------------------------------------------------------- Numba kernels (what runs)
#
# The loops below are compiled once per (k, C) when a kernel row holds few numbers (k·C ≤ THIN_ROW: the first layer
# of an encoder, the last of a decoder), with k and C as compile-time constants, so that the compiler unrolls the
# inner loops over j and c (several times faster for thin rows, no faster for wide ones: docs/performance.md); for
# all other shapes once, with k and C read at run time. Each variant is cached on disk like every other kernel.

THIN_ROW = 24


def _im2col_loops(k_fixed, C_fixed):
    """im2col's loops with k and C fixed at compile time (0: taken from the arguments at run time)."""
    @njit(cache=True, nogil=True)
    def im2col(x, k_arg, stride, padding, cols):
        k = k_fixed if k_fixed else k_arg
        B, H, W, C_arg = x.shape
        C = C_fixed if C_fixed else C_arg
        Ho = (H + 2 * padding - k) // stride + 1
        Wo = (W + 2 * padding - k) // stride + 1
        for b in range(B):
            for ho in range(Ho):
                for wo in range(Wo):
                    row = (b * Ho + ho) * Wo + wo
                    h0, w0 = ho * stride - padding, wo * stride - padding
                    for i in range(k):
                        hi = h0 + i
                        for j in range(k):
                            wi = w0 + j
                            base = (i * k + j) * C
                            if 0 <= hi < H and 0 <= wi < W:
                                for c in range(C):
                                    cols[row, base + c] = x[b, hi, wi, c]
                            else:  # the patch hangs over the zero padding
                                for c in range(C):
                                    cols[row, base + c] = 0
    return im2col


def _col2im_loops(k_fixed, C_fixed):
    """col2im's loops with k and C fixed at compile time (0: taken from the arguments at run time)."""
    @njit(cache=True, nogil=True)
    def col2im(cols, k_arg, stride, padding, x):
        k = k_fixed if k_fixed else k_arg
        B, H, W, C_arg = x.shape
        C = C_fixed if C_fixed else C_arg
        Ho = (H + 2 * padding - k) // stride + 1
        Wo = (W + 2 * padding - k) // stride + 1
        for b in range(B):
            for h in range(H):
                for w in range(W):
                    for c in range(C):
                        x[b, h, w, c] = 0
            for ho in range(Ho):
                for wo in range(Wo):
                    row = (b * Ho + ho) * Wo + wo
                    h0, w0 = ho * stride - padding, wo * stride - padding
                    for i in range(k):
                        hi = h0 + i
                        if hi < 0 or hi >= H:
                            continue
                        for j in range(k):
                            wi = w0 + j
                            if wi < 0 or wi >= W:
                                continue
                            base = (i * k + j) * C
                            for c in range(C):
                                x[b, hi, wi, c] += cols[row, base + c]
    return col2im


_variants = {}


def _loops(make, k, C):
    """The compiled variant of `make`'s loops for kernel size k and C channels (made on first use)."""
    key = (make, k, C) if k * C <= THIN_ROW else (make, 0, 0)
    if key not in _variants:
        _variants[key] = make(*key[1:])
    return _variants[key]


def im2col_input(x, k):
    """The image x, indexed (B, H, W, C), as im2col_kernel should read it: as it is when it is contiguous or when its
    kernel rows are thin (k·C ≤ THIN_ROW: the unrolled loops read strided channels faster than a copy would take),
    else a contiguous copy (the generic loops read channels far apart slowly)."""
    return x if x.flags.c_contiguous or k * x.shape[3] <= THIN_ROW else np.ascontiguousarray(x)


def im2col_kernel(x, k, stride, padding, cols):
    """cols (B·Ho·Wo, k·k·C) <- im2col(x) for the image x indexed (B, H, W, C) (any strides). Serial, nogil."""
    _loops(_im2col_loops, k, x.shape[3])(x, k, stride, padding, cols)


def col2im_kernel(cols, k, stride, padding, x):
    """x <- col2im(cols) for the image x indexed (B, H, W, C) (any strides; overwritten). Serial, nogil.
    The patches of one example only touch that example's image, so workers given different images never write to
    the same pixel."""
    _loops(_col2im_loops, k, x.shape[3])(cols, k, stride, padding, x)
