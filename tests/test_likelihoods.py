"""Output distributions (issue 5): gradients, kernel vs reference, normalization, data support, pictures.

Tiers (STYLE.md §6): finite differences of log_prob at each likelihood's typical and hard points; each Numba
nll_and_grad kernel against its NumPy twin on hypothesis-generated shapes and values; plus the properties that make
a likelihood a distribution: discrete masses sum to 1 over their support, densities integrate to 1.
"""
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minivae.errors import MinivaeError
from minivae.gradchecks import TOLERANCE, check_function, layer_checks, max_rel_error, numerical_gradient
from minivae.likelihoods import LIKELIHOODS, bits_per_dim, get_likelihood
from minivae.likelihoods.continuous_bernoulli import TAYLOR_BELOW, log_normalizer, log_normalizer_grad
from minivae.likelihoods.normal import BIN_VARIANCE

NAMES = list(LIKELIHOODS)
EXPECTED = {  # name: (outputs per value, discrete)
    "bernoulli": (1, True), "categorical": (256, True), "normal-fixed": (1, False), "normal": (2, False),
    "continuous-bernoulli": (1, False), "discretized-logistic": (15, True)}
FAST = settings(max_examples=25, deadline=None)


def random_out(lik, rng, B, D, spread=1.0):
    """Plausible network outputs for `lik` with B examples of D values: (B, k·D) float64."""
    if lik.name == "normal":
        mu = rng.uniform(-0.2, 1.2, (B, D))
        s = math.log(BIN_VARIANCE) + rng.uniform(-3, 12, (B, D))  # from below the floor to σ² ≈ 0.2
        return np.concatenate([mu, s], 1)
    if lik.name == "discretized-logistic":
        K = lik.components
        logits = spread * rng.standard_normal((B, K, D))
        mu = rng.uniform(-0.3, 1.3, (B, K, D))
        s = rng.uniform(-9, 3, (B, K, D))
        return np.concatenate([logits, mu, s], 1).reshape(B, 3 * K * D)
    if lik.name == "normal-fixed":
        return rng.uniform(-0.5, 1.5, (B, D))
    return spread * rng.standard_normal((B, lik.outputs_per_value * D))


def random_data(lik, rng, B, D):
    x = lik.from_uint8(rng.integers(0, 256, size=(B, D)), dtype=np.float64)
    if lik.name == "bernoulli":
        x[::2] = np.round(x[::2])  # binarized and grayscale rows
    return x


# ---------------------------------------------------------------- registry and interface

def test_registry_has_every_likelihood_with_its_outputs_per_value():
    assert set(LIKELIHOODS) == set(EXPECTED)
    for name, (k, discrete) in EXPECTED.items():
        lik = get_likelihood(name)
        assert (lik.name, lik.outputs_per_value, lik.discrete) == (name, k, discrete)
        assert get_likelihood(name, **lik.options()).options() == lik.options()  # what a checkpoint needs


def test_hyperparameters_are_constructor_options():
    assert get_likelihood("normal-fixed", variance=0.5).variance == 0.5
    assert get_likelihood("normal", variance_floor=1e-3).variance_floor == 1e-3
    assert get_likelihood("discretized-logistic", components=10).outputs_per_value == 30
    for name, options in [("normal-fixed", {"variance": -1.0}), ("normal", {"variance_floor": 0.0}),
                          ("discretized-logistic", {"components": 0}), ("categorical", {"variance": 1.0}),
                          ("nope", {})]:
        with pytest.raises(MinivaeError):
            get_likelihood(name, **options)


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    np.testing.assert_allclose(bits_per_dim(np.array([0.0, 2 * math.log(2)]), 2), [0.0, 1.0])


# ---------------------------------------------------------------- tier 1: finite differences

