"""The README's likelihood table: test nats (and bits/dim) of every output distribution after a fixed short budget.

Every run is the same recipe, only the likelihood changes: an MLP VAE (one hidden layer of --hidden ReLU units,
--latent latent dimensions), Adam (lr --lr), --steps steps of --batch images drawn uniformly from the training set,
seed 0. The figure is the test negative ELBO in nats per image (one reparametrized sample per image, ε from a fixed
seed, closed-form KL), averaged over the whole test set; bits/dim = nats / (D ln 2) only where the likelihood is a
probability mass (categorical, discretized logistic, Bernoulli on binarized data). Densities (normal, continuous
Bernoulli) give nats that can be negative and are not comparable with masses.

Data, both 8-bit: MNIST 2×2 average-pooled to 14×14 (rounded back to 8-bit levels; the categorical decoder's 256
logits per value make a step at 28×28 about 4× dearer, too slow for a table regenerated on a 2-core machine), and Frey
faces at 28×20 (D = 560). Bernoulli "binarized" resamples each training batch, and binarizes the test set once,
x ~ Bernoulli(intensity) (dynamic binarization).

    python benchmarks/likelihood_table.py --mnist-dir DIR --frey-dir DIR [--steps 600] [--markdown]

BLAS runs single-threaded unless OPENBLAS_NUM_THREADS is set: on a shared 2-core machine OpenBLAS's spinning threads
made these small GEMMs 10-50× slower. The figures do not depend on it.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import minivae.runtime  # noqa: E402
minivae.runtime.configure()  # before numpy loads OpenBLAS

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from minivae.data import load_dataset  # noqa: E402
from minivae.likelihoods import LIKELIHOODS, bits_per_dim, reports_bits_per_dim  # noqa: E402
from minivae.models import build_model  # noqa: E402
from minivae.optim import Adam  # noqa: E402

# (likelihood, data set, binarize)
RUNS = [("bernoulli", "mnist", False), ("bernoulli", "mnist", True), ("continuous-bernoulli", "mnist", False),
        ("categorical", "mnist", False), ("discretized-logistic", "mnist", False),
        ("normal-fixed", "frey", False), ("normal", "frey", False), ("discretized-logistic", "frey", False)]
FORMULAS = {
    "bernoulli": "x·l − softplus(l)",
    "continuous-bernoulli": "x·l − softplus(l) + log(l / tanh(l/2))",
    "categorical": "l_i − logsumexp_j l_j",
    "discretized-logistic": "logsumexp_k [log π_k + log(σ(b_k) − σ(a_k))]",
    "normal-fixed": "−(x − μ)²/(2σ²) − ½ log 2πσ²",
    "normal": "−(x − μ)²/(2σ²) − ½ log 2πσ², σ² = σ²_min + e^s",
}
DATA = {"bernoulli": "[0, 1]", "continuous-bernoulli": "[0, 1]", "categorical": "i/255", "discretized-logistic": "i/255",
        "normal-fixed": "[0, 1]", "normal": "[0, 1]"}


def pool2(images):
    """(N, 1, 28, 28) uint8 -> (N, 1, 14, 14) uint8 by rounded 2×2 means."""
    N, C, H, W = images.shape
    return np.rint(images.reshape(N, C, H // 2, 2, W // 2, 2).mean((3, 5))).astype(np.uint8)


def run(name, train_images, test_images, binarize, args):
    """Train one VAE with likelihood `name`; returns (test negative ELBO in nats per image, seconds)."""
    rng = np.random.default_rng(0)
    vae = build_model("mlp", rng=rng, image_shape=train_images.shape[1:], likelihood=name, hidden=(args.hidden,),
                      latent=args.latent)
    lik = vae.likelihood
    x_train = lik.from_uint8(train_images).reshape(len(train_images), -1)
    x_test = lik.from_uint8(test_images).reshape(len(test_images), -1)
    if binarize:
        x_test = (np.random.default_rng(2).random(x_test.shape) < x_test).astype(x_test.dtype)
    lik.check_data(x_test)
    optimizer = Adam(vae.params, lr=args.lr)
    start = time.perf_counter()
    for _ in range(args.steps):
        x = x_train[rng.integers(0, len(x_train), args.batch)]
        if binarize:
            x = (rng.random(x.shape) < x).astype(x.dtype)
        vae.forward(x, rng.standard_normal((args.batch, args.latent)).astype(vae.dtype))
        optimizer.step(vae.backward())
    seconds = time.perf_counter() - start
    eps = np.random.default_rng(1).standard_normal((len(x_test), args.latent)).astype(vae.dtype)
    total = 0.0
    for i in range(0, len(x_test), 250):
        total += float(np.sum(vae.forward(x_test[i:i + 250], eps[i:i + 250]).loss, dtype=np.float64))
    return total / len(x_test), seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mnist-dir", required=True)
    p.add_argument("--frey-dir", required=True)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--latent", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--only", nargs="*", help="likelihood names to run (default: all)")
    args = p.parse_args()
    mnist = load_dataset("mnist", args.mnist_dir)
    frey = load_dataset("frey", args.frey_dir)
    sets = {"mnist": (pool2(mnist.train), pool2(mnist.test), "MNIST 14×14"),
            "frey": (frey.train, frey.test, "Frey 28×20")}
    print(f"budget: {args.steps} Adam steps (lr {args.lr}) of batch {args.batch}, MLP D-{args.hidden}-{args.latent} "
          f"ReLU, seed 0; test negative ELBO, 1 sample, whole test set (MNIST 10000, Frey 196)\n")
    print("| likelihood | formula (per value) | data | outputs/value | data set | test nats | bits/dim | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, dataset, binarize in RUNS:
        if args.only and name not in args.only:
            continue
        train_images, test_images, label = sets[dataset]
        nats, seconds = run(name, train_images, test_images, binarize, args)
        lik = LIKELIHOODS[name]()
        D = int(np.prod(train_images.shape[1:]))
        discrete = reports_bits_per_dim(lik, binarize)
        bpd = f"{float(bits_per_dim(nats, D)):.3f}" if discrete else "—"
        data = "{0, 1} (binarized)" if binarize else DATA[name]
        label_name = name + (" (binarized)" if binarize else "")
        print(f"| {label_name} | {FORMULAS[name]} | {data} | {lik.outputs_per_value} | {label} | {nats:.1f} | {bpd} "
              f"| {seconds:.0f} |", flush=True)
        assert math.isfinite(nats)


if __name__ == "__main__":
    main()
