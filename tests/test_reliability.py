"""Issue 8, "reliability": each row of its table is a test here.

    SIGKILL while a checkpoint is written    the file on disk always loads (subprocess killed at random moments)
    Ctrl-C during training                   checkpoint of the last finished step, one line, exit 130
    --resume after an interruption          parameters, moments and metrics bitwise equal to the uninterrupted run
    NaN/Inf loss or gradient                 MinivaeError naming tensor and step; the last checkpoint untouched
    broken IDX/.gz files                     one line naming the file, exit 2
    broken / foreign / pickled checkpoints   MinivaeError, exit 2 (the fuzzing is in test_checkpoint_fuzz.py)
    data outside the support, wrong shape    MinivaeError before the first step
    nonsense flags                           argparse error, exit 2
    unwritable directory, disk full          MinivaeError; the earlier checkpoint intact
"""
import errno
import gzip
import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from minivae.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from minivae.cli import main
from minivae.data.idx import IDX_NAMES
from minivae.errors import MinivaeError
from minivae.reliability import TrainingInterrupted
from test_data_idx import idx_bytes, write_idx_dir

train_module = importlib.import_module("minivae.training")
train = train_module.train
TINY = dict(dataset="shapes", n_train=96, n_test=32, hidden=(16,), latent=4, batch_size=32, quiet=True)
# Most runs train on these small 1 x 8 x 8 pictures (3 steps an epoch): the machinery under test is the same.
_rng = np.random.default_rng(0)
DATA = (_rng.integers(0, 256, (96, 1, 8, 8), dtype=np.uint8), _rng.integers(0, 256, (32, 1, 8, 8), dtype=np.uint8))
SMALL = dict(hidden=(16,), latent=4, batch_size=32, quiet=True)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(capsys, *args):
    """Run the CLI in-process -> (exit status, stdout, stderr); argparse's SystemExit becomes its status."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles, status=2):
    assert code == status, (code, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert any(all(n in line for n in needles) for line in lines), err


def assert_same_checkpoint(a, b):
    """The arrays (parameters, Adam moments, training-position state) of two checkpoints are bitwise equal."""
    arrays_a, meta_a = read_checkpoint(a)
    arrays_b, meta_b = read_checkpoint(b)
    assert set(arrays_a) == set(arrays_b)
    for name in arrays_a:
        assert np.array_equal(arrays_a[name], arrays_b[name]), f"{name} differs between {a} and {b}"
    for key in ("epoch", "step", "optim_t", "rng_state"):
        assert meta_a[key] == meta_b[key], f"meta {key}: {meta_a[key]} vs {meta_b[key]}"


def interrupt_at_step(monkeypatch, step):
    """Make the optimizer send this process a real SIGINT right after its step number `step`."""
    class InterruptingAdam(train_module.Adam):
        def step(self, grads):
            super().step(grads)
            if self.t == step:
                signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(train_module, "Adam", InterruptingAdam)


# --- SIGKILL while a checkpoint is being written ---------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, numpy as np
    from minivae.checkpoint import save_checkpoint
    from minivae.models import build_model
    vae = build_model("mlp", rng=np.random.default_rng(0), image_shape=(1, 28, 28), hidden=(256,), latent=8)
    path, i = sys.argv[1], 0
    while True:
        i += 1
        for p in vae.params.values():
            p[...] = i
        save_checkpoint(path, vae, meta={"counter": i})
        if i == 1:
            print("ready", flush=True)
""")


def test_sigkill_during_checkpoint_writes_leaves_a_loadable_checkpoint(tmp_path):
    """A process rewriting a ~1 MB checkpoint in a loop is SIGKILLed at random moments (most land mid-write);
    every time the file on disk loads and is one consistent version: all parameters equal to its counter."""
    path = tmp_path / "checkpoint.npz"
    rng = np.random.default_rng(0)
    counters, mid_write = [], 0
    while mid_write < 2 and len(counters) < 12:  # until two kills have hit a write (a temporary file is left)
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                                cwd=ROOT)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.3))
        proc.kill()
        proc.wait(timeout=30)
        vae, _, meta = load_checkpoint(path)
        counters.append(meta["counter"])
        for name, p in vae.params.items():
            assert np.all(p == meta["counter"]), f"{name} is not from the checkpoint's own version"
        temporary = list(tmp_path.glob(".checkpoint.npz.*.tmp"))
        mid_write += bool(temporary)
        for t in temporary:
            t.unlink()
    assert max(counters) > 1, "the writer was killed before it rewrote the checkpoint even once"
    assert mid_write >= 1, f"none of {len(counters)} kills landed while a checkpoint was being written"


