"""The training loop: data → model → negative ELBO → gradients → Adam, one mini-batch at a time.

All randomness comes from one `numpy.random.Generator` seeded with `seed`: parameter initialization, the data order
of each epoch, the noise ε of every step and, with `binarize`, the resampled pixels x ~ Bernoulli(intensity). The
same seed therefore gives the same run, bit for bit. The test loss is the negative ELBO (β = 1) averaged over the
test set, with ε (and binarization) drawn from a second Generator re-seeded identically every epoch, so test losses of
different epochs differ only because the model changed.

Each epoch writes, in the output directory (rundir.py: its lock, atomic writes, what may be overwritten):
checkpoint.npz, metrics.jsonl (one JSON object per line; on shapes also the test reconstructions' PSNR
and mask IoU, shape_scores.py), samples.png (decoded prior samples z ~ N(0, I)),
reconstructions.png (test images above their reconstructions) and curves.png (train/test negative ELBO,
reconstruction and KL per epoch). The settings are checked (settings.py) and the memory the run needs is budgeted
(budget.py) before anything is built.

Resuming is exact. A checkpoint holds, besides parameters and Adam's moments and step count, the training position:
finished epochs, steps, the Generator's state, and for an unfinished epoch (Ctrl-C stops between two steps) that
epoch's data order, the number of batches done and the running loss sums. `train(resume=run_dir)` restores all of
it, so the remaining steps see exactly the batches and noise they would have seen, and the parameters at the end are
bitwise those of the uninterrupted run.
"""
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .budget import require, training_bytes
from .checkpoint import load_into, read_checkpoint
from .data import Dataset, load_dataset
from .distributed import LOCAL, world
from .errors import MinivaeError
from .flat import tiled_buffer
from .images import save_grid
from .likelihoods import bits_per_dim, reports_bits_per_dim
from .models import build_from_config, describe, model_config
from .optim import Adam
from .pictures import check_images_fit, data_pictures, decode_pictures, grid_scale, model_scale
from .progress import progress_bar
from .reliability import InterruptGuard, TrainingInterrupted, check_finite_grads, check_finite_loss
from .rundir import RunDirectory, checkpoint_file, stored_metrics
from .settings import new_settings, non_negative_int, resumed_settings
from .shape_scores import shape_scores

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
    x = model_scale(vae, images)
    if binarize:
        x = (rng.random(x.shape) < x).astype(vae.dtype)
    return x


def evaluate_elbo(vae, images, seed, batch_size=500, binarize=False, world=LOCAL):
    """Mean test negative ELBO and its parts (nats per example), with ε from default_rng([seed, 1]).

    Where log p is a probability mass (a discrete likelihood; Bernoulli only on binarized data) the loss is also
    given in bits per dimension, test_loss / (D ln 2). Over MPI each rank runs its share of the batches (every rank
    draws every batch's noise, to stay on the one stream) and the batch sums are added in batch order, as here."""
    rng = np.random.default_rng([seed, EVAL_SEED_OFFSET])
    order = batches(len(images), batch_size)
    mine = world.share(len(order)).rows
    sums = np.zeros((len(order), 3))
    for i, idx in enumerate(order):
        x = prepare_batch(vae, images[idx], rng, binarize)
        eps = rng.standard_normal((len(idx), vae.noise_size)).astype(vae.dtype)
        if mine.start <= i < mine.stop:
            t = vae.forward(x, eps)
            sums[i] = [t.loss.sum(), t.recon.sum(), t.kl.sum()]
    total = np.zeros(3)
    for row in world.gather(sums[mine]):
        total += row
    loss, recon, kl = total / len(images)
    row = {"test_loss": loss, "recon": recon, "kl": kl}
    if reports_bits_per_dim(vae.likelihood, binarize):
        row["test_bits_per_dim"] = float(bits_per_dim(loss, int(np.prod(vae.image_shape))))
    return row


def write_pictures(vae, out, test_images, rng):
    """samples.png: 64 decoded prior samples; reconstructions.png: 8 test images above their reconstructions."""
    save_grid(out / "samples.png", decode_pictures(vae, rng.standard_normal((64, vae.latent))), ncol=8,
              scale=grid_scale(vae))
    mu, _ = vae.encode(model_scale(vae, test_images[:8]))
    save_grid(out / "reconstructions.png", np.concatenate([data_pictures(vae, test_images[:8]),
                                                           decode_pictures(vae, mu)]), ncol=8, scale=grid_scale(vae))


