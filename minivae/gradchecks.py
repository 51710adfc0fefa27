"""Finite-difference gradient checks, in float64, of every layer and of the whole ELBO.

The numerical derivative is the fourth-order central difference

    f'(θ) ≈ [f(θ − 2h) − 8 f(θ − h) + 8 f(θ + h) − f(θ + 2h)] / (12 h),   error O(h⁴),

which lets h be large enough (1e-3) that floating-point cancellation stays near 1e-13 while the truncation error
stays below that too. f may be array-valued; the stencil is applied to each entry before the entries are summed,
so entries that θ does not affect cancel exactly instead of adding rounding noise (a gradient that is exactly 0,
as in ReLU's flat half, must come out as 0). The comparison is the relative error |a − n| / max(1e-8, |a| + |n|), which must be ≤ 1e-7
everywhere. Activations with kinks (ReLU) are checked at points away from the kink, and models in the whole-ELBO
checks use smooth activations, because a difference quotient that straddles a kink measures nothing.

`run_all()` is what `minivae gradcheck` prints; tests call the same checks one by one.
"""
import numpy as np

from .activations import ACTIVATIONS, bias_act_backward, bias_act_forward
from .gaussian import (gaussian_kl, gaussian_kl_backward, gaussian_kl_per_dimension, gaussian_log_density,
                       gaussian_log_density_backward, reparameterize, reparameterize_backward)
from .layers.dense import dense_backward, dense_forward
from .likelihoods import LIKELIHOODS, get_likelihood
from .models import build_model

TOLERANCE = 1e-7
STEP = 1e-3


def numerical_gradient(f, theta, h=STEP):
    """∂(Σ f)/∂θ by fourth-order central differences; f() reads θ (modified in place and restored)."""
    grad = np.zeros_like(theta)
    flat, gflat = theta.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        vals = []
        for k in (-2, -1, 1, 2):
            flat[i] = orig + k * h
            vals.append(f())
        flat[i] = orig
        gflat[i] = np.sum((vals[0] - vals[3]) - 8 * (vals[1] - vals[2])) / (12 * h)
    return grad


def max_rel_error(analytic, numeric, floor=1e-8):
    """max |a − n| / max(floor, |a| + |n|) over all entries, and the index where it occurs."""
    err = np.abs(analytic - numeric) / np.maximum(floor, np.abs(analytic) + np.abs(numeric))
    i = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
    return (float(err[i]) if err.size else 0.0), i


def check_function(forward, backward, inputs, seed=0):
    """Check `backward` against finite differences of L = Σ w ⊙ forward(*inputs) for a fixed random w.

    forward(*inputs) -> y; backward(dy, *inputs) -> tuple of dL/d(input) (None for inputs not differentiated).
    Returns {input index: max relative error}.
    """
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(np.shape(forward(*inputs)))
    analytic = backward(w, *inputs)
    errors = {}
    for j, a in enumerate(analytic):
        if a is not None:
            errors[j] = max_rel_error(a, numerical_gradient(lambda: w * forward(*inputs), inputs[j]))[0]
    return errors


def away_from_zero(rng, shape, margin=0.05):
    """Normal samples pushed at least `margin` away from 0 (so ReLU's kink is never straddled)."""
    x = rng.standard_normal(shape)
    return x + np.sign(x) * margin


