"""The `minivae` command line (also `python -m minivae`).

    minivae train      [--dataset shapes|mnist|frey|folder] [--data-dir DIR] [--model M] [--epochs N] ... [--out DIR]
    minivae sample     --checkpoint PATH [--n 64] [--out samples.png] [--seed S] [--draw]
    minivae gradcheck  [--json]
    minivae evaluate   --checkpoint PATH [--data-dir DIR] [--k 5000] [--n-test N] [--rows 2000] [--json]
    minivae train      --resume DIR [--epochs N]          (continue an interrupted or finished run, bit for bit)
    minivae interpolate --checkpoint PATH [--rows 6] [--steps 10] [--out interpolate.png]
    minivae traverse    --checkpoint PATH [--index 0] [--span 3] [--steps 11] [--dims N] [--out traverse.png]
    minivae manifold    --checkpoint PATH [--n 20] [--out manifold.png]            (2-D latent only)
    minivae factors     --checkpoint PATH [--n-probe 5000] [--json]                (shapes: probes per factor, MIG)
    minivae reconstruct --checkpoint PATH --data-dir FOLDER [--out reconstruct.png]

Every error a user can cause is printed as one line ("minivae: error: ...") with exit status 2, no traceback.
A run stopped by SIGINT (Ctrl-C), SIGTERM or SIGHUP checkpoints its last step and exits with 128 + the signal number.
The `minivae` command enters through minivae.__main__.main, which tunes the process (minivae.runtime.configure) before
this module loads numpy.
"""
import argparse
import json
import os
import signal
import sys

import numpy as np

from . import settings
from .distributed import launched_size, world
from .errors import MinivaeError
from .likelihoods import LIKELIHOODS
from .reliability import TrainingInterrupted
from .settings import flag_type


positive_int = flag_type(settings.positive_int, int)
non_negative_int = flag_type(settings.non_negative_int, int)
positive_float = flag_type(settings.positive_float, float)
non_negative_float = flag_type(settings.non_negative_float, float)
unit_interval = flag_type(settings.unit_interval, float)
open_fraction = flag_type(settings.open_fraction, float)


