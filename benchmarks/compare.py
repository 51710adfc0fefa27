"""Time one full training step (forward, backward, Adam) of the same VAE in minivae, PyTorch and JAX.

    python benchmarks/compare.py [--threads 2] [--json [out.json]] [--models mlp,conv28,conv64] [--repeats N]

What is timed: `step()` on a fixed batch and fixed ε (data loading excluded), from the same starting weights in every
framework (minivae's, exported through its parameter names). float32 for every model, float64 for mlp too; batch 128
for mlp and conv28, 64 for conv64. For each (model, dtype) every framework gets its own worker process (see
`bench_cell`), where it is built and warmed up (JAX compiles here); then they are timed in three passes, each
running a block of steps of every framework in turn, so that slow changes of the load from other processes fall on
all of them alike. Reported: median ms/step and the interquartile range.

Napkin math (printed with the table):
    FLOPs of one layer's forward, per example, as 2·M·N·K of the GEMM it is (im2col view for convolutions):
        Dense I→O                     2·I·O
        Conv2d C_in→C_out, k×k        2·C_out·(H_out·W_out)·(C_in·k²)
        ConvTranspose2d C_in→C_out    2·C_in·(H_in·W_in)·(C_out·k²)       (each input pixel scatters a k×k patch)
    The backward needs two GEMMs of the same size per layer (dL/dW and dL/dx), except that the encoder's first layer
    needs no dL/dx:     FLOPs/step = B · (3·F − F_first),     F = Σ_layers forward FLOPs per example.
    Bias, activations, the loss and Adam are O(parameters + activations) and are left out.
    Peak: the best of several numpy 2048×2048 matmuls (2·2048³ FLOPs each), float32 and float64, with the same
    threads. "% peak" = achieved GFLOP/s ÷ that peak.

Threads: --threads N sets OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS, torch.set_num_threads and XLA_FLAGS before numpy,
torch or jax are imported. Current jaxlib sizes its CPU thread pool from the CPUs the process may run on and ignores
the XLA flags, so when N is below the usable CPU count the whole process is also pinned to N CPUs
(os.sched_setaffinity), which binds all three frameworks alike.
"""
import argparse
import json
import os
import sys
import time

# The twins (this folder) and minivae (its parent), for this process and the spawned workers alike.
sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]

BATCH = {"mlp": 128, "conv28": 128, "conv64": 64}
IMAGE_SHAPE = {"mlp": (1, 28, 28), "conv28": (1, 28, 28), "conv64": (3, 64, 64)}
LATENT = {"mlp": 20, "conv28": 16, "conv64": 32}
# "jax-subpixel": the JAX twin with its ConvTranspose2d as four stride-1 convolutions (twins_jax.py says why);
# it is run only for the conv models (mlp has no ConvTranspose2d).
FRAMEWORKS = ("minivae", "torch", "jax", "jax-subpixel")

# Napkin-math table: the forward FLOPs of each parameter layer, per example, in Sequential order (encoder first).
#   ("dense", I, O) | ("conv", C_in, C_out, H_out) | ("convT", C_in, C_out, H_in); square images, k = 4.
LAYERS = {
    "mlp": [("dense", 784, 400), ("dense", 400, 40), ("dense", 20, 400), ("dense", 400, 784)],
    "conv28": [("conv", 1, 32, 14), ("conv", 32, 64, 7), ("dense", 3136, 256), ("dense", 256, 32),
               ("dense", 16, 256), ("dense", 256, 3136), ("convT", 64, 32, 7), ("convT", 32, 1, 14)],
    "conv64": [("conv", 3, 32, 32), ("conv", 32, 64, 16), ("conv", 64, 128, 8), ("conv", 128, 256, 4),
               ("dense", 4096, 64), ("dense", 32, 4096), ("convT", 256, 128, 4), ("convT", 128, 64, 8),
               ("convT", 64, 32, 16), ("convT", 32, 3, 32)],
}
K = 4


