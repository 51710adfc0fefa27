"""Data parallelism over MPI (minivae/distributed.py, docs/mpi.md): `mpiexec -n 2 minivae train` ends where one process
ends (to float rounding), bitwise the same from run to run; a SIGTERM stops every rank at the same step and the run
resumes bitwise; `mpiexec -n 2 minivae evaluate` gives one process's figures exactly; a rank that dies or raises
stops the job within seconds. Each rank runs one thread (2 ranks on the 2-core CI machine)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from minivae import distributed
from minivae.checkpoint import read_checkpoint
from minivae.errors import MinivaeError
from minivae.evaluation import evaluate_checkpoint
from minivae.models import build_model
from minivae.objectives import make_objective
from minivae.training import train
from test_data_idx import write_idx_dir

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
try:
    import mpi4py  # noqa: F401
except ImportError:
    mpi4py = None
needs_mpi = pytest.mark.skipif(mpi4py is None or MPIEXEC is None,
                               reason="needs mpi4py and mpiexec: pip install -e '.[mpi]'")

# 96 training images in batches of 25: shares of 13/12 rows and a last batch of 21 (11/10); 2 epochs of 4 steps.
RUN = ["--dataset", "mnist", "--hidden", "16", "--latent", "4", "--batch-size", "25", "--epochs", "2", "--seed", "5",
       "--n-test", "32", "--quiet"]
STEPS = 8

# Runs minivae's CLI after making rank `RANK` do MODE right after its optimizer step number STEP.
FAULTY = textwrap.dedent("""
    import os, signal, sys
    import minivae.training as t
    from minivae.cli import main
    from minivae.distributed import world
    from minivae.errors import MinivaeError
    rank, step, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    class Faulty(t.Adam):
        def step(self, grads):
            super().step(grads)
            if self.t == step and world().rank == rank:
                if mode == "raise":
                    raise MinivaeError("injected failure")
                os.kill(os.getpid(), getattr(signal, mode))
    t.Adam = Faulty
    sys.exit(main(sys.argv[4:]))
""")


def mpiexec(args, n=2, timeout=120, faulty=None):
    """`mpiexec -n n python -m minivae args` (or the FAULTY script with faulty = (rank, step, mode)), one thread a
    rank -> CompletedProcess with the seconds it took as .seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    program = ["-m", "minivae"] if faulty is None else ["-c", FAULTY, *map(str, faulty)]
    start = time.perf_counter()
    proc = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *program, *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT)
    proc.seconds = time.perf_counter() - start
    return proc


def params(run):
    arrays, meta = read_checkpoint(run)
    return {k: v for k, v in arrays.items() if k.startswith(("param/", "optim/"))}, meta


def max_relative_difference(a, b):
    return max(float(np.max(np.abs(a[k] - b[k])) / max(np.max(np.abs(b[k])), 1e-30)) for k in b)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mpi") / "mnist"
    write_idx_dir(directory, n_train=96, n_test=32, size=(28, 28))
    return directory


@pytest.fixture(scope="module")
def float32_run(data_dir):
    """One `mpiexec -n 2` float32 training run (the reference of the tests below)."""
    out = data_dir.parent / "f32"
    proc = mpiexec(["train", "--data-dir", data_dir, "--out", out, *RUN])
    assert proc.returncode == 0, proc.stderr
    return out


def test_shares_of_a_batch_sum_to_the_whole_batch_gradient():
    """Without MPI: the gradients of two shares of a batch (scaled by 1/B of the whole batch) add up to the whole
    batch's gradient, for the ELBO with β and for IWAE (float64, to rounding)."""
    rng = np.random.default_rng(0)
    vae = build_model("mlp", rng=rng, image_shape=(1, 6, 5), latent=3, hidden=(7,), dtype=np.float64)
    x = rng.random((9, 1, 6, 5))
    for objective in (make_objective("elbo", beta=2.0), make_objective("iwae", k=4)):
        eps = objective.noise(rng, 9, vae.latent, np.float64)
        _, value, grads = objective.loss_and_grads(vae, x, eps)
        whole = {k: g.copy() for k, g in grads.items()}
        parts, values = {k: np.zeros_like(g) for k, g in grads.items()}, 0.0
        for rows in (slice(0, 5), slice(5, 9)):
            share = distributed.Share(rows, 9, distributed.LOCAL)
            _, v, grads = objective.loss_and_grads(vae, x[rows], eps[rows], share=share)
            values += v
            for k, g in grads.items():
                parts[k] += g
        assert values == pytest.approx(value, rel=1e-13), objective.name
        for k in whole:
            np.testing.assert_allclose(parts[k], whole[k], rtol=1e-11, atol=1e-15, err_msg=f"{objective.name} {k}")


def test_a_launcher_without_mpi4py_is_an_error(monkeypatch):
    """Started as one of 2 ranks (PMI_SIZE=2) with mpi4py missing: one clear error, not two independent runs."""
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setattr(distributed, "_world", None)
    with pytest.raises(MinivaeError, match="mpi4py is not installed"):
        distributed.world()
    monkeypatch.setenv("PMI_SIZE", "1")
    assert distributed.world() is distributed.LOCAL


