"""The default run against its PyTorch twin on the same wall time: `minivae train` with no flags (shapes, its
default model and likelihood; the command itself, in a child process, as a user runs it), then the twin (benchmarks/twins_torch.py: same layers, PyTorch's init, Bernoulli
on grey values, torch.optim.Adam lr 1e-3, batches of 128 shuffled each epoch by a seeded Generator) trained for
the seconds minivae spent training (the sum of its epochs' `seconds`: training against training), and on to the
whole wall time of minivae's command (start-up, compilation, per-epoch scoring and pictures included: the twin
only trains); both scored by minivae/shape_scores.py on the same 2000 test images, the twin outside its clock.

    python benchmarks/default_vs_torch.py [--threads 2] [--out default_vs_torch.json]

Prints and writes one JSON object: minivae's wall, CPU (user + sys) and training seconds, images seen, PSNR and mask
IoU; the twin's training seconds, images seen, PSNR and mask IoU at each of the two budgets.
On a shared machine take the two sides' ratio, not the seconds.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import twins_torch  # noqa: E402

from minivae.data import load_dataset  # noqa: E402
from minivae.data.shapes import factor_colours  # noqa: E402
from minivae.shape_scores import mask_iou, psnr, shape_masks  # noqa: E402
from minivae.settings import TrainSettings  # noqa: E402


TWINS = {"mlp": "mlp64"}  # minivae model -> its twin in archs.py when the names differ (shapes are 3×64×64)


def child_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def torch_scores(module, images, factors):
    """PSNR and mean mask IoU of the twin's reconstructions sigmoid(decoder(μ(x))), as shape_scores computes them."""
    colour, background = factor_colours(factors)
    squared, ious = 0.0, []
    with torch.no_grad():
        for i in range(0, len(images), 500):
            truth = images[i:i + 500] / 255.0
            h = module.encoder(torch.from_numpy(truth.astype(np.float32)).reshape(len(truth), *module.x_shape))
            rec = torch.sigmoid(module.decoder(h[:, :module.latent])).numpy().astype(np.float64).reshape(truth.shape)
            squared += float(np.sum((rec - truth) ** 2))
            part = slice(i, i + len(truth))
            ious.append(mask_iou(shape_masks(rec, colour[part], background[part]),
                                 shape_masks(truth, colour[part], background[part])))
    return {"psnr": psnr(squared / images.size), "iou": float(np.mean(np.concatenate(ious)))}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="default_vs_torch.json")
    p.add_argument("--dir", default="runs/default-vs-torch")
    p.add_argument("--n-train", type=int, help="fewer training images, for a quick check of the script")
    args = p.parse_args()
    defaults = TrainSettings()
    command = [sys.executable, "-m", "minivae", "train", "--out", args.dir, "--quiet"]
    start_wall, start_cpu = time.perf_counter(), child_cpu_seconds()
    subprocess.run(command + (["--n-train", str(args.n_train)] if args.n_train else []), check=True)
    wall, cpu = time.perf_counter() - start_wall, child_cpu_seconds() - start_cpu
    metrics = [json.loads(line) for line in (Path(args.dir) / "metrics.jsonl").read_text().splitlines()]
    data = load_dataset("shapes", seed=defaults.seed, n_train=args.n_train)
    ours = {"wall_s": wall, "cpu_s": cpu, "training_s": sum(row["seconds"] for row in metrics),
            "images": defaults.epochs * len(data.train), "psnr": metrics[-1]["psnr"], "iou": metrics[-1]["iou"]}

    torch.set_num_threads(args.threads)
    module = twins_torch.build_model(TWINS.get(defaults.model, defaults.model), seed=defaults.seed)
    opt = twins_torch.make_optimizer(module, lr=defaults.lr)
    rng = np.random.default_rng(defaults.seed)
    budgets = {"training_s": ours["training_s"], "wall_s": ours["wall_s"]}
    theirs, trained, seen = {}, 0.0, 0
    while len(theirs) < len(budgets):
        for idx in np.array_split(rng.permutation(len(data.train)), -(-len(data.train) // defaults.batch_size)):
            start = time.perf_counter()
            x = torch.from_numpy((data.train[idx] / 255.0).astype(np.float32))
            twins_torch.train_step(module, opt, x, torch.from_numpy(rng.standard_normal(
                (len(idx), module.latent)).astype(np.float32)))
            trained += time.perf_counter() - start
            seen += len(idx)
            for name, budget in budgets.items():  # scored outside the clock
                if name not in theirs and trained >= budget:
                    theirs[name] = {"trained_s": trained, "images": seen,
                                    **torch_scores(module, data.test, data.factors["test"])}
            if len(theirs) == len(budgets):
                break
    report = {"model": defaults.model, "likelihood": defaults.likelihood, "minivae": ours, "pytorch": theirs}
    print(json.dumps(report, indent=1))
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
