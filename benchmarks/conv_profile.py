"""Where the time of a conv VAE's training step goes: per layer, forward and backward, GEMM versus everything else.

    python benchmarks/conv_profile.py [--models conv28,conv64] [--threads 2] [--repeats 10]

1. The whole step (forward, backward, Adam) of minivae's float32 conv28 (batch 128) and conv64 (batch 64), median
   ms/step. (The ratio to PyTorch is compare.py's job: it runs each framework in its own process, see there why.)
2. The same step with every layer's forward and backward wrapped in a timer (wall clock, median over repeats).
3. For each convolution, its GEMMs replayed alone the way the layer runs them (chunk by chunk of images, the chunks
   shared between the cores, BLAS single-threaded in each: layers/workers.py): the GEMM share of the layer's time,
   and the GFLOP/s of the GEMMs against the machine's peak (best of a few 2048² float32 matmuls). In the layer the
   operands come from im2col, still in cache, or compete with it, so the share is an estimate.
   What is not GEMM is im2col/col2im, the fused bias+activation pass and layout copies.
On a shared, busy machine use --threads 1 --cpu-time: the shares stay meaningful when wall-clock times do not.

FLOPs of a conv layer's GEMM: 2·M·N·K with M = B·(output or input pixels), K·N the weight's size; three such GEMMs
per layer per step (forward, dL/dW, dL/dx), two for the encoder's first layer (it needs no dL/dx).
"""
import argparse
import os
import sys
import time

BATCH = {"conv28": 128, "conv64": 64}


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="conv28,conv64")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--blas-threads", type=int, help="OpenBLAS's threads for minivae (default: --threads)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process's CPU time instead of the wall clock: with --threads 1 this is "
                        "immune to other processes' load (with more threads it adds the threads' times up)")
    return p.parse_args()


args = parse()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(args.threads)
if args.blas_threads:
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import minivae.runtime  # noqa: E402
minivae.runtime.configure()  # before numpy loads OpenBLAS

import numpy as np  # noqa: E402  (after the thread settings)

from minivae.layers import FastConv2d, FastConvTranspose2d  # noqa: E402
from minivae.layers.fast_layers import image_chunks  # noqa: E402
from minivae.layers.workers import for_each_worker, worker_count  # noqa: E402
from minivae.models import build_model  # noqa: E402
from minivae.optim import Adam  # noqa: E402


clock = time.process_time if args.cpu_time else time.perf_counter


def median_ms(f, repeats):
    ts = []
    for _ in range(repeats):
        t = clock()
        f()
        ts.append(clock() - t)
    return 1e3 * float(np.median(ts))


def matmul_peak():
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    a @ a
    best = min(median_ms(lambda: a @ a, 1) for _ in range(4))
    return 2 * 2048 ** 3 / best / 1e6


def setup(name):
    rng = np.random.default_rng(0)
    vae = build_model(name, rng=rng, dtype=np.float32)
    opt = Adam(vae.params)
    B = BATCH[name]
    x = rng.uniform(0, 1, (B, *vae.image_shape)).astype(np.float32)
    eps = rng.standard_normal((B, vae.latent)).astype(np.float32)

    def step():
        vae.forward(x, eps)
        opt.step(vae.backward())
    return vae, x, eps, step


def whole_step(name, repeats):
    vae, x, eps, step = setup(name)
    for _ in range(3):
        step()
    print(f"{name} B={BATCH[name]}: minivae ({args.threads} threads, OpenBLAS {os.environ['OPENBLAS_NUM_THREADS']}) "
          f"{median_ms(step, repeats):.1f} ms/step")
    return vae, x, eps, step


def wrap(layer, label, table):
    """Replace layer.forward/backward by timed versions that append wall-clock seconds to table[label]."""
    fwd, bwd = layer.forward, layer.backward
    table[label] = {"fwd": [], "bwd": []}

    def forward(x):
        t = clock()
        y = fwd(x)
        table[label]["fwd"].append(clock() - t)
        return y

    def backward(dy, need_dx=True):
        t = clock()
        dx = bwd(dy, need_dx)
        table[label]["bwd"].append(clock() - t)
        return dx
    layer.forward, layer.backward = forward, backward


