"""Tier 1: finite differences (float64) for every backward of the core and for the whole ELBO."""
import numpy as np
import pytest

from minivae.gradchecks import TOLERANCE, elbo_check, layer_checks, max_rel_error, numerical_gradient

LAYER_RESULTS = layer_checks(seed=0)


@pytest.mark.parametrize("name,err", LAYER_RESULTS, ids=[n for n, _ in LAYER_RESULTS])
def test_layer_gradient(name, err):
    assert err <= TOLERANCE, f"{name}: max relative error {err:.3e} > {TOLERANCE}"


@pytest.mark.parametrize("activation", ["tanh", "softplus", "sigmoid"])
def test_whole_elbo_gradient_every_parameter(activation):
    results = elbo_check("mlp", seed=1, image_shape=(1, 3, 4), latent=2, hidden=(5, 4), activation=activation)
    assert len(results) == 12  # 3 dense layers in encoder and decoder, W and b each
    for name, err in results:
        assert err <= TOLERANCE, f"{name}: max relative error {err:.3e} > {TOLERANCE}"


def test_gradcheck_detects_a_wrong_gradient():
    """The checker itself must fail on a gradient that is off by a little."""
    theta = np.random.default_rng(0).standard_normal(5)
    analytic = 2 * theta * (1 + 1e-5)
    err, _ = max_rel_error(analytic, numerical_gradient(lambda: theta ** 2, theta))
    assert err > TOLERANCE


def test_relu_elbo_gradient_away_from_kinks():
    """The default ReLU model, with a step (1e-4) too small for any pre-activation of these draws to cross zero."""
    from minivae.models import build_model
    rng = np.random.default_rng(3)
    vae = build_model("mlp", rng=rng, dtype=np.float64, image_shape=(1, 2, 3), latent=2, hidden=(4,))
    x = rng.random((2, 1, 2, 3))
    eps = rng.standard_normal((2, 2))
    vae.forward(x, eps)
    grads = {k: g.copy() for k, g in vae.backward().items()}
    for name, theta in vae.params.items():
        num = numerical_gradient(lambda: vae.forward(x, eps).loss / 2, theta, h=1e-4)
        err, idx = max_rel_error(grads[name], num)
        assert err <= TOLERANCE, f"{name}[{idx}]: relative error {err:.3e}"
