"""The β-VAE trade-off on shapes: how much of each generating factor the code carries, and how disentangled it is
(MIG), against the test negative ELBO, for β = 1, 2, 4, 8 and one free-bits run.

Each setting is one run `minivae.train(dataset="shapes", model=--model, likelihood=--likelihood, epochs=--epochs,
beta=β, free_bits=λ, seed=0)`, everything else at its default, in --dir/<setting>. A directory that already holds
the run is continued with `resume=` (settings must match): a finished run of --epochs epochs is scored as it is,
without training, so the scoring can be rerun alone; an interrupted one finishes first.

    python benchmarks/beta_sweep.py [--model mlp] [--epochs 10] [--likelihood L] [--n-train N]
                                    [--dir runs/beta-sweep] [--out docs/beta-sweep]

Writes <out>.md (the table, also printed) and <out>.png (MIG and every factor's probe score against the test
−ELBO, one point per setting). Columns:

    β, free bits    the KL weight and the KL floor λ per latent dimension (nats; objectives.py)
    test −ELBO      nats per test image (one sample, closed-form KL), of the last epoch: recon + KL
    recon, KL       its parts: E_q[−log p(x|z)] and KL(q(z|x) ‖ p(z)), nats per image
    active          latent dimensions whose mean KL over the test images exceeds 0.01 nats, of Z
    PSNR, IoU       of the test reconstructions decode(μ(x)): dB, and the shape mask's mean IoU (shape_scores.py)
    MIG             mutual information gap: the mean over factors k of (I(μ_j₁; v_k) − I(μ_j₂; v_k)) / H(v_k),
                    j₁ and j₂ the two latents most informative about v_k (minivae/factors.py)
    shape … background   the held-out linear probe on μ(x): accuracy for shape (chance 0.25), R² for the others
    wall s, CPU s   of the train() call in this invocation (user + sys, all threads), "reused" for a run found done;
                    the first run's include Numba's compilation when its cache (__pycache__) is cold

The probes are fitted on 5000 training images and scored, with MIG, on the 2000 test images
(minivae.factors.checkpoint_factors).
"""
import minivae.runtime
minivae.runtime.configure()  # before numpy loads OpenBLAS: the speed of `minivae train`

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import minivae  # noqa: E402
from minivae.data import load_dataset  # noqa: E402
from minivae.data.datasets import SHAPES_TRAIN  # noqa: E402
from minivae.data.shapes import FACTOR_KINDS  # noqa: E402
from minivae.errors import MinivaeError  # noqa: E402
from minivae.explore import mean_kl_per_dimension  # noqa: E402
from minivae.factors import checkpoint_factors  # noqa: E402
from minivae.plots import plot  # noqa: E402
from minivae.rundir import checkpoint_file  # noqa: E402
from minivae.settings import TrainSettings  # noqa: E402

SEED = 0
FREE_BITS = 0.5  # nats a dimension: below what a used dimension carries, so it spares only those pushed to the prior
SETTINGS = [(1.0, 0.0), (2.0, 0.0), (4.0, 0.0), (8.0, 0.0), (1.0, FREE_BITS)]  # (β, free bits λ)
ACTIVE_KL = 0.01  # nats: a dimension below this mean KL is the prior's


def label(beta, free_bits):
    return f"beta {beta:g}" + (f", free bits {free_bits:g}" if free_bits else "")


def train_or_reuse(run_dir, epochs, settings):
    """The run in `run_dir`: trained (or finished, if interrupted) to `epochs` epochs -> (TrainResult, wall s, CPU s),
    the seconds None when the directory already held the finished run."""
    done = checkpoint_file(run_dir).is_file()
    trained = []
    wall, cpu = time.perf_counter(), time.process_time()
    result = minivae.train(run_dir, resume=run_dir if done else None, epochs=epochs, quiet=True,
                           progress=lambda epoch, row: trained.append(epoch), **settings)
    if result.metrics[-1]["epoch"] != epochs:
        raise MinivaeError(f"{run_dir} holds a run of {result.metrics[-1]['epoch']} epochs, more than --epochs "
                           f"{epochs}; choose another --dir")
    if not trained:
        return result, None, None
    return result, time.perf_counter() - wall, time.process_time() - cpu


