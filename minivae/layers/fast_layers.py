"""The fast engine's layers: the math of dense.py, conv2d.py and conv_transpose2d.py on fused Numba kernels.

Each class here has the contract of its reference twin (same constructor, parameters, gradients and results to
rounding; tests/test_engines.py) and subclasses it for the constructor. What differs is only how the work runs:

- Dense: the products stay on BLAS; the bias add and activation (and their backward) are one fused Numba pass
  (activations.py), in place on the product.
- Memory layout: convolution outputs are stored NHWC (the GEMM's rows are output pixels) and returned as transposed
  views that are logically (B, C, H, W); the next convolution's im2col reads them through their strides, and an
  NCHW input (the data, the likelihood's gradient) is read through its strides when it has few channels and copied
  to NHWC otherwise (`im2col_input`).
- Cache blocking: a convolution runs its lines a few images at a time (`image_chunks`, ~2 MB of im2col rows), so
  that what one line writes is still in the core's cache when the next reads it; dL/dW = Σ_chunks dz_chunkᵀ
  cols_chunk. The backward recomputes each chunk's im2col rather than keeping the forward's, which costs no
  measurable time and saves its memory.
- The chunks are shared between the cores, each worker running the whole pipeline on its own chunks (workers.py),
  its partial gradient sums added in a fixed order, so a run is reproducible bit for bit.
- backward overwrites dy with dz = dy · f'(z) where its layout allows (the caller no longer needs it).
Measurements behind these choices: docs/performance.md.
"""
import numpy as np

from ..activations import bias_act_backward_kernel, bias_act_forward_kernel, bias_grad
from .conv2d import Conv2d, check_image
from .conv_transpose2d import ConvTranspose2d, conv_transpose_output_shape
from .dense import Dense
from .im2col import col2im_kernel, conv_output_shape, im2col_input, im2col_kernel, weight_from_matrix, weight_matrix
from .workers import for_each_worker, worker_count


class FastDense(Dense):
    """Dense on BLAS products and the fused bias/activation kernels."""

    def forward(self, x):
        y = x @ self.params["W"]
        bias_act_forward_kernel(y[:, None], self.params["b"], self.code)
        self.x, self.y = x, y
        return y

    def backward(self, dy, need_dx=True):
        bias_act_backward_kernel(dy[:, None], self.y[:, None], self.code)
        dz = dy
        np.matmul(self.x.T, dz, out=self.grads["W"])
        self.grads["b"][...] = bias_grad(dz)
        return dz @ self.params["W"].T if need_dx else None


def scratch(store, name, shape, dtype):
    """A work array kept across steps (`store[name]`), reallocated only when the shape or dtype changes."""
    a = store.get(name)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = store[name] = np.empty(shape, dtype=dtype)
    return a


CHUNK_BYTES = 2 ** 21  # about one core's L2 cache (docs/performance.md)


