"""Tier-3 tests: minivae against an autograd framework (STYLE.md §6).

The same weights (minivae's, loaded into the PyTorch twin in benchmarks/twins_torch.py), the same batch and the
same ε, all in float64, must give
    - the same loss, recon and KL to 1e-10 relative,
    - the same gradient for every parameter to 1e-9, relative to the largest entry of that gradient,
    - the same parameters after ten Adam steps to 1e-8.
A second group checks the PyTorch and JAX twins against each other (so the twins are trusted independently of
minivae). Skipped with a reason when torch (or jax) is not installed: `pip install -e .[bench]`.
"""
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e .[bench]); "
                                            "the parity tests need it")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import twins_torch  # noqa: E402

MODELS = ["mlp", "conv28", "conv64"]
B = 3  # small batches keep the float64 convolutions fast


def batch(name, seed, n=B):
    """Grayscale x in [0, 1] shaped (n, C, H, W) and ε ~ N(0, I) shaped (n, Z), float64."""
    Z, x_shape, _, _ = twins_torch.ARCHS[name]
    image_shape = (1, 28, 28) if name == "mlp" else x_shape
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (n, *image_shape)), rng.standard_normal((n, Z))


def minivae_model(name, seed=0):
    """minivae's float64 model `name`, or a skip when minivae does not provide it (yet)."""
    try:
        from minivae.models import build_model
    except ImportError as err:
        pytest.skip(f"minivae.models.build_model is not available yet ({err})")
    from minivae.errors import MinivaeError
    try:
        return build_model(name, rng=np.random.default_rng(seed), dtype=np.float64)
    except MinivaeError as err:  # "unknown model ..." for a model minivae does not have; anything else is a bug
        if name == "mlp" or "unknown model" not in str(err):
            raise
        pytest.skip(f"minivae has no conv models yet ({err})")


def twin_of(vae, name):
    """A float64 torch twin holding exactly minivae's parameters."""
    twin = twins_torch.build_model(name, dtype=torch.float64)
    return twins_torch.load_minivae_params(twin, vae.params)


