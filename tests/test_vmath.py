"""vmath.py's exp and log1p polynomials against NumPy, in units of the last place (ulp) of the true value.

The truth for float32 is NumPy's float64 result; for float64 it is NumPy's float64 result too (itself within
~0.5 ulp), so the float64 bounds hold one ulp of slack. Every input is run through a Numba loop compiled with the
flags of the kernels that use these functions (fused multiply-adds and reassociation allowed), so what is
tested is what runs.
"""
import numpy as np
import pytest
from numba import njit

from minivae.vmath import exp_nonpositive, log1p_unit

# Measured maxima over these sweeps: 1.01, 1.90 (float32; NumPy's own float32 exp: 2.37 ulp), 2.0, 2.0 (float64).
MAX_ULP = {("exp", np.float32): 1.5, ("exp", np.float64): 2.0,
           ("log1p", np.float32): 2.0, ("log1p", np.float64): 2.0}
SMALLEST_NORMAL_LOG = {np.float32: np.log(np.finfo(np.float32).tiny), np.float64: np.log(np.finfo(np.float64).tiny)}


@njit(error_model="numpy", fastmath={"contract", "reassoc"})
def _exp_all(t, out):
    for i in range(t.size):
        out[i] = exp_nonpositive(t[i])


@njit(error_model="numpy", fastmath={"contract", "reassoc"})
def _log1p_all(e, out):
    for i in range(e.size):
        out[i] = log1p_unit(e[i])


def ulp_error(got, truth, dtype):
    """|got − truth| in units of the spacing of `dtype` floats at the truth; the index of the worst one."""
    spacing = np.spacing(np.abs(truth).astype(dtype)).astype(np.float64)
    err = np.abs(got.astype(np.float64) - truth) / spacing
    i = int(np.argmax(err))
    return err[i], i


def exp_inputs(dtype):
    """t ≤ 0 whose eᵗ is a normal number (below, the result is 0 by design: the last test)."""
    lo = SMALLEST_NORMAL_LOG[dtype]
    t = np.concatenate([np.linspace(lo, 0, 1_000_001), -np.logspace(-40, np.log10(-lo), 200_001),
                        [0.0, -0.0, -1.0, -np.log(2.0), -0.5 * np.log(2.0)]]).astype(dtype)
    return t[np.exp(t.astype(np.float64)) >= np.finfo(dtype).tiny]


def log1p_inputs(dtype):
    tiny = np.finfo(dtype).tiny
    return np.concatenate([np.linspace(0, 1, 1_000_001), np.logspace(np.log10(tiny), 0, 200_001),
                           [0.0, tiny, 1.0, np.sqrt(2.0) - 1]]).astype(dtype)


CASES = {"exp": (_exp_all, exp_inputs, np.exp), "log1p": (_log1p_all, log1p_inputs, np.log1p)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CASES))
def test_within_ulps(name, dtype):
    loop, inputs, reference = CASES[name]
    t = inputs(dtype)
    got = np.empty_like(t)
    loop(t, got)
    truth = reference(t.astype(np.float64))
    err, i = ulp_error(got, truth, dtype)
    assert err <= MAX_ULP[name, dtype], f"{name}({t[i]!r}) = {got[i]!r}, NumPy {truth[i]!r}: {err:.2f} ulp"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_below_the_smallest_normal_is_zero_and_nan_stays_nan(dtype):
    lo = SMALLEST_NORMAL_LOG[dtype]
    just_below = np.nextafter(np.asarray(lo, dtype=dtype), dtype(-np.inf))
    while np.exp(np.float64(just_below)) >= np.finfo(dtype).tiny:
        just_below = np.nextafter(just_below, dtype(-np.inf))
    t = np.array([just_below, lo - 1, -1e4, -np.inf, np.nan], dtype=dtype)
    got = np.empty_like(t)
    _exp_all(t, got)
    assert np.all(got[:-1] == 0), f"exp of {t[:-1]} gave {got[:-1]}, expected 0 (true values below {np.finfo(dtype).tiny})"
    assert np.isnan(got[-1]), f"exp(nan) gave {got[-1]}, expected nan"
