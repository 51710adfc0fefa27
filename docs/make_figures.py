"""Every figure and number in docs/derivation/, from one seeded run: trains the small models it needs on MNIST.

    python docs/make_figures.py [--size full|small] [--out docs] [--data-dir DIR/mnist]

writes <out>/figures/*.png and <out>/figures/numbers.json, and rewrites each block of <out>/derivation/*.md between
`<!-- make_figures: NAME -->` and `<!-- /make_figures -->` with the table NAME (an unknown NAME is an error). Run it
from the repository root; `--size small` (tests/test_make_figures.py) trains on a few hundred images in seconds.
MNIST comes from --data-dir, else $MINIVAE_SHARED_DATA/mnist, else ../shared/data/mnist.
"""
import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import minivae
from minivae.data import load_dataset
from minivae.evaluation import evaluation_data, float64_twin, importance_sampled_log_likelihood
from minivae.images import save_grid
from minivae.iwae import gaussian_log_prior, iwae_forward, log_mean_exp, log_mean_exp_stderr
from minivae.pictures import decode_pictures
from minivae.plots import plot
from minivae.ppca import exact_elbo, linear_vae_parameters, ppca_log_likelihood, ppca_ml

SIZES = {  # training images, epochs, hidden width (the categorical's: its last layer has 256·784 outputs), test
           # images, prior samples (ch. 2), posterior samples (ch. 2), samples per gradient estimate (ch. 5), test
           # images for chapters 2 and 5, the largest K (ch. 8)
    "small": {"n_train": 256, "epochs": 1, "hidden": 32, "hidden_categorical": 16, "n_test": 20, "prior_k": 1000,
              "iw_k": 100, "grad_samples": 100, "images": 2, "k_max": 64},
    "full": {"n_train": 10000, "epochs": 3, "hidden": 200, "hidden_categorical": 64, "n_test": 500,
             "prior_k": 50000, "iw_k": 5000, "grad_samples": 2000, "images": 5, "k_max": 4096},
}
LIKELIHOOD_RUNS = (("bernoulli", True), ("continuous-bernoulli", False), ("normal-fixed", False), ("normal", False),
                   ("categorical", False), ("discretized-logistic", False))
LN2 = math.log(2)


def table(header, rows):
    """A Markdown table."""
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)])


# ---------------------------------------------------------------- the models