def default_json_path():
    """benchmarks/results/results-<date>-<time>.json, where the results of earlier runs are kept (with an index)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                        time.strftime("results-%Y-%m-%d-%H%M%S.json"))


def layer_flops(layer):
    kind, a, b, *rest = layer
    if kind == "dense":
        return 2 * a * b
    h = rest[0]
    return 2 * b * h * h * a * K * K  # the same expression for conv (h = H_out) and convT (h = H_in)


def flops_per_step(model, batch):
    """B · (3·F − F_first): forward F, two backward GEMMs per layer, no dL/dx for the encoder's first layer."""
    forward = [layer_flops(layer) for layer in LAYERS[model]]
    return batch * (3 * sum(forward) - forward[0])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="threads for every framework (default 2)")
    p.add_argument("--json", metavar="FILE", nargs="?", const=default_json_path(),
                   help="also write the results as a JSON list to FILE (default benchmarks/results/"
                        "results-<date>-<time>.json)")
    p.add_argument("--models", default="mlp,conv28,conv64", help="comma-separated subset of mlp,conv28,conv64")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                   help=f"comma-separated subset of {','.join(FRAMEWORKS)} (default all)")
    p.add_argument("--repeats", type=int, default=30,
                   help="timed steps per framework and (model, dtype), in 3 passes, each at least 1 s (default 30)")
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed steps first, and at least 1 s of them (JAX compiles in the first) (default 3)")
    p.add_argument("--max-seconds", type=float, default=60.0,
                   help="time budget of a (model, dtype), shared by its frameworks and passes; every block keeps "
                        "at least 2 steps (default 60)")
    p.add_argument("--no-float64", action="store_true", help="skip the float64 mlp run")
    args = p.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.frameworks = [f for f in args.frameworks.split(",") if f]
    for m in args.models:
        if m not in BATCH:
            p.error(f"unknown model {m!r}; expected some of {', '.join(BATCH)}")
    for f in args.frameworks:
        if f not in FRAMEWORKS:
            p.error(f"unknown framework {f!r}; expected some of {', '.join(FRAMEWORKS)}")
    if args.threads < 1 or args.repeats < 1:
        p.error("--threads and --repeats must be >= 1")
    return args


