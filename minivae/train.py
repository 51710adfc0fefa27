"""The training loop: data → model → negative ELBO → gradients → Adam, one mini-batch at a time.

All randomness comes from one `numpy.random.Generator` seeded with `seed`: parameter initialization, the data order
of each epoch, the noise ε of every step and, with `binarize`, the resampled pixels x ~ Bernoulli(intensity). The
same seed therefore gives the same run, bit for bit. The test loss is the negative ELBO (β = 1) averaged over the
test set, with ε (and binarization) drawn from a second Generator re-seeded identically every epoch, so test losses of
different epochs differ only because the model changed.

Each epoch writes, in the output directory: metrics.jsonl (one JSON object per line), checkpoint.npz, samples.png
(decoded prior samples z ~ N(0, I)) and reconstructions.png (test images above their reconstructions).
"""
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .checkpoint import save_checkpoint
from .data import load_dataset
from .errors import MinivaeError
from .images import save_grid
from .models import build_model
from .optim import Adam

EVAL_SEED_OFFSET = 1  # the evaluation Generator is default_rng([seed, 1])


@dataclass
class TrainResult:
    vae: object
    metrics: list
    out: Path


def batches(n, batch_size, order=None):
    """Index slices covering 0..n-1 in `order` (default: in sequence), batch_size at a time, the last one smaller."""
    index = np.arange(n) if order is None else order
    return [index[i:i + batch_size] for i in range(0, n, batch_size)]


def prepare_batch(vae, images, rng, binarize):
    """uint8 images -> the data the likelihood models (float), resampled to {0, 1} when `binarize`."""
    x = vae.likelihood.from_uint8(images, dtype=vae.dtype)
    if binarize:
        x = (rng.random(x.shape) < x).astype(vae.dtype)
    return x


def evaluate_elbo(vae, images, seed, batch_size=500, binarize=False):
    """Mean test negative ELBO and its parts (nats per example), with ε from default_rng([seed, 1])."""
    rng = np.random.default_rng([seed, EVAL_SEED_OFFSET])
    total = np.zeros(3)
    for idx in batches(len(images), batch_size):
        x = prepare_batch(vae, images[idx], rng, binarize)
        eps = rng.standard_normal((len(idx), vae.latent)).astype(vae.dtype)
        t = vae.forward(x, eps)
        total += [t.loss.sum(), t.recon.sum(), t.kl.sum()]
    loss, recon, kl = total / len(images)
    return {"test_loss": loss, "recon": recon, "kl": kl}


def write_pictures(vae, out, test_images, rng):
    """samples.png: 64 decoded prior samples; reconstructions.png: 8 test images above their reconstructions."""
    lik = vae.likelihood
    z = rng.standard_normal((64, vae.latent)).astype(vae.dtype)
    save_grid(out / "samples.png", lik.to_unit(lik.mean(vae.decode(z))).reshape(64, *vae.image_shape), ncol=8,
              scale=2)
    x = lik.from_uint8(test_images[:8], dtype=vae.dtype)
    mu, _ = vae.encode(x)
    recon = lik.to_unit(lik.mean(vae.decode(mu))).reshape(8, *vae.image_shape)
    save_grid(out / "reconstructions.png", np.concatenate([lik.to_unit(x), recon]), ncol=8, scale=2)


