"""Importing minivae changes nothing; minivae.runtime.configure() tunes the process. Checked in fresh interpreters."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minivae.runtime import amd_zen4

ROOT = Path(__file__).resolve().parents[1]
TUNED = ("NUMBA_THREADING", "OMP_WAIT", "OPENBLAS_THREAD", "OPENBLAS_CORETYPE")


def fresh(code, **env_vars):
    env = {k: v for k, v in os.environ.items() if not k.startswith(TUNED)}
    env.update(PYTHONPATH=str(ROOT), **env_vars)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


STATE = ("import json, os, numba, numba.np.ufunc.parallel as p; "
         "state = lambda: {'env': dict(os.environ), 'priority': list(numba.config.THREADING_LAYER_PRIORITY), "
         "'pool_started': p._is_initialized}; ")


def test_importing_minivae_changes_nothing():
    """The environment, Numba's threading-layer choice and its (unstarted) thread pool are as before, after the
    package and every module a training step uses are imported and a model is built."""
    before, after = fresh(STATE + "before = state(); import numpy as np, minivae, minivae.models, minivae.objectives; "
                          "minivae.train; minivae.evaluate; minivae.gradcheck; "
                          "minivae.models.build_model('mlp', rng=np.random.default_rng(0)); "
                          "print(json.dumps([before, state()]))")
    assert before["pool_started"] is False and after["pool_started"] is False, "import started Numba's thread pool"
    assert after["priority"] == before["priority"], f"threading layer priority {before['priority']} -> " \
                                                    f"{after['priority']}"
    changed = {k for k in set(before["env"]) | set(after["env"]) if before["env"].get(k) != after["env"].get(k)}
    assert not changed, f"importing minivae changed environment variables {sorted(changed)}"


def test_configure_before_numpy_sets_the_timeout_and_starts_sleeping_openmp_threads():
    result, env = fresh("import json, os, minivae.runtime as r; result = r.configure(); "
                        "import numpy, numba; print(json.dumps([result, dict(os.environ)]))")
    assert result["numpy_was_loaded"] is False
    assert env["OPENBLAS_THREAD_TIMEOUT"] == "16", "OpenBLAS would spin ~0.1 s after each product"
    assert "OMP_WAIT_POLICY" not in env, f"configure left OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']} set"
    if result["threading_layer"] != "omp":
        pytest.skip(f"Numba's OpenMP layer is not available here (got {result['threading_layer']})")


def test_the_users_settings_win():
    result, env = fresh("import json, os, minivae.runtime as r; print(json.dumps([r.configure(), dict(os.environ)]))",
                        OPENBLAS_THREAD_TIMEOUT="4", OPENBLAS_CORETYPE="SkylakeX", OMP_WAIT_POLICY="active",
                        NUMBA_THREADING_LAYER_PRIORITY="workqueue omp tbb")
    assert (env["OPENBLAS_THREAD_TIMEOUT"], env["OPENBLAS_CORETYPE"], env["OMP_WAIT_POLICY"]) == \
           ("4", "SkylakeX", "active")
    assert result["threading_layer"] == "workqueue"


def test_configure_after_numpy_says_openblas_was_loaded():
    (result,) = fresh("import json, numpy, minivae.runtime as r; print(json.dumps([r.configure()]))")
    assert result["numpy_was_loaded"] is True


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed (pip install -e .[bench])")
def test_workqueue_layer_when_torch_brought_its_openmp_runtime_first():
    (result,) = fresh("import json, torch, minivae.runtime as r; print(json.dumps([r.configure()]))")
    assert result["threading_layer"] == "workqueue", f"{result['threading_layer']} beside torch's spinning OpenMP"


CPUINFO = "processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nflags\t\t: fpu sse2 avx2 fma {extra}\n\n" \
          "processor\t: 1\nvendor_id\t: {vendor}\n"


@pytest.mark.parametrize("vendor, family, extra, zen4", [
    ("AuthenticAMD", 25, "avx512f avx512bw", True),    # Zen 4
    ("AuthenticAMD", 25, "", False),                   # Zen 3: no AVX-512, OpenBLAS picks AVX2 kernels itself
    ("AuthenticAMD", 26, "avx512f", False),            # Zen 5: full-width AVX-512, not measured
    ("GenuineIntel", 6, "avx512f", False),             # Skylake-X and later: real 512-bit units
])
def test_zen4_detection_from_cpuinfo(tmp_path, vendor, family, extra, zen4):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(vendor=vendor, family=family, extra=extra))
    assert amd_zen4(str(path)) is zen4, f"{vendor} family {family} flags {extra!r}"
    assert amd_zen4(str(tmp_path / "missing")) is False
