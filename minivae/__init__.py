"""minivae: a variational autoencoder written from scratch in NumPy, every gradient by hand, hot loops in Numba.

Dimension legend used in every docstring:
    B batch · D data values per example · Z latent size · H hidden width · C, H, W image channels/height/width ·
    k network outputs per data value · K importance samples.
Losses are in nats per example (summed over the D values, averaged over the batch) unless a docstring says otherwise.
"""
import ctypes
import os

# OpenBLAS's worker threads busy-wait after each matrix product for the next one, 2^N TSC cycles with N =
# OPENBLAS_THREAD_TIMEOUT (default 28: ~0.1 s), on the core that a Numba kernel or a conv worker needs next: im2col
# right after a GEMM took 0.98 ms instead of 0.52 (conv28's first layer). Asleep, a worker takes longer to wake than
# the gap between two products of a dense stack (a bias+activation pass, 3–17 µs). 2^16 cycles (~25 µs at 2.6 GHz)
# bridges those gaps and ends before the longer work in between: the MLP train step took 3.31 ms instead of 3.55 with
# N = 4 (float64 7.20 instead of 7.92; medians of 4000 steps in alternating blocks), conv28 and conv64 the same.
# OpenBLAS reads this when numpy loads it, so it works when minivae is imported before numpy (the `minivae` command
# is); otherwise put OPENBLAS_THREAD_TIMEOUT=16 in the environment yourself. A user's own setting wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")


def _amd_zen4(cpuinfo="/proc/cpuinfo"):
    """True on an AMD family-25 CPU with AVX-512 (Zen 4), read from /proc/cpuinfo (False where there is none)."""
    try:
        with open(cpuinfo) as f:
            info = f.read(1 << 16)
    except OSError:
        return False
    cpu0 = (line.split(":", 1) for line in info.split("\n\n")[0].splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in cpu0}
    return (fields.get("vendor_id") == "AuthenticAMD" and fields.get("cpu family") == "25"
            and "avx512f" in fields.get("flags", "").split())


# On Zen 4 OpenBLAS picks its AVX-512 ("SkylakeX") kernels, but Zen 4 executes AVX-512 on 256-bit units, and the
# AVX2 ("Haswell") kernels ran our GEMMs faster there: single-threaded, conv64's per-chunk GEMMs at 101–106 GFLOP/s
# instead of 80–100 and a 2048² product at 106 instead of 98 (benchmarks/README.md). Read when numpy loads OpenBLAS,
# like the timeout above; a user's own OPENBLAS_CORETYPE wins.
if _amd_zen4():
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")

import numba  # noqa: E402  (after OPENBLAS_THREAD_TIMEOUT: Numba imports numpy)

# Numba's parallel kernels run on its OpenMP threading layer, and its OpenMP threads *sleep* between kernels
# (OMP_WAIT_POLICY=passive). Measured on this 2-core machine, MLP train step: OpenMP passive 3.6-4.0 ms, Numba's
# "workqueue" layer 4.2-4.5 ms (each of its launches costs ~90 µs, OpenMP's 2-25 µs), OpenMP with its default
# spinning threads 75-150 ms: spinning OpenMP threads and OpenBLAS's threads take each other's cores after every
# kernel. The policy is read once, when the OpenMP runtime (libgomp) starts, so Numba's threads start here with the
# policy set, and the environment is restored afterwards. A library loaded later that links libgomp (PyTorch) shares
# this runtime and its policy.
# If an OpenMP runtime is already in the process's global namespace (`import torch` before minivae puts one there),
# Numba would bind to *that* runtime, whose threads spin: then the workqueue layer is used instead.
# A user's own NUMBA_THREADING_LAYER(_PRIORITY) / OMP_WAIT_POLICY win; without libgomp Numba falls back.
_foreign_openmp = os.name == "posix" and hasattr(ctypes.CDLL(None), "GOMP_parallel")  # CDLL(None) is POSIX
_priority = os.environ.get("NUMBA_THREADING_LAYER_PRIORITY", "workqueue omp tbb" if _foreign_openmp
                           else "omp tbb workqueue")
numba.config.THREADING_LAYER_PRIORITY = _priority.split()  # in numba.config, not os.environ: child processes decide anew
_user_wait_policy = os.environ.get("OMP_WAIT_POLICY")
os.environ["OMP_WAIT_POLICY"] = _user_wait_policy or "passive"
numba.get_num_threads()  # starts the thread pool (and the OpenMP runtime) now
if _user_wait_policy is None:
    del os.environ["OMP_WAIT_POLICY"]

# The Python API, one function per command (same names and options as the CLI):
#     minivae.train(out, dataset=..., epochs=..., resume=...)      minivae train
#     minivae.sample / interpolate / traverse / manifold / reconstruct(checkpoint, out, ...)
#     minivae.evaluate(checkpoint, k=...)                          minivae evaluate
#     minivae.load_checkpoint(path) -> (vae, arrays, meta)         minivae.gradcheck() -> [(check, max rel error)]
# `train`, `evaluate` and `gradcheck` are also module names; the functions win as attributes of the package, so
# reach the modules with `from minivae.train import ...` (or sys.modules["minivae.train"]), not `import ... as`.
from .errors import MinivaeError  # noqa: E402  (after the thread pool)
from .checkpoint import load_checkpoint  # noqa: E402
from .train import train  # noqa: E402
from .explore import interpolate, manifold, reconstruct, sample, traverse  # noqa: E402
from .evaluate import evaluate_checkpoint as evaluate  # noqa: E402
from .gradcheck import run_all as gradcheck  # noqa: E402

__all__ = ["MinivaeError", "evaluate", "gradcheck", "interpolate", "load_checkpoint", "manifold", "reconstruct",
           "sample", "train", "traverse"]