@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences_at_typical_and_hard_points(name, seed):
    lik = get_likelihood(name)
    for label, (out, x) in lik.gradcheck_points(np.random.default_rng(seed)).items():
        w = np.random.default_rng(seed + 100).standard_normal(out.shape[0])
        analytic = w[:, None] * lik.log_prob_backward(out, x)
        numeric = numerical_gradient(lambda: w * lik.log_prob(out, x), out)
        err, index = max_rel_error(analytic, numeric)
        assert err <= TOLERANCE, (f"{name} {label}: ∂/∂out{index} analytic {analytic[index]:.12g} "
                                  f"numeric {numeric[index]:.12g}, relative error {err:.2e}")


def test_gradcheck_command_covers_every_likelihood_and_hard_region():
    results = dict(layer_checks())
    for name in NAMES:
        labels = [k for k in results if k.startswith(f"likelihood {name} ")]
        assert len(labels) >= 2, f"{name}: {labels}"
        assert all(results[k] <= TOLERANCE for k in labels), {k: results[k] for k in labels}
    for region in ("logits ±30", "λ near ½", "variance at its floor", "x at 0 and 255"):
        assert any(region in k for k in results), region


def discretized_logistic_log_prob_mp(logits, mu, s, i):
    """The textbook formula at 40 digits, no stability tricks: log Σ_k w_k (σ(upper) − σ(lower)) of one value."""
    def sig(y):
        return 1 / (1 + mpmath.exp(-y))
    delta = mpmath.mpf(1) / 510
    x = mpmath.mpf(i) / 255
    w = [mpmath.exp(v) for v in logits]
    total = 0
    for wk, m, sk in zip(w, mu, s):
        upper = 1 if i == 255 else sig((x + delta - m) / mpmath.exp(sk))
        lower = 0 if i == 0 else sig((x - delta - m) / mpmath.exp(sk))
        total += wk / sum(w) * (upper - lower)
    return mpmath.log(total)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_discretized_logistic_gradient_with_sharp_scales(seed):
    """Scales (≈ 1.2e-3, just above the bound e^{−7}) below the bin half-width δ ≈ 2e-3, with each mean within two
    scales of one of its bin's edges (where the mass depends on μ and s at all). A step of 1e-3 would move μ by a
    scale, so the reference is the exact derivative: the textbook formula at 40 digits, differentiated by mpmath."""
    lik = get_likelihood("discretized-logistic", components=3)
    rng = np.random.default_rng(seed)
    levels = [0, 1, 128, 254, 255]
    x = np.array([levels]) / 255.0
    s = np.full((1, 3, 5), -6.7) + rng.uniform(-0.25, 0.25, (1, 3, 5))
    edge = np.where(x == 0, 1.0, np.where(x == 1, -1.0, rng.choice([-1.0, 1.0], (1, 3, 5))))
    mu = x[:, None, :] + edge * (0.5 / 255 + np.exp(s) * rng.uniform(-2, 2, (1, 3, 5)))
    params = np.concatenate([rng.standard_normal((1, 3, 5)), mu, s], 1)  # (1, 3M, D)
    analytic = lik.log_prob_backward(params.reshape(1, 45), x).reshape(3, 3, 5)
    mpmath.mp.dps = 40
    for d, level in enumerate(levels):
        p = [mpmath.mpf(float(v)) for v in params[0, :, d]]
        for j in range(9):
            def f(v, j=j):
                q = list(p)
                q[j] = v
                return discretized_logistic_log_prob_mp(q[0:3], q[3:6], q[6:9], level)
            exact = float(mpmath.diff(f, p[j]))
            err = abs(analytic[j // 3, j % 3, d] - exact) / max(1e-8, abs(analytic[j // 3, j % 3, d]) + abs(exact))
            assert err <= TOLERANCE, f"level {level}, parameter {j}: {analytic[j // 3, j % 3, d]} vs {exact}"
    assert lik.log_prob(params.reshape(1, 45), x)[0] == pytest.approx(
        float(sum(discretized_logistic_log_prob_mp(*(list(map(mpmath.mpf, params[0, 3 * t:3 * t + 3, d]))
                                                      for t in range(3)), level) for d, level in enumerate(levels))),
        rel=1e-12)


def test_discretized_logistic_log_scale_is_bounded_below():
    """Below S_MIN = −7 the log-scale output changes nothing: the value is that at S_MIN and its derivative is 0."""
    from minivae.likelihoods.discretized_logistic import S_MIN
    lik = get_likelihood("discretized-logistic", components=2)
    rng = np.random.default_rng(0)
    x = np.array([[0, 1, 128, 254, 255]]) / 255.0
    params = np.concatenate([rng.standard_normal((1, 2, 5)), x[:, None, :] + 0.01 * rng.standard_normal((1, 2, 5)),
                             np.array([[[-30.0] * 5, [-2.0] * 5]])], 1)
    at_bound = params.copy()
    at_bound[:, 4] = S_MIN
    grad = lik.log_prob_backward(params.reshape(1, 30), x).reshape(3, 2, 5)
    assert np.all(grad[2, 0] == 0) and np.all(grad[2, 1] != 0)
    np.testing.assert_array_equal(lik.log_prob(params.reshape(1, 30), x), lik.log_prob(at_bound.reshape(1, 30), x))
    nll, dout = lik.nll_and_grad(params.reshape(1, 30), x, 1.0)
    np.testing.assert_allclose(dout, -grad.reshape(1, 30), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(nll, -lik.log_prob(params.reshape(1, 30), x), rtol=1e-12)


def test_continuous_bernoulli_normalizer_against_mpmath_near_half_and_far():
    """log C(l) = log(l / tanh(l/2)) and its derivative 1/l − 1/sinh(l), at 50 digits, on both sides of the switch."""
    mpmath.mp.dps = 50
    for l in [1e-12, 1e-6, 1e-3, 0.05, TAYLOR_BELOW * (1 - 1e-9), TAYLOR_BELOW, 0.2, 1.0, 7.0, 30.0, 300.0]:
        for v in (l, -l):
            exact = mpmath.log(mpmath.mpf(v) / mpmath.tanh(mpmath.mpf(v) / 2))
            exact_grad = 1 / mpmath.mpf(v) - 1 / mpmath.sinh(mpmath.mpf(v))
            assert abs(log_normalizer(np.array(v)) - float(exact)) <= 4e-16 * abs(float(exact)), v
            # The closed form 1/l − 1/sinh(l) cancels just above the switch (10 − 9.98 at l = 0.1): an absolute
            # error of ~1e-15 there, small against the rest of the gradient, x − σ(l), of order 1.
            assert abs(log_normalizer_grad(np.array(v)) - float(exact_grad)) <= 1e-15 * abs(float(exact_grad)) + \
                2e-15, v
    assert log_normalizer(np.array(0.0)) == math.log(2)  # C(½) = 2
    assert log_normalizer_grad(np.array(0.0)) == 0.0


# ---------------------------------------------------------------- tier 2: kernel vs NumPy reference

@FAST
@given(name=st.sampled_from(NAMES), B=st.integers(1, 4), D=st.integers(1, 6), seed=st.integers(0, 2**32 - 1),
       spread=st.sampled_from([0.1, 1.0, 10.0, 40.0]), scale=st.floats(1e-3, 2.0))
def test_kernel_matches_reference_float64(name, B, D, seed, spread, scale):
    lik = get_likelihood(name)
    rng = np.random.default_rng(seed)
    out, x = random_out(lik, rng, B, D, spread), random_data(lik, rng, B, D)
    nll, dout = lik.nll_and_grad(out, x, scale)
    ref, dref = -lik.log_prob(out, x), -scale * lik.log_prob_backward(out, x)
    assert nll.shape == (B,) and dout.shape == out.shape and nll.dtype == dout.dtype == np.float64
    np.testing.assert_allclose(nll, ref, rtol=1e-12, atol=1e-12 * D, err_msg=f"{name} nll")
    np.testing.assert_allclose(dout, dref, rtol=1e-12, atol=1e-13 * scale, err_msg=f"{name} gradient")


@FAST
@given(name=st.sampled_from(NAMES), B=st.integers(1, 4), D=st.integers(1, 6), seed=st.integers(0, 2**32 - 1),
       spread=st.sampled_from([0.1, 1.0, 10.0]))
def test_kernel_matches_reference_float32(name, B, D, seed, spread):
    """float32 in and out; the reference sees the same float32 inputs (in float64), so only float32 rounding of the
    kernel's arithmetic and of its stored results separates them."""
    lik = get_likelihood(name)
    rng = np.random.default_rng(seed)
    out, x = random_out(lik, rng, B, D, spread).astype(np.float32), random_data(lik, rng, B, D).astype(np.float32)
    nll, dout = lik.nll_and_grad(out, x, np.float32(0.5))
    assert nll.dtype == dout.dtype == np.float32
    out64, x64 = out.astype(np.float64), x.astype(np.float64)
    ref, dref = -lik.log_prob(out64, x64), -0.5 * lik.log_prob_backward(out64, x64)
    eps = np.finfo(np.float32).eps
    np.testing.assert_allclose(nll, ref, rtol=8 * eps, atol=8 * eps * D, err_msg=f"{name} nll")
    np.testing.assert_allclose(dout, dref, rtol=8 * eps, atol=8 * eps * np.max(np.abs(dref)), err_msg=name)


# ---------------------------------------------------------------- normalization

def all_levels(D=1):
    """Every 8-bit level as data: (256, D) rows i/255."""
    return np.repeat(np.arange(256)[:, None], D, 1) / 255.0


@FAST
@given(seed=st.integers(0, 2**32 - 1), spread=st.sampled_from([0.1, 1.0, 10.0, 40.0]))
def test_categorical_masses_sum_to_one(seed, spread):
    lik = get_likelihood("categorical")
    out = spread * np.random.default_rng(seed).standard_normal((1, 256))
    total = math.fsum(np.exp(lik.log_prob(np.repeat(out, 256, 0), all_levels())))
    assert abs(total - 1) < 1e-12


@FAST
@given(seed=st.integers(0, 2**32 - 1), K=st.integers(1, 6), log_scale=st.floats(-10, 4),
       center=st.floats(-0.5, 1.5))
def test_discretized_logistic_masses_sum_to_one(seed, K, log_scale, center):
    """Including scales far below a bin (mass in one level) and far above (mass in the end bins 0 and 255)."""
    lik = get_likelihood("discretized-logistic", components=K)
    rng = np.random.default_rng(seed)
    out = np.concatenate([3 * rng.standard_normal(K), center + 0.2 * rng.standard_normal(K),
                          log_scale + rng.standard_normal(K)])[None, :]
    log_p = lik.log_prob(np.repeat(out, 256, 0), all_levels())
    assert np.all(np.isfinite(log_p)) and np.all(log_p <= 1e-12)
    assert abs(math.fsum(np.exp(log_p)) - 1) < 1e-12


@FAST
@given(logit=st.floats(-30, 30))
def test_bernoulli_masses_sum_to_one_on_binary_data(logit):
    lik = get_likelihood("bernoulli")
    out = np.full((2, 1), logit)
    assert abs(math.fsum(np.exp(lik.log_prob(out, np.array([[0.0], [1.0]])))) - 1) < 1e-14


GAUSS_X, GAUSS_W = np.polynomial.legendre.leggauss(400)


def integrate(f, lo, hi):
    """∫_lo^hi f by 400-point Gauss–Legendre (exact for polynomials of degree < 800)."""
    x = 0.5 * (hi - lo) * GAUSS_X + 0.5 * (hi + lo)
    return 0.5 * (hi - lo) * np.sum(GAUSS_W * f(x))


@FAST
@given(logit=st.one_of(st.floats(-40, 40), st.floats(-1e-3, 1e-3)))
def test_continuous_bernoulli_integrates_to_one_and_mean_is_its_first_moment(logit):
    lik = get_likelihood("continuous-bernoulli")

    def density(x):
        return np.exp(lik.log_prob(np.full((x.size, 1), logit), x[:, None]))

    # The density is ∝ e^{l·x}: split [0, 1] so each piece sees at most a few e-foldings.
    edges = np.linspace(0, 1, 2 + int(abs(logit)))
    assert abs(sum(integrate(density, a, b) for a, b in zip(edges, edges[1:])) - 1) < 1e-10
    first = sum(integrate(lambda x: x * density(x), a, b) for a, b in zip(edges, edges[1:]))
    assert abs(lik.mean(np.array([[logit]]))[0, 0] - first) < 1e-10


@FAST
@given(mu=st.floats(-0.5, 1.5), s=st.floats(math.log(BIN_VARIANCE) - 10, 3), variance=st.floats(1e-6, 4))
def test_normals_integrate_to_one(mu, s, variance):
    for lik, out, var in [(get_likelihood("normal"), np.array([[mu, s]]), BIN_VARIANCE + math.exp(s)),
                          (get_likelihood("normal-fixed", variance=variance), np.array([[mu]]), variance)]:
        sd = math.sqrt(var)
        total = integrate(lambda x: np.exp(lik.log_prob(np.repeat(out, x.size, 0), x[:, None])),
                          mu - 12 * sd, mu + 12 * sd)
        assert abs(total - 1) < 1e-10, lik.name


def test_normal_fixed_is_a_scaled_squared_error():
    """−log p = Σ(x − μ)²/(2σ²) + (D/2) log(2πσ²), the docstring's equivalence."""
    lik = get_likelihood("normal-fixed", variance=0.3)
    rng = np.random.default_rng(0)
    mu, x = rng.standard_normal((4, 7)), rng.random((4, 7))
    expected = np.sum((x - mu) ** 2, 1) / (2 * 0.3) + 3.5 * math.log(2 * math.pi * 0.3)
    np.testing.assert_allclose(-lik.log_prob(mu, x), expected, rtol=1e-14)


def test_normal_density_is_bounded_by_its_variance_floor():
    """Even with s → −∞ and μ = x, a value contributes at most −½ log(2πσ²_min): the likelihood stays bounded."""
    lik = get_likelihood("normal")
    x = np.array([[0.5, 0.0]])
    log_p = lik.log_prob(np.array([[0.5, 0.0, -1e3, -1e3]]), x)
    assert log_p[0] == pytest.approx(-math.log(2 * math.pi * BIN_VARIANCE), rel=1e-12)
    nll, dout = lik.nll_and_grad(np.array([[0.5, 0.0, -1e3, -1e3]]), x, 1.0)
    assert np.all(np.isfinite(dout)) and np.all(dout[:, 2:] == 0)


# ---------------------------------------------------------------- data support

@pytest.mark.parametrize("name", NAMES)
def test_from_uint8_data_passes_and_wrong_data_is_a_clear_error(name):
    lik = get_likelihood(name)
    images = np.array([[0, 1, 127, 254, 255]], dtype=np.uint8)
    for dtype in (np.float32, np.float64):
        x = lik.from_uint8(images, dtype=dtype)
        assert x.dtype == dtype and x.min() == 0 and x.max() == 1
        lik.check_data(x)
    wrong = {"raw 0..255": (images.astype(np.float32), "[0, 1]"),
             "integers": (images, "floating-point"),
             "NaN": (np.array([[0.5, np.nan]]), "NaN"),
             "negative": (np.array([[-0.1, 0.5]]), "[0, 1]")}
    if name in ("categorical", "discretized-logistic"):
        wrong["dequantized"] = (np.array([[0.5, 0.5004]]), "off the grid")
    for label, (x, message) in wrong.items():
        with pytest.raises(MinivaeError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
            lik.check_data(x)
        assert "\n" not in str(info.value) and name in str(info.value), label
    for bad in (np.array([[0.5]]), np.array([[-1, 3]], dtype=np.int16), np.array([[300]])):
        with pytest.raises(MinivaeError, match="from_uint8"):
            lik.from_uint8(bad)


# ---------------------------------------------------------------- pictures: mean, mode, sample, to_unit

@pytest.mark.parametrize("name", NAMES)
def test_samples_follow_the_mean_and_stay_in_the_support(name):
    lik = get_likelihood(name)
    rng = np.random.default_rng(0)
    out = random_out(lik, rng, 1, 4)
    if name == "normal":
        out[:, 4:] = math.log(0.01)  # a visible variance
    draws = np.concatenate([lik.sample(out, rng) for _ in range(4000)])
    assert draws.shape == (4000, 4) and draws.dtype == out.dtype
    if name not in ("normal", "normal-fixed"):
        lik.check_data(draws)  # in the support: {0, 1}, the 256 levels or [0, 1]
    mean = lik.mean(out)[0]
    assert mean.shape == (4,)
    sd = draws.std(0) + 1e-12
    assert np.all(np.abs(draws.mean(0) - mean) < 5 * sd / math.sqrt(4000) + 1e-9), (draws.mean(0), mean)
    pictures = lik.to_unit(np.concatenate([draws, lik.mean(out)]))
    assert pictures.min() >= 0 and pictures.max() <= 1


def test_categorical_mode_is_the_most_probable_level():
    lik = get_likelihood("categorical")
    out = np.zeros((1, 256 * 2))
    out[0, 17 * 2 + 0] = 5.0
    out[0, 200 * 2 + 1] = 5.0
    np.testing.assert_allclose(lik.mode(out), [[17 / 255, 200 / 255]])
    lik.check_data(lik.mode(out))


def test_discretized_logistic_mean_matches_the_masses():
    lik = get_likelihood("discretized-logistic")
    out = random_out(lik, np.random.default_rng(3), 1, 1)
    masses = np.exp(lik.log_prob(np.repeat(out, 256, 0), all_levels()))
    assert lik.mean(out)[0, 0] == pytest.approx(np.sum(masses * np.arange(256) / 255), abs=1e-12)


def test_discretized_logistic_component_means_kernel_matches_the_reference():
    """The kernel sums only the levels within ±40 scales of μ, by a running product of e^{t}; its means equal the
    255-level NumPy sum to 1e-13, for sharp (s at and below the bound), wide, and far-off components."""
    from minivae.likelihoods.discretized_logistic import component_means, component_means_kernel
    rng = np.random.default_rng(4)
    mu = np.concatenate([rng.uniform(-0.5, 1.5, (3, 2, 300)), np.full((1, 2, 300), 1e30), np.full((1, 2, 300), -1e30)])
    s = rng.uniform(-9.0, 3.0, mu.shape)
    means = np.empty_like(mu)
    component_means_kernel(mu, s, means)
    np.testing.assert_allclose(means, component_means(mu, s), rtol=0, atol=1e-13)
    assert means[3].min() == 1.0 and means[4].max() == 0.0


@pytest.mark.parametrize("model", ["mlp", "burgess"])
def test_discretized_logistic_decoder_starts_near_the_uniform_distribution(model):
    """The decoder's last bias starts at the likelihood's offset (means ½, log-scales −log 2π), so a fresh model
    puts ~5.8 nats on an 8-bit value (uniform: log 256 = 5.55), not the ~6.8 of log-scales at 0."""
    from minivae.data.shapes import make_shapes
    from minivae.models import build_model
    images, _ = make_shapes(16, seed=0)
    vae = build_model(model, rng=np.random.default_rng(0), image_shape=(3, 64, 64), likelihood="discretized-logistic")
    x = vae.likelihood.from_uint8(images, dtype=np.float64).reshape(len(images), -1)
    out = vae.decode(np.zeros((len(images), vae.latent), vae.dtype)).astype(np.float64)
    nats_per_value = -np.mean(vae.likelihood.log_prob(out, x)) / x.shape[1]
    assert math.log(256) < nats_per_value < math.log(256) + 0.3


def test_likelihood_loss_and_gradient_are_finite_in_float32_at_extremes():
    """No silent NaN: huge logits, huge/small scales and variances give finite losses and gradients in float32."""
    for name in NAMES:
        lik = get_likelihood(name)
        x = lik.from_uint8(np.array([[0, 128, 255]] * 2, dtype=np.uint8))
        for value in (-120.0, -80.0, 80.0):
            out = np.full((2, 3 * lik.outputs_per_value), value, dtype=np.float32)
            nll, dout = lik.nll_and_grad(out, x, np.float32(0.5))
            assert np.all(np.isfinite(nll)) and np.all(np.isfinite(dout)), (name, value)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "bernoulli"])  # bernoulli: minivae gradcheck itself
def test_whole_elbo_gradient_with_each_likelihood(name):
    """Every parameter of a small tanh MLP VAE, through the likelihood's fused kernel (float64 finite differences)."""
    from minivae.gradchecks import elbo_check
    small = {"image_shape": (1, 2, 2), "latent": 2, "hidden": (4, 3)} if name == "categorical" else \
        {"image_shape": (1, 4, 3), "latent": 3, "hidden": (6, 5)}
    for label, err in elbo_check("mlp", likelihood=name, activation="tanh", **small):
        assert err <= TOLERANCE, f"{label}: relative error {err:.2e}"


# ---------------------------------------------------------------- tier 3: parity with PyTorch's autograd

def torch_log_prob(name, lik, out, x):
    """The same log p(x|out) written in PyTorch (float64), per example; autograd gives its gradient."""
    import torch
    B, D = x.shape
    if name == "bernoulli":
        return (x * out - torch.nn.functional.softplus(out)).sum(1)
    if name == "continuous-bernoulli":  # PyTorch's own implementation (its normalizer, its Taylor window)
        return torch.distributions.ContinuousBernoulli(logits=out).log_prob(x).sum(1)
    if name == "categorical":
        level = torch.round(x * 255).long()
        return torch.log_softmax(out.reshape(B, 256, D), 1).gather(1, level[:, None, :])[:, 0].sum(1)
    if name == "normal-fixed":
        return torch.distributions.Normal(out, math.sqrt(lik.variance)).log_prob(x).sum(1)
    if name == "normal":
        variance = lik.variance_floor + torch.exp(out[:, D:])
        return torch.distributions.Normal(out[:, :D], variance.sqrt()).log_prob(x).sum(1)
    # discretized logistic, PixelCNN++'s textbook form: log Σ_k w_k (F(upper) − F(lower)), open-ended end bins
    p = out.reshape(B, 3, lik.components, D)
    logits, mu, s = p[:, 0], p[:, 1], p[:, 2]
    xx = x[:, None, :]
    upper = torch.where(xx == 1, torch.ones_like(mu), torch.sigmoid((xx + 1 / 510 - mu) / torch.exp(s)))
    lower = torch.where(xx == 0, torch.zeros_like(mu), torch.sigmoid((xx - 1 / 510 - mu) / torch.exp(s)))
    return torch.logsumexp(torch.log_softmax(logits, 1) + torch.log(upper - lower), 1).sum(1)


@pytest.mark.parametrize("name", NAMES)
def test_log_prob_and_gradient_match_pytorch(name):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: tier-3 parity skipped")
    lik = get_likelihood(name)
    rng = np.random.default_rng(7)
    out, x = random_out(lik, rng, 3, 5), random_data(lik, rng, 3, 5)
    if name == "discretized-logistic":  # moderate scales: the textbook σ(b) − σ(a) is accurate there
        out.reshape(3, 3, lik.components, 5)[:, 2] = rng.uniform(-4, 0, (3, lik.components, 5))
    out_t = torch.tensor(out, dtype=torch.float64, requires_grad=True)
    log_p = torch_log_prob(name, lik, out_t, torch.tensor(x, dtype=torch.float64))
    log_p.sum().backward()
    np.testing.assert_allclose(lik.log_prob(out, x), log_p.detach().numpy(), rtol=1e-10, err_msg=f"{name} log p")
    # atol 1e-10: PyTorch's textbook σ(b) − σ(a) cancels and loses ~5 digits on bins in a tail (gradients ~1e-4
    # there); the mpmath test above shows minivae's log σ(b) + log σ(−a) + log(1 − e^{−t}) form exact to 1e-14.
    np.testing.assert_allclose(lik.log_prob_backward(out, x), out_t.grad.numpy(), rtol=1e-9, atol=1e-10,
                               err_msg=f"{name} gradient")
