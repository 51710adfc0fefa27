"""The reference engine (NumPy functions that read like the math) and the fast engine (Numba kernels) are one contract:
for every model × likelihood × objective, a few float64 training steps give the same loss, every gradient and the
same parameters after 10 Adam steps, to 1e-12 relative."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import minivae
from minivae.engines import FAST, REFERENCE, get_engine
from minivae.errors import MinivaeError
from minivae.likelihoods import LIKELIHOODS
from minivae.models import build_model
from minivae.objectives import make_objective
from minivae.optim import Adam

TOL = 1e-12
MODELS = {"mlp": {"image_shape": (1, 4, 4), "hidden": (6,), "latent": 3},
          "conv28": {"image_shape": (2, 4, 8), "latent": 3},
          "conv64": {"image_shape": (1, 16, 16), "latent": 2}}
# At the default σ² = 0.01 the untrained conv64's IWAE loss is ~6·10³ nats and both engines' gradients, computed
# from terms that large, agree to 2e-12; σ² = 0.1 makes it ~6·10² nats and 2e-13.
OPTIONS = {"normal-fixed": {"variance": 0.1}}


@pytest.fixture(autouse=True)
def one_blas_thread():
    """These matrices are tiny: BLAS threads would only wait for each other (and for the machine's other jobs)."""
    with threadpool_limits(1, user_api="blas"):
        yield


def rel_error(a, b):
    """‖a − b‖ / ‖b‖ over a whole tensor (Frobenius norm; 0 when both are all zero): per tensor, because an entry
    that is a near-cancelling sum holds fewer digits than its tensor in either engine's summation order."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norm = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / norm) if norm else float(np.linalg.norm(a))


def assert_same(what, got, want, tol=TOL):
    err = rel_error(got, want)
    assert err <= tol, f"{what}: fast vs reference differ by {err:.2e} relative (tolerance {tol:g})"


def iwae_tolerance(loss):
    """IWAE's weights are softmax_k(log w_k): a rounding of log w_k, about ε·|log w_k|, is a relative error in w_k,
    so its gradients agree only to ~ε·|L| times the cancellation in their sums. Measured on conv64 × discretized
    logistic (|L| ≈ 1500 nats, 10 steps, data seeds 1-3): up to 4e-12, 12·ε·|L|; the bound keeps 20·ε·|L|."""
    return max(TOL, 20 * np.finfo(np.float64).eps * float(np.max(np.abs(loss))))


def build(model, likelihood, engine):
    vae = build_model(model, rng=np.random.default_rng(0), likelihood=likelihood, dtype=np.float64,
                      likelihood_options=OPTIONS.get(likelihood), activation="tanh" if model == "mlp" else None,
                      engine=engine, **MODELS[model])
    # Adam divides by √v + ε, so a gradient entry's rounding error (~1e-16 of the sums it came from) reaches the
    # parameters multiplied by up to lr/ε; ε = 1e-6 keeps that below 1e-12, which compares the engines, not Adam.
    return vae, Adam(vae.params, eps=1e-6, update=vae.engine.adam_update)


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
@pytest.mark.parametrize("likelihood", sorted(LIKELIHOODS))
@pytest.mark.parametrize("model", sorted(MODELS))
def test_engines_agree(model, likelihood, objective, steps=10, batch=3):
    """Each step: both engines' loss and gradients at the fast run's parameters; after `steps` Adam steps of each
    engine on its own: the parameters."""
    (fast, fast_opt), (ref, ref_opt), (probe, _) = (build(model, likelihood, e) for e in ("fast", "reference",
                                                                                         "reference"))
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(batch, int(np.prod(fast.image_shape)))) / 255.0  # on the 8-bit grid: any likelihood
    obj = make_objective(objective)
    for step in range(steps):
        eps = obj.noise(rng, batch, fast.latent, np.float64)
        terms, value, grads = obj.loss_and_grads(fast, x, eps)
        for name, p in probe.params.items():
            p[...] = fast.params[name]
        probe_terms, probe_value, probe_grads = obj.loss_and_grads(probe, x, eps)
        assert_same(f"step {step} objective", value, probe_value)
        assert_same(f"step {step} loss per example", terms.loss, probe_terms.loss)
        tol = iwae_tolerance(terms.loss) if objective == "iwae" else TOL
        for name in grads:
            assert_same(f"step {step} gradient {name}", grads[name], probe_grads[name], tol)
        fast_opt.step(grads)
        ref_opt.step(obj.loss_and_grads(ref, x, eps)[2])
    for name, p in ref.params.items():
        assert_same(f"parameter {name} after {steps} Adam steps", fast.params[name], p)


def test_free_bits_and_beta_agree():
    """The (B, Z) KL weights of free bits go through both engines' sampler backward alike."""
    results = []
    for engine in ("fast", "reference"):
        vae = build_model("mlp", rng=np.random.default_rng(0), dtype=np.float64, engine=engine, **MODELS["mlp"])
        rng = np.random.default_rng(1)
        x = rng.random((4, 16))
        obj = make_objective("elbo", beta=2.0, free_bits=0.05)
        _, value, grads = obj.loss_and_grads(vae, x, obj.noise(rng, 4, vae.latent, np.float64))
        results.append((value, {k: g.copy() for k, g in grads.items()}))
    (f_value, f_grads), (r_value, r_grads) = results
    assert_same("free-bits objective", f_value, r_value)
    for name in r_grads:
        assert_same(f"free-bits gradient {name}", f_grads[name], r_grads[name])


def test_engine_builds_its_layers():
    for engine, dense in ((FAST, minivae.layers.FastDense), (REFERENCE, minivae.layers.Dense)):
        vae = build_model("mlp", rng=np.random.default_rng(0), engine=engine.name, **MODELS["mlp"])
        assert vae.engine is engine and all(type(layer) is dense for layer in vae.encoder.layers)
    assert get_engine(FAST) is FAST
    with pytest.raises(MinivaeError, match="unknown engine 'numpy'"):
        get_engine("numpy")


def test_train_with_the_reference_engine(tmp_path):
    """`minivae.train(engine="reference")` trains, records its engine, and follows the fast run to rounding."""
    rng = np.random.default_rng(0)
    data = (rng.integers(0, 256, (12, 1, 4, 4), dtype=np.uint8), rng.integers(0, 256, (6, 1, 4, 4), dtype=np.uint8))
    runs = {engine: minivae.train(tmp_path / engine, data=data, epochs=2, batch_size=4, hidden=(5,), latent=2,
                                  dtype="float64", engine=engine, quiet=True) for engine in ("fast", "reference")}
    for key in ("train_loss", "test_loss"):
        assert_same(key, [r[key] for r in runs["fast"].metrics], [r[key] for r in runs["reference"].metrics])
    _, _, meta = minivae.load_checkpoint(tmp_path / "reference" / "checkpoint.npz")
    assert meta["train"]["engine"] == "reference"
