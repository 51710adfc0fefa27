"""What keeps a long training run trustworthy: a clean stop on Ctrl-C (and SIGTERM, SIGHUP) and a loud stop on NaN/Inf.

Ctrl-C (SIGINT) does not raise inside the step: the handler only sets a flag, the training loop finishes the step it
is in (parameters and Adam moments are never left half-updated), writes a checkpoint of that finished step and raises
`TrainingInterrupted`, a KeyboardInterrupt the CLI turns into one line and exit status 128 + signal number (130).
SIGTERM (what batch schedulers send before a kill) and SIGHUP (the terminal went away) are handled the same way, exit
143 and 129. A second signal while the checkpoint is being written acts at once (the previous handlers are back); the
write is atomic, so the previous checkpoint survives that too.

Non-finite values are caught before they reach the parameters: the per-example loss is checked after the forward
pass and every gradient after the backward pass, *before* the optimizer step, so the parameters, and every checkpoint
written from them, stay finite. One sum per gradient tensor is the whole cost (a NaN or ±Inf anywhere makes the sum
non-finite; a finite tensor whose sum overflows is reported too, and is no healthier).
"""
import signal
import threading

import numpy as np

from .errors import MinivaeError
from .flat import tiled_buffer


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by `train` after a stop signal, once the checkpoint of the last finished step is on disk; str() says
    where. `signum` is the signal (SIGINT, SIGTERM or SIGHUP)."""

    def __init__(self, message, checkpoint=None, epoch=None, step=None, signum=signal.SIGINT):
        super().__init__(message)
        self.checkpoint, self.epoch, self.step, self.signum = checkpoint, epoch, step, signum

    def __str__(self):
        return self.args[0]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class InterruptGuard:
    """Context manager turning SIGINT, SIGTERM and SIGHUP into a flag (`guard.interrupted`, the signal in
    `guard.signum`) for the duration of the block.

    Installed only in the main thread (the only one Python delivers signals to); elsewhere the flag stays False and
    the signals behave as usual. The first signal restores the previous handlers, so a second one acts at once.
    """

    def __init__(self):
        self.interrupted = False
        self.signum = None
        self._previous = {}

    def _handle(self, signum, frame):
        self.interrupted, self.signum = True, signum
        self._restore()

    def _restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous = signal.getsignal(signum)
                # None: a handler set from C; SIGINT's is Python's default (KeyboardInterrupt), the others' the OS's
                self._previous[signum] = previous if previous is not None else (
                    signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
                signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        self._restore()
        return False


def check_finite_loss(terms, step, epoch):
    """MinivaeError naming the first non-finite per-example term (loss, recon or kl) of training step `step`."""
    if np.isfinite(terms.loss.sum() + terms.recon.sum() + terms.kl.sum()):
        return
    for name in ("recon", "kl", "loss"):
        values = getattr(terms, name)
        bad = ~np.isfinite(values)
        if bad.any():
            raise MinivaeError(f"{name} is {values[bad][0]} for {bad.sum()} of {values.size} examples at step {step} "
                               f"(epoch {epoch}); training stopped before the update")
    raise MinivaeError(f"the batch loss overflowed at step {step} (epoch {epoch}); training stopped before the update")


def check_finite_grads(grads, step, epoch):
    """MinivaeError naming the first gradient tensor with a NaN/Inf at training step `step` (checked as one sum:
    over the model's whole gradient buffer when the gradients are packed (flat.py), else per tensor)."""
    flat = tiled_buffer(list(grads.values()))
    if flat is not None and np.isfinite(flat.sum()):
        return
    for name, g in grads.items():
        if not np.isfinite(g.sum()):
            n_bad = int(np.sum(~np.isfinite(g)))
            what = f"{n_bad} NaN/Inf values" if n_bad else "a sum that overflows"
            raise MinivaeError(f"gradient of {name} {tuple(g.shape)} has {what} at step {step} (epoch {epoch}); "
                               f"training stopped before the update")
