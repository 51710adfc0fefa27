"""The decoded-pictures cache of a folder: decode once, memory-map afterwards.

A cache directory holds, per image shape C×H×W,
    index-CxHxW.json         the folder it belongs to, and one entry [relative path, size, mtime_ns, row] per
                             decoded picture (sorted by path) and [relative path, size, mtime_ns, reason] per skipped
    images-CxHxW-TOKEN.npy   uint8 (rows, C, H, W), the decoded pictures (rows of skipped or removed files unused)
and a lock file, so two runs on one folder update it one after the other.

`open_cache` lists the folder (paths, sizes, modification times) and compares it with the index. Unchanged: the .npy
is memory-mapped at once (np.load mmap_mode="r", no pickle). Otherwise it is rebuilt incrementally: rows of files
whose size and mtime are unchanged are copied from the old .npy, added or changed files are decoded (decode.py, a
thread per CPU, with a progress bar in images/s), removed files are dropped; a file skipped before is not retried
until it changes. The new .npy gets a new name and the index is replaced atomically, so an interrupted update leaves
the previous cache usable.
"""
import fcntl
import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import MinivaeError
from ..progress import progress_bar
from .decode import SUFFIXES, BadPicture, decode_files

CACHE_VERSION = 1
COPY_ROWS = 1024  # rows copied from the old .npy at a time (12 MB at 3×64×64)


def default_cache_dir(folder):
    """$XDG_CACHE_HOME/minivae/<folder name>-<12 hex digits of the folder's absolute path> (~/.cache by default)."""
    import hashlib

    folder = Path(folder).resolve()
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minivae"
    return root / f"{folder.name}-{hashlib.sha256(str(folder).encode('utf-8', 'surrogateescape')).hexdigest()[:12]}"


def list_pictures(folder):
    """Every .png/.jpg/.jpeg file under `folder` (recursively; links to folders are not followed)
    -> {relative POSIX path: (size, mtime_ns)}."""
    found, pending = {}, [""]
    while pending:
        rel_dir = pending.pop()
        try:
            entries = list(os.scandir(os.path.join(folder, rel_dir)))
        except OSError as e:
            print(f"minivae: cannot list {e.filename}: {e.strerror}", file=sys.stderr)
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(f"{rel_dir}{entry.name}/")
            elif entry.name.lower().endswith(SUFFIXES):
                try:
                    st = entry.stat()
                except OSError:
                    continue  # a dangling link, or removed since listing
                if stat.S_ISREG(st.st_mode):
                    found[rel_dir + entry.name] = (st.st_size, st.st_mtime_ns)
    return found


