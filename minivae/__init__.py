"""minivae: a variational autoencoder written from scratch in NumPy, every gradient by hand, hot loops in Numba.

Dimension legend used in every docstring:
    B batch · D data values per example · Z latent size · U hidden width (dense layers) ·
    C, H, W image channels/height/width · k network outputs per data value · K importance samples ·
    M mixture components (discretized logistic) · R im2col row length k·k·C (k the convolution's kernel size).
Losses are in nats per example (summed over the D values, averaged over the batch) unless a docstring says otherwise.

The Python API, one function per command (same names and options as the CLI):
    minivae.train(out, dataset=..., epochs=..., engine=..., resume=...)   minivae train
    minivae.sample / interpolate / traverse / manifold / reconstruct(checkpoint, out, ...)
    minivae.evaluate(checkpoint, k=...)                                   minivae evaluate
    minivae.load_checkpoint(path) -> (vae, arrays, meta)                  minivae.gradcheck() -> [(check, error)]
Importing minivae changes nothing in the process (no environment variable, thread pool or global setting); the
`minivae` command calls minivae.runtime.configure() for speed, and so can your program (runtime.py). The API is
loaded on first use, so that configure() can still run before numpy loads.
"""
import importlib

_API = {"MinivaeError": (".errors", "MinivaeError"), "load_checkpoint": (".checkpoint", "load_checkpoint"),
        "train": (".training", "train"), "evaluate": (".evaluation", "evaluate_checkpoint"),
        "gradcheck": (".gradchecks", "run_all"),
        **{name: (".explore", name) for name in ("interpolate", "manifold", "reconstruct", "sample", "traverse")}}
__all__ = sorted(_API)


def __getattr__(name):
    """minivae.<name> of the API: imported from its module on first use."""
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(module, __name__), attribute)
    globals()[name] = value
    return value