def conv_gemms(layer, need_dx):
    """The GEMMs this conv layer ran in its last step, replayed as the layer runs them: chunk by chunk of images
    (`image_chunks`), the chunks shared between the workers with BLAS single-threaded (`for_each_worker`). Returns
    a closure that runs them all once, and their FLOPs."""
    conv = isinstance(layer, FastConv2d)
    W_m = layer.W_m                                              # Conv2d (O, K); ConvTranspose2d (C_in, K)
    B, P = (layer.y.shape[0], layer.y.shape[1]) if conv else (layer.y.shape[0], layer.X.shape[0] // layer.y.shape[0])
    A, K = W_m.shape
    chunks = image_chunks(B, P, K * W_m.itemsize)
    rows = (chunks[0].stop - chunks[0].start) * P
    wide = np.ones((rows, K), W_m.dtype)                         # cols (Conv2d) or dL/dcols (ConvTranspose2d)
    narrow = np.ones((rows, A), W_m.dtype)                       # dz (Conv2d) or X (ConvTranspose2d)
    outs = [(np.empty((rows, K), W_m.dtype), np.empty((A, K), W_m.dtype), np.empty((rows, A), W_m.dtype))
            for _ in range(worker_count())]

    def work(w, mine):
        big, weight, small = outs[w]
        for s in mine:
            r = (s.stop - s.start) * P
            if conv:  # z = cols W_mᵀ, dW_m = dzᵀ cols, dcols = dz W_m
                np.matmul(wide[:r], W_m.T, out=small[:r])
                np.matmul(narrow[:r].T, wide[:r], out=weight)
                if need_dx:
                    np.matmul(narrow[:r], W_m, out=big[:r])
            else:     # cols = X W_m, dW_m = Xᵀ dcols, dX = dcols W_mᵀ
                np.matmul(narrow[:r], W_m, out=big[:r])
                np.matmul(narrow[:r].T, wide[:r], out=weight)
                if need_dx:
                    np.matmul(wide[:r], W_m.T, out=small[:r])
    return (lambda: for_each_worker(chunks, work)), 2 * B * P * W_m.size * (3 if need_dx else 2)


def profile(name, vae, step, repeats, peak):
    table = {}
    for part in ("encoder", "decoder"):
        for i, layer in enumerate(getattr(vae, part).layers):
            if layer.params:
                wrap(layer, f"{part}.{i} {type(layer).__name__}", table)
    for _ in range(2):
        step()
    for v in table.values():
        v["fwd"].clear(), v["bwd"].clear()
    total = median_ms(step, repeats)
    print(f"\n{name} B={BATCH[name]}: step {total:.1f} ms with timers; peak matmul {peak:.0f} GFLOP/s")
    print(f"{'layer':28s} {'fwd ms':>7s} {'bwd ms':>7s} {'GEMM ms':>8s} {'GEMM %':>7s} {'GEMM GF/s':>9s}")
    sums = np.zeros(3)
    for part in ("encoder", "decoder"):
        for i, layer in enumerate(getattr(vae, part).layers):
            label = f"{part}.{i} {type(layer).__name__}"
            if label not in table:
                continue
            f, b = (1e3 * float(np.median(table[label][k])) for k in ("fwd", "bwd"))
            row = f"{label:28s} {f:7.2f} {b:7.2f}"
            if isinstance(layer, (FastConv2d, FastConvTranspose2d)):
                gemms, flops = conv_gemms(layer, need_dx=not (part == "encoder" and i == 0))
                g = min(median_ms(gemms, 3) for _ in range(2))
                row += f" {g:8.2f} {100 * g / (f + b):6.0f}% {flops / g / 1e6:9.0f}"
                sums += (f + b, g, 1)
            print(row)
    print(f"convolutions: {sums[0]:.1f} ms of which GEMM {sums[1]:.1f} ms ({100 * sums[1] / sums[0]:.0f}%); "
          f"rest of the step (dense, loss, Adam, Python) {total - sums[0]:.1f} ms")


def main():
    peak = matmul_peak()
    for name in args.models.split(","):
        vae, x, eps, step = whole_step(name, args.repeats)
        profile(name, vae, step, args.repeats, peak)


if __name__ == "__main__":
    main()
