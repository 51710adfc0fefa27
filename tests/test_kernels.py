"""Tier 2: every Numba kernel of the core against its NumPy reference, shapes and values from hypothesis."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minivae.activations import (ACTIVATIONS, activation_code, bias_act_backward, bias_act_backward_kernel,
                                 bias_act_forward, bias_act_forward_kernel, bias_grad)
from minivae.gaussian import (gaussian_kl, gaussian_kl_backward, reparameterize, reparameterize_backward,
                              sample_kl_backward_kernel, sample_kl_kernel)
from minivae.likelihoods.bernoulli import Bernoulli, bernoulli_log_prob, bernoulli_log_prob_backward
from minivae.optim import adam_kernel, adam_update

TOL = {np.float64: 1e-12, np.float32: 1e-5}
dims = st.integers(1, 7)
dtypes = st.sampled_from([np.float64, np.float32])


def assert_close(name, got, want, dtype):
    tol = TOL[dtype]
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    i = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
    assert err.size == 0 or err[i] <= tol, f"{name}[{i}]: kernel {got[i]!r} vs reference {want[i]!r} ({err[i]:.2e})"


@settings(max_examples=60, deadline=None)
@given(N=dims, C=dims, S=dims, act=st.sampled_from(ACTIVATIONS), dtype=dtypes, seed=st.integers(0, 2**31),
       scale=st.sampled_from([0.1, 3.0, 40.0]))
def test_bias_act_kernels(N, C, S, act, dtype, seed, scale):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((N, S, C)) * scale).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    y = z.copy()
    bias_act_forward_kernel(y, b, activation_code(act))
    assert_close(f"{act} forward y", y, bias_act_forward(z, b, act), dtype)
    dy = rng.standard_normal((N, S, C)).astype(dtype)
    dz_ref, db_ref = bias_act_backward(dy, y, act)
    bias_act_backward_kernel(dy, y, activation_code(act))
    assert_close(f"{act} backward dz", dy, dz_ref, dtype)
    assert_close(f"{act} backward db", bias_grad(dy), db_ref, dtype)
    assert_close(f"{act} backward db, strided", bias_grad(dy.transpose(1, 0, 2)), db_ref, dtype)


@settings(max_examples=60, deadline=None)
@given(B=dims, Z=dims, dtype=dtypes, seed=st.integers(0, 2**31))
def test_sample_kl_kernels(B, Z, dtype, seed):
    rng = np.random.default_rng(seed)
    mu, logvar, eps = (rng.standard_normal((B, Z)).astype(dtype) * 3 for _ in range(3))
    z, kl = np.empty_like(mu), np.empty(B, dtype)
    em = np.expm1(0.5 * logvar)
    sample_kl_kernel(mu, logvar, eps, em, z, kl)
    assert_close("z", z, reparameterize(mu, logvar, eps), dtype)
    assert_close("kl", kl, gaussian_kl(mu, logvar), dtype)
    dz, dkl = rng.standard_normal((B, Z)).astype(dtype), rng.standard_normal(B).astype(dtype)
    dmu, dlogvar = np.empty_like(mu), np.empty_like(mu)
    sample_kl_backward_kernel(dz, dkl, mu, em, eps, dmu, dlogvar)
    dmu_s, dlv_s = reparameterize_backward(dz, logvar, eps)
    dmu_k, dlv_k = gaussian_kl_backward(dkl, mu, logvar)
    assert_close("dmu", dmu, dmu_s + dmu_k, dtype)
    assert_close("dlogvar", dlogvar, dlv_s + dlv_k, dtype)


@settings(max_examples=60, deadline=None)
@given(B=dims, D=st.integers(1, 300), dtype=dtypes, seed=st.integers(0, 2**31),
       scale=st.sampled_from([0.5, 5.0, 40.0]))
def test_bernoulli_kernel(B, D, dtype, seed, scale):
    """Rows up to 300 values, so that the vectorized body of the loop runs (16 float32 lanes, unrolled), not only
    its scalar remainder."""
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((B, D)) * scale).astype(dtype)
    x = rng.random((B, D)).astype(dtype)
    nll, grad = Bernoulli().nll_and_grad(logits, x, 0.25)
    assert_close("nll", nll, -bernoulli_log_prob(logits, x), dtype)
    assert_close("dlogits", grad, -0.25 * bernoulli_log_prob_backward(logits, x), dtype)


def test_bernoulli_extreme_logits_are_finite():
    """A logit of ±100 in float32: the softplus form stays finite where log(sigmoid) would give -inf."""
    logits = np.array([[-100.0, 100.0, 0.0]], dtype=np.float32)
    x = np.array([[1.0, 0.0, 0.5]], dtype=np.float32)
    nll, grad = Bernoulli().nll_and_grad(logits, x, 1.0)
    assert np.isfinite(nll).all() and np.isfinite(grad).all()
    assert abs(nll[0] - (100 + 100 + np.log(2))) < 1e-3, f"nll {nll[0]} != 200 + log 2"


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), t=st.integers(1, 50), dtype=dtypes, seed=st.integers(0, 2**31))
def test_adam_kernel(n, t, dtype, seed):
    rng = np.random.default_rng(seed)
    theta, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    m, v = rng.standard_normal(n).astype(dtype) * 0.1, rng.random(n).astype(dtype) * 0.1
    ref = [a.copy() for a in (theta, m, v)]
    adam_update(ref[0], g, ref[1], ref[2], t, 1e-3, 0.9, 0.999, 1e-8)
    f = theta.dtype.type
    adam_kernel(theta, g, m, v, f(1e-3 / (1 - 0.9 ** t)), f(0.9), f(0.999), f(1 / np.sqrt(1 - 0.999 ** t)), f(1e-8))
    for name, got, want in zip(("theta", "m", "v"), (theta, m, v), ref):
        assert_close(name, got, want, dtype)
