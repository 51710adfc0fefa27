"""minivae/__init__.py's choice of Numba threading layer, checked in fresh interpreters (it happens at import)."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def fresh(code):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_THREADING", "OMP_WAIT", "OPENBLAS_THREAD"))}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_openmp_layer_with_sleeping_threads_and_the_environment_restored():
    layer, policy, timeout = fresh("import os, minivae, numba; print(numba.threading_layer(), "
                                   "os.environ.get('OMP_WAIT_POLICY', 'unset'), os.environ['OPENBLAS_THREAD_TIMEOUT'])")
    assert timeout == "16", f"OPENBLAS_THREAD_TIMEOUT={timeout}"
    if layer != "omp":
        pytest.skip(f"Numba's OpenMP layer is not available here (got {layer})")
    assert policy == "unset", f"minivae left OMP_WAIT_POLICY={policy} in the environment"


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed (pip install -e .[bench])")
def test_workqueue_layer_when_torch_brought_its_openmp_runtime_first():
    (layer,) = fresh("import torch, minivae, numba; print(numba.threading_layer())")
    assert layer == "workqueue", f"threading layer {layer} beside torch's spinning OpenMP runtime"


CPUINFO = "processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nflags\t\t: fpu sse2 avx2 fma {extra}\n\n" \
          "processor\t: 1\nvendor_id\t: {vendor}\n"


@pytest.mark.parametrize("vendor, family, extra, zen4", [
    ("AuthenticAMD", 25, "avx512f avx512bw", True),    # Zen 4
    ("AuthenticAMD", 25, "", False),                   # Zen 3: no AVX-512, OpenBLAS picks AVX2 kernels itself
    ("AuthenticAMD", 26, "avx512f", False),            # Zen 5: full-width AVX-512, not measured
    ("GenuineIntel", 6, "avx512f", False),             # Skylake-X and later: real 512-bit units
])
def test_zen4_detection_from_cpuinfo(tmp_path, vendor, family, extra, zen4):
    import minivae
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(vendor=vendor, family=family, extra=extra))
    assert minivae._amd_zen4(str(path)) is zen4, f"{vendor} family {family} flags {extra!r}"
    assert minivae._amd_zen4(str(tmp_path / "missing")) is False


def test_openblas_coretype_of_the_user_wins():
    (coretype,) = fresh("import os; os.environ['OPENBLAS_CORETYPE'] = 'SkylakeX'; import minivae; "
                        "print(os.environ['OPENBLAS_CORETYPE'])")
    assert coretype == "SkylakeX"