def assert_close(name, ours, theirs, tol, what):
    """Fail with the parameter name, the index of the largest difference and its size (relative to max|theirs|)."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"{what} {name}: shape {ours.shape} != {theirs.shape}"
    diff = np.abs(ours - theirs)
    scale = max(float(np.abs(theirs).max(initial=0.0)), 1e-300)
    idx = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
    worst = float(diff.max(initial=0.0))
    assert worst <= tol * scale, (f"{what} {name}{list(idx)}: minivae {ours[idx]!r} vs torch {theirs[idx]!r}, "
                                  f"|diff| {worst:.3e} = {worst / scale:.3e} relative to max|torch| {scale:.3e} "
                                  f"(tolerance {tol:g})")


@pytest.mark.parametrize("name", MODELS)
def test_parameter_names_and_layouts_match(name):
    vae = minivae_model(name)
    ours = {k: v.shape for k, v in vae.params.items()}
    theirs = {k: v.shape for k, v in twins_torch.to_minivae_params(twins_torch.build_model(name)).items()}
    assert ours == theirs


@pytest.mark.parametrize("name", MODELS)
def test_loss_and_gradients_match_torch(name):
    vae = minivae_model(name)
    twin = twin_of(vae, name)
    x, eps = batch(name, seed=1)

    terms = vae.forward(x, eps)
    grads = vae.backward()
    loss, recon, kl = twins_torch.loss(twin, torch.from_numpy(x), torch.from_numpy(eps))
    loss.backward()
    torch_grads = twins_torch.to_minivae_grads(twin)

    for what, ours, theirs in (("loss", terms.loss.mean(), loss), ("recon", terms.recon.mean(), recon),
                               ("kl", terms.kl.mean(), kl)):
        theirs = theirs.item()
        assert abs(ours - theirs) <= 1e-10 * abs(theirs), f"{what}: minivae {ours!r} vs torch {theirs!r}"
    assert set(grads) == set(torch_grads)
    for k in sorted(grads):
        assert_close(k, grads[k], torch_grads[k], 1e-9, "gradient")


@pytest.mark.parametrize("name", MODELS)
def test_ten_adam_steps_match_torch(name):
    from minivae.optim import Adam
    vae = minivae_model(name)
    twin = twin_of(vae, name)
    opt, torch_opt = Adam(vae.params, lr=1e-3), twins_torch.make_optimizer(twin, lr=1e-3)
    for step in range(10):
        x, eps = batch(name, seed=100 + step)
        vae.forward(x, eps)
        opt.step(vae.backward())
        twins_torch.train_step(twin, torch_opt, torch.from_numpy(x), torch.from_numpy(eps))
    theirs = twins_torch.to_minivae_params(twin)
    for k, p in sorted(vae.params.items()):
        assert_close(k, p, theirs[k], 1e-8, "parameter after 10 Adam steps")


def test_load_then_export_is_the_identity():
    twin = twins_torch.build_model("conv28", dtype=torch.float64, seed=0)
    params = {k: np.random.default_rng(3).standard_normal(v.shape) for k, v in
              twins_torch.to_minivae_params(twin).items()}
    back = twins_torch.to_minivae_params(twins_torch.load_minivae_params(twin, params))
    assert set(back) == set(params)
    for k in params:
        np.testing.assert_array_equal(back[k], params[k], err_msg=k)


# --- two stochastic layers (minivae/hvae.py) against its PyTorch twin, float64, the same ε ---

@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_two_stochastic_layers_match_torch(objective):
    """Burda et al.'s 784-(200,200)-100-(100,100)-50 model: loss and every gradient, ELBO (closed-form top KL, one
    sample) and IWAE (K = 5, every term sampled), on binarized x."""
    from minivae.models import build_model
    from minivae.objectives import make_objective
    vae = build_model("mlp2", rng=np.random.default_rng(0), dtype=np.float64)
    twin = twins_torch.load_minivae_params(twins_torch.TwoLayerVAE().double(), vae.params)
    rng = np.random.default_rng(5)
    x = (rng.random((B, 1, 28, 28)) < 0.4).astype(np.float64)
    obj = make_objective(objective, k=5 if objective == "iwae" else None)
    eps = obj.noise(rng, B, vae.noise_size, np.float64)
    _, value, grads = obj.loss_and_grads(vae, x, eps)
    loss_fn = twins_torch.two_layer_elbo_loss if objective == "elbo" else twins_torch.two_layer_iwae_loss
    loss = loss_fn(twin, torch.from_numpy(x), torch.from_numpy(eps))
    loss = loss[0] if objective == "elbo" else loss
    loss.backward()
    assert abs(value - loss.item()) <= 1e-10 * abs(loss.item()), f"loss: minivae {value!r} vs torch {loss.item()!r}"
    torch_grads = twins_torch.to_minivae_grads(twin)
    assert set(grads) == set(torch_grads) and len(grads) == 24
    for k in sorted(grads):
        assert_close(k, grads[k], torch_grads[k], 1e-10, f"{objective} gradient")


# --- the twins against each other: PyTorch vs JAX, float64 ---

@pytest.fixture
def jax_x64():
    """jax with float64 enabled for this test only (the flag is process-global; restore it afterwards)."""
    jax = pytest.importorskip("jax", reason="JAX is not installed (pip install -e .[bench])")
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    import twins_jax
    yield jax, twins_jax
    jax.config.update("jax_enable_x64", old)


@pytest.mark.parametrize("name, subpixel", [("mlp", False), ("conv28", False), ("conv64", False),
                                            ("conv28", True), ("conv64", True)])
def test_torch_and_jax_twins_agree(name, subpixel, jax_x64):
    jax, twins_jax = jax_x64
    twin = twins_torch.build_model(name, dtype=torch.float64, seed=0)
    params = twins_torch.to_minivae_params(twin)
    x, eps = batch(name, seed=2)

    loss, recon, kl = twins_torch.loss(twin, torch.from_numpy(x), torch.from_numpy(eps))
    loss.backward()
    jparams = {k: jax.numpy.asarray(v) for k, v in params.items()}
    jloss, jrecon, jkl, jgrads = twins_jax.loss_and_grads(name, jparams, x, eps, subpixel)
    assert jloss.dtype == np.float64
    for what, a, b in (("loss", jloss, loss), ("recon", jrecon, recon), ("kl", jkl, kl)):
        assert abs(float(a) - b.item()) <= 1e-10 * abs(b.item()), f"{what}: jax {float(a)!r} vs torch {b.item()!r}"
    torch_grads = twins_torch.to_minivae_grads(twin)
    for k in sorted(torch_grads):
        assert_close(k, jgrads[k], torch_grads[k], 1e-9, "jax-vs-torch gradient")



def test_jax_adam_matches_torch(jax_x64):
    """Ten jitted JAX train steps (hand-written Adam) against torch.optim.Adam, mlp (Adam does not see the model)."""
    jax, twins_jax = jax_x64
    name = "mlp"
    twin = twins_torch.build_model(name, dtype=torch.float64, seed=0)
    jparams = {k: jax.numpy.asarray(v) for k, v in twins_torch.to_minivae_params(twin).items()}
    opt = twins_torch.make_optimizer(twin)
    step = twins_jax.make_train_step(name)
    state = twins_jax.adam_init(jparams)
    for i in range(10):
        x, eps = batch(name, seed=200 + i)
        twins_torch.train_step(twin, opt, torch.from_numpy(x), torch.from_numpy(eps))
        jparams, state, _ = step(jparams, state, x, eps)
    theirs = twins_torch.to_minivae_params(twin)
    for k in sorted(theirs):
        assert_close(k, jparams[k], theirs[k], 1e-8, "jax-vs-torch parameter after 10 Adam steps")


def test_jax_init_has_pytorch_bounds(jax_x64):
    """init_params draws U(±1/√fan_in) with PyTorch's fan_in (C_out·k·k for ConvTranspose2d)."""
    _, twins_jax = jax_x64
    params = twins_jax.init_params("conv28", seed=0, dtype=np.float64)
    for k, fan_in in (("encoder.0.W", 1 * 16), ("encoder.3.W", 3136), ("decoder.3.W", 32 * 16),
                      ("decoder.4.W", 1 * 16), ("decoder.4.b", 1 * 16)):
        a, bound = np.abs(np.asarray(params[k])), 1 / np.sqrt(fan_in)
        assert a.max() <= bound and (a.size < 1000 or a.max() > 0.99 * bound), (k, a.max(), bound)
    torch_params = twins_torch.to_minivae_params(twins_torch.build_model("conv28"))
    assert {k: v.shape for k, v in params.items()} == {k: v.shape for k, v in torch_params.items()}


