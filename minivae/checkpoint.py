"""Checkpoints: one .npz file holding parameters, optimizer state, the model config and the training position.

Layout (every entry a plain array, so `np.load(path, allow_pickle=False)` reads it and nothing is ever unpickled):
    "param/<name>"   model parameters, e.g. "param/encoder.0.W"
    "optim/<name>"   optimizer state, e.g. "optim/m.encoder.0.W" (Adam's moments)
    "state/<name>"   more of the training position, e.g. "state/permutation" (the data order of an unfinished epoch)
    "meta"           a JSON string: {"config": model config, "train": training settings, "epoch": int, "step": int,
                     "optim_t": int, "rng_state": the Generator's bit-generator state, "format": 1}

Writing is atomic: the file is written to a temporary name in the same directory, flushed to disk (fsync), then
renamed over the old checkpoint with os.replace, so a crash mid-write leaves the previous checkpoint intact.
"""
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import MinivaeError
from .models import build_from_config

FORMAT = 1


def save_checkpoint(path, vae, optimizer=None, meta=None, state=None):
    """Atomically write the model (and optimizer state, training position in `meta`) to `path` (.npz).

    `state` holds further arrays of the training position (stored as "state/<name>", e.g. the epoch's data order).
    Non-finite parameters are refused (MinivaeError), so a NaN never replaces a good checkpoint.
    """
    path = Path(path)
    for name, p in vae.params.items():
        if not np.isfinite(p.sum()):
            raise MinivaeError(f"not writing checkpoint {path}: parameter {name} contains NaN or Inf")
    arrays = {"param/" + k: v for k, v in vae.params.items()}
    arrays.update({"state/" + k: np.asarray(v) for k, v in (state or {}).items()})
    if optimizer is not None:
        arrays.update({"optim/" + k: v for k, v in optimizer.state().items()})
    info = {"format": FORMAT, "config": vae.config, **(meta or {}),
            "optim_t": optimizer.t if optimizer is not None else 0}
    arrays["meta"] = np.array(json.dumps(info))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o666 & ~current_umask())  # mkstemp made it 0600; a checkpoint is ordinary
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_directory(path.parent)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        raise MinivaeError(f"cannot write checkpoint {path}: {e.strerror or e}") from None


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_directory(directory):
    """Flush the directory entry of a rename to disk (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_checkpoint(path):
    """-> (arrays dict without "meta", meta dict). Any unreadable or malformed file raises MinivaeError.

    `path` is the .npz file or a run directory holding checkpoint.npz."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.is_file():
        raise MinivaeError(f"checkpoint {path} not found (expected a checkpoint.npz written by minivae train)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError) as e:
        raise MinivaeError(f"checkpoint {path} is corrupt or not a minivae checkpoint ({type(e).__name__})") from None
    if "meta" not in arrays or arrays["meta"].dtype.kind != "U" or arrays["meta"].shape != ():
        raise MinivaeError(f"checkpoint {path} has no metadata; not a minivae checkpoint")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError:
        raise MinivaeError(f"checkpoint {path} has unreadable metadata") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("config"), dict):
        raise MinivaeError(f"checkpoint {path} has format {meta.get('format') if isinstance(meta, dict) else None!r}; "
                           f"expected {FORMAT}")
    check_config(path, meta["config"])
    return arrays, meta


# Sanity bounds on a stored config, so that a corrupted number fails here instead of allocating gigabytes.
MAX_CHANNELS, MAX_SIDE, MAX_LATENT, MAX_WIDTH, MAX_LAYER = 4, 1024, 4096, 16384, 2 ** 27


def check_config(path, config):
    """MinivaeError unless `config` has the fields and types build_model records, within sane sizes."""
    def small_int(v, hi):
        return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= hi

    shape, hidden = config.get("image_shape"), config.get("hidden")
    problems = []
    for key in ("model", "activation", "likelihood", "dtype"):
        if not isinstance(config.get(key), str):
            problems.append(f"{key} {config.get(key)!r} is not a name")
    if not (isinstance(shape, list) and len(shape) == 3 and small_int(shape[0], MAX_CHANNELS)
            and all(small_int(v, MAX_SIDE) for v in shape[1:])):
        problems.append(f"image_shape {shape!r} is not [C ≤ {MAX_CHANNELS}, H, W ≤ {MAX_SIDE}]")
    if not small_int(config.get("latent"), MAX_LATENT):
        problems.append(f"latent {config.get('latent')!r} is not an integer in 1..{MAX_LATENT}")
    if not (isinstance(hidden, list) and len(hidden) <= 16 and all(small_int(h, MAX_WIDTH) for h in hidden)):
        problems.append(f"hidden {hidden!r} is not a list of widths in 1..{MAX_WIDTH}")
    elif not problems and shape[0] * shape[1] * shape[2] * max(hidden, default=1) > MAX_LAYER:
        problems.append(f"a {shape} input into {max(hidden)} units is implausibly large")
    if problems:
        raise MinivaeError(f"checkpoint {path} has an invalid model config: {'; '.join(problems)}")


def load_into(path, arrays, target, prefix):
    """Copy arrays[prefix + name] into each target[name] in place, checking that names and shapes match exactly."""
    expected = {prefix + k for k in target}
    found = {k for k in arrays if k.startswith(prefix)}
    if expected != found:
        missing, extra = sorted(expected - found), sorted(found - expected)
        raise MinivaeError(f"checkpoint {path} does not match the model: missing {missing[:3]}, unexpected "
                           f"{extra[:3]}")
    for name, dst in target.items():
        src = arrays[prefix + name]
        if src.shape != dst.shape or src.dtype != dst.dtype:
            raise MinivaeError(f"checkpoint {path}: {prefix + name} has shape {src.shape} {src.dtype}, "
                               f"the model expects {dst.shape} {dst.dtype}")
        if not np.all(np.isfinite(src)):
            raise MinivaeError(f"checkpoint {path}: {prefix + name} contains NaN or Inf")
        dst[...] = src


def load_checkpoint(path):
    """Rebuild the VAE stored in `path` -> (vae, arrays, meta); the parameters are loaded, the optimizer is not."""
    arrays, meta = read_checkpoint(path)
    try:
        vae = build_from_config(meta["config"], rng=np.random.default_rng(0))
    except MinivaeError as e:
        raise MinivaeError(f"checkpoint {path} has an invalid model config: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, MemoryError) as e:
        raise MinivaeError(f"checkpoint {path} has an invalid model config ({type(e).__name__}: {e})") from None
    load_into(path, arrays, vae.params, "param/")
    return vae, arrays, meta
