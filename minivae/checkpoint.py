"""Checkpoints: one .npz file holding parameters, optimizer state, the model config and the training position.

Layout (every entry a plain array, so `np.load(path, allow_pickle=False)` reads it and nothing is ever unpickled):
    "param/<name>"   model parameters, e.g. "param/encoder.0.W"
    "optim/<name>"   optimizer state, e.g. "optim/m.encoder.0.W" (Adam's moments)
    "state/<name>"   more of the training position, e.g. "state/permutation" (the data order of an unfinished epoch)
    "meta"           a JSON string: {"config": model config, "train": training settings, "epoch": int, "step": int,
                     "optim_t": int, "rng_state": the Generator's bit-generator state, "format": 1}

Writing is atomic (files.atomic_write): the file is written to a temporary name in the same directory, flushed to disk
(fsync), then renamed over the old checkpoint with os.replace, so a crash mid-write leaves the previous checkpoint
intact.

Reading costs what the headers admit, never what a hostile file inflates to: each member's .npy header (dtype, shape)
must account for exactly the member's stated uncompressed size, the sizes together must fit in memory (budget.py),
only plain numeric and text dtypes are read (nothing is unpickled), and decompression stops at the stated size.
"""
import io
import json
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .budget import format_bytes, model_bytes, require
from .errors import MinivaeError
from .files import atomic_write
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
        atomic_write(path, buffer.getbuffer())
    except MinivaeError as e:
        raise MinivaeError(f"cannot write checkpoint {path}: {str(e).split(': ', 1)[-1]}") from None


def read_checkpoint(path):
    """-> (arrays dict without "meta", meta dict). Any unreadable or malformed file raises MinivaeError.

    `path` is the .npz file or a run directory holding checkpoint.npz."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.is_file():
        raise MinivaeError(f"checkpoint {path} not found (expected a checkpoint.npz written by minivae train)")
    arrays = read_npz(path)
    if "meta" not in arrays or arrays["meta"].dtype.kind != "U" or arrays["meta"].shape != ():
        raise MinivaeError(f"checkpoint {path} has no metadata; not a minivae checkpoint")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError:
        raise MinivaeError(f"checkpoint {path} has unreadable metadata") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise MinivaeError(f"checkpoint {path} has format {meta.get('format') if isinstance(meta, dict) else None!r}; "
                           f"expected {FORMAT}")
    if not isinstance(meta.get("config"), dict):
        raise MinivaeError(f"checkpoint {path} has no model config (its meta holds {meta.get('config')!r})")
    check_config(path, meta["config"])
    return arrays, meta


ARRAY_KINDS = "fiuU"  # floats, integers, text (the meta JSON); never objects
NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def read_npz(path):
    """The arrays of the .npz file `path` -> {name: array}, reading at most what each member's header states
    (module docstring); MinivaeError for anything else."""
    def corrupt(why):
        return MinivaeError(f"checkpoint {path} is corrupt or not a minivae checkpoint ({why})")

    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if m.filename.endswith(".npy")]
            if len(members) != len(archive.infolist()):
                raise corrupt("a member that is not a .npy array")
            require(sum(m.file_size for m in members), f"reading checkpoint {path}")
            arrays = {}
            for member in members:
                with archive.open(member) as f:
                    read_header = NPY_HEADERS.get(np.lib.format.read_magic(f))
                    if read_header is None:
                        raise corrupt(f"{member.filename} has an unknown .npy format version")
                    shape, fortran, dtype = read_header(f)
                    if dtype.kind not in ARRAY_KINDS or dtype.hasobject:
                        raise corrupt(f"{member.filename} has dtype {dtype}")
                    nbytes = math.prod(shape) * dtype.itemsize
                    if f.tell() + nbytes != member.file_size:
                        raise corrupt(f"{member.filename}: its header {shape} {dtype} needs {format_bytes(nbytes)}, "
                                      f"the member holds {format_bytes(member.file_size - f.tell())}")
                    data = f.read(nbytes)
                    if len(data) != nbytes:
                        raise corrupt(f"{member.filename} is truncated")
                array = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
                arrays[member.filename[:-len(".npy")]] = array.astype(dtype.newbyteorder("="))  # a writable copy
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError, NotImplementedError,
            zlib.error) as e:
        raise corrupt(type(e).__name__) from None
    return arrays


# Sanity bounds on a stored config, so that a corrupted number fails here instead of allocating gigabytes.
MAX_CHANNELS, MAX_SIDE, MAX_LATENT, MAX_WIDTH, MAX_LAYER = 4, 1024, 4096, 16384, 2 ** 27


def check_config(path, config):
    """MinivaeError unless `config` has the fields and types build_model records, within sane sizes."""
    def small_int(v, hi):
        return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= hi

    shape, hidden, latents = config.get("image_shape"), config.get("hidden"), [config.get("latent")]
    if config.get("model") == "mlp2":  # two stochastic layers: latent [Z₁, Z₂], hidden [[H₁…], [H₂…]]
        two = isinstance(hidden, list) and len(hidden) == 2 and all(isinstance(h, list) for h in hidden)
        hidden = [*hidden[0], *hidden[1]] if two else None
        latents = latents[0] if isinstance(latents[0], list) and len(latents[0]) == 2 else [None]
    problems = []
    for key in ("model", "activation", "likelihood"):
        if not isinstance(config.get(key), str):
            problems.append(f"{key} {config.get(key)!r} is not a name")
    if config.get("dtype") not in ("float32", "float64"):
        problems.append(f"dtype {config.get('dtype')!r} is not float32 or float64")
    if not (isinstance(shape, list) and len(shape) == 3 and small_int(shape[0], MAX_CHANNELS)
            and all(small_int(v, MAX_SIDE) for v in shape[1:])):
        problems.append(f"image_shape {shape!r} is not [C ≤ {MAX_CHANNELS}, H, W ≤ {MAX_SIDE}]")
    if not all(small_int(z, MAX_LATENT) for z in latents):
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
        needed = model_bytes(meta["config"])
    except (MinivaeError, KeyError, TypeError, ValueError) as e:
        raise MinivaeError(f"checkpoint {path} has an invalid model config ({e})") from None
    require(needed, f"the model of checkpoint {path}")
    try:
        vae = build_from_config(meta["config"], rng=np.random.default_rng(0))
    except MinivaeError as e:
        raise MinivaeError(f"checkpoint {path} has an invalid model config: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, MemoryError) as e:
        raise MinivaeError(f"checkpoint {path} has an invalid model config ({type(e).__name__}: {e})") from None
    load_into(path, arrays, vae.params, "param/")
    return vae, arrays, meta