def int_list(text):
    try:
        widths = tuple(positive_int(t) for t in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    return widths


def latent_sizes(text):
    """"50" -> 50; "100,50" -> (100, 50), the two stochastic layers of mlp2."""
    sizes = int_list(text)
    return sizes[0] if len(sizes) == 1 else sizes


def hidden_widths(text):
    """"200,200" -> (200, 200); "200,200/100,100" -> ((200, 200), (100, 100)), mlp2's x↔z₁ and z₁↔z₂ networks."""
    groups = tuple(int_list(t) for t in text.split("/"))
    return groups[0] if len(groups) == 1 else groups


def cmd_train(args):
    from .training import train

    def report(epoch, row):
        if not args.quiet:
            print(f"epoch {epoch:3d}  train {row['train_loss']:9.3f}  test {row['test_loss']:9.3f}  "
                  f"recon {row['recon']:9.3f}  kl {row['kl']:7.3f}  {row['seconds']:6.1f} s  "
                  f"{row['images_per_s']:7.0f} img/s"
                  + (f"  PSNR {row['psnr']:5.2f} dB  IoU {row['iou']:.3f}" if "iou" in row else ""), flush=True)

    options = {name: value for name, value in (("variance", args.fixed_variance), ("variance_floor", args.variance_floor),
                                               ("components", args.components)) if value is not None}
    given = dict(dataset=args.dataset, data_dir=args.data_dir, model=args.model,
                 likelihood=args.likelihood, likelihood_options=options or None, epochs=args.epochs,
                 batch_size=args.batch_size, lr=args.lr, lr_decay=args.lr_decay, lr_schedule=args.lr_schedule,
                 adam_eps=args.adam_eps, objective=args.objective, k=args.k,
                 beta=args.beta, warmup=args.warmup, free_bits=args.free_bits, init_from=args.init_from,
                 latent=args.latent, hidden=args.hidden, activation=args.activation, seed=args.seed,
                 binarize=args.binarize, dtype=args.dtype, n_train=args.n_train, n_test=args.n_test,
                 channels=args.channels, image_size=args.image_size, test_fraction=args.test_fraction,
                 cache_dir=args.cache_dir, engine=args.engine)
    # Every train flag defaults to None: only the flags given on the command line reach train, which takes its
    # defaults for a new run and refuses, when resuming, any that would change the run's stored settings.
    given = {name: value for name, value in given.items() if value is not None}
    result = train(out=args.out, resume=args.resume, force=args.force, progress=report, quiet=args.quiet, **given)
    if not args.quiet and world().rank == 0:
        print(f"wrote {result.out}/checkpoint.npz, metrics.jsonl, samples.png, reconstructions.png, curves.png")


def cmd_sample(args):
    from .explore import sample

    sample(args.checkpoint, args.out, n=args.n, seed=args.seed, draw=args.draw)
    print(f"wrote {args.n} {'draws x ~ p(x|z)' if args.draw else 'samples'} to {args.out}")


def cmd_evaluate(args):
    from .evaluation import evaluate_checkpoint

    r = evaluate_checkpoint(args.checkpoint, data_dir=args.data_dir, k=args.k, n_test=args.n_test, rows=args.rows,
                            seed=args.seed, quiet=args.quiet or args.json)
    if world().rank > 0:
        return
    if args.json:
        print(json.dumps(r))
        return
    bits = f"  ({r['bits_per_dim']:.4f} bits/dim)" if r["bits_per_dim"] is not None else ""
    print(f"{r['dataset']} test set, {r['n']} images, checkpoint epoch {r['epoch']}\n"
          f"  ELBO            {r['elbo']:10.3f} nats  (recon {r['recon']:.3f}, KL {r['kl']:.3f})\n"
          f"  log p(x), K={r['k']:<5d} {-r['nll']:10.3f} nats  ->  "
          f"NLL {r['nll']:.3f} ± {r['nll_stderr']:.3f} nats{bits}\n"
          f"  active units    {r['active_units']:4d} of {r['latent']}  (Var_x E_q[z_u] > 0.01; per layer "
          f"{' + '.join(map(str, r['active_units_per_layer']))})\n"
          f"  {r['seconds']:.1f} s, peak memory {r['peak_memory_mb']:.0f} MB ({r['rows']} decoder rows per pass)")


def cmd_interpolate(args):
    from .explore import interpolate

    pictures = interpolate(args.checkpoint, args.out, data_dir=args.data_dir, rows=args.rows, steps=args.steps,
                           seed=args.seed)
    print(f"wrote {args.out}: {args.rows} rows of {args.steps} steps between two test images ({len(pictures)} "
          f"pictures)")


def cmd_traverse(args):
    from .explore import traverse

    _, dims, kl, labels = traverse(args.checkpoint, args.out, data_dir=args.data_dir, index=args.index,
                                   span=args.span, steps=args.steps, dims=args.dims)
    print(f"wrote {args.out}: one row per latent dimension, by average KL (nats): "
          + ", ".join(f"z{d} {k:.2f}" for d, k in zip(dims, kl))
          + ("\nfactor each row carries most: " + ", ".join(labels) if labels else ""))


def cmd_factors(args):
    from .factors import checkpoint_factors

    r = checkpoint_factors(args.checkpoint, n_probe=args.n_probe)
    if args.json:
        print(json.dumps(r))
        return
    print(f"{'factor':12s} {'kind':12s} {'probe':>8s}  {'MIG_k':>6s}  latent  I/H")
    for name, f in r["factors"].items():
        probe = f"acc {f['probe']:.3f}" if f["kind"] == "categorical" else f"R² {f['probe']:.3f}"
        print(f"{name:12s} {f['kind']:12s} {probe:>8s}  {f['mig']:6.3f}  z{f['latent']:<5d} {f['normalized_mi']:.3f}")
    print(f"MIG {r['mig']:.3f} (probe fitted on {args.n_probe} training images, scored on the test images)")


def cmd_manifold(args):
    from .explore import manifold

    manifold(args.checkpoint, args.out, n=args.n)
    print(f"wrote {args.out}: {args.n} x {args.n} decoded grid over the prior's quantiles")


def cmd_reconstruct(args):
    from .explore import reconstruct

    reconstruct(args.checkpoint, args.data_dir, args.out, limit=args.limit)
    print(f"wrote {args.out}: your pictures (resized) above their reconstructions")


def cmd_gradcheck(args):
    from .gradchecks import TOLERANCE, run_all

    results = run_all()
    if args.json:
        print(json.dumps([{"name": n, "max_rel_error": e} for n, e in results]))
    else:
        width = max(len(n) for n, _ in results)
        print(f"{'check':{width}s}  max rel error  result")
        for name, err in results:
            print(f"{name:{width}s}  {err:13.2e}  {'pass' if err <= TOLERANCE else 'FAIL'}")
        print(f"{sum(e <= TOLERANCE for _, e in results)}/{len(results)} checks within {TOLERANCE:g}")
    return 0 if all(e <= TOLERANCE for _, e in results) else 1


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with its errors on one line, like every other error of the command."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser():
    p = ArgumentParser(prog="minivae", description="A VAE with every gradient written by hand.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a VAE and write metrics, checkpoint and pictures")
    t.add_argument("--dataset", choices=("shapes", "mnist", "frey", "folder"),
                   help="shapes: built-in 64x64 RGB (default); mnist: any directory of IDX files; frey: Frey faces; "
                        "folder: your own PNG/JPEG pictures (docs/own-pictures.md)")
    t.add_argument("--data-dir", help="directory holding the data set's files (mnist, frey, folder)")
    t.add_argument("--channels", type=int, choices=(1, 3), help="folder: 1 gray or 3 RGB (default 3)")
    t.add_argument("--image-size", type=positive_int, help="folder: pictures become S x S pixels (default 64)")
    t.add_argument("--test-fraction", type=open_fraction,
                   help="folder: share of pictures held out as the test set, by a hash of each path (default 0.1)")
    t.add_argument("--cache-dir", help="folder: where the decoded pictures are kept (default "
                                       "~/.cache/minivae/<folder>-<hash>)")
    t.add_argument("--model", help="architecture: mlp (default), conv, conv28, conv64, burgess, linear (pPCA), "
                                   "mlp2 (two stochastic layers)")
    t.add_argument("--likelihood", choices=tuple(LIKELIHOODS),
                   help="output distribution p(x|z) (default bernoulli)")
    t.add_argument("--fixed-variance", type=positive_float, help="normal-fixed: the variance σ² (default 0.01)")
    t.add_argument("--variance-floor", type=positive_float,
                   help="normal: the lower bound on σ² (default (1/255)²/12, one 8-bit bin's variance)")
    t.add_argument("--components", type=positive_int,
                   help="discretized-logistic: mixture components M (default 5)")
    t.add_argument("--epochs", type=positive_int, help="number of epochs (default 4; with --resume, the run's)")
    t.add_argument("--batch-size", type=positive_int, help="examples per step (default 128)")
    t.add_argument("--lr", type=positive_float, help="Adam learning rate (default 1e-3)")
    t.add_argument("--lr-decay", type=unit_interval,
                   help="per-epoch learning-rate factor: epoch e uses lr * decay^(e-1) (default 1, constant)")
    t.add_argument("--lr-schedule", choices=("decay", "burda"),
                   help="decay: lr * decay^(e-1) (default); burda: 3^i epochs at lr * 10^(-i/7), i = 0..7 (3280 "
                        "epochs, Burda et al. 2016)")
    t.add_argument("--adam-eps", type=positive_float, help="Adam's epsilon (default 1e-8; Burda: 1e-4)")
    t.add_argument("--latent", type=latent_sizes,
                   help="latent size Z (default: the model's); mlp2: Z1,Z2 (default 100,50)")
    t.add_argument("--hidden", type=hidden_widths,
                   help="hidden widths, e.g. 400 or 200,200 (mlp); mlp2: x↔z1/z1↔z2, default 200,200/100,100")
    t.add_argument("--activation", help="hidden activation: relu, tanh, softplus, sigmoid (default relu)")
    t.add_argument("--seed", type=non_negative_int, help="seed of every random draw (default 0)")
    t.add_argument("--binarize", action="store_true", default=None,
                   help="dynamic binarization: x ~ Bernoulli(pixel) each batch")
    t.add_argument("--dtype", choices=("float32", "float64"), help="float32 (default) or float64")
    t.add_argument("--n-train", type=positive_int, help="use only the first N training images")
    t.add_argument("--n-test", type=positive_int, help="use only the first N test images")
    t.add_argument("--objective", choices=("elbo", "iwae"),
                   help="elbo: −ELBO with --beta/--warmup/--free-bits (default); iwae: the K-sample bound "
                        "−log (1/K) Σ_k w_k (Burda et al. 2016)")
    t.add_argument("--k", type=positive_int, help="iwae: importance samples per example (default 5)")
    t.add_argument("--beta", type=positive_float, help="elbo: KL weight β (default 1)")
    t.add_argument("--warmup", type=non_negative_float,
                   help="elbo: epochs N of KL warm-up, weight β·min(1, t/N) at epoch t (default 0: none)")
    t.add_argument("--free-bits", type=non_negative_float,
                   help="elbo: KL floor λ nats per latent dimension, Σ_j max(λ, batch-mean KL_j) (default 0)")
    t.add_argument("--init-from", metavar="RUN",
                   help="start from the parameters of RUN (a run directory or checkpoint.npz of the same model) with "
                        "a fresh optimizer, as a new run: e.g. --objective iwae after a VAE")
    t.add_argument("--engine", choices=("fast", "reference"),
                   help="fast: the Numba kernels (default); reference: every step through the plain NumPy "
                        "functions that read like the math (same numbers, 2-3x slower)")
    t.add_argument("--out", help="output directory (default runs/<dataset>-<model>)")
    t.add_argument("--quiet", action="store_true", help="print nothing but errors (no progress bar)")
    t.add_argument("--force", action="store_true",
                   help="start over in an --out directory that holds a run (its checkpoint and metrics are replaced)")
    t.add_argument("--resume", metavar="DIR",
                   help="continue the run in DIR (or from its checkpoint.npz) with its stored settings, bit for bit "
                        "as if never interrupted; --epochs may extend it")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="decode samples from the prior into an image grid")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--n", type=positive_int, default=64)
    s.add_argument("--out", default="samples.png")
    s.add_argument("--seed", type=non_negative_int, default=0)
    s.add_argument("--draw", action="store_true",
                   help="draw x ~ p(x|z) for each z instead of showing the decoder's mean (or mode)")
    s.set_defaults(func=cmd_sample)

    g = sub.add_parser("gradcheck", help="finite-difference check of every gradient (float64)")
    g.add_argument("--json", action="store_true", help="print a JSON list of {name, max_rel_error}")
    g.set_defaults(func=cmd_gradcheck)

    e = sub.add_parser("evaluate", help="test log-likelihood by importance sampling (K samples), ELBO, active units")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data-dir", help="the data set's directory (default: the one the run was trained with)")
    e.add_argument("--k", type=positive_int, default=5000, help="importance samples per image (default 5000)")
    e.add_argument("--n-test", type=positive_int, help="use only the first N test images")
    e.add_argument("--rows", type=positive_int, default=2000,
                   help="decoder rows per pass; bounds memory (≈ 30 KB a row for 784-200-200-50), not the result")
    e.add_argument("--seed", type=non_negative_int, help="seed of the noise and binarization (default: the run's seed)")
    e.add_argument("--json", action="store_true", help="print one JSON object (nll, elbo, k, kl, active_units, ...)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_evaluate)

    def explore_parser(name, help, out, test_images=True):
        c = sub.add_parser(name, help=help)
        c.add_argument("--checkpoint", required=True, help="a checkpoint.npz or the run directory holding it")
        if test_images:
            c.add_argument("--data-dir", help="the data set's directory (default: the one the run was trained with)")
        c.add_argument("--out", default=out, help=f"output PNG (default {out})")
        return c

    i = explore_parser("interpolate", "decode straight lines in latent space between pairs of test images",
                       "interpolate.png")
    i.add_argument("--rows", type=positive_int, default=6, help="pairs of test images, one a row (default 6)")
    i.add_argument("--steps", type=positive_int, default=10, help="decoded points per row, ends included (default 10)")
    i.add_argument("--seed", type=non_negative_int, default=0, help="which test images are paired (default 0)")
    i.set_defaults(func=cmd_interpolate)

    v = explore_parser("traverse", "vary one latent dimension at a time around a test image's code, rows by KL",
                       "traverse.png")
    v.add_argument("--index", type=non_negative_int, default=0, help="which test image's code μ(x) (default 0)")
    v.add_argument("--span", type=positive_float, default=3.0, help="offsets t in [-span, span] (default 3)")
    v.add_argument("--steps", type=positive_int, default=11, help="offsets per row (default 11)")
    v.add_argument("--dims", type=positive_int, help="only the DIMS dimensions of largest KL (default all)")
    v.set_defaults(func=cmd_traverse)

    f = sub.add_parser("factors", help="shapes runs: linear probe R²/accuracy per factor on μ(x), and MIG")
    f.add_argument("--checkpoint", required=True, help="a checkpoint.npz or the run directory holding it")
    f.add_argument("--n-probe", type=positive_int, default=5000,
                   help="training images the linear probes are fitted on (default 5000)")
    f.add_argument("--json", action="store_true", help="print one JSON object")
    f.set_defaults(func=cmd_factors)

    m = explore_parser("manifold", "2-D latent: the decoded grid over the prior's quantiles", "manifold.png",
                       test_images=False)
    m.add_argument("--n", type=positive_int, default=20, help="grid side (default 20)")
    m.set_defaults(func=cmd_manifold)

    r = explore_parser("reconstruct", "reconstruct your own PNG/JPEG pictures, resized to the model's input",
                       "reconstruct.png", test_images=False)
    r.add_argument("--data-dir", required=True, help="a folder of .png/.jpg/.jpeg files")
    r.add_argument("--limit", type=positive_int, default=64, help="at most this many pictures (default 64)")
    r.set_defaults(func=cmd_reconstruct)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if launched_size() > 1:  # one of several MPI ranks: an error anywhere must stop them all
        return main_of_rank(args)
    try:
        status = args.func(args) or 0
        sys.stdout.flush()  # a closed stdout shows here, not in the interpreter's flush at exit
        return status
    except MinivaeError as e:
        print(f"minivae: error: {e}", file=sys.stderr)
        return 2
    except TrainingInterrupted as e:
        print(f"minivae: interrupted by {e}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("minivae: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except BrokenPipeError:
        # Python's documented recipe (library/signal.html, "Note on SIGPIPE"): the rest of the output goes nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("minivae: error: standard output was closed before all of it was written (broken pipe)",
              file=sys.stderr)
        return 2


def main_of_rank(args):
    """`main` under mpiexec: a coordinated stop (every rank saw the signal at the same step) exits quietly on ranks
    other than 0; any other exception aborts the whole job (distributed.fail) instead of leaving the other ranks
    waiting in a collective forever."""
    import traceback

    from .distributed import fail

    try:
        if args.command not in ("train", "evaluate"):
            raise MinivaeError(f"only train and evaluate run over MPI; run minivae {args.command} without mpiexec")
        return args.func(args) or 0
    except MinivaeError as e:
        fail(f"minivae: error: {e}", 2)
    except TrainingInterrupted as e:
        if world().rank == 0:
            print(f"minivae: interrupted by {e}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        fail("minivae: interrupted", 128 + signal.SIGINT)
    except BaseException:
        traceback.print_exc()
        fail("minivae: error: unexpected exception (traceback above); stopping every rank", 1)
