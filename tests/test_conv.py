"""Conv2d and ConvTranspose2d: finite differences, the adjoint identity, NumPy reference vs Numba, bad shapes, init,
and (when torch is installed) parity with torch.nn.functional in float64."""
from unittest.mock import patch

import numba
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minivae.errors import MinivaeError
from minivae.gradchecks import CONV_CONFIGS, TOLERANCE, conv_layer_check
from minivae.layers import FastConv2d, FastConvTranspose2d, fast_layers
from minivae.layers.conv2d import conv2d_backward, conv2d_forward
from minivae.layers.conv_transpose2d import conv_transpose2d_backward, conv_transpose2d_forward
from minivae.layers.im2col import THIN_ROW, col2im_kernel, col2im_reference, im2col_kernel, im2col_reference

KINDS = ("conv", "convT")


# ---------------------------------------------------------------- tier 1: finite differences (float64)

FD_CASES = [(kind, k, s, p, image) for kind in KINDS for k in range(1, 6) for s in (1, 2) for p in (0, 1)
            for image in ((6, 7), (7, 6))]


@pytest.mark.parametrize("kind,k,stride,padding,image", FD_CASES,
                         ids=[f"{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}-{c[4][0]}x{c[4][1]}" for c in FD_CASES])
def test_finite_differences_every_configuration(kind, k, stride, padding, image):
    err = conv_layer_check(kind, k, stride, padding, image)
    assert err <= TOLERANCE, f"{kind} k{k} s{stride} p{padding} {image}: max relative error {err:.3e}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("activation", ["identity", "softplus", "sigmoid"])
def test_finite_differences_other_activations_and_no_bias(kind, activation):
    err = conv_layer_check(kind, 3, 2, 1, (5, 6), activation=activation, bias=False, seed=1)
    assert err <= TOLERANCE, f"{kind} {activation} without bias: max relative error {err:.3e}"


def test_gradcheck_configs_cover_the_issue():
    """The configurations `minivae gradcheck` runs cover strides 1, 2, paddings 0, 1, kernels 1–5, odd/even sizes."""
    assert {s for _, s, _, _ in CONV_CONFIGS} == {1, 2} and {p for _, _, p, _ in CONV_CONFIGS} == {0, 1}
    assert {k for k, _, _, _ in CONV_CONFIGS} == {1, 2, 3, 4, 5}
    assert {n % 2 for *_, image in CONV_CONFIGS for n in image} == {0, 1}


# ---------------------------------------------------------------- the adjoint identity

@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 3), C=st.integers(1, 4), O=st.integers(1, 4), k=st.integers(1, 5), stride=st.integers(1, 2),
       padding=st.integers(0, 1), Ho=st.integers(1, 5), Wo=st.integers(1, 5), seed=st.integers(0, 2 ** 32 - 1))
def test_transposed_convolution_is_the_adjoint_of_the_convolution(B, C, O, k, stride, padding, Ho, Wo, seed):
    """⟨conv_W(x), y⟩ = ⟨x, convᵀ_W(y)⟩ with one weight W (O, C, k, k): Conv2d(C→O) and ConvTranspose2d(O→C)."""
    H, W_ = (Ho - 1) * stride - 2 * padding + k, (Wo - 1) * stride - 2 * padding + k  # sizes where both fit
    assume(H >= 1 and W_ >= 1)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((B, C, H, W_)), rng.standard_normal((B, O, Ho, Wo))
    conv = FastConv2d(C, O, k, stride, padding, bias=False, rng=rng, dtype=np.float64)
    convT = FastConvTranspose2d(O, C, k, stride, padding, bias=False, rng=rng, dtype=np.float64)
    convT.params["W"][...] = conv.params["W"]
    for lhs, rhs in ((np.vdot(conv.forward(x), y), np.vdot(x, convT.forward(y))),
                     (np.vdot(conv2d_forward(x, conv.params["W"], np.zeros(O), stride, padding, "identity"), y),
                      np.vdot(x, conv_transpose2d_forward(y, conv.params["W"], np.zeros(C), stride, padding,
                                                          "identity")))):
        assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_im2col_and_col2im_are_adjoint():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    cols = im2col_reference(x, 3, 2, 1)
    c = rng.standard_normal(cols.shape)
    assert np.vdot(cols, c) == pytest.approx(np.vdot(x, col2im_reference(c, x.shape, 3, 2, 1)), rel=1e-12)


