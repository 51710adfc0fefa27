"""Layers: thin classes that own parameters and their gradients; the math lives in paired forward/backward functions.

Every layer follows one protocol:

    layer.params : dict name -> ndarray      (e.g. {"W": ..., "b": ...}; empty for reshapes)
    layer.grads  : dict name -> ndarray      (same keys and shapes, overwritten by each backward)
    y  = layer.forward(x)                    (keeps what backward needs)
    dx = layer.backward(dy, need_dx=True)    (returns None when need_dx is False)

`Dense`, `Conv2d` and `ConvTranspose2d` run the NumPy reference functions of their modules (the reference engine);
fast_layers.py holds `FastDense`, `FastConv2d` and `FastConvTranspose2d`, the same contract on Numba kernels (the
fast engine). engines.py names the two sets.
"""
from .append import AppendShared
from .conv2d import Conv2d
from .conv_transpose2d import ConvTranspose2d
from .dense import Dense
from .fast_layers import FastConv2d, FastConvTranspose2d, FastDense
from .reshape import Flatten, Reshape
from .sequential import Sequential

__all__ = ["AppendShared", "Conv2d", "ConvTranspose2d", "Dense", "FastConv2d", "FastConvTranspose2d", "FastDense",
           "Flatten", "Reshape", "Sequential"]
