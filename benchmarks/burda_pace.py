"""The pace of Burda et al.'s (2016) Table 1 on this machine: time per training step of each of its four rows.

    rows  VAE and IWAE (K = 50), one stochastic layer (mlp 784-200-200-50) and two (mlp2, hvae.py), tanh, Bernoulli
    step  batch 20 of dynamically binarized MNIST, objective forward + backward + Adam (ε 1e-4), float32

The rows take turns in blocks of at least --block seconds (A B C D A B C D …, --rounds rounds), so that a change in
the machine's load hits every row alike; each block reports wall-clock and CPU time (process_time, all threads) per
step. Printed per row: the median block in ms/step, the epoch (60 000 images, 3000 steps) in minutes and the paper's
3280 epochs in days, wall and CPU.

    PYTHONPATH=. python benchmarks/burda_pace.py [--data-dir DIR] [--json OUT.json]
"""
import argparse
import json
import os
import platform
import time

import numpy as np

from minivae.data import load_dataset
from minivae.models import build_model
from minivae.objectives import make_objective
from minivae.optim import Adam
from minivae.training import prepare_batch

ROWS = {"VAE, 1 layer": ("mlp", "elbo"), "IWAE k=50, 1 layer": ("mlp", "iwae"),
        "VAE, 2 layers": ("mlp2", "elbo"), "IWAE k=50, 2 layers": ("mlp2", "iwae")}
ONE_LAYER = {"hidden": (200, 200), "latent": 50, "activation": "tanh"}
BATCH, EPOCH_STEPS, PAPER_EPOCHS = 20, 3000, 3280


def setup(model, objective, data, rng):
    vae = build_model(model, rng=rng, **(ONE_LAYER if model == "mlp" else {}))
    obj = make_objective(objective, k=50 if objective == "iwae" else None)
    return vae, obj, Adam(vae.params, lr=1e-3, eps=1e-4)


def block(state, data, rng, seconds):
    """Steps for at least `seconds`: (wall s/step, CPU s/step)."""
    vae, obj, opt = state
    wall, cpu, n = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - wall < seconds or n < 2:
        x = prepare_batch(vae, data.train[rng.integers(0, len(data.train), BATCH)], rng, True)
        opt.step(obj.loss_and_grads(vae, x, obj.noise(rng, BATCH, vae.noise_size, vae.dtype))[2])
        n += 1
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=os.path.join(os.environ.get("MINIVAE_SHARED_DATA", "/work/shared/data"),
                                                      "mnist"))
    p.add_argument("--block", type=float, default=20.0, help="seconds per block (default 20)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    data = load_dataset("mnist", args.data_dir, seed=0)
    rng = np.random.default_rng(0)
    states = {row: setup(*spec, data, rng) for row, spec in ROWS.items()}
    for state in states.values():  # compile and warm up
        block(state, data, rng, 1.0)
    times = {row: [] for row in ROWS}
    for _ in range(args.rounds):
        for row, state in states.items():
            times[row].append(block(state, data, rng, args.block))
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(), "cores": os.cpu_count(),
               "load_average": os.getloadavg(), "block_s": args.block, "rounds": args.rounds, "rows": {}}
    print(f"{'row':22s} {'ms/step wall':>13s} {'CPU':>7s} {'min/epoch wall':>15s} {'CPU':>6s} "
          f"{'3280 epochs, days wall':>23s} {'CPU':>6s}")
    for row, blocks in times.items():
        wall, cpu = (float(np.median([b[i] for b in blocks])) for i in (0, 1))
        results["rows"][row] = {"ms_per_step_wall": wall * 1e3, "ms_per_step_cpu": cpu * 1e3,
                                "blocks": [[w * 1e3, c * 1e3] for w, c in blocks]}
        print(f"{row:22s} {wall * 1e3:13.1f} {cpu * 1e3:7.1f} {wall * EPOCH_STEPS / 60:15.1f} "
              f"{cpu * EPOCH_STEPS / 60:6.1f} {wall * EPOCH_STEPS * PAPER_EPOCHS / 86400:23.1f} "
              f"{cpu * EPOCH_STEPS * PAPER_EPOCHS / 86400:6.1f}")
    print(f"load average during the run: {results['load_average']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
