"""Writing output files so that no reader ever sees half of one, and no link is followed.

Every file minivae writes (checkpoints, metrics.jsonl, pictures) goes through `atomic_write`: the bytes go to a
temporary file `.<name>.<pid>.tmp` beside the target (created exclusively, never through a symlink), are flushed to
disk (fsync), and the temporary file is renamed over the target with os.replace. A crash mid-write leaves the previous
file intact. The rename replaces the directory entry: a symlink at the target is replaced by the new file, its own
target is never written. The writer's pid in the temporary name lets `sweep_stale_temps` delete only the leftovers of
processes that are gone, never a live writer's file.
"""
import os
import re
from pathlib import Path

from .errors import MinivaeError

TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


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


def atomic_write(path, data):
    """Write the bytes `data` to `path` atomically (module docstring); MinivaeError naming the file on failure."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        tmp.unlink(missing_ok=True)  # our own leftover from an earlier failed write
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666 & ~current_umask())
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_directory(path.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as e:
        raise MinivaeError(f"cannot write {path}: {e.strerror or e}") from None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_stale_temps(directory):
    """Delete the temporary files of `atomic_write` in `directory` whose writer process no longer exists."""
    for entry in Path(directory).iterdir():
        match = TEMP_NAME.match(entry.name)
        if match and int(match["pid"]) != os.getpid() and not pid_alive(int(match["pid"])):
            entry.unlink(missing_ok=True)