def set_threads(n):
    """Must run before numpy, numba, torch or jax are imported: they size their thread pools at import."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    # minivae's OpenBLAS settings (thread timeout; AVX2 kernels on Zen 4: minivae/runtime.py) must be in the
    # environment before numpy loads OpenBLAS, and the workers load numpy while unpickling their arguments, before
    # they import minivae. Configuring here puts them in this process's environment, which the workers inherit.
    # Only numpy's OpenBLAS reads them: PyTorch's BLAS is MKL and JAX's is XLA's own.
    import minivae.runtime
    minivae.runtime.configure()
    flags = os.environ.get("XLA_FLAGS", "")
    if n == 1:  # the classic single-thread recipe; older jaxlibs honour it, newer ones ignore it
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["XLA_FLAGS"] = flags.strip()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cpus and n < len(cpus):
        os.sched_setaffinity(0, cpus[:n])
        return f"pinned to CPUs {cpus[:n]}"
    return f"{len(cpus) or os.cpu_count()} CPUs usable"


# --- the three steppers: each `make_*` returns step() -> mean loss (a float), all from the same start ---

def make_minivae(model, dtype, params0, x, eps):
    import minivae.runtime
    minivae.runtime.configure()  # Numba's threading layer, in this worker (the OpenBLAS settings came inherited)
    import numpy as np
    from minivae.models import build_model
    from minivae.optim import Adam
    vae = build_model(model, rng=np.random.default_rng(0), dtype=dtype)
    for k, p in vae.params.items():
        p[...] = params0[k]
    opt = Adam(vae.params, lr=1e-3)
    x, eps = x.astype(dtype), eps.astype(dtype)

    def step():
        terms = vae.forward(x, eps)
        opt.step(vae.backward())
        return terms.loss.mean()
    return step


def make_torch(model, dtype, params0, x, eps):
    import torch
    import twins_torch
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # set by set_threads
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    twin = twins_torch.load_minivae_params(twins_torch.build_model(model, dtype=tdtype), params0)
    opt = twins_torch.make_optimizer(twin, lr=1e-3)
    x, eps = torch.from_numpy(x.astype(dtype)), torch.from_numpy(eps.astype(dtype))

    def step():
        return twins_torch.train_step(twin, opt, x, eps).item()
    return step


def make_jax(model, dtype, params0, x, eps, subpixel=False):
    import jax
    import jax.numpy as jnp
    if dtype == "float64":
        # float64 only in the float64 cell's worker process (each cell has its own).
        jax.config.update("jax_enable_x64", True)
    import twins_jax
    train_step = twins_jax.make_train_step(model, lr=1e-3, donate=True, subpixel=subpixel)
    state = {"params": {k: jnp.asarray(v.astype(dtype)) for k, v in params0.items()}}
    if state["params"]["decoder.0.W"].dtype != dtype:
        raise RuntimeError(f"JAX computes in {state['params']['decoder.0.W'].dtype}, not {dtype}")
    state["adam"] = twins_jax.adam_init(state["params"])
    x, eps = jnp.asarray(x.astype(dtype)), jnp.asarray(eps.astype(dtype))

    def step():
        state["params"], state["adam"], loss = train_step(state["params"], state["adam"], x, eps)
        jax.block_until_ready((state["params"], state["adam"], loss))
        return float(loss)
    return step


MAKERS = {"minivae": make_minivae, "torch": make_torch, "jax": make_jax,
          "jax-subpixel": lambda *args: make_jax(*args, subpixel=True)}


def initial_params(model):
    """Starting weights in minivae's names: minivae's own init if it has the model, else the torch twin's, else JAX's."""
    import numpy as np
    try:
        from minivae.models import build_model
        return {k: v.astype(np.float64) for k, v in
                build_model(model, rng=np.random.default_rng(0), dtype=np.float64).params.items()}
    except Exception:
        pass
    try:
        import twins_torch
        return twins_torch.to_minivae_params(twins_torch.build_model(model, seed=0))
    except ImportError:
        import twins_jax
        return {k: np.asarray(v) for k, v in twins_jax.init_params(model, seed=0).items()}


def available(framework, model, notes):
    """Can `framework` run `model`? Returns False (and records why) when it cannot."""
    try:
        if framework == "minivae":
            import numpy as np
            from minivae.models import build_model
            build_model(model, rng=np.random.default_rng(0), dtype=np.float32)
        elif framework == "torch":
            import torch  # noqa: F401
        elif framework in ("jax", "jax-subpixel"):
            import jax  # noqa: F401
            return framework == "jax" or model != "mlp"
        return True
    except ImportError as err:
        notes.append(f"skipped {framework}: not installed ({err}); pip install -e .[bench]")
    except Exception as err:
        notes.append(f"skipped {framework} {model}: {type(err).__name__}: {err}")
    return False


def gemm_peak(dtype, n=2048, tries=7):
    """Best GFLOP/s of numpy n×n @ n×n (2n³ FLOPs) over `tries` runs, after one warm-up."""
    import numpy as np
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(tries))
    return 2 * n ** 3 / best / 1e9


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# Warm-up: at least --warmup steps and WARMUP_S seconds. A fresh process's first steps are slower while its heap
# grows: minivae's MLP took ~170 page faults and 4.0–5.7 ms per step over its first 50 steps, 3.3 ms afterwards.
WARMUP_S = 1.0

# Pause before each block: the threads of the framework that ran last (OpenMP's and OpenBLAS's default spin ~0.1 s)
# must go to sleep before the next one is timed.
SETTLE_S = 0.3


# A timed block lasts at least MIN_BLOCK_S as well as its share of --repeats: 30 MLP steps are 0.1 s, which one burst
# of load on a shared machine can fill; a second holds ~300 of them.
MIN_BLOCK_S = 1.0


def serve(conn, fw, model, dtype, params0, x, eps, warmup):
    """A worker process's loop: build `fw`'s step, run the first step and the warm-up, report; then run and time
    blocks of steps on request ((n, budget_s) -> list of seconds: at least n steps and MIN_BLOCK_S, at least 2 steps
    and at most about budget_s) until it receives None."""
    try:
        step = MAKERS[fw](model, dtype, params0, x, eps)
        t_warm, steps = time.perf_counter(), 1
        first = step()  # the first step from the shared start: the losses must agree across frameworks
        while steps < warmup or time.perf_counter() - t_warm < WARMUP_S:
            step()
            steps += 1
    except Exception as err:  # a framework that cannot run this cell is reported, not fatal
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    conn.send(("ok", first, runtime_note(fw)))
    while (request := conn.recv()) is not None:
        n, budget = request
        step()  # untimed: wakes this framework's thread pool after the others ran
        t_block, times = time.perf_counter(), []
        while True:
            times.append(_timed(step))
            elapsed = time.perf_counter() - t_block
            if len(times) >= 2 and elapsed > budget or len(times) >= n and elapsed >= MIN_BLOCK_S:
                break
        conn.send(times)


def runtime_note(fw):
    """What a worker should report about its threads (minivae: Numba's threading layer)."""
    if fw != "minivae":
        return None
    import numba
    return f"numba {numba.__version__}, threading layer {numba.threading_layer()}"


def bench_cell(model, dtype, frameworks, args, notes):
    """Warm up every framework, then time passes of blocks. Returns {framework: (times_s, first_loss)}.

    Each framework runs in its own process (multiprocessing, spawn), so that no runtime's thread settings reach
    another's: in one process PyTorch's OpenMP runtime and Numba's are one libgomp, and whichever is loaded first
    imposes its threads' wait policy on the other (see minivae/runtime.py). The processes inherit the thread
    settings and the CPU affinity; only one computes at a time, the others wait on their pipes with idle threads.
    """
    import multiprocessing as mp
    import numpy as np
    B = BATCH[model]
    rng = np.random.default_rng(1234)
    x = rng.uniform(0.0, 1.0, (B, *IMAGE_SHAPE[model]))
    eps = rng.standard_normal((B, LATENT[model]))
    params0 = initial_params(model)
    ctx = mp.get_context("spawn")
    workers, first = {}, {}
    for fw in frameworks:  # one at a time, so that warm-ups (JAX compiles) do not overlap
        conn, child = ctx.Pipe()
        proc = ctx.Process(target=serve, args=(child, fw, model, dtype, params0, x, eps, args.warmup), daemon=True)
        proc.start()
        reply = conn.recv() if conn.poll(600) else ("error", "no answer within 600 s")
        if reply[0] == "ok":
            workers[fw], first[fw] = (proc, conn), reply[1]
            if reply[2]:
                notes.append(reply[2])
        else:
            notes.append(f"skipped {fw} {model} {dtype}: {reply[1]}")
            proc.kill()
    # Timed in passes: each pass runs every framework in turn, one untimed step and then a block of timed steps.
    # Blocks, not single steps, because the frameworks' thread pools (OpenMP runtimes, OpenBLAS, XLA's) keep
    # spinning for a while after their work and would tax the next one.
    passes = min(3, args.repeats)
    per_pass = -(-args.repeats // passes)
    budget = args.max_seconds / (passes * max(1, len(workers)))
    times = {fw: [] for fw in workers}
    for _ in range(passes):
        for fw, (_, conn) in workers.items():
            time.sleep(SETTLE_S)
            conn.send((per_pass, budget))
            times[fw] += conn.recv()
    for proc, conn in workers.values():
        conn.send(None)
        proc.join(timeout=30)
    return {fw: (times[fw], first[fw]) for fw in workers}


def main(argv=None):
    args = parse_args(argv)
    affinity = set_threads(args.threads)
    import numpy as np

    notes = []
    if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
        notes.append(f"numpy's OpenBLAS runs with OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')!r}, "
                     f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '')!r} (see benchmarks/README.md)")
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    try:
        import jax
        jax_version = jax.__version__
    except ImportError:
        jax_version = None

    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    print(f"threads {args.threads} ({affinity}); numpy {np.__version__} ({blas.get('name')} "
          f"{blas.get('version', '')}), torch {torch_version or '-'}, jax {jax_version or '-'}")
    # The peak is measured before the runs and again after them and the better kept: load from other processes
    # only ever lowers it, and a big gap between the two says the machine was busy during the run.
    peak_before = {"float32": gemm_peak(np.float32), "float64": gemm_peak(np.float64)}

    cells = [(m, "float32") for m in args.models]
    if "mlp" in args.models and not args.no_float64:
        cells.append(("mlp", "float64"))
    timings = []
    for model, dtype in cells:
        frameworks = [fw for fw in args.frameworks if available(fw, model, notes)]
        if not frameworks:
            continue
        t0 = time.perf_counter()
        cell = bench_cell(model, dtype, frameworks, args, notes)
        print(f"  timed {model} {dtype} ({', '.join(cell) or 'nothing'}) in {time.perf_counter() - t0:.0f} s",
              flush=True)
        timings += [(model, dtype, fw, times, first_loss) for fw, (times, first_loss) in cell.items()]
    peak_after = {"float32": gemm_peak(np.float32), "float64": gemm_peak(np.float64)}
    peak = {d: max(peak_before[d], peak_after[d]) for d in peak_before}
    print(f"numpy GEMM peak (2048x2048, best of 7, before/after the runs): float32 {peak_before['float32']:.1f}/"
          f"{peak_after['float32']:.1f} GFLOP/s, float64 {peak_before['float64']:.1f}/{peak_after['float64']:.1f} "
          f"GFLOP/s; % peak uses the better of each")

    results = []
    for model, dtype, fw, times, first_loss in timings:
        flops = flops_per_step(model, BATCH[model])
        t = np.array(times) * 1e3
        q1, med, q3 = np.percentile(t, [25, 50, 75])
        results.append({"model": model, "framework": fw, "batch": BATCH[model], "dtype": dtype,
                        "median_ms": round(float(med), 3), "iqr_ms": round(float(q3 - q1), 3),
                        "rounds": len(times), "images_per_s": round(BATCH[model] / med * 1e3, 1),
                        "gflop_per_step": flops / 1e9, "gflop_per_s": round(flops / med / 1e6, 2),
                        "percent_of_peak": round(100 * flops / med / 1e6 / peak[dtype], 1),
                        "gemm_peak_gflops": round(peak[dtype], 1), "first_step_loss": float(first_loss),
                        "threads": args.threads})
    for model, dtype in cells:
        rows = [r for r in results if r["model"] == model and r["dtype"] == dtype]
        if rows:
            print_cell(model, dtype, flops_per_step(model, BATCH[model]), rows)
    seen = set()
    for note in notes:
        if note not in seen:
            print("note:", note)
            seen.add(note)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {len(results)} results to {args.json}")
    return results


def print_cell(model, dtype, flops, rows):
    ours = next((r for r in rows if r["framework"] == "minivae"), None)
    print(f"\n{model} {dtype}  batch {rows[0]['batch']}  {flops / 1e9:.3f} GFLOP/step  "
          f"(= B·(3F − F_first), F = {sum(map(layer_flops, LAYERS[model])) / 1e6:.3f} MFLOP/example); "
          f"minivae÷it > 1: minivae is slower")
    print(f"  {'framework':<12} {'median ms':>10} {'IQR ms':>8} {'images/s':>9} {'GFLOP/s':>8} {'% peak':>7} "
          f"{'minivae÷it':>11} {'1st loss':>11} rounds")
    for r in rows:
        ratio = f"{ours['median_ms'] / r['median_ms']:.2f}x" if ours and r is not ours else "-"
        print(f"  {r['framework']:<12} {r['median_ms']:>10.2f} {r['iqr_ms']:>8.2f} {r['images_per_s']:>9.0f} "
              f"{r['gflop_per_s']:>8.1f} {r['percent_of_peak']:>6.1f}% {ratio:>11} {r['first_step_loss']:>11.4f} "
              f"{r['rounds']:>6}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