@dataclass
class TrainSettings:
    """What `minivae train` was asked to do (stored in the checkpoint, so a run is self-describing)."""
    dataset: str = "shapes"
    data_dir: str | None = None
    model: str = "mlp"
    likelihood: str = "bernoulli"
    epochs: int = 8
    batch_size: int = 128
    lr: float = 1e-3
    lr_decay: float = 1.0  # learning rate of epoch e (1-based): lr · lr_decay^(e − 1)
    latent: int | None = None
    hidden: tuple | None = None
    activation: str | None = None
    seed: int = 0
    binarize: bool = False
    dtype: str = "float32"
    n_train: int | None = None
    n_test: int | None = None
    objective: str = "elbo"  # what the optimizer minimizes (objectives.py): elbo (β, warm-up, free bits) or iwae
    k: int | None = None     # iwae: importance samples per example (default 5)
    beta: float = 1.0        # elbo: weight β on the KL
    warmup: float = 0.0      # elbo: epochs over which the KL weight rises linearly from 0 to β
    free_bits: float = 0.0   # elbo: KL floor λ per latent dimension (nats)

    def make_objective(self):
        from .objectives import make_objective
        return make_objective(self.objective, k=self.k, beta=self.beta, warmup=self.warmup, free_bits=self.free_bits)

    def validate(self):
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise MinivaeError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise MinivaeError(f"learning rate must be a positive finite number, got {self.lr!r}")
        if not (math.isfinite(self.lr_decay) and 0 < self.lr_decay <= 1):
            raise MinivaeError(f"lr_decay must be in (0, 1], got {self.lr_decay!r}")
        if self.latent is not None and self.latent < 1:
            raise MinivaeError(f"latent size must be a positive integer, got {self.latent!r}")
        if self.binarize and self.likelihood != "bernoulli":
            raise MinivaeError(f"binarize resamples pixels to {{0, 1}} and only fits the bernoulli likelihood, "
                               f"not {self.likelihood}")
        if self.dtype not in ("float32", "float64"):
            raise MinivaeError(f"dtype must be float32 or float64, got {self.dtype!r}")
        self.make_objective()  # MinivaeError for a bad objective, k, beta, warmup or free_bits


def train(out=None, *, progress=None, **kwargs):
    """Train a VAE; keyword arguments are the fields of TrainSettings. Returns TrainResult(vae, metrics, out).

    `out` defaults to runs/<dataset>-<model>; `progress(epoch, metrics)` is called after each epoch.
    """
    s = TrainSettings(**kwargs)
    s.validate()
    data = load_dataset(s.dataset, s.data_dir, seed=s.seed, n_train=s.n_train, n_test=s.n_test)
    rng = np.random.default_rng(s.seed)
    vae = build_model(s.model, rng=rng, image_shape=data.train.shape[1:], latent=s.latent, hidden=s.hidden,
                      activation=s.activation, likelihood=s.likelihood, dtype=np.dtype(s.dtype))
    vae.likelihood.check_data(vae.likelihood.from_uint8(data.test[:1], dtype=vae.dtype))
    out = Path(out or f"runs/{s.dataset}-{s.model}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.jsonl").write_text("")
    except OSError as e:
        raise MinivaeError(f"cannot write to output directory {out}: {e.strerror or e}") from None
    optimizer = Adam(vae.params, lr=s.lr)
    objective = s.make_objective()
    metrics, step = [], 0
    for epoch in range(1, s.epochs + 1):
        start = time.perf_counter()
        optimizer.lr = s.lr * s.lr_decay ** (epoch - 1)
        total = np.zeros(3)
        for idx in batches(len(data.train), s.batch_size, rng.permutation(len(data.train))):
            x = prepare_batch(vae, data.train[idx], rng, s.binarize)
            eps = objective.noise(rng, len(idx), vae.latent, vae.dtype)
            epochs_done = step / math.ceil(len(data.train) / s.batch_size)  # for the KL warm-up
            # terms: the true −ELBO per example (logged); the objective's own value is not
            terms, _, grads = objective.loss_and_grads(vae, x, eps, epochs_done)
            optimizer.step(grads)
            step += 1
            total += [terms.loss.sum(), terms.recon.sum(), terms.kl.sum()]
        train_loss, train_recon, train_kl = total / len(data.train)
        seconds = time.perf_counter() - start
        row = {"epoch": epoch, "train_loss": train_loss, "train_recon": train_recon, "train_kl": train_kl,
               **evaluate_elbo(vae, data.test, s.seed, binarize=s.binarize), "seconds": seconds,
               "images_per_s": len(data.train) / seconds}
        metrics.append(row)
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        save_checkpoint(out / "checkpoint.npz", vae, optimizer,
                        {"train": asdict(s), "epoch": epoch, "step": step, "rng_state": rng.bit_generator.state})
        write_pictures(vae, out, data.test, np.random.default_rng([s.seed, EVAL_SEED_OFFSET]))
        if progress:
            progress(epoch, row)
    return TrainResult(vae, metrics, out)
