"""Progress bars (tqdm on stderr) that stay out of the way: off with `quiet`, and off when stderr is not a terminal,
so logs, pipes and tests see only the one-line-per-epoch summaries.

    for x in progress_bar(batches, quiet, desc="evaluate"):   # wraps an iterable
    bar = progress_bar(None, quiet, total=n, desc="epoch 1")   # or a manual bar: bar.update(1); bar.close()
"""
import sys

from tqdm import tqdm


def bar_enabled(quiet, stream=None):
    """A bar is drawn only when not `quiet` and the stream (default stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return not quiet and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable=None, quiet=False, **kwargs):
    """A tqdm bar on stderr (disabled when `bar_enabled` says so); keyword arguments go to tqdm (desc, total, ...).

    The bar is not left on screen after it closes (leave=False) so the summary line printed afterwards stands alone.
    """
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, disable=not bar_enabled(quiet, kwargs["file"]), **kwargs)
