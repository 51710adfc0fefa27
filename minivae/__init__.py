"""minivae: a variational autoencoder written from scratch in NumPy, every gradient by hand, hot loops in Numba.

Dimension legend used in every docstring:
    B batch · D data values per example · Z latent size · H hidden width · C, H, W image channels/height/width ·
    k network outputs per data value · K importance samples.
Losses are in nats per example (summed over the D values, averaged over the batch) unless a docstring says otherwise.
"""
import os

# Numba's OpenMP threads spin after each parallel kernel and then fight OpenBLAS's threads for the two cores: the
# GEMM right after a fused kernel ran 15x slower in our measurements. Passive waiting removes that; it must be set
# before the OpenMP runtime loads, hence here. A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
