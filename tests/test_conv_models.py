"""The conv28, conv64 and burgess VAEs: architecture and parameter names, shapes, the whole conv ELBO by finite differences,
float32 against float64, training steps, and the errors a user can cause."""
import numpy as np
import pytest

from minivae.errors import MinivaeError
from minivae.gradchecks import TOLERANCE, conv_elbo_check
from minivae.layers import Conv2d, ConvTranspose2d, Dense, Flatten, Reshape
from minivae.models import DEFAULTS, build_from_config, build_model
from minivae.optim import Adam

# (kind, in, out, activation) per layer, as the issue and benchmarks/twins_torch.py spell the architectures
ARCHITECTURES = {
    "conv28": ([("conv", 1, 32, "relu"), ("conv", 32, 64, "relu"), ("flatten",), ("dense", 3136, 256, "relu"),
                ("dense", 256, 32, "identity")],
               [("dense", 16, 256, "relu"), ("dense", 256, 3136, "relu"), ("reshape", (64, 7, 7)),
                ("convT", 64, 32, "relu"), ("convT", 32, 1, "identity")]),
    "conv64": ([("conv", 3, 32, "relu"), ("conv", 32, 64, "relu"), ("conv", 64, 128, "relu"),
                ("conv", 128, 256, "relu"), ("flatten",), ("dense", 4096, 64, "identity")],
               [("dense", 32, 4096, "relu"), ("reshape", (256, 4, 4)), ("convT", 256, 128, "relu"),
                ("convT", 128, 64, "relu"), ("convT", 64, 32, "relu"), ("convT", 32, 3, "identity")]),
    "burgess": ([("conv", 3, 32, "relu"), ("conv", 32, 32, "relu"), ("conv", 32, 64, "relu"), ("conv", 64, 64, "relu"),
                 ("flatten",), ("dense", 1024, 256, "relu"), ("dense", 256, 256, "relu"), ("dense", 256, 20, "identity")],
                [("dense", 10, 256, "relu"), ("dense", 256, 256, "relu"), ("dense", 256, 1024, "relu"),
                 ("reshape", (64, 4, 4)), ("convT", 64, 64, "relu"), ("convT", 64, 32, "relu"), ("convT", 32, 32, "relu"),
                 ("convT", 32, 3, "identity")]),
}


def describe(layer):
    if isinstance(layer, Flatten):
        return ("flatten",)
    if isinstance(layer, Reshape):
        return ("reshape", layer.shape)
    if isinstance(layer, Dense):
        I, O = layer.params["W"].shape
        return ("dense", I, O, layer.activation)
    assert (layer.k, layer.stride, layer.padding) == (4, 2, 1)
    kind = "conv" if isinstance(layer, Conv2d) else "convT"
    assert isinstance(layer, (Conv2d, ConvTranspose2d))
    return (kind, layer.in_ch, layer.out_ch, layer.activation)


@pytest.mark.parametrize("name", ["conv28", "conv64", "burgess"])
def test_architecture_as_specified(name):
    vae = build_model(name, rng=np.random.default_rng(0))
    enc, dec = ARCHITECTURES[name]
    assert [describe(layer) for layer in vae.encoder.layers] == enc
    assert [describe(layer) for layer in vae.decoder.layers] == dec
    assert vae.encoder_input_shape == vae.image_shape == tuple(DEFAULTS[name]["image_shape"])
    assert vae.latent == DEFAULTS[name]["latent"]


def test_parameter_names_and_torch_layouts():
    vae = build_model("conv28", rng=np.random.default_rng(0))
    shapes = {k: v.shape for k, v in vae.params.items()}
    assert shapes == {"encoder.0.W": (32, 1, 4, 4), "encoder.0.b": (32,), "encoder.1.W": (64, 32, 4, 4),
                      "encoder.1.b": (64,), "encoder.3.W": (3136, 256), "encoder.3.b": (256,),
                      "encoder.4.W": (256, 32), "encoder.4.b": (32,), "decoder.0.W": (16, 256), "decoder.0.b": (256,),
                      "decoder.1.W": (256, 3136), "decoder.1.b": (3136,), "decoder.3.W": (64, 32, 4, 4),
                      "decoder.3.b": (32,), "decoder.4.W": (32, 1, 4, 4), "decoder.4.b": (1,)}