def layer_checks(seed=0):
    """(name, max relative error) for every activation, the dense layer, the sampler, the KL and each likelihood."""
    rng = np.random.default_rng(seed)
    results = []
    for act in ACTIVATIONS:
        z, b = away_from_zero(rng, (3, 2, 4)), np.zeros(4)  # (N, S, C), channels last
        errs = check_function(lambda z, b: bias_act_forward(z, b, act),
                              lambda dy, z, b: bias_act_backward(dy, bias_act_forward(z, b, act), act), [z, b])
        results.append((f"activation {act} (z, b)", max(errs.values())))
    x, W, b = rng.standard_normal((5, 6)), rng.standard_normal((6, 4)) * 0.5, rng.standard_normal(4)
    for act in ("identity", "tanh", "softplus"):
        errs = check_function(lambda x, W, b: dense_forward(x, W, b, act),
                              lambda dy, x, W, b: dense_backward(dy, x, W, dense_forward(x, W, b, act), act),
                              [x, W, b])
        results.append((f"dense {act} (x, W, b)", max(errs.values())))
    mu, logvar, eps = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    errs = check_function(lambda mu, lv, e: reparameterize(mu, lv, e),
                          lambda dz, mu, lv, e: (*reparameterize_backward(dz, lv, e), None), [mu, logvar, eps])
    results.append(("reparameterize (mu, logvar)", max(errs.values())))
    errs = check_function(gaussian_kl, gaussian_kl_backward, [mu, logvar])
    results.append(("gaussian_kl (mu, logvar)", max(errs.values())))
    errs = check_function(gaussian_log_density, gaussian_log_density_backward, [eps, mu, logvar])
    results.append(("gaussian_log_density (z, mu, logvar)", max(errs.values())))
    for name in LIKELIHOODS:
        lik = get_likelihood(name)
        for label, (out, x) in likelihood_points(lik, rng).items():
            errs = check_function(lambda out, x: lik.log_prob(out, x),
                                  lambda dlp, out, x: (dlp[:, None] * lik.log_prob_backward(out, x), None), [out, x])
            results.append((f"likelihood {name} {label}", max(errs.values())))
    return results


