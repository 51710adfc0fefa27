"""Evaluating a trained VAE by its log-likelihood: the importance-sampled estimate of log p(x), and active units.

The ELBO is only a bound. With K samples z_k = μ + σ·ε_k from q(z|x) and the weights of iwae.py,

    log p(x) = log E_q[ p(x|z) p(z) / q(z|x) ]  ≈  L_K(x) = logsumexp_k(log w_k) − log K,
    log w_k  = log p(x|z_k) + log p(z_k) − log q(z_k|x)

L_K is a stochastic lower bound: E[L_K] ≤ log p(x), E[L_K] grows with K, and L_K → log p(x) as K → ∞ (Burda et al.
2016, Theorem 1). Papers report the test NLL = −(1/N) Σ_n L_5000(x_n) in nats per example; where the data are discrete
(binarized, or 8-bit levels) also in bits per dimension, NLL / (D · ln 2).

Stability and memory. Everything runs in float64 (the parameters are copied into a float64 twin of the model), and the
K samples of an example go through the decoder in chunks of at most `rows` rows (several examples share a chunk when
K < rows). A chunk c of K_c samples gives L_c = log (1/K_c) Σ_{k∈c} w_k (logspace.log_mean_exp, max-subtracted); chunks
combine exactly as

    L_K = logsumexp_c(L_c + log K_c) − log K

so memory is bounded by `rows`, not by K or N: a pass holds rows × (3Z + Σ U + 3·k·D) float64 values (ε, z, each
layer's output, the likelihood's outputs, their gradient and the repeated x), 2000 × 2843 × 8 B ≈ 45 MB for
784-200-200-50 with a Bernoulli decoder, and the previous pass's arrays are still alive while the next is allocated;
plus the test set in float64, N·D·8 bytes. `evaluate` reports its measured peak (tracemalloc) as peak_memory_mb;
measured figures and times are in docs/performance.md.

Reproducibility. Example n draws its ε from its own Generator default_rng([seed, 3, n]), so the estimate does not
depend on `rows` and the first K samples of a K' > K run are those of the K run. Binarized data (training with
dynamic binarization) is binarized once, x ~ Bernoulli(pixel) with default_rng([seed, 2]): the ELBO and all K samples
see the same {0, 1} images, and the same seed gives the same figure.

Over MPI (`mpiexec -n N minivae evaluate`) each rank takes a contiguous share of the examples, cut between the
decoder passes (and the 500-example batches of the ELBO and μ), so every pass computes what it computes in one
process; the per-example values are gathered in example order and reduced as one process reduces them: the same
figures, bit for bit.

Also reported, on the same images:
    elbo          (1/N) Σ_n [log p(x_n|z_n) − KL_n], one sample z_n (its ε is the example's first ε_0), closed-form KL:
                  the estimator the training log uses for its test loss
    elbo_mean_k   (1/N) Σ_n (1/K) Σ_k log w_nk: the ELBO (sampled KL) averaged over all K samples, ≥ NLL per example
                  (Jensen), so nll ≤ −elbo_mean_k holds exactly, not only in expectation
    active units  (Burda et al. 2016, §5.2) A_u = Cov_x(E_{q(u|x)}[u]) = the variance over the test set of the posterior
                  mean μ_u(x); unit u is active when A_u > 0.01. Two stochastic layers: counted per layer, μ₁(x) and
                  μ₂(μ₁(x)) (active_units_per_layer; active_units is their sum).

Two stochastic layers (hvae.py): the weights include both, log w = log p(x|z₁) + log p(z₁|z₂) + log p(z₂)
− log q(z₁|x) − log q(z₂|z₁), every term sampled; the one-sample elbo has the top KL in closed form.
"""
import math
import sys
import time
import tracemalloc

import numpy as np
from tqdm import tqdm

from .budget import evaluation_bytes, require
from .distributed import LOCAL, world
from .errors import MinivaeError
from .likelihoods import reports_bits_per_dim
from .logspace import logsumexp
from .models import build_from_config
from .objectives import iwae_pair
from .settings import check, non_negative_int, positive_int

BINARIZE_SEED_OFFSET = 2  # the test set is binarized with default_rng([seed, 2])
NOISE_SEED_OFFSET = 3     # example n draws its ε from default_rng([seed, 3, n])
ACTIVE_THRESHOLD = 0.01
BATCH = 500  # examples per pass of the single-sample ELBO and of the encoder for μ


def float64_twin(vae):
    """A float64 copy of `vae` (same config and parameter values), for evaluation."""
    if vae.dtype == np.float64:
        return vae
    twin = build_from_config({**vae.config, "dtype": "float64"}, rng=np.random.default_rng(0), engine=vae.engine)
    for name, p in vae.params.items():
        twin.params[name][...] = p
    return twin


