"""Numba's compile time on a cold and on a warm start: what the first training step costs before the steady state.

    python benchmarks/compile_time.py [--models mlp,conv28,conv64] [--threads 2]

Every hot loop of minivae is a Numba kernel compiled with `cache=True`: the first process compiles it to machine code
and writes the result to Numba's cache (by default __pycache__ beside the source; here a fresh NUMBA_CACHE_DIR), and
later processes load it from there. For each model this runs three fresh Python processes on one new, empty cache
directory: the first is the cold start (everything compiled), the next two are warm starts (everything loaded). Each
process reports
    import    seconds to minivae.runtime.configure() (starts Numba's thread pool) and importing numpy,
    1st step  seconds of the first train step (forward, backward, Adam) on a batch of the model's benchmark size,
    steady    the median of the next 10 steps,
and the compile (or cache-load) overhead is 1st step − steady. Kernels of other likelihoods and of the data sets are
not touched here: they compile when first used, as these do.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = {"mlp": 128, "conv28": 128, "conv64": 64}

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import minivae.runtime
minivae.runtime.configure()
import numpy as np
t_import = time.perf_counter() - t0
from minivae.models import build_model
from minivae.optim import Adam
model, B = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
vae = build_model(model, rng=rng)
opt = Adam(vae.params)
x = rng.random((B, *vae.image_shape), dtype=np.float32)
eps = rng.standard_normal((B, vae.latent), dtype=np.float32)
def step():
    t = time.perf_counter()
    vae.forward(x, eps)
    opt.step(vae.backward())
    return time.perf_counter() - t
first = step()
steady = float(np.median([step() for _ in range(10)]))
print(json.dumps({"import_s": t_import, "first_step_s": first, "steady_step_s": steady}))
"""


def run(model, cache_dir, threads):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=ROOT)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    out = subprocess.run([sys.executable, "-c", CHILD, model, str(BATCH[model])], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="mlp,conv28,conv64")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    print(f"{'model':8s} {'start':6s} {'import s':>9s} {'1st step s':>11s} {'steady ms':>10s} {'overhead s':>11s}")
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as cache:
            for start in ("cold", "warm", "warm"):
                r = run(model, cache, args.threads)
                print(f"{model:8s} {start:6s} {r['import_s']:9.2f} {r['first_step_s']:11.2f} "
                      f"{1e3 * r['steady_step_s']:10.1f} {r['first_step_s'] - r['steady_step_s']:11.2f}", flush=True)


if __name__ == "__main__":
    main()