def score(result, test_images, wall, cpu):
    """One table row (dict) of a finished run."""
    last = result.metrics[-1]
    factors = checkpoint_factors(result.out)
    kl_dims = mean_kl_per_dimension(result.vae, test_images)
    return {"elbo": last["test_loss"], "recon": last["recon"], "kl": last["kl"], "psnr": last["psnr"],
            "iou": last["iou"], "active": f"{int((kl_dims > ACTIVE_KL).sum())}/{len(kl_dims)}", "mig": factors["mig"],
            "probes": {name: row["probe"] for name, row in factors["factors"].items()}, "wall": wall, "cpu": cpu}


def markdown(rows):
    """The table: rows [(β, free bits, score dict)] -> Markdown text."""
    header = ["β", "free bits", "test −ELBO", "recon", "KL", "active", "PSNR dB", "IoU", "MIG", *FACTOR_KINDS,
              "wall s", "CPU s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for beta, free_bits, r in rows:
        seconds = ["reused", "reused"] if r["wall"] is None else [f"{r['wall']:.0f}", f"{r['cpu']:.0f}"]
        cells = [f"{beta:g}", f"{free_bits:g}", f"{r['elbo']:.1f}", f"{r['recon']:.1f}", f"{r['kl']:.1f}", r["active"],
                 f"{r['psnr']:.2f}", f"{r['iou']:.3f}", f"{r['mig']:.3f}",
                 *(f"{r['probes'][name]:.3f}" for name in FACTOR_KINDS), *seconds]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine():
    cpu = minivae.runtime.cpu_fields()
    return (f"{cpu.get('model name', 'unknown CPU')} (family {cpu.get('cpu family', '?')} model "
            f"{cpu.get('model', '?')}), {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f} at start")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mlp")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--likelihood", default=TrainSettings().likelihood)
    p.add_argument("--n-train", type=int, help="fewer training images (default: all 20000), for a quick check")
    p.add_argument("--dir", default="runs/beta-sweep", help="where the runs' directories go")
    p.add_argument("--out", default="docs/beta-sweep", help="writes <out>.md and <out>.png")
    args = p.parse_args()
    settings = {"dataset": "shapes", "model": args.model, "likelihood": args.likelihood, "n_train": args.n_train,
                "seed": SEED}
    host = machine()
    test_images = load_dataset("shapes", seed=SEED, n_train=1).test  # the runs' test split: same seed
    rows = []
    for beta, free_bits in SETTINGS:
        run_dir = Path(args.dir) / label(beta, free_bits).replace(", ", "-").replace(" ", "")  # beta1-freebits0.5
        result, wall, cpu = train_or_reuse(run_dir, args.epochs, {**settings, "beta": beta, "free_bits": free_bits})
        rows.append((beta, free_bits, score(result, test_images, wall, cpu)))
        print(f"{label(beta, free_bits)}: done", file=sys.stderr, flush=True)
    text = (f"shapes, {args.model}, {args.likelihood}, {args.epochs} epochs on {args.n_train or SHAPES_TRAIN} training "
            f"images, seed {SEED}; scored on {len(test_images)} test images; {host}\n\n{markdown(rows)}\n")
    print(text, end="")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text(text)
    x = [r["elbo"] for _, _, r in rows]
    series = {"MIG": (x, [r["mig"] for _, _, r in rows]),
              **{f"{name} probe": (x, [r["probes"][name] for _, _, r in rows]) for name in FACTOR_KINDS}}
    plot(f"{args.out}.png", f"shapes, {args.model}, {args.epochs} epochs: MIG and linear probes (accuracy "
         f"for shape, R2 for the others)", "test -ELBO (nats per image)", "score", series, lines=False,
         point_labels={"MIG": [label(beta, free_bits) for beta, free_bits, _ in rows]})


if __name__ == "__main__":
    try:
        main()
    except MinivaeError as e:
        print(f"beta_sweep: {e}", file=sys.stderr)
        sys.exit(2)
