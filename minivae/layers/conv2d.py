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

Memory layout: the layer takes and returns arrays that are *logically* (B, C, H, W), like PyTorch. The result is a
transposed view of the GEMM's NHWC output (no copy), and the next convolution's im2col reads it through its strides;
a reshape to a vector (Flatten) puts it back into NCHW order. An input stored NCHW (the data set's images) is read
through its strides too when it has few channels, and copied to NHWC once otherwise (`im2col_input`).

Cache blocking: `Conv2d` runs the lines above on a few images at a time (`image_chunks`, ~2 MB of im2col rows), so
that what one line writes is still in the core's cache when the next line reads it. Restricting the GEMMs to a
chunk's rows changes nothing in the math; dL/dW = Σ_chunks dz_chunkᵀ cols_chunk. It made the step 5–7% faster than
whole-batch matrices in our single-thread measurements (benchmarks/conv_profile.py). The chunks are shared between
the cores, each running the lines above on its own chunks (workers.py); a worker adds up its chunks' dL/dW and
dL/db, and the layer adds up the workers'. The backward recomputes each chunk's im2col instead of keeping the
forward's: that took no measurable time (the stored matrix would have to come back from memory anyway) and saves
its memory, 34 MB for conv64's second layer at batch 64, 260 MB at batch 500.

`conv2d_forward` / `conv2d_backward` are the NumPy specification; `Conv2d` runs the same math on the Numba kernels.
"""
import numpy as np

from ..activations import (activation_code, bias_act_backward, bias_act_backward_kernel, bias_act_forward,
                           bias_act_forward_kernel, bias_grad)
from ..errors import MinivaeError
from .dense import uniform_init
from .im2col import (col2im_kernel, col2im_reference, conv_output_shape, im2col_input, im2col_kernel,
                     im2col_reference, weight_from_matrix, weight_matrix)
from .workers import for_each_worker, worker_count


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


def scratch(store, name, shape, dtype):
    """A work array kept across steps (`store[name]`), reallocated only when the shape or dtype changes."""
    a = store.get(name)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = store[name] = np.empty(shape, dtype=dtype)
    return a


CHUNK_BYTES = 2 ** 21  # about one core's L2 cache; 1, 2 and 4 MB measured alike, whole-batch matrices 5–7% slower


def image_chunks(B, rows_per_image, row_bytes):
    """Slices of whole images whose im2col rows take at most CHUNK_BYTES (or one image), their count a multiple of
    the workers' (workers.py) unless there are fewer images, their sizes equal to one image, the first the largest,
    so that every core gets the same work.

    im2col writes a chunk's rows and the GEMM reads them right away, while they are still in the core's cache;
    a whole batch's im2col matrix (33 MB for conv64's second layer) would make the GEMM stream it from memory.
    """
    per_chunk = max(1, CHUNK_BYTES // max(1, rows_per_image * row_bytes))  # images under CHUNK_BYTES
    needed, n = -(-B // per_chunk), worker_count()
    count = min(B, -(-needed // n) * n)                  # rounded up to a multiple of n, at most one per image
    starts = [-(-i * B // count) for i in range(count + 1)]  # sizes ⌈B/count⌉ or one less, the first the largest
    return [slice(a, b) for a, b in zip(starts, starts[1:])]


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
        self._work = {}
        self._no_bias = np.zeros(out_ch, dtype=dtype)  # what the fused kernel adds when bias=False

    def _bias(self):
        return self.params.get("b", self._no_bias)

    def forward(self, x):
        check_image(x, self.in_ch, f"Conv2d({self.in_ch}→{self.out_ch})")
        B, O = x.shape[0], self.out_ch
        Ho, Wo = conv_output_shape(x.shape, self.k, self.stride, self.padding)
        P = Ho * Wo                                                         # output pixels per image
        W_m = weight_matrix(self.params["W"])
        y = np.empty((B, P, O), dtype=W_m.dtype)                            # NHWC: rows (b, ho·wo)
        z = y.reshape(B * P, O)
        x_nhwc = im2col_input(x.transpose(0, 2, 3, 1), self.k)  # a copy only for NCHW input with many channels
        chunks = image_chunks(B, P, W_m.shape[1] * W_m.itemsize)
        rows_max = (chunks[0].stop - chunks[0].start) * P

        def work(w, mine):
            cols = scratch(self._work, f"cols{w}", (rows_max, W_m.shape[1]), W_m.dtype)
            for s in mine:
                rows = slice(s.start * P, s.stop * P)
                c = cols[:rows.stop - rows.start]
                im2col_kernel(x_nhwc[s], self.k, self.stride, self.padding, c)
                np.matmul(c, W_m.T, out=z[rows])
                bias_act_forward_kernel(y[s], self._bias(), self.code)
        for_each_worker(chunks, work)
        self.x_nhwc, self.W_m, self.y = x_nhwc, W_m, y
        return y.reshape(B, Ho, Wo, O).transpose(0, 3, 1, 2)                # logically NCHW, stored NHWC

    def backward(self, dy, need_dx=True):
        """dy is overwritten with dz = dy · f'(z) where its layout allows (the caller no longer needs it)."""
        B, O, Ho, Wo = dy.shape
        P = Ho * Wo
        _, H, W, C = self.x_nhwc.shape
        K = self.W_m.shape[1]
        dx = np.empty((B, H, W, C), dtype=dy.dtype) if need_dx else None
        chunks = image_chunks(B, P, K * dy.itemsize)
        rows_max = (chunks[0].stop - chunks[0].start) * P

        def work(w, mine):
            """This worker's share: returns its Σ over its chunks of dL/dW_m and dL/db."""
            cols = scratch(self._work, f"cols{w}", (rows_max, K), dy.dtype)
            dcols = scratch(self._work, f"dcols{w}", (rows_max, K), dy.dtype) if need_dx else None
            dW_m, dW_part, db = np.zeros((O, K), dy.dtype), np.empty((O, K), dy.dtype), np.zeros(O, dy.dtype)
            for s in mine:
                rows = slice(s.start * P, s.stop * P)
                dz = dy[s].reshape(-1, O, P).transpose(0, 2, 1)              # (images, P, O): NHWC view
                bias_act_backward_kernel(dz, self.y[s], self.code)
                dz = np.ascontiguousarray(dz).reshape(-1, O)                 # (rows, O); no copy if dy is NHWC
                db += bias_grad(dz)
                c = cols[:rows.stop - rows.start]
                im2col_kernel(self.x_nhwc[s], self.k, self.stride, self.padding, c)  # recomputed, see module doc
                dW_m += np.matmul(dz.T, c, out=dW_part)
                if need_dx:
                    d = np.matmul(dz, self.W_m, out=dcols[:rows.stop - rows.start])
                    col2im_kernel(d, self.k, self.stride, self.padding, dx[s])
            return dW_m, db
        dW_m, db = (sum(part) for part in zip(*for_each_worker(chunks, work)))
        np.copyto(self.grads["W"], weight_from_matrix(dW_m, self.params["W"].shape))
        if "b" in self.grads:
            np.copyto(self.grads["b"], db)
        return dx.transpose(0, 3, 1, 2) if need_dx else None                # logically NCHW, stored NHWC
