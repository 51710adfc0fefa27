"""Which model and likelihood should `minivae train` (no flags) use? Train candidates on shapes and log, per epoch,
the test reconstructions' PSNR and mask IoU (minivae/shape_scores.py), the test negative ELBO, wall time and the
process's CPU time (user + sys, both threads), so a budget measured on a shared machine can be read as CPU time.

    python benchmarks/shapes_default.py --runs mlp:bernoulli:8 burgess:bernoulli:2:latent=32:lr=2e-3 [--out FILE]

Each run is `minivae.train(dataset="shapes", model=M, likelihood=L, epochs=E, seed=0, **extra)` with everything else
at its default (extra: optional key=value settings, as `minivae.train` takes them); one JSON line per epoch goes to
--out (and stdout); a run directory that already holds the run is continued (or, finished, only shown).
`--data FILE.npz` trains on its `train` and `test` uint8 arrays (N, C, H, W) instead, e.g.
../shared/data/natural/photo-crops-64.npz (no PSNR/IoU then: they need the shapes' known colours). `--picture FILE`
writes one grid after the runs: 8 test images on top, then per run its reconstructions decode(μ(x)) and 8 prior
samples decode(z), z ~ N(0, I) from one seeded Generator, each row labelled.
"""
import argparse
import ast
import json
import resource
import time

import numpy as np

import minivae
from minivae.data import load_dataset
from minivae.explore import encode_mean
from minivae.images import save_grid
from minivae.pictures import data_pictures, decode_pictures
from minivae.rundir import checkpoint_file


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def literal(text):
    """'32' -> 32, '2e-3' -> 0.002, '400,400' -> (400, 400), 'relu' -> 'relu'."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="model:likelihood:epochs, e.g. burgess:bernoulli:2")
    p.add_argument("--n-train", type=int, default=None, help="training images (default: all 20000)")
    p.add_argument("--out", default="shapes_default.jsonl")
    p.add_argument("--dir", default="runs/shapes-default", help="where the runs' directories go")
    p.add_argument("--data", help="an .npz of uint8 `train` and `test` arrays to train on instead of shapes")
    p.add_argument("--picture", help="a PNG of the runs' reconstructions and prior samples, one pair of rows a run")
    args = p.parse_args()
    data = None
    if args.data:
        with np.load(args.data, allow_pickle=False) as f:
            data = (f["train"], f["test"])
    if args.picture:
        shown = (data[1] if data else load_dataset("shapes", seed=0, n_train=1).test)[:8]
        rows, labels = [], ["test images"]
    for spec in args.runs:
        model, likelihood, epochs, *extra = spec.split(":")
        settings = {k: literal(v) for k, v in (item.split("=", 1) for item in extra)}
        name = "-".join([model, likelihood, f"e{epochs}", *(f"{k}{v}" for k, v in settings.items())])
        start_wall, start_cpu = time.perf_counter(), cpu_seconds()

        def log(epoch, row, model=model, likelihood=likelihood, settings=settings):
            line = {"model": model, "likelihood": likelihood, **settings, "epoch": epoch, "psnr": row.get("psnr"),
                    "iou": row.get("iou"), "test_loss": row["test_loss"], "bits_per_dim": row.get("test_bits_per_dim"),
                    "wall_s": time.perf_counter() - start_wall, "cpu_s": cpu_seconds() - start_cpu}
            print(json.dumps(line), flush=True)
            with open(args.out, "a") as f:
                f.write(json.dumps(line) + "\n")

        run_dir = f"{args.dir}/{name}"
        vae = minivae.train(run_dir, resume=run_dir if checkpoint_file(run_dir).is_file() else None, data=data,
                            model=model, likelihood=likelihood, epochs=int(epochs), n_train=args.n_train, seed=0,
                            progress=log, quiet=True, **settings).vae
        if args.picture:
            z = np.random.default_rng(1).standard_normal((len(shown), vae.latent))
            rows += [decode_pictures(vae, encode_mean(vae, shown)), decode_pictures(vae, z)]
            labels += [f"{name}: reconstructions", f"{name}: samples"]
    if args.picture:
        save_grid(args.picture, np.concatenate([data_pictures(vae, shown), *rows]), ncol=len(shown), row_labels=labels)


if __name__ == "__main__":
    main()