# ---------------------------------------------------------------- tier 2: NumPy reference vs Numba

shapes = dict(B=st.integers(1, 4), C=st.integers(1, 5), O=st.integers(1, 5), H=st.integers(1, 9),
              W=st.integers(1, 9), k=st.integers(1, 5), stride=st.integers(1, 2), padding=st.integers(0, 1),
              seed=st.integers(0, 2 ** 32 - 1))


def stored_nhwc(a):
    """The same logical (B, C, H, W) array, stored NHWC (as the layers store activations)."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@settings(max_examples=80, deadline=None)
@given(**shapes, nhwc=st.booleans(), wide=st.booleans())
def test_im2col_col2im_kernels_match_reference(B, C, O, H, W, k, stride, padding, seed, nhwc, wide):
    """Both compiled variants (im2col.py): k and C as constants (k·C ≤ THIN_ROW) and read at run time (wide)."""
    assume(H + 2 * padding >= k and W + 2 * padding >= k)
    C += THIN_ROW if wide else 0
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, C, H, W))
    x = stored_nhwc(x) if nhwc else x
    ref = im2col_reference(x, k, stride, padding)
    cols = np.full_like(ref, np.nan)
    im2col_kernel(x.transpose(0, 2, 3, 1), k, stride, padding, cols)
    np.testing.assert_array_equal(cols, ref)
    c = rng.standard_normal(ref.shape)
    out = stored_nhwc(np.full((B, C, H, W), np.nan)) if nhwc else np.full((B, C, H, W), np.nan)
    col2im_kernel(c, k, stride, padding, out.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(out, col2im_reference(c, x.shape, k, stride, padding), rtol=1e-12, atol=1e-12)


def assert_layer_matches_reference(kind, B, C, O, H, W, k, stride, padding, seed, dtype, activation, tol):
    rng = np.random.default_rng(seed)
    cls, fwd, bwd = ((FastConv2d, conv2d_forward, conv2d_backward) if kind == "conv" else
                     (FastConvTranspose2d, conv_transpose2d_forward, conv_transpose2d_backward))
    layer = cls(C, O, k, stride, padding, activation, rng=rng, dtype=dtype)
    x = rng.standard_normal((B, C, H, W)).astype(dtype)
    y = layer.forward(x)
    P = {n: p.astype(np.float64) for n, p in layer.params.items()}
    y_ref = fwd(x.astype(np.float64), P["W"], P["b"], stride, padding, activation)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy.copy())
    dx_ref, dW_ref, db_ref = bwd(dy.astype(np.float64), x.astype(np.float64), P["W"], y_ref, stride, padding,
                                 activation)
    for name, ours, ref in (("y", y, y_ref), ("dx", dx, dx_ref), ("dW", layer.grads["W"], dW_ref),
                            ("db", layer.grads["b"], db_ref)):
        assert ours.shape == ref.shape and ours.dtype == dtype, name
        scale = max(1.0, float(np.abs(ref).max(initial=0)))
        diff = np.abs(ours - ref)
        i = np.unravel_index(np.argmax(diff), diff.shape)
        assert diff[i] <= tol * scale, f"{kind} {name}{list(i)}: {ours[i]} vs reference {ref[i]} ({dtype.__name__})"


@settings(max_examples=40, deadline=None)
@given(**shapes, kind=st.sampled_from(KINDS), activation=st.sampled_from(["identity", "relu", "tanh"]))
def test_layers_match_reference_float64(kind, B, C, O, H, W, k, stride, padding, seed, activation):
    if kind == "conv":
        assume(H + 2 * padding >= k and W + 2 * padding >= k)
    else:
        assume((H - 1) * stride - 2 * padding + k >= 1 and (W - 1) * stride - 2 * padding + k >= 1)
    assert_layer_matches_reference(kind, B, C, O, H, W, k, stride, padding, seed, np.float64, activation, 1e-12)


@settings(max_examples=25, deadline=None)
@given(**shapes, kind=st.sampled_from(KINDS))
def test_layers_match_reference_float32(kind, B, C, O, H, W, k, stride, padding, seed):
    if kind == "conv":
        assume(H + 2 * padding >= k and W + 2 * padding >= k)
    else:
        assume((H - 1) * stride - 2 * padding + k >= 1 and (W - 1) * stride - 2 * padding + k >= 1)
    assert_layer_matches_reference(kind, B, C, O, H, W, k, stride, padding, seed, np.float32, "tanh", 2e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_layout_of_input_does_not_matter(kind):
    """An NCHW array and the same values stored NHWC give identical outputs and gradients."""
    rng = np.random.default_rng(0)
    layer = (FastConv2d(3, 4, 4, 2, 1, "relu", rng=rng, dtype=np.float64) if kind == "conv" else
             FastConvTranspose2d(3, 4, 4, 2, 1, "relu", rng=rng, dtype=np.float64))
    x = rng.standard_normal((2, 3, 6, 6))
    results = []
    for inp in (x, stored_nhwc(x)):
        y = layer.forward(inp).copy()
        dy = rng.standard_normal(y.shape) if not results else results[0][3]
        dx = layer.backward(dy.copy())
        results.append((y, dx, layer.grads["W"].copy(), dy))
    for a, b in zip(results[0][:3], results[1][:3]):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=300, deadline=None)
@given(B=st.integers(1, 300), rows=st.integers(1, 4096), row_bytes=st.sampled_from([1, 4, 64, 2048, 8192, 2 ** 21]),
       workers=st.integers(1, 8))
def test_image_chunks_cover_the_batch_in_equal_shares(B, rows, row_bytes, workers):
    with patch.object(fast_layers, "worker_count", lambda: workers):
        chunks = fast_layers.image_chunks(B, rows, row_bytes)
    sizes = [s.stop - s.start for s in chunks]
    assert [s.start for s in chunks] == list(np.cumsum([0] + sizes[:-1])) and chunks[-1].stop == B, chunks
    assert max(sizes) == sizes[0] <= min(sizes) + 1, f"unequal chunks {sizes}"
    assert sizes[0] == 1 or sizes[0] * rows * row_bytes <= fast_layers.CHUNK_BYTES, f"chunk of {sizes[0]} images too big"
    assert len(chunks) % workers == 0 or len(chunks) == B, f"{len(chunks)} chunks for {workers} workers"


@pytest.mark.parametrize("kind", KINDS)
def test_workers_split_the_batch_reproducibly(kind, monkeypatch):
    """With one image per chunk (CHUNK_BYTES = 1) the batch is shared between the workers (layers/workers.py): one
    worker and two give the same numbers up to the order of the gradient sums, two runs with two workers the same
    bits, and both match the reference."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS ≥ 2")
    monkeypatch.setattr(fast_layers, "CHUNK_BYTES", 1)
    rng = np.random.default_rng(0)
    layer = (FastConv2d(3, 4, 4, 2, 1, "relu", rng=rng, dtype=np.float64) if kind == "conv" else
             FastConvTranspose2d(3, 4, 4, 2, 1, "relu", rng=rng, dtype=np.float64))
    x = rng.standard_normal((7, 3, 6, 6))
    dy = rng.standard_normal(layer.forward(x).shape)
    runs, threads = [], numba.get_num_threads()
    try:
        for n in (1, 2, 2):
            numba.set_num_threads(n)
            y = layer.forward(x).copy()
            dx = layer.backward(dy.copy())
            runs.append((y, dx, layer.grads["W"].copy(), layer.grads["b"].copy()))
    finally:
        numba.set_num_threads(threads)
    for name, one, two, again in zip(("y", "dx", "dW", "db"), *runs):
        np.testing.assert_allclose(two, one, rtol=1e-13, atol=1e-13, err_msg=f"{kind} {name}: 2 workers vs 1")
        np.testing.assert_array_equal(again, two, err_msg=f"{kind} {name}: two runs with 2 workers differ")
    assert_layer_matches_reference(kind, 7, 3, 4, 6, 6, 4, 2, 1, 0, np.float64, "relu", 1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_first_layer_skips_input_gradient(kind):
    rng = np.random.default_rng(0)
    layer = (FastConv2d if kind == "conv" else FastConvTranspose2d)(2, 3, 3, 1, 1, rng=rng, dtype=np.float64)
    y = layer.forward(rng.standard_normal((1, 2, 4, 4)))
    assert layer.backward(np.ones_like(y), need_dx=False) is None
    assert np.abs(layer.grads["W"]).sum() > 0


# ---------------------------------------------------------------- bad shapes, initialization

def test_kernel_larger_than_padded_input_is_a_clear_error():
    layer = FastConv2d(1, 2, 5, 1, 1, rng=np.random.default_rng(0))
    with pytest.raises(MinivaeError, match=r"kernel 5×5 is larger than the padded input 4×5"):
        layer.forward(np.zeros((1, 1, 2, 3), np.float32))


def test_transposed_convolution_without_output_pixels_is_a_clear_error():
    layer = FastConvTranspose2d(1, 2, 1, 1, 1, rng=np.random.default_rng(0))
    with pytest.raises(MinivaeError, match="no output pixels"):
        layer.forward(np.zeros((1, 1, 2, 2), np.float32))


@pytest.mark.parametrize("cls", [FastConv2d, FastConvTranspose2d])
def test_channel_mismatch_is_a_clear_error(cls):
    layer = cls(3, 2, 3, rng=np.random.default_rng(0))
    with pytest.raises(MinivaeError, match=r"shaped \(B, 3, H, W\), got an array of shape \(1, 2, 5, 5\)"):
        layer.forward(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(MinivaeError, match="expects images"):
        layer.forward(np.zeros((3, 25), np.float32))


def test_bad_hyperparameters_are_a_clear_error():
    with pytest.raises(MinivaeError, match="stride ≥ 1"):
        FastConv2d(1, 1, 3, 0, 0, rng=np.random.default_rng(0)).forward(np.zeros((1, 1, 5, 5)))


def test_initialization_and_layouts_like_torch():
    """W, b ~ U(±1/√fan_in): fan_in = in·k·k for Conv2d, out·k·k for ConvTranspose2d (torch reads weight.shape[1])."""
    rng = np.random.default_rng(0)
    conv, convT = FastConv2d(8, 16, 4, rng=rng), FastConvTranspose2d(8, 2, 4, rng=rng)
    assert conv.params["W"].shape == (16, 8, 4, 4) and conv.params["b"].shape == (16,)
    assert convT.params["W"].shape == (8, 2, 4, 4) and convT.params["b"].shape == (2,)
    for layer, fan_in in ((conv, 8 * 16), (convT, 2 * 16)):
        bound = 1 / np.sqrt(fan_in)
        for p in layer.params.values():
            assert p.dtype == np.float32 and np.abs(p).max() <= bound
        assert np.abs(layer.params["W"]).max() > 0.9 * bound  # the whole range is used
    assert "b" not in FastConv2d(1, 1, 1, bias=False, rng=rng).params


# ---------------------------------------------------------------- tier 3: parity with PyTorch (float64)

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k,stride,padding", [(4, 2, 1), (3, 1, 0), (5, 2, 2), (1, 1, 0)])
def test_parity_with_torch(kind, k, stride, padding):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; the parity test needs it")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    layer = (FastConv2d if kind == "conv" else FastConvTranspose2d)(3, 5, k, stride, padding, "tanh", rng=rng,
                                                            dtype=np.float64)
    x = rng.standard_normal((2, 3, 9, 8))
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy.copy())
    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, layer.params["W"], layer.params["b"]))
    op = F.conv2d if kind == "conv" else F.conv_transpose2d
    yt = torch.tanh(op(xt, Wt, bt, stride=stride, padding=padding))
    yt.backward(torch.tensor(dy))
    for name, ours, theirs in (("y", y, yt), ("dx", dx, xt.grad), ("dW", layer.grads["W"], Wt.grad),
                               ("db", layer.grads["b"], bt.grad)):
        theirs = theirs.detach().numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12, err_msg=f"{kind} {name}")


def test_torch_fan_in_of_transposed_convolution():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    W = torch.nn.ConvTranspose2d(8, 2, 4).weight
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(W)
    assert fan_in == 2 * 4 * 4


@pytest.mark.parametrize("kind", KINDS)
def test_layer_without_bias_matches_reference_with_zero_bias(kind):
    rng = np.random.default_rng(4)
    cls, fwd, bwd = ((FastConv2d, conv2d_forward, conv2d_backward) if kind == "conv" else
                     (FastConvTranspose2d, conv_transpose2d_forward, conv_transpose2d_backward))
    layer = cls(2, 3, 3, 2, 1, "tanh", bias=False, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 2, 5, 4))
    y = layer.forward(x)
    zero = np.zeros(3)
    np.testing.assert_allclose(y, fwd(x, layer.params["W"], zero, 2, 1, "tanh"), rtol=1e-12, atol=1e-14)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy.copy())
    dx_ref, dW_ref, _ = bwd(dy, x, layer.params["W"], y, 2, 1, "tanh")
    assert set(layer.grads) == {"W"}
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.grads["W"], dW_ref, rtol=1e-12, atol=1e-14)
