"""flat.py: parameters packed in one buffer, and Adam's one-call path against its per-array path."""
import numpy as np
import pytest

from minivae.flat import pack, tiled_buffer
from minivae.models import build_model
from minivae.optim import Adam


def test_pack_keeps_names_shapes_values_and_tiles_one_buffer():
    rng = np.random.default_rng(0)
    a = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    b = {"W": rng.standard_normal((2, 2, 2))}
    before = [{k: v.copy() for k, v in d.items()} for d in (a, b)]
    flat = pack([a, b])
    assert flat.shape == (12 + 4 + 8,)
    for d, old in zip((a, b), before):
        for k, v in d.items():
            np.testing.assert_array_equal(v, old[k], err_msg=f"packed {k} changed its values")
    assert tiled_buffer([a["W"], a["b"], b["W"]]) is flat
    flat[:] = 7.0  # the views see writes to the buffer
    assert a["b"][0] == 7.0 and b["W"][1, 1, 1] == 7.0


def test_tiled_buffer_rejects_gaps_wrong_order_and_loose_arrays():
    d = {"x": np.zeros(3), "y": np.zeros(5), "z": np.zeros(2)}
    pack([d])
    assert tiled_buffer([d["y"], d["x"], d["z"]]) is None, "wrong order accepted"
    assert tiled_buffer([d["x"], d["z"]]) is None, "a gap accepted"
    assert tiled_buffer([d["x"], d["y"]]) is None, "does not cover the buffer"
    assert tiled_buffer([np.zeros(3)]) is None, "an array that is no view accepted"
    with pytest.raises(ValueError, match="one dtype"):
        pack([{"a": np.zeros(2), "b": np.zeros(2, np.float32)}])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_one_call_on_packed_vae_matches_per_array_adam(dtype):
    """The VAE's packed parameters take Adam's single-kernel path; a copy in loose arrays takes the per-array path.
    Five steps with the same gradients must give the same parameters (float64 exactly, float32 to rounding)."""
    vae = build_model("mlp", rng=np.random.default_rng(0), hidden=[7], latent=3, image_shape=(1, 4, 4), dtype=dtype)
    assert tiled_buffer(list(vae.params.values())) is not None, "VAE parameters are not packed"
    assert tiled_buffer(list(vae.grads.values())) is not None, "VAE gradients are not packed"
    loose = {k: v.copy() for k, v in vae.params.items()}
    packed_opt, loose_opt = Adam(vae.params, lr=1e-2), Adam(loose, lr=1e-2)
    rng = np.random.default_rng(1)
    for _ in range(5):
        for g in vae.grads.values():
            g[...] = rng.standard_normal(g.shape)
        packed_opt.step(vae.grads)
        loose_opt.step({k: v.copy() for k, v in vae.grads.items()})
    tol = 0 if dtype == np.float64 else 1e-6
    for k in loose:
        err = np.max(np.abs(vae.params[k] - loose[k]))
        assert err <= tol, f"{k}: packed and per-array Adam differ by {err:.2e}"