def train_model(work, name, data_dir, size, seed, **settings):
    """Train an mlp (unless `model` is given) on MNIST with `settings`; returns its float32 VAE."""
    kwargs = {"dataset": "mnist", "data_dir": str(data_dir), "n_train": size["n_train"], "n_test": size["n_test"],
              "epochs": size["epochs"], "hidden": (size["hidden"],), "seed": seed, "quiet": True, **settings}
    if kwargs.get("model") == "linear":
        del kwargs["hidden"]
    start = time.perf_counter()
    result = minivae.train(work / name, **kwargs)
    print(f"  trained {name}: test -ELBO {result.metrics[-1]['test_loss']:.2f} nats "
          f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return result.vae, result.metrics[-1]


def decoder_log_px_given_z(vae, x, z):
    """log p(x|z) for one example x (D,) at each row of z (S, Z), and ∂ log p/∂z (S, Z)."""
    out = vae.decoder.forward(z)
    nll, dout = vae.likelihood.nll_and_grad(out.reshape(len(z), -1), np.repeat(x[None], len(z), 0), 1.0)
    return -nll, -vae.decoder.backward(dout.reshape(out.shape))


# ---------------------------------------------------------------- chapter 1: the product of probabilities

def underflow(models):
    """−Σ log p and Π p (float64 and float32) of one test image's D pixel probabilities p(x_d|z = μ(x))."""
    rows, numbers = [], {}
    for label, vae, x in models:
        mu, _ = vae.encode(x[:1])
        out = vae.decode(mu)
        lik = vae.likelihood
        logp = per_value_log_prob(lik, out, x[:1])
        p = np.exp(logp)
        prod64, prod32 = float(np.prod(p)), float(np.prod(p.astype(np.float32), dtype=np.float32))
        batch = -float(np.sum(lik.log_prob(vae.decode(vae.encode(x)[0]), x)))
        numbers[label] = {"nats": -float(logp.sum()), "product_float64": prod64, "product_float32": prod32,
                          "batch_nats": batch, "batch": len(x)}
        rows.append([label, f"{-logp.sum():.1f}", f"{prod64:.3g}", f"{prod32:.3g}",
                     f"{batch:.0f} (e^−{batch:.0f} = {'0.0' if batch > 745 else f'{math.exp(-batch):.3g}'})"])
    return table(["model (one MNIST test image, z = μ(x))", "−Σ_d log p(x_d|z), nats", "Π_d p(x_d|z), float64",
                  "float32", f"−Σ log p over the {len(models[0][2])} test images, nats"], rows), numbers


def per_value_log_prob(lik, out, x):
    """log p(x_d|z) of each of the D values of one example, through the likelihood's own log_prob: value d's k
    parameters (columns j·D + d) become a one-value example.   out (1, k·D), x (1, D) -> (D,)."""
    D = x.shape[1]
    return lik.log_prob(out.reshape(-1, D).T.copy(), x.reshape(D, 1))


# ---------------------------------------------------------------- chapter 2: prior sampling

def prior_sampling(models, x, size, seed):
    """For each model and test image: log p(x) from K prior samples vs from K_q posterior samples (L_K), the prior
    estimate's standard error and effective sample size, and the prior samples needed for a 0.1-nat error."""
    rows, numbers = [], []
    for label, vae in models:
        vae64 = float64_twin(vae)
        iw, _ = importance_sampled_log_likelihood(vae64, x[:size["images"]], size["iw_k"], seed)
        for n in range(size["images"]):
            rng = np.random.default_rng([seed, 7, n])
            chunk = min(10000, size["prior_k"])  # decoder rows at a time
            log_w = np.concatenate([decoder_log_px_given_z(vae64, x[n], rng.standard_normal((chunk, vae.latent)))[0]
                                    for _ in range(size["prior_k"] // chunk)])
            K = len(log_w)
            est, se = float(log_mean_exp(log_w)), float(log_mean_exp_stderr(log_w))
            w = np.exp(log_w - log_w.max())
            ess = float(w.sum() ** 2 / np.sum(w * w))
            needed = se ** 2 * K / 0.01
            numbers.append({"model": label, "image": n, "prior_estimate": est, "prior_stderr": se, "prior_k": K,
                            "ess": ess, "needed_for_0.1": needed, "importance_sampled": float(iw[n]),
                            "iw_k": size["iw_k"]})
            rows.append([label, n, f"{iw[n]:.2f}", f"{est:.2f} ± {se:.2f}", f"{ess:.1f}", f"{needed:.2g}"])
    return table(["model", "test image", f"L_K, K = {size['iw_k']} from q(z|x)",
                  f"prior estimate, K = {size['prior_k']} (± SE)", "effective sample size",
                  "prior samples for SE 0.1 nats (at least)"], rows), numbers


# ---------------------------------------------------------------- chapter 5: gradient variance

def gradient_variance(vae, x, size, seed, path):
    """Per latent dimension, the variance of the one-sample estimates of ∂/∂μ_j E_q[log p(x|z)]: reparametrized,
    score function (REINFORCE), and score function with the mean of the other samples as baseline; mean over images."""
    vae64 = float64_twin(vae)
    S, Z = size["grad_samples"], vae.latent
    var = {"reparametrization": np.zeros(Z), "score function": np.zeros(Z), "score function, baseline": np.zeros(Z)}
    means = {k: np.zeros(Z) for k in var}
    for n in range(size["images"]):
        mu, logvar = (a[0] for a in vae64.encode(x[n:n + 1]))
        sigma = np.exp(0.5 * logvar)
        eps = np.random.default_rng([seed, 5, n]).standard_normal((S, Z))
        f, dfdz = decoder_log_px_given_z(vae64, x[n], mu + sigma * eps)
        score = eps / sigma                                          # ∂ log q(z|x)/∂μ at z = μ + σε
        baseline = (f.sum() - f) / (S - 1)                           # leave-one-out mean
        for key, g in (("reparametrization", dfdz), ("score function", f[:, None] * score),
                       ("score function, baseline", (f - baseline)[:, None] * score)):
            var[key] += g.var(axis=0) / size["images"]
            means[key] += g.mean(axis=0) / size["images"]
    order = np.argsort(-var["reparametrization"])
    dims = list(range(1, Z + 1))
    plot(path, f"Var of one-sample d/dmu_j E_q[log p(x|z)], {size['images']} test images, {S} samples",
         "latent dimension j (sorted)", "variance", {k: (dims, v[order]) for k, v in var.items()}, logy=True)
    ratio = var["score function"] / var["reparametrization"]
    ratio_b = var["score function, baseline"] / var["reparametrization"]
    numbers = {k: v.tolist() for k, v in var.items()}
    numbers.update({"median_ratio": float(np.median(ratio)), "median_ratio_baseline": float(np.median(ratio_b)),
                    "samples": S})
    rows = [[k, f"{np.median(v):.3g}", f"{v.min():.3g} – {v.max():.3g}"] for k, v in var.items()]
    rows.append(["score function ÷ reparametrization", f"{np.median(ratio):.3g}", f"{ratio.min():.3g} – {ratio.max():.3g}"])
    rows.append(["score function with baseline ÷ reparametrization", f"{np.median(ratio_b):.3g}",
                 f"{ratio_b.min():.3g} – {ratio_b.max():.3g}"])
    return table(["estimator of ∂/∂μ_j E_q[log p(x|z)]", "median over j of its variance", "range over j"], rows), numbers


# ---------------------------------------------------------------- chapter 7: likelihoods, draws, units

def likelihood_figures(work, data_dir, size, seed, figures):
    """One model per likelihood: the mean (or mode) of p(x|z) for 8 prior z above three draws each, and the test
    −ELBO in nats, nats/dim and bits/dim. -> (table, numbers, {name: vae})."""
    rows, numbers, vaes = [], {}, {}
    for name, binarize in LIKELIHOOD_RUNS:
        hidden = size["hidden_categorical" if name == "categorical" else "hidden"]
        vae, last = train_model(work, f"lik-{name}", data_dir, {**size, "hidden": hidden}, seed, likelihood=name,
                                binarize=binarize)
        vaes[name] = vae
        rng = np.random.default_rng([seed, 11])
        z = rng.standard_normal((8, vae.latent))
        out = vae.decode(z.astype(vae.dtype))
        draws = [np.clip(vae.likelihood.to_unit(vae.likelihood.sample(out, rng)), 0, 1).reshape(8, *vae.image_shape)
                 for _ in range(3)]
        save_grid(figures / f"draws-{name}.png", np.concatenate([decode_pictures(vae, z), *draws]), ncol=8, scale=2)
        D = int(np.prod(vae.image_shape))
        nats = last["test_loss"]
        discrete = vae.likelihood.discrete and (binarize or name != "bernoulli")
        numbers[name] = {"test_neg_elbo": nats, "per_dim": nats / D, "bits_per_dim": nats / (D * LN2) if discrete
                         else None}
        dequantized = "—"
        if name in ("normal", "normal-fixed"):
            numbers[name]["dequantized"] = bound = dequantized_bound(vae, data_dir, size, seed)
            dequantized = f"≤ {bound['bits_per_dim']:.3f}"
        rows.append([f"`{name}`" + (" (binarized)" if binarize else ""), "mass" if discrete else "density",
                     f"{nats:.1f}", f"{nats / D:.3f}", f"{nats / (D * LN2):.3f}" if discrete else "—", dequantized])
    return table(["likelihood", "log p is a", "test −ELBO, nats", "nats/dim", "bits/dim",
                  "bits/dim of the binned density (dequantization bound)"], rows), numbers, vaes


def dequantized_bound(vae, data_dir, size, seed):
    """An upper bound on −log P(i) of the model's binned mass: E_u[−ELBO((i + u − ½)/255)] + D log 255, u ~ U(0, 1)."""
    images = load_dataset("mnist", str(data_dir), n_train=1, n_test=size["n_test"]).test
    vae64 = float64_twin(vae)
    x = images.reshape(len(images), -1).astype(np.float64)
    rng = np.random.default_rng([seed, 13])
    y = (x + rng.random(x.shape) - 0.5) / 255
    terms = vae64.forward(y, rng.standard_normal((len(y), vae.latent)))
    D = x.shape[1]
    nats = float(np.mean(terms.loss)) + D * math.log(255)
    return {"nats": nats, "bits_per_dim": nats / (D * LN2)}


# ---------------------------------------------------------------- chapter 8: L_K against the exact log p(x)

def linear_check(work, data_dir, size, seed, path):
    """A linear VAE (pPCA) trained by minivae on MNIST: L_K for K = 1 … k_max against its exact log p(x), the exact
    ELBO, and the maximum-likelihood pPCA of the training images."""
    vae, _ = train_model(work, "linear", data_dir, size, seed, model="linear", likelihood="normal", latent=16,
                         lr=3e-3)
    vae64 = float64_twin(vae)
    data = load_dataset("mnist", str(data_dir), n_train=size["n_train"], n_test=size["n_test"])
    x = evaluation_data(vae64, data.test, seed, False).reshape(len(data.test), -1)[:100]
    W, b, variance = linear_vae_parameters(vae64)
    log_px = ppca_log_likelihood(x, W, b, variance)
    elbo = exact_elbo(vae64, x)
    Ks = [4 ** i for i in range(10) if 4 ** i <= size["k_max"]]
    eps = np.random.default_rng([seed, 17]).standard_normal((len(x), Ks[-1], vae.latent))
    bounds, errors = [], []
    for K in Ks:
        per = max(1, 5000 // K)  # images per pass: at most ~5000 decoder rows (2D outputs each) at a time
        bound, stderr = np.empty(len(x)), np.empty(len(x))
        for i in range(0, len(x), per):
            terms, cache = iwae_forward(vae64, x[i:i + per], eps[i:i + per, :K])
            bound[i:i + per] = terms.bound
            stderr[i:i + per] = log_mean_exp_stderr(np.log(cache[-1])) if K > 1 else np.nan
        bounds.append(float(np.mean(bound)))
        errors.append(float(np.sqrt(np.sum(stderr ** 2)) / len(x)) if K > 1 else None)
    train_x = data.train.reshape(len(data.train), -1).astype(np.float64) / 255
    W_ml, b_ml, variance_ml = ppca_ml(train_x, vae.latent)
    ml_test = float(np.mean(ppca_log_likelihood(x, W_ml, b_ml, variance_ml)))
    exact = float(np.mean(log_px))
    plot(path, f"mean L_K over {len(x)} MNIST test images, linear VAE (pPCA, Z = {vae.latent})",
         "K (importance samples)", "nats", {"L_K": (Ks, bounds), "exact ELBO": (Ks, [float(np.mean(elbo))] * len(Ks))},
         hline=("exact log p(x)", exact), logx=True)
    numbers = {"Ks": Ks, "bounds": bounds, "stderr": errors, "exact_log_px": exact, "exact_elbo": float(np.mean(elbo)),
               "sigma2": variance, "sigma2_ml": variance_ml, "ml_test_log_px": ml_test}
    rows = [[K, f"{bk:.3f}", "—" if se is None else f"{se:.3f}", f"{exact - bk:.3f}"] for K, bk, se in zip(Ks, bounds, errors)]
    text = table(["K", "mean L_K, nats", "its standard error", "exact log p(x) − L_K"], rows)
    text += (f"\n\nExact log p(x) = {exact:.3f} nats (mean over the {len(x)} images), exact ELBO = {np.mean(elbo):.3f}; "
             f"learned σ² = {variance:.5f}, the maximum-likelihood pPCA of the {len(train_x)} training images has "
             f"σ²_ML = {variance_ml:.5f} and test log p(x) = {ml_test:.3f}.")
    return text, numbers


# ---------------------------------------------------------------- main

def fill_blocks(derivation, blocks):
    """Replace each `<!-- make_figures: NAME -->…<!-- /make_figures -->` in derivation/*.md with blocks[NAME]."""
    pattern = re.compile(r"(<!-- make_figures: ([\w-]+) -->\n).*?(<!-- /make_figures -->)", re.S)
    for md in sorted(derivation.glob("*.md")):
        text = md.read_text()

        def repl(m):
            if m.group(2) not in blocks:
                raise SystemExit(f"{md}: unknown make_figures block {m.group(2)!r}")
            return m.group(1) + blocks[m.group(2)] + "\n" + m.group(3)

        new = pattern.sub(repl, text)
        if new != text:
            md.write_text(new)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=tuple(SIZES), default="full")
    parser.add_argument("--out", default="docs", help="writes OUT/figures/, fills OUT/derivation/*.md (default docs)")
    parser.add_argument("--data-dir", help="the MNIST directory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    shared = Path(os.environ.get("MINIVAE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    data_dir = Path(args.data_dir) if args.data_dir else shared / "mnist"
    size, seed, out = SIZES[args.size], args.seed, Path(args.out)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("training the models", file=sys.stderr)
        small_vae, _ = train_model(work, "bernoulli-2d", data_dir, size, seed, binarize=True, latent=2)
        blocks, numbers = {}, {}
        blocks["likelihoods"], numbers["likelihoods"], vaes = likelihood_figures(work, data_dir, size, seed, figures)
        main_vae = vaes["bernoulli"]  # binarized MNIST, Z = 20
        test = load_dataset("mnist", str(data_dir), n_train=1, n_test=size["n_test"]).test
        x_bin = evaluation_data(float64_twin(main_vae), test, seed, True).reshape(len(test), -1)
        fresh = minivae.models.build_model("mlp", rng=np.random.default_rng(seed), hidden=(size["hidden_categorical"],),
                                           likelihood="categorical", dtype=np.float64)
        x_grey = fresh.likelihood.from_uint8(test.reshape(len(test), -1), np.float64)
        blocks["underflow"], numbers["underflow"] = underflow(
            [("Bernoulli, binarized, trained", float64_twin(main_vae), x_bin),
             ("256-level categorical, untrained", fresh, x_grey),
             ("256-level categorical, trained", float64_twin(vaes["categorical"]), x_grey)])
        blocks["prior-sampling"], numbers["prior_sampling"] = prior_sampling(
            [("Bernoulli, Z = 20", main_vae), ("Bernoulli, Z = 2", small_vae)], x_bin, size, seed)
        blocks["gradient-variance"], numbers["gradient_variance"] = gradient_variance(
            main_vae, x_bin, size, seed, figures / "gradient-variance.png")
        blocks["linear-lk"], numbers["linear"] = linear_check(work, data_dir, size, seed, figures / "linear-lk.png")
    numbers["size"], numbers["seconds"] = args.size, time.perf_counter() - start
    (figures / "numbers.json").write_text(json.dumps(numbers, indent=1) + "\n")
    if (out / "derivation").is_dir():
        fill_blocks(out / "derivation", blocks)
    print(f"wrote {figures} in {numbers['seconds']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
