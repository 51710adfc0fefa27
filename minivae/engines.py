"""Two implementations of one contract: the NumPy reference that reads like the math, and the fast Numba kernels.

    reference   every layer through its forward/backward functions (dense_forward, conv2d_forward via im2col and a
                GEMM, conv_transpose2d_forward as its adjoint), the sampler and KL through reparameterize and
                gaussian_kl, each likelihood through log_prob / log_prob_backward, Adam through adam_update.
                Step through a training step in the code you read.
    fast        the same math on fused Numba kernels and cache-blocked, multi-core convolutions (the default).

An engine is chosen when a model is built (`build_model(..., engine=...)`, `minivae train --engine`) and stays with
it: the layers are built from its classes, and the VAE, the objectives and Adam call its functions. Both give the
same numbers to rounding (float64 to ~1e-12, tests/test_engines.py); they are not bitwise equal, so a run resumes
with the engine it started with.

Fields of an Engine, each with the same signature in both:
    Dense, Conv2d, ConvTranspose2d          layer classes (layers/)
    sample_and_kl(μ, logvar, ε) -> (z, KL)                          gaussian.py
    sample_and_kl_backward(dz, dkl, μ, logvar, ε) -> (dμ, dlogvar)
    nll_and_grad(likelihood, out, x, scale) -> (−log p (B,), scale · ∂(−log p)/∂out)     likelihoods/
    adam_update(θ, g, m, v, t, lr, β₁, β₂, ε)                        optim.py, in place
"""
from dataclasses import dataclass
from typing import Callable

from . import layers
from .errors import MinivaeError
from .gaussian import fast_sample_and_kl, fast_sample_and_kl_backward, sample_and_kl, sample_and_kl_backward
from .likelihoods.support import Likelihood
from .optim import adam_update, fast_adam_update


@dataclass(frozen=True)
class Engine:
    name: str
    Dense: type
    Conv2d: type
    ConvTranspose2d: type
    sample_and_kl: Callable
    sample_and_kl_backward: Callable
    nll_and_grad: Callable
    adam_update: Callable


REFERENCE = Engine("reference", layers.Dense, layers.Conv2d, layers.ConvTranspose2d, sample_and_kl,
                   sample_and_kl_backward, Likelihood.reference_nll_and_grad, adam_update)
FAST = Engine("fast", layers.FastDense, layers.FastConv2d, layers.FastConvTranspose2d, fast_sample_and_kl,
              fast_sample_and_kl_backward, Likelihood.nll_and_grad, fast_adam_update)
ENGINES = {e.name: e for e in (REFERENCE, FAST)}


def get_engine(engine):
    """The Engine called `engine` (an Engine passes through); MinivaeError for an unknown name."""
    if isinstance(engine, Engine):
        return engine
    if engine not in ENGINES:
        raise MinivaeError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    return ENGINES[engine]