def learning_rate(s, epoch):
    """The learning rate of epoch e = 1, 2, …: lr · lr_decay^(e − 1), or with lr_schedule "burda" (Burda et al. 2016)
    lr · 10^(−i/7) in stage i, the 3^i epochs after epoch (3^i − 1)/2; stage 7 ends at epoch 3280 and goes on."""
    if s.lr_schedule == "burda":
        stage = next(i for i in range(8) if epoch <= (3 ** (i + 1) - 1) // 2 or i == 7)
        return s.lr * 10 ** (-stage / 7)
    return s.lr * s.lr_decay ** (epoch - 1)


def as_dataset(data):
    """`train(data=...)`: a Dataset, or a pair (train, test) of image arrays (N, C, H, W), uint8 intensities 0..255
    or floats already in the likelihood's scale (e.g. [0, 1] for Bernoulli)."""
    if isinstance(data, Dataset):
        return data
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise MinivaeError("data must be a minivae.data.Dataset or a pair (train_images, test_images)")
    train_images, test_images = (np.asarray(a) for a in data)
    for name, a in (("train", train_images), ("test", test_images)):
        if a.ndim != 4 or len(a) == 0 or not (a.dtype == np.uint8 or np.issubdtype(a.dtype, np.floating)):
            raise MinivaeError(f"{name} images must be a non-empty (N, C, H, W) array of uint8 or floats, got shape "
                               f"{a.shape} {a.dtype}")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise MinivaeError(f"train images are {train_images.shape[1:]} but test images {test_images.shape[1:]}")
    return Dataset("custom", train_images, test_images, None, None, None)


def check_data_fits(vae, data, model_name):
    """Before training: the images have the model's (C, H, W) and every value lies in the likelihood's support."""
    for split, images in (("train", data.train), ("test", data.test)):
        check_images_fit(vae, images, f"model {model_name}", f"the {data.name} {split} images")


@dataclass
class Position:
    """Where a run stands: `epoch` epochs finished, `step` optimizer steps in all, `batch` steps into epoch + 1
    (whose data order is `permutation`), that epoch's running sums of (loss, recon, kl) over its `seen` examples, and
    the metrics rows of the finished epochs."""
    epoch: int = 0
    step: int = 0
    batch: int = 0
    permutation: np.ndarray | None = None
    totals: np.ndarray = field(default_factory=lambda: np.zeros(3))
    seen: int = 0
    metrics: list = field(default_factory=list)

    def meta(self, s, rng):
        return {"train": asdict(s), "epoch": self.epoch, "step": self.step, "batch": self.batch,
                "epoch_totals": self.totals.tolist(), "epoch_seen": self.seen, "rng_state": rng.bit_generator.state,
                "metrics": self.metrics}


def restore_position(path, arrays, meta, vae, optimizer, rng, n_train, n_batches):
    """Load parameters, Adam's moments and step, the Generator's state and the epoch's data order -> Position."""
    load_into(path, arrays, vae.params, "param/")
    load_into(path, arrays, optimizer.state(), "optim/")
    try:
        counts = [non_negative_int(meta[key]) for key in ("epoch", "step", "optim_t")]
        counts += [non_negative_int(meta.get(key, 0)) for key in ("batch", "epoch_seen")]
        totals = np.array(meta.get("epoch_totals", [0.0, 0.0, 0.0]), dtype=np.float64).reshape(3)
        rng.bit_generator.state = meta["rng_state"]
    except MinivaeError as e:
        raise MinivaeError(f"checkpoint {path} has an invalid training position ({e})") from None
    except (KeyError, TypeError, ValueError) as e:
        raise MinivaeError(f"checkpoint {path} has an invalid training position ({type(e).__name__}: {e})") from None
    epoch, step, optimizer.t, batch, seen = counts
    pos = Position(epoch, step, batch, None, totals, seen, stored_metrics(path, meta, epoch))
    if not 0 <= pos.batch <= n_batches:
        raise MinivaeError(f"checkpoint {path} is {pos.batch} batches into an epoch of {n_batches}")
    if pos.batch:
        perm = arrays.get("state/permutation")
        if perm is None or perm.shape != (n_train,) or not np.array_equal(np.sort(perm), np.arange(n_train)):
            raise MinivaeError(f"checkpoint {path} lacks the data order of its unfinished epoch for {n_train} images")
        pos.permutation = perm
    return pos


def sum_over_ranks(world, grads, terms, signum):
    """After every rank's backward on its share: ∇L = Σ_r ∇L_r into the gradient buffer (distributed.py). Returns the
    global batch's (loss, recon, kl) sums, added in rank order, and the signal that stops the run (first_signal)."""
    if world.size > 1:
        world.sum(tiled_buffer(list(grads.values())))
    every = world.gather(np.array([[terms.loss.sum(), terms.recon.sum(), terms.kl.sum(), signum or 0]]))
    sums = every[0, :3].copy()
    for row in every[1:, :3]:
        sums += row
    return sums, signal_of(every[:, 3])


def signal_of(signums):
    """The first signal number (in rank order) of the ranks' `signums` (0: none), or None."""
    received = [int(n) for n in signums if n]
    return received[0] if received else None


def first_signal(world, signum):
    """The signal (SIGINT, SIGTERM, SIGHUP) of the first rank that received one, or None: the same on every rank, so
    that all stop after the same step."""
    return signal_of(world.gather(np.array([signum or 0])))


def train(out=None, *, resume=None, force=False, data=None, progress=None, quiet=False, **kwargs):
    """Train a VAE; keyword arguments are the fields of TrainSettings. Returns TrainResult(vae, metrics, out).

    `out` defaults to runs/<dataset>-<model>; `progress(epoch, metrics)` is called after each epoch; a tqdm bar on
    stderr shows the steps of each epoch unless `quiet` or stderr is not a terminal. `data` replaces the named data
    set by your own images (a Dataset or a pair of arrays, see `as_dataset`).

    `resume` (a run directory or its checkpoint.npz) continues that run where its checkpoint stopped, with its stored
    settings (`epochs` may be raised; any other keyword given must equal the stored value) into the same directory:
    the result is bit for bit the run that was never interrupted. A new run refuses a directory holding a run unless
    `force` (start over); rundir.py has the rules. Ctrl-C, SIGTERM and SIGHUP checkpoint the last finished step and
    raise TrainingInterrupted (a KeyboardInterrupt); a NaN/Inf loss or gradient raises MinivaeError naming the tensor
    and step, leaving the last checkpoint as it was.

    Under `mpiexec -n N` the N ranks split every batch (distributed.py; docs/mpi.md) and rank 0 alone writes to `out`.
    """
    w = world()
    arrays = meta = None
    if resume is not None:
        path = checkpoint_file(resume)
        arrays, meta = read_checkpoint(path)
        s = resumed_settings(path, meta, kwargs)
        out = Path(out or path.parent)
    else:
        s = new_settings(kwargs)
        if data is not None and "dataset" not in kwargs:
            s.dataset = "custom"
        out = Path(out or f"runs/{s.dataset}-{s.model}")
    if data is not None:
        data = as_dataset(data)
    elif s.dataset == "custom":
        raise MinivaeError("this run was trained on images passed from Python; pass the same data= to resume it")
    else:
        data = load_dataset(s.dataset, s.data_dir, seed=s.seed, n_train=s.n_train, n_test=s.n_test, quiet=quiet,
                            **s.folder_options())
    rng = np.random.default_rng(s.seed)
    image_shape = data.train.shape[1:]
    if meta is not None:
        image_shape = tuple(meta["config"]["image_shape"])  # a resumed model keeps its input shape: checked below
    config = model_config(s.model, image_shape=image_shape, latent=s.latent, hidden=s.hidden,
                          activation=s.activation, likelihood=s.likelihood, likelihood_options=s.likelihood_options,
                          dtype=np.dtype(s.dtype))
    require(training_bytes(config, s.batch_size), f"training {describe(config)} with batches of {s.batch_size}")
    vae = build_from_config(config, rng=rng, engine=s.engine)
    check_data_fits(vae, data, s.model)
    if s.init_from is not None and resume is None:  # a new run from trained weights, e.g. IWAE after a VAE
        init_path = checkpoint_file(s.init_from)
        load_into(init_path, read_checkpoint(init_path)[0], vae.params, "param/")
    optimizer = Adam(vae.params, lr=s.lr, eps=s.adam_eps, update=vae.engine.adam_update)
    objective = s.make_objective()
    n_train = len(data.train)
    n_batches = -(-n_train // s.batch_size)
    pos = Position()
    if resume is not None:
        pos = restore_position(path, arrays, meta, vae, optimizer, rng, n_train, n_batches)
        if meta.get("ranks", 1) != w.size and w.rank == 0 and not quiet:
            print(f"minivae: note: resuming a run of {meta.get('ranks', 1)} MPI ranks on {w.size}: the same batches "
                  f"and noise; the gradient sums change order, so expect float rounding differences", file=sys.stderr)
    run = RunDirectory(out, resuming=resume is not None, force=force)
    with run if w.rank == 0 else nullcontext(run), InterruptGuard() as guard:  # rank 0 alone holds and writes it
        if resume is not None and w.rank == 0:
            run.write_metrics(pos.metrics)  # metrics.jsonl as the checkpoint has it

        def save():
            if w.rank == 0:
                run.save(vae, optimizer, {**pos.meta(s, rng), "ranks": w.size},
                         state={"permutation": pos.permutation} if pos.batch else None)

        def stop(where, signum):
            save()
            raise TrainingInterrupted(f"{signal.Signals(signum).name}: stopped after {where}; saved "
                                      f"{run.checkpoint}; continue with: minivae train --resume {out}",
                                      run.checkpoint, pos.epoch, pos.step, signum)

        for epoch in range(pos.epoch + 1, s.epochs + 1):
            optimizer.lr = learning_rate(s, epoch)
            if pos.batch == 0:
                pos.permutation, pos.totals, pos.seen = rng.permutation(n_train), np.zeros(3), 0
            start, seen_before = time.perf_counter(), pos.seen  # images/s counts this session's images only
            order = batches(n_train, s.batch_size, pos.permutation)
            bar = progress_bar(None, quiet or w.rank > 0, total=n_batches, initial=pos.batch,
                               desc=f"epoch {epoch}/{s.epochs}", unit="step")
            try:
                for idx in order[pos.batch:]:
                    x = prepare_batch(vae, data.train[idx], rng, s.binarize)
                    eps = objective.noise(rng, len(idx), vae.noise_size, vae.dtype)
                    mine = w.share(len(idx))  # every rank draws the whole batch's noise, then takes its rows
                    # terms: the true −ELBO per example (logged); the objective's own value is not
                    terms, _, grads = objective.loss_and_grads(vae, x[mine.rows], eps[mine.rows],
                                                               epochs_done=pos.step / n_batches, share=mine)
                    check_finite_loss(terms, pos.step + 1, epoch)
                    sums, signum = sum_over_ranks(w, grads, terms, guard.signum)
                    check_finite_grads(grads, pos.step + 1, epoch)
                    optimizer.step(grads)
                    pos.step, pos.batch, pos.seen = pos.step + 1, pos.batch + 1, pos.seen + len(idx)
                    pos.totals += sums
                    if pos.batch % 10 == 0 or pos.batch == n_batches:  # running means of this epoch so far
                        rate = (pos.seen - seen_before) / max(time.perf_counter() - start, 1e-9)
                        bar.set_postfix(step=pos.step, loss=f"{pos.totals[0] / pos.seen:.2f}",
                                        kl=f"{pos.totals[2] / pos.seen:.2f}", img_s=f"{rate:.0f}", refresh=False)
                    bar.update(1)
                    if w.size == 1:  # one process stops on a signal that came during this step
                        signum = guard.signum
                    if signum:
                        stop(f"step {pos.step} (epoch {epoch}, batch {pos.batch} of {n_batches})", signum)
            finally:
                bar.close()
            train_loss, train_recon, train_kl = pos.totals / n_train
            seconds = time.perf_counter() - start
            row = {"epoch": epoch, "train_loss": train_loss, "train_recon": train_recon, "train_kl": train_kl,
                   **evaluate_elbo(vae, data.test, s.seed, binarize=s.binarize, world=w), "seconds": seconds,
                   "images_per_s": (pos.seen - seen_before) / seconds}
            if data.factors is not None:  # shapes: reconstruction PSNR and mask IoU (shape_scores.py)
                row.update(shape_scores(vae, data.test, data.factors["test"]))
            pos.metrics.append(row)
            pos.epoch, pos.batch, pos.permutation = epoch, 0, None
            save()
            if w.rank == 0:
                write_pictures(vae, out, data.test, np.random.default_rng([s.seed, EVAL_SEED_OFFSET]))
                if progress:
                    progress(epoch, pos.metrics[-1])
            signum = first_signal(w, guard.signum)
            if signum:
                stop(f"epoch {epoch} (step {pos.step})", signum)
    return TrainResult(vae, pos.metrics, out)