# --- Ctrl-C and --resume -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stop_step, binarize, named", [(4, False, True), (3, True, False), (8, True, False)],
                         ids=["mid-epoch-mnist-files", "after-last-step-of-epoch", "last-epoch"])
def test_sigint_then_resume_is_bitwise_the_uninterrupted_run(tmp_path, monkeypatch, stop_step, binarize, named):
    """3 epochs of 3 steps; a real SIGINT after step `stop_step` checkpoints that step, then train(resume=...) ends
    with parameters, Adam moments, Generator state and metrics bitwise equal to the run never interrupted."""
    if named:  # a data set by name, from IDX files
        write_idx_dir(tmp_path / "mnist", n_train=96, n_test=32, size=(28, 28))
        settings = dict(epochs=3, seed=7, binarize=binarize, dataset="mnist", data_dir=str(tmp_path / "mnist"),
                        **SMALL)
    else:
        settings = dict(epochs=3, seed=7, binarize=binarize, data=DATA, **SMALL)
    whole = train(tmp_path / "whole", **settings)
    with monkeypatch.context() as m:
        interrupt_at_step(m, stop_step)
        with pytest.raises(TrainingInterrupted) as excinfo:
            train(tmp_path / "cut", **settings)
    assert excinfo.value.step == stop_step
    assert f"step {stop_step}" in str(excinfo.value) and "--resume" in str(excinfo.value)
    _, meta = read_checkpoint(tmp_path / "cut" / "checkpoint.npz")
    assert meta["step"] == stop_step and meta["optim_t"] == stop_step
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the SIGINT handler was not restored"

    resumed = train(resume=tmp_path / "cut", quiet=True, data=None if named else DATA)
    assert_same_checkpoint(tmp_path / "whole" / "checkpoint.npz", tmp_path / "cut" / "checkpoint.npz")
    for name, p in whole.vae.params.items():
        assert np.array_equal(p, resumed.vae.params[name]), f"{name} differs after resume"
    for a, b in zip(whole.metrics, resumed.metrics, strict=True):
        for key in ("epoch", "train_loss", "train_recon", "train_kl", "test_loss"):
            assert a[key] == b[key], f"epoch {a['epoch']} {key}: {a[key]} vs {b[key]}"
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3, "metrics.jsonl should have one row per epoch after the resume"


def test_interrupt_guard_first_sigint_is_a_flag_the_second_interrupts():
    from minivae.reliability import InterruptGuard
    with InterruptGuard() as guard:
        assert not guard.interrupted
        signal.raise_signal(signal.SIGINT)
        assert guard.interrupted
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_training_in_a_thread_leaves_signals_alone(tmp_path):
    import threading
    results = []
    thread = threading.Thread(target=lambda: results.append(train(tmp_path, epochs=1, data=DATA, **SMALL)))
    thread.start()
    thread.join(timeout=120)
    assert results and results[0].metrics[0]["epoch"] == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_resume_can_extend_a_finished_run(tmp_path):
    a = train(tmp_path / "a", epochs=2, seed=3, data=DATA, **SMALL)
    train(tmp_path / "b", epochs=1, seed=3, data=DATA, **SMALL)
    dead, live = tmp_path / "b" / ".checkpoint.npz.4194305.tmp", tmp_path / "b" / f".samples.png.{os.getppid()}.tmp"
    dead.write_bytes(b"half a checkpoint")  # as SIGKILL leaves it (pid above Linux's largest pid_max: not alive)
    live.write_bytes(b"a live process writing")
    b = train(resume=tmp_path / "b", epochs=2, quiet=True, data=DATA)
    assert not dead.exists(), "a stale temporary checkpoint was not removed"
    assert live.exists(), "a live process's temporary file was removed"
    for name, p in a.vae.params.items():
        assert np.array_equal(p, b.vae.params[name]), f"{name}: 1 epoch + 1 resumed epoch != 2 epochs"


def test_resume_refuses_other_settings(tmp_path, capsys):
    write_idx_dir(tmp_path / "mnist", n_train=32, n_test=8, size=(28, 28))
    train(tmp_path, dataset="mnist", data_dir=str(tmp_path / "mnist"), epochs=1, seed=0, **SMALL)
    with pytest.raises(MinivaeError, match="lr is 0.001 there"):
        train(resume=tmp_path, lr=0.01)
    code, _, err = cli(capsys, "train", "--resume", tmp_path, "--hidden", "32")
    assert_one_line_error(code, err, "hidden")
    code, _, err = cli(capsys, "train", "--resume", tmp_path / "nothing-here")
    assert_one_line_error(code, err, "nothing-here", "not found")


