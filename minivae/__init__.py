"""minivae: a variational autoencoder written from scratch in NumPy, every gradient by hand, hot loops in Numba.

Dimension legend used in every docstring:
    B batch · D data values per example · Z latent size · H hidden width · C, H, W image channels/height/width ·
    k network outputs per data value · K importance samples.
Losses are in nats per example (summed over the D values, averaged over the batch) unless a docstring says otherwise.
"""
import os

# Numba's parallel kernels run on its "workqueue" threading layer, not OpenMP: with the OpenMP layer loaded beside
# OpenBLAS's own threads, the MLP train step took 150 ms instead of 8 ms on a busy 2-core machine, measured back to
# back (both thread pools contend after every kernel; OMP_WAIT_POLICY=PASSIVE did not cure it). It must be chosen before Numba starts its
# threads, hence here. A user's own setting wins.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

# The Python API, one function per command (same names and options as the CLI):
#     minivae.train(out, dataset=..., epochs=..., resume=...)      minivae train
#     minivae.sample / interpolate / traverse / manifold / reconstruct(checkpoint, out, ...)
#     minivae.evaluate(checkpoint, k=...)                          minivae evaluate
#     minivae.load_checkpoint(path) -> (vae, arrays, meta)         minivae.gradcheck() -> [(check, max rel error)]
# `train`, `evaluate` and `gradcheck` are also module names; the functions win as attributes of the package, so
# reach the modules with `from minivae.train import ...` (or sys.modules["minivae.train"]), not `import ... as`.
from .errors import MinivaeError  # noqa: E402  (after OMP_WAIT_POLICY)
from .checkpoint import load_checkpoint  # noqa: E402
from .train import train  # noqa: E402
from .explore import interpolate, manifold, reconstruct, sample, traverse  # noqa: E402
from .evaluate import evaluate_checkpoint as evaluate  # noqa: E402
from .gradcheck import run_all as gradcheck  # noqa: E402

__all__ = ["MinivaeError", "evaluate", "gradcheck", "interpolate", "load_checkpoint", "manifold", "reconstruct",
           "sample", "train", "traverse"]