@needs_mpi
def test_two_ranks_train_as_one_process(data_dir, float32_run, tmp_path):
    """float64 with free bits and dynamic binarization (a global per-dimension KL mean, the batch's full draw): the
    parameters and Adam moments of 2 ranks equal one process's to 1e-12; float32 to 1e-4. (Bitwise equality from run
    to run at 2 ranks: the SIGTERM test's second run, resumed, ends bitwise where this one does.)"""
    first, meta = params(float32_run)
    assert meta["ranks"] == 2 and meta["step"] == STEPS
    one = train(tmp_path / "one32", dataset="mnist", data_dir=str(data_dir), hidden=(16,), latent=4, batch_size=25,
                epochs=2, seed=5, n_test=32, quiet=True)
    assert max_relative_difference(first, params(one.out)[0]) < 1e-4
    metrics = [json.loads(line) for line in (float32_run / "metrics.jsonl").read_text().splitlines()]
    assert [m["test_loss"] for m in metrics] == pytest.approx([m["test_loss"] for m in one.metrics], rel=1e-5)

    extra = ["--dtype", "float64", "--free-bits", "0.5", "--binarize"]
    proc = mpiexec(["train", "--data-dir", data_dir, "--out", tmp_path / "two64", *RUN, *extra])
    assert proc.returncode == 0, proc.stderr
    one = train(tmp_path / "one64", dataset="mnist", data_dir=str(data_dir), hidden=(16,), latent=4, batch_size=25,
                epochs=2, seed=5, n_test=32, dtype="float64", free_bits=0.5, binarize=True, quiet=True)
    assert max_relative_difference(params(tmp_path / "two64")[0], params(one.out)[0]) < 1e-12


@needs_mpi
def test_sigterm_stops_every_rank_at_one_step_and_the_run_resumes_bitwise(data_dir, float32_run, tmp_path):
    """SIGTERM reaching rank 1 alone after step 3: both ranks stop after step 4 (the next sum), rank 0 checkpoints it,
    one line says so; `mpiexec -n 2 ... --resume` then ends bitwise at the uninterrupted run (so a second 2-rank run
    repeats the first bit for bit). Resuming on one process is allowed (same data and noise) and ends within float32
    rounding of it."""
    cut = tmp_path / "cut"
    proc = mpiexec(["train", "--data-dir", data_dir, "--out", cut, *RUN], faulty=(1, 3, "SIGTERM"))
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("minivae:")]
    assert len(lines) == 1 and "SIGTERM: stopped after step 4" in lines[0] and "--resume" in lines[0], proc.stderr
    assert params(cut)[1]["step"] == 4
    shutil.copytree(cut, tmp_path / "cut1")
    proc = mpiexec(["train", "--resume", cut, "--quiet"])
    assert proc.returncode == 0, proc.stderr
    resumed, meta = params(cut)
    assert meta["step"] == STEPS
    for k, v in params(float32_run)[0].items():
        assert np.array_equal(resumed[k], v), f"{k} differs from the uninterrupted run"
    train(resume=tmp_path / "cut1", quiet=True)
    assert max_relative_difference(params(tmp_path / "cut1")[0], resumed) < 1e-4


@needs_mpi
def test_two_ranks_evaluate_exactly_as_one_process(float32_run):
    """K = 10 in passes of 30 rows (3 images a pass): rank 0 takes 18 test images, rank 1 14 (and every one of the
    ELBO's single batch of 32); every figure equals one process's, bit for bit."""
    proc = mpiexec(["evaluate", "--checkpoint", float32_run, "--k", "10", "--rows", "30", "--json"])
    assert proc.returncode == 0, proc.stderr
    two = json.loads(proc.stdout)
    one = evaluate_checkpoint(float32_run, k=10, rows=30)
    assert two["ranks"] == 2 and one["ranks"] == 1
    for key in ("seconds", "peak_memory_mb", "ranks"):
        del two[key], one[key]
    assert two == one


@needs_mpi
@pytest.mark.parametrize("mode", ["raise", "SIGKILL"])
def test_a_failing_rank_stops_the_job_within_seconds(data_dir, tmp_path, mode):
    """Rank 1 raises a MinivaeError (or is killed) right after step 5 while rank 0 waits in step 6's sum: the job
    ends within seconds, not at the timeout, with one line naming the rank (a raise); epoch 1's checkpoint is intact."""
    out = tmp_path / "run"
    proc = mpiexec(["train", "--data-dir", data_dir, "--out", out, *RUN], faulty=(1, 5, mode), timeout=60)
    assert proc.returncode != 0
    assert proc.seconds < 30, f"took {proc.seconds:.0f} s"
    if mode == "raise":
        lines = [line for line in proc.stderr.splitlines() if line.startswith("minivae:")]
        assert lines == ["minivae: rank 1 of 2: error: injected failure"], proc.stderr
    _, meta = params(out)
    assert meta["epoch"] == 1 and meta["step"] == 4