@pytest.mark.parametrize("name,B", [("conv28", 3), ("conv64", 2), ("burgess", 2)])
def test_forward_backward_shapes_and_finite_values(name, B):
    rng = np.random.default_rng(0)
    vae = build_model(name, rng=rng)
    x = rng.uniform(0, 1, (B, *vae.image_shape)).astype(np.float32)
    eps = rng.standard_normal((B, vae.latent)).astype(np.float32)
    terms = vae.forward(x, eps)
    assert terms.loss.shape == (B,) and terms.loss.dtype == np.float32 and np.all(np.isfinite(terms.loss))
    assert vae.decode(eps).shape == (B, int(np.prod(vae.image_shape)))
    grads = vae.backward()
    assert set(grads) == set(vae.params)
    for k, g in grads.items():
        assert g.shape == vae.params[k].shape and g.dtype == np.float32 and np.all(np.isfinite(g)), k


def test_whole_conv_elbo_by_finite_differences():
    results = conv_elbo_check(seed=2)
    assert len(results) == 12  # 2 conv, 1 dense in the encoder; 1 dense, 2 transposed conv in the decoder; W and b
    for name, err in results:
        assert err <= TOLERANCE, f"{name}: max relative error {err:.3e} > {TOLERANCE}"


def test_float32_model_matches_float64_model():
    """One seed gives the same numbers in both dtypes (init is drawn in float64), so losses and gradients agree."""
    out = {}
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        vae = build_model("conv28", rng=rng, dtype=dtype)
        x = rng.uniform(0, 1, (2, 1, 28, 28)).astype(dtype)
        eps = rng.standard_normal((2, 16)).astype(dtype)
        out[dtype] = (vae.forward(x, eps).loss.astype(np.float64), {k: g.copy() for k, g in vae.backward().items()})
    np.testing.assert_allclose(out[np.float32][0], out[np.float64][0], rtol=1e-5)
    for k, g64 in out[np.float64][1].items():
        scale = np.abs(g64).max()
        assert np.abs(out[np.float32][1][k] - g64).max() <= 1e-3 * scale, k


def test_adam_steps_reduce_the_loss():
    rng = np.random.default_rng(0)
    vae = build_model("conv28", rng=rng)
    x = (rng.uniform(0, 1, (8, 1, 28, 28)) > 0.7).astype(np.float32)
    eps = rng.standard_normal((8, 16)).astype(np.float32)
    opt = Adam(vae.params, lr=1e-3)
    first = float(vae.forward(x, eps).loss.mean())
    for _ in range(10):
        opt.step(vae.backward())
        last = float(vae.forward(x, eps).loss.mean())
    assert last < first - 5, (first, last)


def test_rebuild_from_config_gives_the_same_model():
    vae = build_model("conv64", rng=np.random.default_rng(5), latent=8)
    again = build_from_config(vae.config, rng=np.random.default_rng(5))
    assert vae.config["model"] == "conv64" and vae.latent == 8
    for k, p in vae.params.items():
        np.testing.assert_array_equal(p, again.params[k])


def test_conv_picks_the_architecture_by_image_size():
    assert build_model("conv", rng=np.random.default_rng(0)).config["model"] == "conv28"
    assert build_model("conv", rng=np.random.default_rng(0), image_shape=(1, 28, 20)).config["model"] == "conv28"
    assert build_model("conv", rng=np.random.default_rng(0), image_shape=(3, 64, 64)).config["model"] == "conv64"


def test_other_image_shapes_that_divide_evenly():
    """Frey faces (1×28×20) through conv28, a grayscale 32×48 image through conv64."""
    for name, shape in (("conv28", (1, 28, 20)), ("conv64", (1, 32, 48))):
        rng = np.random.default_rng(0)
        vae = build_model(name, rng=rng, image_shape=shape)
        x = rng.uniform(0, 1, (2, *shape)).astype(np.float32)
        vae.forward(x, rng.standard_normal((2, vae.latent)).astype(np.float32))
        vae.backward()
        assert vae.decode(np.zeros((1, vae.latent), np.float32)).shape == (1, int(np.prod(shape)))


def test_bad_image_shape_and_mlp_only_options_are_clear_errors():
    with pytest.raises(MinivaeError, match=r"divisible by 16, got 3×60×64"):
        build_model("conv64", rng=np.random.default_rng(0), image_shape=(3, 60, 64))
    with pytest.raises(MinivaeError, match="divisible by 4"):
        build_model("conv28", rng=np.random.default_rng(0), image_shape=(1, 30, 28))
    with pytest.raises(MinivaeError, match="hidden widths apply to the mlp and mlp2 models only"):
        build_model("conv28", rng=np.random.default_rng(0), hidden=(100,))


def test_activation_applies_to_the_conv_stack():
    vae = build_model("conv28", rng=np.random.default_rng(0), activation="tanh")
    assert [getattr(layer, "activation", None) for layer in vae.encoder.layers] == \
        ["tanh", "tanh", None, "tanh", "identity"]
