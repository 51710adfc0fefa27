"""Data parallelism over MPI: which share of the work this process takes, and deterministic sums across processes.

`mpiexec -n N minivae train ...` starts N processes (ranks). Each builds the same model from the same seed and walks
the same Generator stream as one process would, so every rank knows the whole global batch (its images, ε and
binarization); rank r then runs forward and backward on its `share` of the rows only. With the loss the mean over the
*global* batch B,

    L = (1/B) Σ_b loss_b = Σ_r L_r,      L_r = (1/B) Σ_{b ∈ rank r} loss_b,      ∇L = Σ_r ∇L_r,

each rank's gradient is its ∇L_r (scaled by 1/B, not by 1/B_r), and `World.sum` adds the gradient buffers of all
ranks, after which every rank holds ∇L and takes the same Adam step: the parameters never diverge between ranks.

Deterministic sums. MPI_Allreduce may add the ranks' buffers in any order (the standard only recommends that one
call gives the same result for the same input), so `sum` adds them itself, always as
((g_0 + g_1) + g_2) + ... in rank order: the buffer is cut into N segments, rank r receives segment r from every
rank (Alltoallv), adds them in rank order, and every rank receives every summed segment (Allgatherv). Each rank sends
and receives 2·(N−1)/N of the buffer, the bandwidth of a ring allreduce, and the result is the same bits on every
rank and in every run at a fixed N. Against one process only the summation order changes (docs/mpi.md measures it).

Launch detection. Importing minivae never imports mpi4py (MPI_Init in an ordinary process would be wrong, and slow):
`world()` returns the single process `LOCAL` unless the environment says this process is one of several ranks,
PMI_SIZE (MPICH's Hydra, Intel MPI, Slurm's srun --mpi=pmi2) or OMPI_COMM_WORLD_SIZE (Open MPI) above 1; then it
imports mpi4py, and a missing mpi4py is an error rather than N processes each training alone into one directory.
"""
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from .errors import MinivaeError

SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")  # set by mpiexec / srun in every rank's environment


@dataclass(frozen=True)
class Share:
    """Rows `rows` (a slice) of a global batch of `total` rows are this rank's; `world.sum` adds across ranks."""
    rows: slice
    total: int
    world: object


def share_bounds(n, size, rank):
    """Rank `rank`'s contiguous part [lo, hi) of 0..n−1 split over `size` ranks, sizes differing by at most one
    (the first n mod size ranks take one more), so that rank order is item order."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


class LocalWorld:
    """One process: it takes every row, and a sum over ranks is the value itself."""
    rank, size = 0, 1

    def share(self, n):
        return Share(slice(0, n), n, self)

    def split(self, n, unit):
        return 0, n

    def sum(self, a):
        return a

    def gather(self, a):
        return a


LOCAL = LocalWorld()


def segments(n, size):
    """(counts, offsets) of 0..n−1 cut into `size` contiguous segments as share_bounds cuts it."""
    bounds = np.array([share_bounds(n, size, r) for r in range(size)])
    return bounds[:, 1] - bounds[:, 0], bounds[:, 0]


class MpiWorld:
    """The ranks of an MPI communicator (mpi4py): shares, sums in rank order, gathers in rank order."""

    def __init__(self, comm):
        self.comm, self.rank, self.size = comm, comm.Get_rank(), comm.Get_size()

    def share(self, n):
        """This rank's rows of a batch of n: contiguous, in rank order (share_bounds)."""
        return Share(slice(*share_bounds(n, self.size, self.rank)), n, self)

    def split(self, n, unit):
        """This rank's [lo, hi) of items 0..n−1 cut only at multiples of `unit` (whole chunks of `unit` items), so
        that each chunk is computed exactly as one process computes it."""
        lo, hi = share_bounds(-(-n // unit), self.size, self.rank)
        return min(lo * unit, n), min(hi * unit, n)

    def sum(self, a):
        """Σ_r a_r over the ranks' arrays (same shape and dtype on every rank), added in rank order; written into `a`
        (contiguous) and returned, the same bits on every rank."""
        flat = a.reshape(-1)
        counts, offsets = segments(flat.size, self.size)
        mine = counts[self.rank]
        parts = np.empty((self.size, mine), dtype=flat.dtype)  # parts[r] = rank r's values of my segment
        self.comm.Alltoallv([flat, counts, offsets, datatype(flat)],
                            [parts, np.full(self.size, mine), np.arange(self.size) * mine, datatype(flat)])
        total = parts[0].copy()
        for part in parts[1:]:
            total += part
        self.comm.Allgatherv(total, [flat, counts, offsets, datatype(flat)])
        return a

    def gather(self, a):
        """The ranks' arrays concatenated along axis 0 in rank order (shapes may differ in axis 0 only), on every
        rank."""
        a = np.ascontiguousarray(a)
        rows = np.empty(self.size, dtype=np.int64)
        self.comm.Allgather(np.array([len(a)], dtype=np.int64), rows)
        out = np.empty((rows.sum(), *a.shape[1:]), dtype=a.dtype)
        counts = rows * int(np.prod(a.shape[1:], dtype=np.int64))
        self.comm.Allgatherv(a, [out, counts, np.cumsum(counts) - counts, datatype(a)])
        return out

    def abort(self, code):
        """End every rank of the job now (MPI_Abort), after stderr is flushed."""
        sys.stderr.flush()
        self.comm.Abort(code)


def datatype(a):
    """The MPI datatype of `a`'s elements."""
    from mpi4py.util.dtlib import from_numpy_dtype
    return from_numpy_dtype(a.dtype)


_world = None


def launched_size(environ=os.environ):
    """The number of ranks the MPI launcher started (1 when not launched by one)."""
    for name in SIZE_VARIABLES:
        if environ.get(name, "").isdigit():
            return int(environ[name])
    return 1


def world():
    """This process's world: LOCAL, or an MpiWorld over MPI_COMM_WORLD when launched as one of several ranks."""
    global _world
    if _world is None:
        size = launched_size()
        if size <= 1:
            _world = LOCAL
        else:
            try:
                from mpi4py import MPI
            except ImportError:
                raise MinivaeError(f"started by an MPI launcher as one of {size} processes, but mpi4py is not "
                                   f"installed: pip install 'minivae[mpi]' (or run without mpiexec)") from None
            _world = MpiWorld(MPI.COMM_WORLD)
    return _world


def fail(message, code, grace=2.0):
    """Stop every rank of the job after an error on this one (size > 1): rank 0 prints `message` (one line) and
    aborts; another rank first waits `grace` seconds, since an error every rank meets (a bad setting, a NaN gradient
    after the sum) is rank 0's to print, then prints it naming its rank and aborts."""
    w = world()
    if w.rank > 0:
        time.sleep(grace)
        message = message.replace("minivae: ", f"minivae: rank {w.rank} of {w.size}: ", 1)
    print(message, file=sys.stderr)
    w.abort(code)
