"""Many arrays in one buffer: a model's parameters (and its gradients, and Adam's moments) stored back to back.

An elementwise pass over every parameter (the optimizer's update) then runs as one kernel call over one contiguous
array instead of one call per tensor: each parallel Numba call costs a thread wake-up, and one long loop vectorizes
and splits across threads better than many short ones. The arrays keep their shapes and names; they are views of the buffer, so code that writes them in place
(`out=`, `a[...] = ...`) is unaffected. Code must never rebind them (`layer.params["W"] = new_array`).
"""
import numpy as np


def pack(dicts):
    """Move every array of `dicts` (a list of name -> array dicts, in order) into one new 1-D buffer; each entry
    becomes a view of it with the same shape and values. Returns the buffer. All arrays must share one dtype."""
    arrays = [a for d in dicts for a in d.values()]
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) > 1:
        raise ValueError(f"pack needs arrays of one dtype, got {sorted(map(str, dtypes))}")
    flat = np.empty(sum(a.size for a in arrays), dtype=dtypes.pop() if dtypes else np.float64)
    offset = 0
    for d in dicts:
        for name, a in d.items():
            view = flat[offset:offset + a.size].reshape(a.shape)
            view[...] = a
            d[name] = view
            offset += a.size
    return flat


def tiled_buffer(arrays):
    """The 1-D buffer that `arrays` (a list) fill exactly, one after another in this order, or None."""
    base = arrays[0].base if arrays else None
    if base is None or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    start = address = base.__array_interface__["data"][0]
    for a in arrays:
        if a.base is not base or not a.flags.c_contiguous or a.__array_interface__["data"][0] != address:
            return None
        address += a.nbytes
    return base if address == start + base.nbytes else None