def image_chunks(B, rows_per_image, row_bytes):
    """Slices of whole images whose im2col rows take at most CHUNK_BYTES (or one image), their count a multiple of
    the workers' (workers.py) unless there are fewer images, their sizes equal to one image, the first the largest,
    so that every core gets the same work.

    im2col writes a chunk's rows and the GEMM reads them right away, while they are still in the core's cache,
    where a whole batch's im2col matrix would have to come back from memory.
    """
    per_chunk = max(1, CHUNK_BYTES // max(1, rows_per_image * row_bytes))  # images under CHUNK_BYTES
    needed, n = -(-B // per_chunk), worker_count()
    count = min(B, -(-needed // n) * n)                  # rounded up to a multiple of n, at most one per image
    starts = [-(-i * B // count) for i in range(count + 1)]  # sizes ⌈B/count⌉ or one less, the first the largest
    return [slice(a, b) for a, b in zip(starts, starts[1:])]


class FastConv2d(Conv2d):
    """Conv2d on im2col/col2im kernels and per-chunk GEMMs, chunks split between the cores."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._work = {}

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
        R = self.W_m.shape[1]
        dx = np.empty((B, H, W, C), dtype=dy.dtype) if need_dx else None
        chunks = image_chunks(B, P, R * dy.itemsize)
        rows_max = (chunks[0].stop - chunks[0].start) * P

        def work(w, mine):
            """This worker's share: returns its Σ over its chunks of dL/dW_m and dL/db."""
            cols = scratch(self._work, f"cols{w}", (rows_max, R), dy.dtype)
            dcols = scratch(self._work, f"dcols{w}", (rows_max, R), dy.dtype) if need_dx else None
            dW_m, dW_part, db = np.zeros((O, R), dy.dtype), np.empty((O, R), dy.dtype), np.zeros(O, dy.dtype)
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


class FastConvTranspose2d(ConvTranspose2d):
    """ConvTranspose2d on per-chunk GEMMs and col2im/im2col kernels, chunks split between the cores."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._work = {}

    def forward(self, x):
        check_image(x, self.in_ch, f"ConvTranspose2d({self.in_ch}→{self.out_ch})")
        B, C_in, Hi, Wi = x.shape
        C_out, P = self.out_ch, Hi * Wi                                             # P input pixels per image
        Ho, Wo = conv_transpose_output_shape(x.shape, self.k, self.stride, self.padding)
        X = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(B * P, C_in)      # no copy if x is NHWC
        W_m = weight_matrix(self.params["W"])
        y = np.empty((B, Ho, Wo, C_out), dtype=W_m.dtype)
        y3 = y.reshape(B, Ho * Wo, C_out)                                           # rows (b, ho·wo)
        chunks = image_chunks(B, P, W_m.shape[1] * W_m.itemsize)
        rows_max = (chunks[0].stop - chunks[0].start) * P

        def work(w, mine):
            cols = scratch(self._work, f"cols{w}", (rows_max, W_m.shape[1]), W_m.dtype)
            for s in mine:
                c = np.matmul(X[s.start * P:s.stop * P], W_m, out=cols[:(s.stop - s.start) * P])
                col2im_kernel(c, self.k, self.stride, self.padding, y[s])
                bias_act_forward_kernel(y3[s], self._bias(), self.code)
        for_each_worker(chunks, work)
        self.X, self.X_hw, self.W_m, self.y = X, (Hi, Wi), W_m, y3
        return y.transpose(0, 3, 1, 2)                                              # logically NCHW, stored NHWC

    def backward(self, dy, need_dx=True):
        """dy is overwritten with dz = dy · f'(z) where its layout allows (the caller no longer needs it)."""
        B, C_out, Ho, Wo = dy.shape
        C_in, (Hi, Wi) = self.in_ch, self.X_hw
        P = Hi * Wi
        R = C_out * self.k * self.k                                        # im2col row length
        chunks = image_chunks(B, P, R * dy.itemsize)
        rows_max = (chunks[0].stop - chunks[0].start) * P
        dX = np.empty((B * P, C_in), dtype=dy.dtype) if need_dx else None

        def work(w, mine):
            """This worker's share: returns its Σ over its chunks of dL/dW_m and dL/db."""
            dcols = scratch(self._work, f"dcols{w}", (rows_max, R), dy.dtype)
            dW_m, dW_part, db = np.zeros((C_in, R), dy.dtype), np.empty((C_in, R), dy.dtype), np.zeros(C_out, dy.dtype)
            for s in mine:
                rows = slice(s.start * P, s.stop * P)
                bias_act_backward_kernel(dy[s].reshape(-1, C_out, Ho * Wo).transpose(0, 2, 1), self.y[s],
                                         self.code)                    # in place on dy, viewed (images, P, C)
                dz = im2col_input(dy[s].transpose(0, 2, 3, 1), self.k)  # NHWC (see im2col_input)
                db += bias_grad(dz)
                d = dcols[:rows.stop - rows.start]
                im2col_kernel(dz, self.k, self.stride, self.padding, d)
                dW_m += np.matmul(self.X[rows].T, d, out=dW_part)
                if need_dx:
                    np.matmul(d, self.W_m.T, out=dX[rows])
            return dW_m, db
        dW_m, db = (sum(part) for part in zip(*for_each_worker(chunks, work)))
        np.copyto(self.grads["W"], weight_from_matrix(dW_m, self.params["W"].shape))
        if "b" in self.grads:
            np.copyto(self.grads["b"], db)
        return dX.reshape(B, Hi, Wi, C_in).transpose(0, 3, 1, 2) if need_dx else None