def test_ctrl_c_on_the_command_line_then_resume(tmp_path):
    """The real thing: SIGINT to a `minivae train` process -> exit 130, one line; `--resume` finishes the run and
    its checkpoint equals that of a run never interrupted."""
    write_idx_dir(tmp_path / "mnist", n_train=64, n_test=16, size=(28, 28))
    args = ["train", "--dataset", "mnist", "--data-dir", tmp_path / "mnist", "--hidden", 8, "--latent", 2,
            "--batch-size", 16, "--epochs", 12, "--seed", 2]
    cmd = [sys.executable, "-m", "minivae", *map(str, args)]
    proc = subprocess.Popen([*cmd, "--out", str(tmp_path / "cut")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdout.readline().startswith("epoch   1")  # training is under way
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("minivae: interrupted by SIGINT: stopped after"), err
    assert "--resume" in err
    _, meta = read_checkpoint(tmp_path / "cut" / "checkpoint.npz")
    assert meta["epoch"] < 12, "the run finished before the signal arrived"

    resumed = subprocess.run([sys.executable, "-m", "minivae", "train", "--resume", str(tmp_path / "cut"),
                              "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run([*cmd, "--out", str(tmp_path / "whole"), "--quiet"], capture_output=True, text=True,
                           cwd=ROOT, timeout=300)
    assert whole.returncode == 0, whole.stderr
    assert_same_checkpoint(tmp_path / "whole" / "checkpoint.npz", tmp_path / "cut" / "checkpoint.npz")


# --- NaN / Inf ---------------------------------------------------------------------------------------------------


def poison(monkeypatch, method, call, what):
    """Make the `call`-th call of VAE.<method> return a NaN in its result (`what` says where)."""
    from minivae.elbo import VAE
    original = getattr(VAE, method)
    calls = [0]

    def poisoned(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == call:
            what(result)
        return result

    monkeypatch.setattr(VAE, method, poisoned)


@pytest.mark.parametrize("method, what, needle", [
    ("forward", lambda terms: terms.recon.__setitem__(1, np.nan), "recon is nan"),
    ("forward", lambda terms: terms.kl.__setitem__(0, np.inf), "kl is inf"),
    ("backward", lambda grads: grads["decoder.1.W"].__setitem__((3, 5), np.nan), "gradient of decoder.1.W"),
])
def test_non_finite_stops_training_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, method, what, needle):
    """Epoch 1 (3 steps, then one evaluation forward) trains; step 5 of epoch 2 gets a NaN/Inf."""
    train(tmp_path, epochs=1, seed=0, data=DATA, **SMALL)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    poison(monkeypatch, method, 2, what)  # in the resumed run, call 2 is step 5
    with pytest.raises(MinivaeError, match=needle) as excinfo:
        train(resume=tmp_path, epochs=2, quiet=True, data=DATA)
    assert "step 5 (epoch 2)" in str(excinfo.value) and "\n" not in str(excinfo.value)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before, "the last good checkpoint was replaced"
    assert not list(tmp_path.glob(".checkpoint.npz.*")), "a temporary checkpoint was left behind"


def test_a_nan_parameter_is_never_written(tmp_path):
    result = train(tmp_path, epochs=1, seed=0, data=DATA, **SMALL)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    result.vae.params["encoder.0.b"][2] = np.nan
    with pytest.raises(MinivaeError, match="encoder.0.b contains NaN"):
        save_checkpoint(tmp_path / "checkpoint.npz", result.vae)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before


def test_nan_stops_the_cli_with_exit_2(tmp_path, monkeypatch, capsys):
    poison(monkeypatch, "backward", 2, lambda grads: grads["encoder.0.W"].__setitem__((0, 0), np.inf))
    write_idx_dir(tmp_path / "mnist", n_train=64, n_test=16, size=(28, 28))
    code, _, err = cli(capsys, "train", "--dataset", "mnist", "--data-dir", tmp_path / "mnist", "--hidden", 8,
                       "--latent", 2, "--batch-size", 16, "--epochs", 1, "--out", tmp_path, "--quiet")
    assert_one_line_error(code, err, "gradient of encoder.0.W", "step 2 (epoch 1)")
    assert not (tmp_path / "checkpoint.npz").exists()


# --- broken data files ------------------------------------------------------------------------------------------


def broken_mnist(directory, how):
    """A small MNIST-style directory, with one file broken in the way `how` says -> that file's path."""
    write_idx_dir(directory, n_train=20, n_test=10, size=(28, 28), compress=True)
    path = directory / f"{IDX_NAMES[0]}.gz"
    data = path.read_bytes()
    if how == "truncated gz":
        path.write_bytes(data[:len(data) // 2])
    elif how == "corrupt gz":
        path.write_bytes(data[:20] + bytes(b ^ 0x5A for b in data[20:40]) + data[40:])
    elif how == "wrong magic":
        path.write_bytes(gzip.compress(b"\x00\x00\x09\x03" + gzip.decompress(data)[4:]))
    elif how == "truncated idx":
        path.write_bytes(gzip.compress(gzip.decompress(data)[:-100]))
    elif how == "count mismatch":
        path = directory / f"{IDX_NAMES[1]}.gz"
        path.write_bytes(gzip.compress(idx_bytes(np.zeros(19))))
    return path


@pytest.mark.parametrize("how", ["truncated gz", "corrupt gz", "wrong magic", "truncated idx", "count mismatch"])
def test_broken_idx_files_are_one_line_exit_2(tmp_path, capsys, how):
    path = broken_mnist(tmp_path / "mnist", how)
    code, _, err = cli(capsys, "train", "--dataset", "mnist", "--data-dir", tmp_path / "mnist", "--epochs", 1,
                       "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(code, err, path.name)
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


# --- checkpoints: broken, foreign, pickled ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(out, epochs=1, seed=0, data=DATA, **SMALL)
    return out


def rewrite(path, src, change):
    """Copy checkpoint `src` to `path` with `change(arrays, meta)` applied (written as a plain npz)."""
    import json
    arrays, meta = read_checkpoint(src)
    change(arrays, meta)
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


@pytest.mark.parametrize("kind", ["truncated", "corrupted", "other config", "pickled", "missing array",
                                  "nan parameter", "bad config"])
def test_bad_checkpoints_are_clear_errors(tmp_path, capsys, small_run, kind):
    src = small_run / "checkpoint.npz"
    path = tmp_path / "bad.npz"
    data = src.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[:len(data) * 2 // 3])
    elif kind == "corrupted":
        path.write_bytes(data[:1000] + bytes(len(data) - 2000) + data[-1000:])
    elif kind == "other config":  # parameters of a 16-unit model under a config that says 32
        rewrite(path, src, lambda arrays, meta: meta["config"].__setitem__("hidden", [32]))
    elif kind == "pickled":
        np.savez(path, meta=np.array([{"format": 1}], dtype=object))
    elif kind == "missing array":
        rewrite(path, src, lambda arrays, meta: arrays.pop("param/decoder.1.b"))
    elif kind == "nan parameter":
        rewrite(path, src, lambda arrays, meta: arrays["param/encoder.0.W"].__setitem__((0, 0), np.nan))
    elif kind == "bad config":
        rewrite(path, src, lambda arrays, meta: meta["config"].__setitem__("latent", "four"))
    with pytest.raises(MinivaeError, match=str(path)) as excinfo:
        load_checkpoint(path)
    assert "\n" not in str(excinfo.value)
    code, _, err = cli(capsys, "sample", "--checkpoint", path, "--out", tmp_path / "s.png")
    assert_one_line_error(code, err, "bad.npz")
    assert not (tmp_path / "s.png").exists()


def test_checkpoint_reader_never_unpickles(monkeypatch, small_run, tmp_path):
    import pickle
    seen = []
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, lambda *a, **k: seen.append(a))
    load_checkpoint(small_run / "checkpoint.npz")
    np.savez(tmp_path / "pickled.npz", meta=np.array([{"format": 1}], dtype=object))
    with pytest.raises(MinivaeError, match="dtype object"):
        load_checkpoint(tmp_path / "pickled.npz")
    assert seen == []


# --- data the model cannot take ---------------------------------------------------------------------------------


def test_data_outside_the_support_fails_before_training(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((40, 1, 8, 8))
    images[3, 0, 2, 2] = 1.5  # Bernoulli needs [0, 1]
    with pytest.raises(MinivaeError, match=r"custom train images: bernoulli.*\[0, 1\].*1\.5"):
        train(tmp_path, data=(images, images[:8] * 0.5), epochs=1, hidden=(8,), latent=2, quiet=True)
    assert not (tmp_path / "checkpoint.npz").exists()
    with pytest.raises(MinivaeError, match="finite"):
        train(tmp_path, data=(np.full((4, 1, 8, 8), np.nan), images[:4]), epochs=1, hidden=(8,), quiet=True)


def test_wrong_image_shape_fails_before_training(tmp_path):
    rng = np.random.default_rng(0)
    small = (rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8), rng.integers(0, 256, (8, 1, 8, 8), dtype=np.uint8))
    other = tuple(a[:, :, :4] for a in small)
    train(tmp_path, data=small, epochs=1, hidden=(8,), latent=2, quiet=True)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    with pytest.raises(MinivaeError, match=r"model mlp takes images of shape \(1, 8, 8\).*\(1, 4, 8\)"):
        train(resume=tmp_path, data=other, epochs=2, quiet=True)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    with pytest.raises(MinivaeError, match="divisible by 16"):  # conv64 halves H and W four times
        train(tmp_path / "conv", data=other, model="conv64", epochs=1, quiet=True)
    with pytest.raises(MinivaeError, match=r"\(N, C, H, W\)"):
        train(tmp_path / "flat", data=(small[0][:, 0], small[1][:, 0]), epochs=1, quiet=True)


# --- nonsense flags ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag, value", [("--epochs", "-1"), ("--epochs", "0"), ("--epochs", "2.5"),
                                         ("--batch-size", "0"), ("--latent", "0"), ("--lr", "nan"),
                                         ("--lr", "-1e-3"), ("--lr", "inf"), ("--n-train", "0"),
                                         ("--hidden", "16,0"), ("--dataset", "cifar")])
def test_nonsense_flags_are_argparse_errors(capsys, flag, value):
    code, _, err = cli(capsys, "train", flag, value)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("minivae train: error: argument " + flag), err


@pytest.mark.parametrize("setting", [dict(epochs=-1), dict(batch_size=0), dict(latent=0), dict(lr=float("nan"))])
def test_nonsense_settings_from_python(tmp_path, setting):
    with pytest.raises(MinivaeError):
        train(tmp_path, **{**TINY, **setting})
    assert not (tmp_path / "checkpoint.npz").exists()


# --- unwritable directory, disk full ----------------------------------------------------------------------------


def test_output_directory_not_writable(tmp_path, capsys):
    (tmp_path / "file").write_text("a file, not a directory")
    write_idx_dir(tmp_path / "mnist", n_train=32, n_test=8, size=(28, 28))
    code, _, err = cli(capsys, "train", "--dataset", "mnist", "--data-dir", tmp_path / "mnist", "--hidden", 8,
                       "--epochs", 1, "--out", tmp_path / "file" / "run")
    assert_one_line_error(code, err, "cannot write to output directory", "file/run")


def test_disk_full_while_saving_keeps_the_earlier_checkpoint(tmp_path, monkeypatch, small_run):
    vae, _, _ = load_checkpoint(small_run / "checkpoint.npz")
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, vae, meta={"epoch": 1})
    before = path.read_bytes()
    vae.params["encoder.0.b"][...] += 1

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(MinivaeError, match=f"cannot write checkpoint {path}: No space left on device"):
        save_checkpoint(path, vae, meta={"epoch": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"], "the temporary file was not removed"


def test_disk_full_during_training(tmp_path, monkeypatch, capsys):
    """The second epoch's checkpoint cannot be written: exit 2, one line, the first epoch's checkpoint intact."""
    write_idx_dir(tmp_path / "mnist", n_train=64, n_test=16, size=(28, 28))
    args = ["--dataset", "mnist", "--data-dir", tmp_path / "mnist", "--hidden", 8, "--latent", 2, "--batch-size", 32,
            "--quiet"]
    assert cli(capsys, "train", *args, "--epochs", 1, "--out", tmp_path / "run")[0] == 0
    tmp_path = tmp_path / "run"
    before = (tmp_path / "checkpoint.npz").read_bytes()
    real_fdopen = os.fdopen

    class FullFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def fileno(self):
            return self.f.fileno()

        def write(self, data):
            self.f.write(bytes(data)[:1000])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullFile(real_fdopen(fd, mode)))
    code, _, err = cli(capsys, "train", "--resume", tmp_path, "--epochs", 2)
    assert_one_line_error(code, err, "No space left on device", "checkpoint.npz")
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert not list(tmp_path.glob(".checkpoint.npz.*"))


def test_disk_full_writing_pictures(tmp_path, monkeypatch):
    from PIL import Image

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(MinivaeError, match="No space left on device"):
        train(tmp_path, epochs=1, seed=0, data=DATA, **SMALL)
    load_checkpoint(tmp_path / "checkpoint.npz")  # written before the pictures, and intact
