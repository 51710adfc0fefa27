"""JAX twins of minivae's three VAEs, for the parity tests and the benchmark (not part of the library).

Pure functions over a params pytree: a dict keyed by minivae's names, with minivae's layouts (see twins_torch.py):
    "{encoder|decoder}.{i}.W" / ".b";  Dense W (I, O);  Conv2d W (C_out, C_in, k, k);  ConvT W (C_in, C_out, k, k).
Gradients come from `jax.value_and_grad`; Adam is written out below, step for step as torch.optim.Adam does it;
`make_train_step` jits the whole step (forward, backward, Adam).

float64: JAX computes in float32 unless `jax.config.update("jax_enable_x64", True)` ran first (or JAX_ENABLE_X64=1
is set before import). This module never turns it on by itself; callers that need float64 do.

Loss per example (nats), then the batch mean, identical to minivae:
    z = mu + exp(logvar / 2) * eps,  recon = sum_pixels BCEWithLogits(logits, x),
    kl = 0.5 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j).
"""
import functools

import numpy as np
import jax
import jax.numpy as jnp

from archs import ARCHS, K, PAD, STRIDE  # noqa: E402  (benchmarks/ is on sys.path wherever the twins are imported)


def init_params(name, *, seed=0, dtype=np.float32):
    """PyTorch's default init, drawn with numpy: W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    fan_in is I for Dense and C_in*k*k for Conv2d; for ConvTranspose2d PyTorch takes weight dim 1, i.e. C_out*k*k.
    (Same distribution as torch, not the same numbers: load weights from elsewhere for parity.)
    """
    rng = np.random.default_rng(seed)
    _, _, enc, dec = ARCHS[name]
    params = {}
    for part, spec in (("encoder", enc), ("decoder", dec)):
        for i, (kind, *rest) in enumerate(spec):
            if kind in ("flatten", "reshape"):
                continue
            n_in, n_out, _ = rest
            shape, fan_in = {"dense": ((n_in, n_out), n_in),
                             "conv": ((n_out, n_in, K, K), n_in * K * K),
                             "convT": ((n_in, n_out, K, K), n_out * K * K)}[kind]
            bound = 1.0 / np.sqrt(fan_in)
            params[f"{part}.{i}.W"] = jnp.asarray(rng.uniform(-bound, bound, shape).astype(dtype))
            params[f"{part}.{i}.b"] = jnp.asarray(rng.uniform(-bound, bound, (n_out,)).astype(dtype))
    return params


