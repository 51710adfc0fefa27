"""A convolution's batch split between the cores: one worker thread per core, each running whole image chunks.

The fast convolution layers work through their batch a few images at a time (fast_layers.py's cache blocking): for
each chunk im2col, a GEMM, the fused bias and activation pass (and three or four such calls backward). Left to
themselves, OpenBLAS and Numba would split *every one* of these calls between the cores, which would then meet
hundreds of times a step and cut already small GEMMs smaller. `for_each_worker` instead hands each core its own
chunks, in a thread that runs the whole pipeline on them with BLAS limited to one thread and serial Numba kernels
(compiled with nogil, so the threads run at the same time): the threads meet once per layer call. The calling
thread is worker 0, which saves a hand-off per call (docs/performance.md has the measurements).

The split is static, worker w takes chunks w, w + n, w + 2n, ..., and a worker adds its partial gradient sums in
chunk order; the caller adds the workers' sums in worker order. So the numbers do not depend on thread timing:
a run is reproducible bit for bit with the same thread count. (Different thread counts add in different orders.)

The thread count is Numba's (`numba.get_num_threads()`, from NUMBA_NUM_THREADS or `numba.set_num_threads`): one
thread runs everything in the caller. BLAS is limited through threadpoolctl, which knows OpenBLAS, MKL and BLIS;
with a BLAS it cannot limit the result is the same, only slower (the workers' GEMMs compete for the cores).
"""
import os
from concurrent.futures import ThreadPoolExecutor, wait

import numba

_pool = {}  # the thread pool, its size, the process it belongs to and the BLAS controller, made on first use


def worker_count():
    """How many workers a layer call splits its chunks between: Numba's thread count."""
    return numba.get_num_threads()


def for_each_worker(chunks, work):
    """[work(w, chunks[w::n]) for w in range(n)], the n = min(worker_count(), len(chunks)) calls run concurrently,
    BLAS single-threaded meanwhile. `work` must only write to what its own chunks own (or to per-worker buffers).

    A pool of n − 1 threads runs workers 1 … n − 1. A process forked from this one has no such threads, so it makes
    its own pool.
    """
    n = min(worker_count(), len(chunks))
    if n == 1:
        return [work(0, chunks)]
    if _pool.get("size", 0) < n or _pool["pid"] != os.getpid():
        from threadpoolctl import ThreadpoolController  # not at import: importing it sets KMP_DUPLICATE_LIB_OK
        _pool.update(size=n, pid=os.getpid(), threads=ThreadPoolExecutor(n - 1, thread_name_prefix="minivae-worker"),
                     blas=ThreadpoolController().select(user_api="blas"))
    with _pool["blas"].limit(limits=1):
        futures = [_pool["threads"].submit(work, w, chunks[w::n]) for w in range(1, n)]
        try:
            first = work(0, chunks[0::n])
        finally:
            wait(futures)  # never return (or raise) while another worker still writes
        return [first] + [f.result() for f in futures]