def read_index(path, folder, shape):
    """The index at `path` if it belongs to `folder` and `shape` and its .npy maps, else None -> (index, images)."""
    try:
        index = json.loads(path.read_text())
        if (index.get("version") != CACHE_VERSION or index.get("folder") != str(folder)
                or index.get("shape") != list(shape)):
            return None
        images = np.load(path.parent / index["images"], mmap_mode="r", allow_pickle=False)
        rows = [entry[3] for entry in index["decoded"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None
    if images.dtype != np.uint8 or images.shape[1:] != tuple(shape) or (rows and max(rows) >= len(images)):
        return None
    return index, images


def open_cache(folder, cache_dir, shape, quiet=False):
    """The decoded pictures of `folder` as uint8 (C, H, W) = `shape` -> (images: read-only np.memmap, rows: the row
    of each decoded picture in path order, paths, skipped: [(path, reason)]); see the module docstring."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise MinivaeError(f"{folder}: no such directory (expected a folder of PNG or JPEG pictures)")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(folder)
    tag = "x".join(str(s) for s in shape)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        lock = open(cache_dir / "lock", "w")
    except OSError as e:
        raise MinivaeError(f"cannot use cache directory {cache_dir}: {e.strerror or e}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        listing = list_pictures(folder)
        if not listing:
            raise MinivaeError(f"{folder}: no .png, .jpg or .jpeg files (searched all subfolders)")
        index_path = cache_dir / f"index-{tag}.json"
        found = read_index(index_path, folder, shape)
        index, images = found if found else ({"decoded": [], "skipped": []}, None)
        current = {e[0]: tuple(e[1:3]) for e in index["decoded"] + index["skipped"]}
        if current != listing:
            index, images, interrupted = update(folder, cache_dir, index, images, listing, shape, tag, quiet)
            try:
                index_path.with_suffix(".tmp").write_text(json.dumps(index))
                os.replace(index_path.with_suffix(".tmp"), index_path)
            except OSError as e:
                raise MinivaeError(f"cannot write {index_path}: {e.strerror or e}") from None
            for stale in cache_dir.glob(f"images-{tag}-*.npy"):  # the replaced .npy, or one of an interrupted update
                if stale.name != index["images"]:
                    stale.unlink(missing_ok=True)
            if interrupted:
                raise KeyboardInterrupt(f"the {len(index['decoded'])} pictures decoded so far are cached in "
                                        f"{cache_dir}; run again to decode the rest")
    decoded = index["decoded"]
    return images, np.array([e[3] for e in decoded], dtype=np.int64), [e[0] for e in decoded], \
        [(e[0], e[3]) for e in index["skipped"]]


def update(folder, cache_dir, index, old_images, listing, shape, tag, quiet):
    """A new .npy and index for `listing`: unchanged rows copied from `old_images`, the rest decoded -> (index,
    images, interrupted); after a Ctrl-C the index holds the pictures decoded until then."""
    kept = {e[0]: e[3] for e in index["decoded"] if listing.get(e[0]) == tuple(e[1:3])}
    skipped = {e[0]: e[3] for e in index["skipped"] if listing.get(e[0]) == tuple(e[1:3])}
    todo = sorted(p for p in listing if p not in kept and p not in skipped)
    if not todo:  # only removals: the old rows stay where they are
        return entries(folder, shape, index["images"], listing, kept, skipped), old_images, False
    n_rows = len(kept) + len(todo)
    need, free = n_rows * int(np.prod(shape)), shutil.disk_usage(cache_dir).free
    if need > free:
        raise MinivaeError(f"the cache of {folder} needs {need / 1e9:.2f} GB in {cache_dir}, which has "
                           f"{free / 1e9:.2f} GB free; choose another place with --cache-dir")
    name = f"images-{tag}-{time.time_ns():x}.npy"
    images = np.lib.format.open_memmap(cache_dir / name, mode="w+", dtype=np.uint8, shape=(max(n_rows, 1), *shape))
    rows = {}
    old_paths = sorted(kept)
    for i in range(0, len(old_paths), COPY_ROWS):
        block = old_paths[i:i + COPY_ROWS]
        images[i:i + len(block)] = old_images[[kept[p] for p in block]]
        rows.update(zip(block, range(i, i + len(block))))
    start, row, done, interrupted = time.perf_counter(), len(kept), 0, False
    with progress_bar(None, quiet, total=len(todo), desc="decoding pictures", unit="img") as bar:
        try:
            for rel, result in zip(todo, decode_files([folder / p for p in todo], *shape)):
                if isinstance(result, BadPicture):
                    print(f"minivae: skipped {folder / rel}: {result}", file=sys.stderr)
                    skipped[rel] = str(result)
                else:
                    images[row], rows[rel] = result, row
                    row += 1
                done += 1
                bar.update(1)
        except KeyboardInterrupt:
            interrupted = True
    images.flush()
    seconds = time.perf_counter() - start
    if not quiet:
        print(f"decoded {row - len(kept)} of {done} new or changed pictures in {seconds:.1f} s "
              f"({done / max(seconds, 1e-9):.0f} images/s), cached in {cache_dir}",
              file=sys.stderr)
    del images
    return (entries(folder, shape, name, listing, rows, skipped),
            np.load(cache_dir / name, mmap_mode="r", allow_pickle=False), interrupted)


def entries(folder, shape, name, listing, rows, skipped):
    """The index: {path: row} of the decoded pictures in `name`, {path: reason} of the skipped ones."""
    return {"version": CACHE_VERSION, "folder": str(folder), "shape": list(shape), "images": name,
            "decoded": [[p, *listing[p], rows[p]] for p in sorted(rows)],
            "skipped": [[p, *listing[p], skipped[p]] for p in sorted(skipped)]}