def conv2d(x, W, b):
    """PyTorch Conv2d(k=4, s=2, p=1): x (B, C_in, H, W), W (C_out, C_in, k, k) -> (B, C_out, H/2, W/2)."""
    y = jax.lax.conv_general_dilated(x, W, (STRIDE, STRIDE), [(PAD, PAD), (PAD, PAD)],
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + b[None, :, None, None]


def conv_transpose2d(x, W, b):
    """PyTorch ConvTranspose2d(k=4, s=2, p=1): x (B, C_in, H, W), W (C_in, C_out, k, k) -> (B, C_out, 2H, 2W).

    A transposed convolution is the gradient of a convolution w.r.t. its input: put (stride - 1) zeros between the
    input pixels (lhs_dilation), pad by k-1-p, and convolve with the kernel flipped in space and with its two
    channel axes swapped, i.e. an ordinary OIHW kernel of shape (C_out, C_in, k, k).
    """
    W_conv = jnp.flip(W, axis=(2, 3)).transpose(1, 0, 2, 3)
    q = K - 1 - PAD
    y = jax.lax.conv_general_dilated(x, W_conv, (1, 1), [(q, q), (q, q)], lhs_dilation=(STRIDE, STRIDE),
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + b[None, :, None, None]


# Sub-pixel form of the same ConvTranspose2d. With PyTorch's indexing, output row oh = 2h - p + kh, so
#     y[o, 2m+a, 2n+c] = sum_{i, h, w} x[i, h, w] W[i, o, 2(m-h)+a+1, 2(n-w)+c+1]
# and for each output parity a only two kernel rows take part: a = 0 reads input rows (m-1, m) through kernel rows
# (3, 1); a = 1 reads rows (m, m+1) through (2, 0). Likewise for columns with c.
SUBPIXEL_TAPS = {0: ([3, 1], (1, 0)), 1: ([2, 0], (0, 1))}  # parity -> (kernel taps in window order, padding)


def conv_transpose2d_subpixel(x, W, b):
    """conv_transpose2d as four stride-1 2x2 convolutions, one per output parity (a, c), interleaved.

    Same numbers as conv_transpose2d; it exists because XLA:CPU runs the gradient of an input-dilated convolution
    on a slow path (about 6x slower for these shapes), and stride-1 convolutions have no dilation anywhere,
    forward or backward. Not what a JAX user writes by default: the benchmark shows both ("jax", "jax-subpixel").
    """
    B, _, H, Wd = x.shape
    rows = []
    for a in (0, 1):
        cols = []
        for c in (0, 1):
            (kh, pad_h), (kw, pad_w) = SUBPIXEL_TAPS[a], SUBPIXEL_TAPS[c]
            W_ac = W[:, :, kh][:, :, :, kw].transpose(1, 0, 2, 3)  # (C_out, C_in, 2, 2), OIHW
            cols.append(jax.lax.conv_general_dilated(x, W_ac, (1, 1), [pad_h, pad_w],
                                                     dimension_numbers=("NCHW", "OIHW", "NCHW")))
        rows.append(jnp.stack(cols, axis=-1))  # (B, C_out, H, W, c)
    y = jnp.stack(rows, axis=3).reshape(B, W.shape[1], 2 * H, 2 * Wd)  # (B, C_out, H, a, W, c) -> (B, C_out, 2H, 2W)
    return y + b[None, :, None, None]


def sequential(params, part, spec, h, subpixel=False):
    """Run one Sequential (encoder or decoder) described by `spec` over h."""
    for i, (kind, *rest) in enumerate(spec):
        if kind == "flatten":
            h = h.reshape(h.shape[0], -1)
            continue
        if kind == "reshape":
            h = h.reshape(h.shape[0], *rest[0])
            continue
        W, b = params[f"{part}.{i}.W"], params[f"{part}.{i}.b"]
        h = {"dense": lambda: h @ W + b, "conv": lambda: conv2d(h, W, b),
             "convT": lambda: (conv_transpose2d_subpixel if subpixel else conv_transpose2d)(h, W, b)}[kind]()
        if rest[2] == "relu":
            h = jax.nn.relu(h)
    return h


def forward(name, params, x, eps, subpixel=False):
    """(logits, mu, logvar): x reshaped to (B, *x_shape), z = mu + exp(logvar/2) eps, logits = decoder(z).

    subpixel=True computes the ConvTranspose2d layers with conv_transpose2d_subpixel (same result, faster on CPU).
    """
    Z, x_shape, enc, dec = ARCHS[name]
    h = sequential(params, "encoder", enc, x.reshape(x.shape[0], *x_shape))
    mu, logvar = h[:, :Z], h[:, Z:]
    z = mu + jnp.exp(0.5 * logvar) * eps
    return sequential(params, "decoder", dec, z, subpixel), mu, logvar


def bce_with_logits(logits, x):
    """-log Bernoulli(x; sigmoid(l)) = max(l, 0) - l x + log(1 + exp(-|l|)), stable for any l (PyTorch's form)."""
    return jnp.maximum(logits, 0) - logits * x + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def loss(name, params, x, eps, subpixel=False):
    """(mean_loss, (recon_mean, kl_mean)) in nats; the aux pair rides along through value_and_grad(has_aux=True)."""
    logits, mu, logvar = forward(name, params, x, eps, subpixel)
    recon = bce_with_logits(logits, x.reshape(logits.shape)).reshape(x.shape[0], -1).sum(1)
    kl = 0.5 * (mu * mu + jnp.exp(logvar) - 1.0 - logvar).sum(1)
    return (recon + kl).mean(), (recon.mean(), kl.mean())


def adam_init(params):
    """Adam state: step count t and the first/second moment estimates m, v (zeros like params)."""
    return {"t": jnp.zeros((), jnp.int32), "m": jax.tree_util.tree_map(jnp.zeros_like, params),
            "v": jax.tree_util.tree_map(jnp.zeros_like, params)}


def adam_update(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """torch.optim.Adam (no amsgrad, no weight decay), in its order of operations:
        t += 1;   m = m + (1-b1) (g - m)  (torch's lerp);   v = b2 v + (1-b2) g^2
        p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """
    t = state["t"] + 1
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    tf = t.astype(dtype)
    step_size = lr / (1 - beta1 ** tf)
    bc2_sqrt = jnp.sqrt(1 - beta2 ** tf)
    m = jax.tree_util.tree_map(lambda m, g: m + (1 - beta1) * (g - m), state["m"], grads)
    v = jax.tree_util.tree_map(lambda v, g: beta2 * v + (1 - beta2) * g * g, state["v"], grads)
    params = jax.tree_util.tree_map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) / bc2_sqrt + eps),
                                    params, m, v)
    return params, {"t": t, "m": m, "v": v}


def make_train_step(name, lr=1e-3, donate=False, subpixel=False):
    """A jitted `train_step(params, state, x, eps) -> (params, state, mean_loss)`: forward, backward, Adam.

    donate=True lets XLA write the new params and Adam state into the old buffers (as an in-place update would;
    the benchmark uses it); the caller must then not touch the params/state it passed in.
    """
    grad_fn = jax.value_and_grad(lambda p, x, eps: loss(name, p, x, eps, subpixel), has_aux=True)

    def train_step(params, state, x, eps):
        (mean_loss, _), grads = grad_fn(params, x, eps)
        params, state = adam_update(params, grads, state, lr=lr)
        return params, state, mean_loss

    return jax.jit(train_step, donate_argnums=(0, 1) if donate else ())


@functools.partial(jax.jit, static_argnums=(0, 4))
def loss_and_grads(name, params, x, eps, subpixel=False):
    """(mean_loss, recon_mean, kl_mean, grads) for the parity tests; grads keyed like params.

    Jitted: compiling the one program is faster than running (and compiling) each op eagerly.
    """
    (mean_loss, (recon, kl)), grads = jax.value_and_grad(
        lambda p: loss(name, p, x, eps, subpixel), has_aux=True)(params)
    return mean_loss, recon, kl, grads
