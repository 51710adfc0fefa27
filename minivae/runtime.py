"""Process tuning for training speed: one explicit call, `configure()`, made by the `minivae` command and benchmarks/.

`import minivae` changes nothing in the process. A program that trains with minivae and wants its measured speed
calls, before anything imports numpy:

    import minivae.runtime
    minivae.runtime.configure()

What it does (each only where the user has not set the variable; docs/performance.md has the measurements):
- OPENBLAS_THREAD_TIMEOUT=16: OpenBLAS's idle threads spin ~25 µs instead of ~0.1 s after a matrix product, long
  enough to bridge the short gaps in a dense stack, short enough to leave the core to the Numba kernel or conv worker
  that runs next. OpenBLAS reads it when numpy loads it, so it only takes effect if numpy is not loaded yet.
- OPENBLAS_CORETYPE=Haswell on AMD Zen 4 (family 25 with AVX-512): Zen 4 runs AVX-512 on 256-bit units and
  OpenBLAS's AVX2 kernels ran our GEMMs faster there. Read when numpy loads OpenBLAS, like the timeout.
- Numba's threading layer: OpenMP with *sleeping* threads (OMP_WAIT_POLICY=passive, set only while Numba starts its
  thread pool, then restored), because spinning OpenMP threads and OpenBLAS's threads take each other's cores; the
  "workqueue" layer instead when another library (PyTorch) already brought its own OpenMP runtime into the process,
  whose threads spin. Starts Numba's thread pool.
A user's own OPENBLAS_THREAD_TIMEOUT, OPENBLAS_CORETYPE, NUMBA_THREADING_LAYER(_PRIORITY) or OMP_WAIT_POLICY wins.
"""
import ctypes
import os
import sys

OPENBLAS_THREAD_TIMEOUT = "16"  # 2^16 cycles


def cpu_fields(cpuinfo="/proc/cpuinfo"):
    """The first CPU's fields in /proc/cpuinfo, e.g. {"vendor_id": ..., "cpu family": "6", "model": "207",
    "model name": ...} ({} where there is none)."""
    try:
        with open(cpuinfo) as f:
            info = f.read(1 << 16)
    except OSError:
        return {}
    cpu0 = (line.split(":", 1) for line in info.split("\n\n")[0].splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in cpu0}


def amd_zen4(cpuinfo="/proc/cpuinfo"):
    """True on an AMD family-25 CPU with AVX-512 (Zen 4), read from /proc/cpuinfo (False where there is none)."""
    fields = cpu_fields(cpuinfo)
    return (fields.get("vendor_id") == "AuthenticAMD" and fields.get("cpu family") == "25"
            and "avx512f" in fields.get("flags", "").split())


def configure():
    """Tune this process for minivae's training speed (module docstring); call it once, early. Returns a dict of
    what was decided: {"numpy_was_loaded", "OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_CORETYPE", "threading_layer"}."""
    numpy_was_loaded = "numpy" in sys.modules  # then OpenBLAS has read its environment already
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_THREAD_TIMEOUT)
    if amd_zen4():
        os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
    import numba  # imports numpy: after the OpenBLAS variables
    # An OpenMP runtime already in the process's global namespace (`import torch` first) would be the one Numba
    # binds to, with spinning threads: then the workqueue layer. CDLL(None) is POSIX only.
    foreign_openmp = os.name == "posix" and hasattr(ctypes.CDLL(None), "GOMP_parallel")
    priority = os.environ.get("NUMBA_THREADING_LAYER_PRIORITY",
                              "workqueue omp tbb" if foreign_openmp else "omp tbb workqueue")
    numba.config.THREADING_LAYER_PRIORITY = priority.split()  # numba.config, not os.environ: children decide anew
    user_wait_policy = os.environ.get("OMP_WAIT_POLICY")
    os.environ["OMP_WAIT_POLICY"] = user_wait_policy or "passive"
    try:
        numba.get_num_threads()  # starts the thread pool (and the OpenMP runtime, which reads the policy once)
    finally:
        if user_wait_policy is None:
            del os.environ["OMP_WAIT_POLICY"]
    return {"numpy_was_loaded": numpy_was_loaded, "OPENBLAS_THREAD_TIMEOUT": os.environ["OPENBLAS_THREAD_TIMEOUT"],
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "threading_layer": numba.threading_layer()}