def likelihood_points(lik, rng):
    """Network outputs and data at which to check a likelihood's gradient: typical values and hard regions."""
    # ---- likelihoods (issue 5): each names its own hard regions (logits ±30, λ near ½, levels 0 and 255, the
    # variance floor) next to the math that makes them hard; see their gradcheck_points docstrings.
    if hasattr(lik, "gradcheck_points"):
        return lik.gradcheck_points(rng)
    # ---- end likelihoods
    x = lik.from_uint8(rng.integers(0, 256, size=(3, 5)), dtype=np.float64)
    k = lik.outputs_per_value
    return {"typical": (rng.standard_normal((3, k * 5)), x),
            "logits ±30": (np.concatenate([np.full((3, k * 5 // 2), 30.0), np.full((3, k * 5 - k * 5 // 2), -30.0)], 1)
                           + rng.uniform(-0.5, 0.5, (3, k * 5)), x)}


def elbo_check(model="mlp", seed=0, **kwargs):
    """Max relative error of the whole ELBO's gradient w.r.t. every parameter (float64), per parameter."""
    rng = np.random.default_rng(seed)
    vae = build_model(model, rng=rng, dtype=np.float64, **kwargs)
    lik = vae.likelihood
    B = 3
    x = lik.from_uint8(rng.integers(0, 256, size=(B, *vae.image_shape)), dtype=np.float64)
    eps = rng.standard_normal((B, vae.latent))

    def loss():
        return vae.forward(x, eps).loss / B  # per example, so that the batch mean is their sum

    size = float(np.sum(np.abs(loss())))
    grads = {k: g.copy() for k, g in vae.backward().items()}
    # The 4-point differences resolve ∂L/∂θ only to 1.5·ε·|L| / h (L rounded in each evaluation): entries smaller
    # than that resolution / TOLERANCE are compared against it, as their relative error is below what they can see.
    floor = max(1e-8, 1.5 * np.finfo(np.float64).eps * size / (STEP * TOLERANCE))
    label = f"elbo {model} {vae.config['activation']} {vae.config['likelihood']}"
    return [(f"{label} {name}", max_rel_error(grads[name], numerical_gradient(loss, theta), floor)[0])
            for name, theta in vae.params.items()]


def objective_checks(seed=0, **model):
    """(name, max relative error over every parameter) for each training objective of objectives.py (float64).

    IWAE with K = 4 and K = 1; β = 0.5 part-way through a warm-up (β_t = 0.175); free bits with the floor λ placed
    between the dimensions' batch-mean KLs, so that some dimensions sit below it and some above, none near it (max is
    not differentiable at the floor).
    """
    from .objectives import make_objective
    model = model or {"image_shape": (1, 4, 3), "latent": 4, "hidden": (6, 5), "activation": "tanh"}
    results = []
    for label, settings, epochs_done in (("iwae K=4", {"name": "iwae", "k": 4}, None),
                                         ("iwae K=1", {"name": "iwae", "k": 1}, None),
                                         ("beta 0.5 warmup 2 at epoch 0.7", {"beta": 0.5, "warmup": 2}, 0.7),
                                         ("free bits", {}, None)):
        rng = np.random.default_rng(seed)
        vae = build_model("mlp", rng=rng, dtype=np.float64, **model)
        B = 3
        x = vae.likelihood.from_uint8(rng.integers(0, 256, size=(B, *vae.image_shape)), dtype=np.float64)
        objective = make_objective(**settings)
        eps = objective.noise(rng, B, vae.latent, np.float64)
        if label == "free bits":
            vae.forward(x, eps)
            kl_dims = np.sort(gaussian_kl_per_dimension(*vae.posterior()).mean(0))       # needs Z ≥ 2
            objective = make_objective(free_bits=float(kl_dims[vae.latent // 2 - 1:][:2].mean()))
        done = np.inf if epochs_done is None else epochs_done

        def value():
            return objective.loss_and_grads(vae, x, eps, done)[1]

        grads = {k: g.copy() for k, g in objective.loss_and_grads(vae, x, eps, done)[2].items()}
        err = max(max_rel_error(grads[name], numerical_gradient(value, theta))[0]
                  for name, theta in vae.params.items())
        results.append((f"objective {label} (every parameter)", err))
    return results


def two_layer_checks(seed=0):
    """(name, max relative error over every parameter) of the two-stochastic-layer model (hvae.py, float64): its
    ELBO (top KL in closed form), the ELBO at β = 0.5 and its IWAE bound at K = 4 and K = 1 (every term sampled)."""
    from .objectives import make_objective
    results = []
    for label, settings in (("elbo", {}), ("elbo beta 0.5", {"beta": 0.5}), ("iwae K=4", {"name": "iwae", "k": 4}),
                            ("iwae K=1", {"name": "iwae", "k": 1})):
        rng = np.random.default_rng(seed)
        vae = build_model("mlp2", rng=rng, dtype=np.float64, image_shape=(1, 4, 3), latent=(4, 3),
                          hidden=((6, 5), (5, 4)))
        x = vae.likelihood.from_uint8(rng.integers(0, 256, size=(3, *vae.image_shape)), dtype=np.float64)
        objective = make_objective(**settings)
        eps = objective.noise(rng, len(x), vae.noise_size, np.float64)

        def value():
            return objective.loss_and_grads(vae, x, eps)[1]

        grads = {k: g.copy() for k, g in objective.loss_and_grads(vae, x, eps)[2].items()}
        err = max(max_rel_error(grads[name], numerical_gradient(value, theta))[0]
                  for name, theta in vae.params.items())
        results.append((f"two stochastic layers {label} (every parameter)", err))
    return results


# ---------------------------------------------------------------- convolutions

CONV_CONFIGS = [  # (kernel, stride, padding, image H×W): both strides and paddings, kernels 1–5, odd and even sizes
    (1, 1, 0, (4, 3)), (2, 2, 1, (5, 4)), (3, 1, 1, (5, 6)), (3, 2, 0, (7, 6)), (4, 2, 1, (6, 5)), (5, 1, 0, (6, 7)),
    (5, 2, 1, (7, 8)),
]


def conv_layer_check(kind, k, stride, padding, image, activation="tanh", bias=True, seed=0):
    """Max relative error of conv2d_backward / conv_transpose2d_backward (the NumPy specification) against finite
    differences w.r.t. x, W and b, float64, batch 2 with 2 input and 3 output channels; kind "conv" or "convT".
    W is scaled like PyTorch's init (1/√(C_in·k²)), keeping pre-activations O(1): larger ones push tanh's higher
    derivatives, hence the difference quotient's truncation error, up to where near-cancelling dW entries fail."""
    from .layers.conv2d import conv2d_backward, conv2d_forward
    from .layers.conv_transpose2d import conv_transpose2d_backward, conv_transpose2d_forward
    forward, backward = ((conv2d_forward, conv2d_backward) if kind == "conv" else
                         (conv_transpose2d_forward, conv_transpose2d_backward))
    rng = np.random.default_rng(seed)
    C_in, C_out = 2, 3
    x = rng.standard_normal((2, C_in, *image))
    W = rng.standard_normal((C_out, C_in, k, k) if kind == "conv" else (C_in, C_out, k, k)) / np.sqrt(C_in * k * k)
    b = rng.standard_normal(C_out) if bias else np.zeros(C_out)

    def f(x, W, b):
        return forward(x, W, b, stride, padding, activation)

    def df(dy, x, W, b):
        dx, dW, db = backward(dy, x, W, f(x, W, b), stride, padding, activation)
        return dx, dW, db if bias else None
    return max(check_function(f, df, [x, W, b], seed=seed).values())


def conv_layer_checks(seed=0):
    """(name, max relative error) of Conv2d and ConvTranspose2d over CONV_CONFIGS."""
    return [(f"{kind} k{k} s{s} p{p} {image[0]}x{image[1]} (x, W, b)",
             conv_layer_check(kind, k, s, p, image, seed=seed))
            for kind in ("conv", "convT") for k, s, p, image in CONV_CONFIGS]


def tiny_conv_vae(rng, dtype=np.float64, activation="tanh", likelihood="bernoulli", engine="fast"):
    """A conv VAE small enough for finite differences (≈ 400 parameters) on 1×5×5 images, built from the same
    layers as conv28 (of `engine`): a stride-1 and a stride-2 convolution, Flatten, Dense; and the mirror image
    with transposed convolutions. Smooth activations only (see the module docstring)."""
    from .elbo import VAE
    from .engines import get_engine
    from .layers import Flatten, Reshape, Sequential
    engine = get_engine(engine)
    Conv2d, ConvTranspose2d, Dense = engine.Conv2d, engine.ConvTranspose2d, engine.Dense
    lik = get_likelihood(likelihood)
    Z, kw = 2, {"rng": rng, "dtype": dtype}
    encoder = Sequential([Conv2d(1, 2, 3, 1, 1, "softplus", **kw), Conv2d(2, 3, 3, 2, 1, activation, **kw), Flatten(),
                          Dense(27, 2 * Z, **kw)])
    decoder = Sequential([Dense(Z, 27, activation, **kw), Reshape((3, 3, 3)),
                          ConvTranspose2d(3, 2, 3, 2, 1, activation, **kw),
                          ConvTranspose2d(2, lik.outputs_per_value, 3, 1, 1, **kw)])
    config = {"model": "tiny conv (gradcheck)", "activation": activation, "likelihood": likelihood}
    return VAE(encoder, decoder, lik, Z, (1, 5, 5), (1, 5, 5), config, engine)


def conv_elbo_check(seed=0, activation="tanh"):
    """Max relative error of the whole conv ELBO's gradient w.r.t. every parameter of `tiny_conv_vae` (float64)."""
    rng = np.random.default_rng(seed)
    vae = tiny_conv_vae(rng, activation=activation)
    B = 3
    x = vae.likelihood.from_uint8(rng.integers(0, 256, size=(B, *vae.image_shape)), dtype=np.float64)
    eps = rng.standard_normal((B, vae.latent))

    def loss():
        return vae.forward(x, eps).loss / B

    loss()
    grads = {k: g.copy() for k, g in vae.backward().items()}
    return [(f"elbo tiny conv {activation} {name}", max_rel_error(grads[name], numerical_gradient(loss, theta))[0])
            for name, theta in vae.params.items()]


def conv_checks():
    """The convolution layers over CONV_CONFIGS, then the whole ELBO of a tiny conv VAE."""
    return [*conv_layer_checks(), *conv_elbo_check()]


def run_all():
    """Every check `minivae gradcheck` runs: the layers, then whole-ELBO checks of small smooth models."""
    small_mlp = {"image_shape": (1, 4, 3), "latent": 3, "hidden": (6, 5), "activation": "tanh"}
    return [*layer_checks(), *elbo_check("mlp", **small_mlp),
            *elbo_check("mlp", **{**small_mlp, "activation": "softplus"}),
            *elbo_check("linear", image_shape=(1, 4, 3), latent=3, likelihood="normal"), *objective_checks(),
            *two_layer_checks(), *conv_checks()]