def evaluation_data(vae, images, seed, binarize):
    """uint8 test images -> float64 data as the likelihood models it, binarized once with default_rng([seed, 2])."""
    x = vae.likelihood.from_uint8(images, dtype=np.float64) if images.dtype == np.uint8 else images.astype(np.float64)
    if binarize:
        rng = np.random.default_rng([seed, BINARIZE_SEED_OFFSET])
        x = (rng.random(x.shape) < x).astype(np.float64)
    return x


def example_generators(seed, first, count):
    """The noise Generators of examples first..first+count−1: default_rng([seed, 3, n]) each."""
    return [np.random.default_rng([seed, NOISE_SEED_OFFSET, n]) for n in range(first, first + count)]


def draw_noise(generators, size, latent):
    """The next `size` ε of each example's Generator: (count, size, Z) float64."""
    return np.stack([g.standard_normal((size, latent)) for g in generators])


def combine_chunks(bounds, sizes):
    """L_K from chunk bounds L_c (B, C) over K_c samples each (C,): logsumexp_c(L_c + log K_c) − log K.   -> (B,)."""
    return logsumexp(bounds + np.log(sizes), axis=1) - np.log(np.sum(sizes))


def passes(k, rows):
    """(samples per decoder pass and example, examples per decoder pass) for K samples and `rows` rows a pass."""
    chunk = min(k, rows)
    return chunk, max(1, rows // chunk)


def importance_sampled_log_likelihood(vae, x, k, seed, rows=2000, bar=None, first_index=0):
    """Per example of x (N, ...): L_K (N,), the K-sample estimate of log p(x), and (1/K) Σ_k log w_k (N,), in nats.

    `vae` should be float64 (see float64_twin). `bar`: a tqdm bar advanced by the examples done. `first_index`: the
    index of x[0] in the whole test set (its noise Generator's number).
    """
    N, Z = len(x), vae.noise_size
    chunk, per_pass = passes(k, rows)
    starts = list(range(0, k, chunk))
    sizes = np.array([min(chunk, k - s) for s in starts], dtype=np.float64)
    log_px, mean_log_w = np.empty(N), np.empty(N)
    for first in range(0, N, per_pass):
        xb = x[first:first + per_pass]
        B = len(xb)
        bounds, total = np.empty((B, len(starts))), np.zeros(B)
        generators = example_generators(seed, first_index + first, B)
        for c in range(len(starts)):
            eps = draw_noise(generators, int(sizes[c]), Z)                          # (B, K_c, Z)
            terms, _ = iwae_pair(vae)[0](vae, xb, eps)
            bounds[:, c] = terms.bound
            total -= (terms.recon + terms.kl) * sizes[c]  # recon + kl = mean over the chunk of −log w
        log_px[first:first + B] = combine_chunks(bounds, sizes)
        mean_log_w[first:first + B] = total / k
        if bar is not None:
            bar.update(B)
    return log_px, mean_log_w


def single_sample_elbo(vae, x, seed, batch_size=BATCH, first_index=0):
    """Per example: recon and KL (the closed form) of one sample, ε = the example's first ε_0 -> (recon, kl) (N,)."""
    recon, kl = np.empty(len(x)), np.empty(len(x))
    for first in range(0, len(x), batch_size):
        xb = x[first:first + batch_size]
        t = vae.forward(xb, draw_noise(example_generators(seed, first_index + first, len(xb)), 1, vae.noise_size)[:, 0])
        recon[first:first + len(xb)], kl[first:first + len(xb)] = t.recon, t.kl
    return recon, kl


def active_units(vae, x, threshold=ACTIVE_THRESHOLD, batch_size=BATCH, world=LOCAL):
    """(active units per stochastic layer [n₁, …], A_u (Σ Z,)): A_u = Var_x μ_u(x) over the examples x, active when
    A_u > threshold; the layers' means are vae.encode's μ, or both of a two-layer model's `posterior_means`."""
    sizes = getattr(vae, "latents", (vae.latent,))
    per_layer = [[] for _ in sizes]
    lo, hi = world.split(len(x), batch_size)
    for i in range(lo, hi, batch_size):
        xb = x[i:i + batch_size]
        means = vae.posterior_means(xb)[:2] if hasattr(vae, "posterior_means") else vae.encode(xb)[:1]
        for layer, mu in zip(per_layer, means):
            layer.append(mu)
    variances = [np.var(world.gather(np.concatenate(layer or [np.empty((0, Z))])), axis=0)
                 for layer, Z in zip(per_layer, sizes)]
    return [int(np.sum(v > threshold)) for v in variances], np.concatenate(variances)


def evaluate(vae, images, *, k=5000, seed=0, binarize=False, rows=2000, quiet=True):
    """Test NLL (K-sample importance estimate), ELBO, KL and active units of `vae` on `images` -> dict (nats/example).

    Keys: nll, nll_stderr (the standard error of the mean over examples), bits_per_dim (None for continuous data),
    elbo, recon, kl, elbo_mean_k, active_units, latent, k, n, rows, peak_memory_mb (this rank's), seconds, ranks
    (MPI processes that shared the work).
    """
    k, rows = check("k", positive_int, k), check("rows", positive_int, rows)
    seed = check("seed", non_negative_int, seed)
    require(evaluation_bytes(vae.config, min(rows, k * len(images)), len(images)),
            f"evaluating {len(images)} images with rows={rows}")
    start = time.perf_counter()
    tracing = not tracemalloc.is_tracing()
    if tracing:
        tracemalloc.start()
    try:
        model = float64_twin(vae)
        x = evaluation_data(model, images, seed, binarize)
        model.likelihood.check_data(x.reshape(len(x), -1))
        w = world()
        lo, hi = w.split(len(x), BATCH)
        recon, kl = (w.gather(a) for a in single_sample_elbo(model, x[lo:hi], seed, first_index=lo))
        lo, hi = w.split(len(x), passes(k, rows)[1])
        bar = tqdm(total=hi - lo, desc=f"log p(x), K={k}", unit="image", file=sys.stderr, leave=False,
                   dynamic_ncols=True, disable=quiet or w.rank > 0 or not sys.stderr.isatty())
        try:
            log_px, mean_log_w = importance_sampled_log_likelihood(model, x[lo:hi], k, seed, rows, bar, first_index=lo)
        finally:
            bar.close()
        log_px, mean_log_w = w.gather(log_px), w.gather(mean_log_w)
        per_layer, variance = active_units(model, x, world=w)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if tracing:
            tracemalloc.stop()
    nll, D = -float(np.mean(log_px)), x[0].size
    discrete = reports_bits_per_dim(model.likelihood, binarize)
    return {"nll": nll, "nll_stderr": float(np.std(log_px) / math.sqrt(len(x))),
            "bits_per_dim": nll / (D * math.log(2)) if discrete else None,
            "elbo": -float(np.mean(recon + kl)), "recon": float(np.mean(recon)), "kl": float(np.mean(kl)),
            "elbo_mean_k": float(np.mean(mean_log_w)), "active_units": sum(per_layer),
            "active_units_per_layer": per_layer, "latent": int(variance.size),
            "unit_variances": variance.tolist(), "k": int(k), "n": len(x), "rows": int(rows), "seed": int(seed),
            "binarize": bool(binarize), "peak_memory_mb": peak / 2 ** 20, "seconds": time.perf_counter() - start,
            "ranks": w.size}


def evaluate_checkpoint(path, *, data_dir=None, k=5000, n_test=None, rows=2000, seed=None, quiet=True):
    """`evaluate` a checkpoint on the test split of the data set it was trained on (its stored settings: data set,
    data_dir, binarize, seed, n_test); `data_dir`, `n_test` and `seed` (of the noise and binarization) override them."""
    from .checkpoint import load_checkpoint
    from .data import DATASET_NAMES, load_dataset
    from .pictures import check_images_fit
    from .rundir import checkpoint_file
    from .settings import stored_settings

    path = checkpoint_file(path)
    vae, _, meta = load_checkpoint(path)
    train = stored_settings(path, meta)
    if train.dataset not in DATASET_NAMES:
        raise MinivaeError(f"checkpoint {path} was trained on {train.dataset!r} data; evaluate needs one of "
                           f"{', '.join(DATASET_NAMES)} (or call minivae.evaluation.evaluate with the images)")
    data = load_dataset(train.dataset, data_dir if data_dir is not None else train.data_dir, seed=train.seed,
                        n_train=1, n_test=n_test if n_test is not None else train.n_test,  # shapes: the run's seed
                        **train.folder_options())
    check_images_fit(vae, data.test, "the checkpoint's model", f"the {train.dataset} test images")
    result = evaluate(vae, data.test[:], k=k, seed=train.seed if seed is None else seed, binarize=train.binarize,
                      rows=rows, quiet=quiet)
    return {"checkpoint": str(path), "dataset": train.dataset, "epoch": meta.get("epoch"), **result}