@pytest.mark.parametrize("name", MODELS)
def test_benchmark_flop_table_matches_the_twin(name):
    """benchmarks/compare.py's napkin-math table gives, layer by layer, the FLOPs of the twin's actual shapes."""
    import compare
    twin = twins_torch.build_model(name)
    measured = []

    def hook(layer, inputs, output):
        (x,) = inputs
        if isinstance(layer, torch.nn.Linear):
            measured.append(2 * layer.in_features * layer.out_features)
        elif isinstance(layer, torch.nn.Conv2d):  # 2 · C_out·H_out·W_out · C_in·k²
            measured.append(2 * output[0].numel() * layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1])
        else:  # ConvTranspose2d: 2 · C_in·H_in·W_in · C_out·k²
            measured.append(2 * x[0].numel() * layer.out_channels * layer.kernel_size[0] * layer.kernel_size[1])

    for _, layer in twins_torch._param_layers(twin):
        layer.register_forward_hook(hook)
    x, eps = batch(name, seed=0, n=2)
    with torch.no_grad():
        twins_torch.loss(twin.double(), torch.from_numpy(x), torch.from_numpy(eps))
    assert measured == [compare.layer_flops(layer) for layer in compare.LAYERS[name]]
    assert compare.flops_per_step(name, 10) == 10 * (3 * sum(measured) - measured[0])
