"""Cost of one training step (batch 128, shapes 3×64×64, Bernoulli) of the 64×64 candidates for the default run,
measured alternately in one process so that a shared machine's load hits every model alike: wall and CPU seconds
(user + sys) per step, and each model's ratio to the first.

    python benchmarks/step_ratio.py [--models mlp burgess conv64] [--steps 10]
"""
import argparse
import json
import resource
import time

import numpy as np

from minivae.data.shapes import make_shapes
from minivae.models import build_model
from minivae.objectives import make_objective
from minivae.optim import Adam


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["mlp", "burgess", "conv64"])
    p.add_argument("--likelihood", default="bernoulli")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    images, _ = make_shapes(128, seed=0)
    x = images.astype(np.float32) / 255
    objective, rng = make_objective("elbo"), np.random.default_rng(0)
    runs = {}
    for name in args.models:
        vae = build_model(name, rng=rng, image_shape=(3, 64, 64), likelihood=args.likelihood)
        runs[name] = (vae, Adam(vae.params, lr=1e-3), vae.likelihood.from_uint8(images, dtype=vae.dtype))
    totals = {name: [0.0, 0.0] for name in args.models}
    for step in range(args.steps + 1):  # step 0 warms up (compiles)
        for name, (vae, opt, data) in runs.items():
            w, c = time.perf_counter(), cpu_seconds()
            _, _, grads = objective.loss_and_grads(vae, data, objective.noise(rng, 128, vae.latent, vae.dtype),
                                                   epochs_done=0)
            opt.step(grads)
            if step:
                totals[name][0] += time.perf_counter() - w
                totals[name][1] += cpu_seconds() - c
    first = totals[args.models[0]]
    print(json.dumps({name: {"wall_s_per_step": t[0] / args.steps, "cpu_s_per_step": t[1] / args.steps,
                             "wall_ratio": t[0] / first[0], "cpu_ratio": t[1] / first[1]}
                      for name, t in totals.items()}, indent=1))


if __name__ == "__main__":
    main()
