"""A run's directory: what `minivae train` keeps on disk, and the rules that keep it from being lost or clobbered.

    checkpoint.npz      parameters, Adam's state, the training position, the settings and the metrics rows
    metrics.jsonl       one JSON object per finished epoch, rewritten whole from the checkpoint's rows
    samples.png, reconstructions.png, curves.png
    .lock               held (fcntl.flock, exclusive) by the one process training into the directory

The rules:
    - a new run refuses a directory that already holds one (a checkpoint or metrics): continue it with --resume, or
      start over with --force;
    - a second process into the same directory is refused while the first holds the lock (the kernel drops the lock
      when its holder dies, so a killed run never blocks the next);
    - every file is written atomically and never through a symlink (files.atomic_write); under the lock, temporary
      files of dead writers are swept;
    - the metrics rows live in the checkpoint, so metrics.jsonl is always rewritten from the checkpoint written just
      before it; a kill between the two leaves metrics.jsonl one epoch behind until the run resumes, never ahead.
"""
import fcntl
import json
import os
from pathlib import Path

from .checkpoint import save_checkpoint
from .errors import MinivaeError
from .files import atomic_write, sweep_stale_temps
from .plots import save_curves

CHECKPOINT_NAME = "checkpoint.npz"
METRICS_NAME = "metrics.jsonl"
LOCK_NAME = ".lock"


def checkpoint_file(run):
    """A run directory or a checkpoint file -> the checkpoint file."""
    run = Path(run)
    return run / CHECKPOINT_NAME if run.is_dir() else run


class RunDirectory:
    """The output directory of a training run, locked for its duration: `with RunDirectory(out, ...) as run:`."""

    def __init__(self, path, *, resuming=False, force=False):
        self.path, self.resuming, self.force = Path(path), resuming, force
        self.checkpoint = self.path / CHECKPOINT_NAME
        self._lock = None

    def __enter__(self):
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as e:
            raise MinivaeError(f"cannot write to output directory {self.path}: {e.strerror or e}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise MinivaeError(f"another process is training into {self.path} (it holds {self.path / LOCK_NAME}); "
                               f"wait for it to finish or choose another --out") from None
        if not (self.resuming or self.force) and self.holds_run():
            self.close()
            raise MinivaeError(f"{self.path} already holds a run; continue it with --resume {self.path}, or start "
                               f"over with --force (its checkpoint and metrics are replaced)")
        sweep_stale_temps(self.path)
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None

    def holds_run(self):
        return any((self.path / name).exists() for name in (CHECKPOINT_NAME, METRICS_NAME))

    def save(self, vae, optimizer, meta, state=None):
        """The checkpoint, then metrics.jsonl and curves.png from the metrics rows in `meta` (the order matters:
        module docstring)."""
        save_checkpoint(self.checkpoint, vae, optimizer, meta, state=state)
        self.write_metrics(meta["metrics"])

    def write_metrics(self, rows):
        """metrics.jsonl and curves.png for `rows`, unless metrics.jsonl already holds exactly these rows."""
        text = "".join(json.dumps(row) + "\n" for row in rows).encode()
        metrics = self.path / METRICS_NAME
        if metrics.is_file() and not metrics.is_symlink() and metrics.read_bytes() == text:
            return
        atomic_write(metrics, text)
        if rows:
            save_curves(self.path / "curves.png", rows)


def stored_metrics(path, meta, last_epoch):
    """The metrics rows of epochs 1..last_epoch of the run whose checkpoint `path` holds `meta`: from the checkpoint,
    or for a checkpoint written before the rows were stored there, from the metrics.jsonl beside it."""
    rows = meta.get("metrics")
    if rows is None:
        try:
            lines = (path.parent / METRICS_NAME).read_text().splitlines()
            rows = [json.loads(line) for line in lines if line.strip()]
        except FileNotFoundError:
            rows = []
        except (OSError, ValueError) as e:
            raise MinivaeError(f"cannot read {path.parent / METRICS_NAME}: {e}") from None
    if not isinstance(rows, list):
        raise MinivaeError(f"checkpoint {path} has invalid metrics rows")
    return [r for r in rows if isinstance(r, dict) and isinstance(r.get("epoch"), int) and r["epoch"] <= last_epoch]
