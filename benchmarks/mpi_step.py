"""Time one data-parallel training step, split into compute (forward + backward on this rank's share), the gradient
sum across ranks (distributed.py) and the Adam step, as `minivae train` runs them (docs/mpi.md).

    NUMBA_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 mpiexec -n 1 python benchmarks/mpi_step.py --model mlp
    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mpiexec -n 2 python benchmarks/mpi_step.py --model mlp

Rank 0 prints one JSON line: medians over --steps steps (ms), parameters and bytes per gradient sum.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minivae.runtime  # noqa: E402

minivae.runtime.configure()  # process tuning before numpy
import numpy as np  # noqa: E402

from minivae.distributed import world  # noqa: E402
from minivae.models import build_model  # noqa: E402
from minivae.objectives import make_objective  # noqa: E402
from minivae.optim import Adam  # noqa: E402
from minivae.training import sum_over_ranks  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="mlp")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--dtype", default="float32")
    args = p.parse_args()
    w = world()
    rng = np.random.default_rng(0)
    vae = build_model(args.model, rng=rng, dtype=np.dtype(args.dtype))
    optimizer, objective = Adam(vae.params, lr=1e-4), make_objective("elbo")
    B = args.batch_size
    x = rng.random((B, *vae.image_shape)).astype(vae.dtype)
    eps = objective.noise(rng, B, vae.latent, vae.dtype)
    mine = w.share(B)
    times = []
    for _ in range(args.steps + 20):  # the first 20 warm up (compilation, caches)
        t0 = time.perf_counter()
        terms, _, grads = objective.loss_and_grads(vae, x[mine.rows], eps[mine.rows], share=mine)
        t1 = time.perf_counter()
        sum_over_ranks(w, grads, terms, False)
        t2 = time.perf_counter()
        optimizer.step(grads)
        t3 = time.perf_counter()
        times.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
    compute, reduce, adam, step = (1e3 * np.median(column) for column in np.array(times[20:]).T)
    n = sum(p.size for p in vae.params.values())
    if w.rank == 0:
        print(json.dumps({"model": args.model, "ranks": w.size, "threads": os.environ.get("NUMBA_NUM_THREADS"),
                          "batch": B, "dtype": args.dtype, "parameters": n, "gradient_bytes": n * vae.dtype.itemsize,
                          "compute_ms": round(compute, 3), "sum_ms": round(reduce, 3), "adam_ms": round(adam, 3),
                          "step_ms": round(step, 3), "images_per_s": round(B / step * 1e3)}))


if __name__ == "__main__":
    main()
