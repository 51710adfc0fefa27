"""The diagonal-Gaussian posterior q(z|x) = N(μ, diag(exp(logvar))): reparametrized sampling and the KL to the prior.

One convention everywhere: the encoder outputs the *log-variance* `logvar`, so σ = exp(½·logvar).

Reparametrization (the noise ε ~ N(0, I) is an argument, which makes the ELBO a deterministic function):
    z = μ + exp(½·logvar) · ε                       μ, logvar, ε: (B, Z) -> z: (B, Z)
    ∂z/∂μ = 1,   ∂z/∂logvar = ½ · exp(½·logvar) · ε

Log-density of a diagonal Gaussian at any point z (the prior p(z) = N(0, I) is μ = 0, logvar = 0):
    log N(z; μ, exp(logvar)) = −½ · Σ_Z ((z − μ)² e^{−logvar} + logvar + log 2π)      -> (...)
    with u = (z − μ) e^{−logvar}:   ∂/∂z = −u,   ∂/∂μ = u,   ∂/∂logvar = ½ ((z − μ) u − 1)

KL divergence to the prior p(z) = N(0, I), in closed form, per example (nats):
    KL = ½ · Σ_Z (μ² + exp(logvar) − 1 − logvar)     -> (B,)
    ∂KL/∂μ = μ,   ∂KL/∂logvar = ½ · (exp(logvar) − 1)

`reparameterize`, `gaussian_log_density`, `gaussian_kl` and their backwards are the NumPy specification, and `sample_and_kl` /
`sample_and_kl_backward` chain them for the reference engine (engines.py); `sample_kl_kernel` and
`sample_kl_backward_kernel` fuse both into one pass each for the fast engine (`fast_sample_and_kl`, ...) and are
tested against them.
"""
import numpy as np
from numba import njit

LOG_2PI = float(np.log(2 * np.pi))  # a Python float, so float32 arrays stay float32


def reparameterize(mu, logvar, eps):
    """z = μ + exp(½·logvar) · ε.   (B, Z) each -> (B, Z)."""
    return mu + np.exp(0.5 * logvar) * eps


def reparameterize_backward(dz, logvar, eps):
    """Given dL/dz (B, Z): dL/dμ = dz, dL/dlogvar = dz · ½·exp(½·logvar)·ε."""
    return dz, dz * 0.5 * np.exp(0.5 * logvar) * eps


def gaussian_log_density(z, mu, logvar):
    """log N(z; μ, diag(exp(logvar))) = −½ Σ_Z ((z − μ)² e^{−logvar} + logvar + log 2π).   (..., Z) -> (...) nats.

    μ and logvar broadcast against z (scalars 0, 0 give the prior N(0, I))."""
    return -0.5 * np.sum((z - mu) ** 2 * np.exp(-logvar) + logvar + LOG_2PI, axis=-1)


def gaussian_log_density_backward(d, z, mu, logvar):
    """Given dL/d(log N) (...): with u = (z − μ) e^{−logvar}, returns dL/dz = −d·u, dL/dμ = d·u and
    dL/dlogvar = d·½((z − μ)·u − 1), each shaped like the broadcast of z, μ, logvar (the caller sums broadcast axes)."""
    d = d[..., None]
    u = (z - mu) * np.exp(-logvar)
    return -d * u, d * u, 0.5 * d * ((z - mu) * u - 1)


def gaussian_kl_per_dimension(mu, logvar):
    """KL_bj = ½ (μ² + exp(logvar) − 1 − logvar): each latent dimension's share of the KL.   (B, Z) -> (B, Z) nats."""
    return 0.5 * (mu * mu + np.expm1(logvar) - logvar)  # expm1: exact near logvar = 0


def gaussian_kl(mu, logvar):
    """KL(N(μ, exp(logvar)) ‖ N(0, I)) = ½ Σ_Z (μ² + exp(logvar) − 1 − logvar).   (B, Z) -> (B,) nats."""
    return np.sum(gaussian_kl_per_dimension(mu, logvar), axis=1)


def gaussian_kl_backward(dkl, mu, logvar):
    """Given dL/dKL, (B,) per example or (B, Z) per example and latent dimension (free bits, objectives.py):
    dL/dμ = dkl · μ, dL/dlogvar = dkl · ½(exp(logvar) − 1)."""
    dkl = dkl[:, None] if np.ndim(dkl) == 1 else dkl
    return dkl * mu, dkl * 0.5 * np.expm1(logvar)


def sample_and_kl(mu, logvar, eps):
    """z = reparameterize(μ, logvar, ε) (B, Z) and KL = gaussian_kl(μ, logvar) (B,)."""
    return reparameterize(mu, logvar, eps), gaussian_kl(mu, logvar)


def sample_and_kl_backward(dz, dkl, mu, logvar, eps):
    """Given dL/dz (B, Z) and dL/dKL ((B,) or (B, Z)): dL/dμ, dL/dlogvar, the sum of both paths.   (B, Z) each."""
    dmu_z, dlogvar_z = reparameterize_backward(dz, logvar, eps)
    dmu_kl, dlogvar_kl = gaussian_kl_backward(dkl, mu, logvar)
    return dmu_z + dmu_kl, dlogvar_z + dlogvar_kl


def fast_sample_and_kl(mu, logvar, eps):
    """`sample_and_kl` in one pass of `sample_kl_kernel`."""
    z, kl = np.empty_like(mu), np.empty(mu.shape[0], dtype=mu.dtype)
    sample_kl_kernel(mu, logvar, eps, np.expm1(0.5 * logvar), z, kl)
    return z, kl


def fast_sample_and_kl_backward(dz, dkl, mu, logvar, eps):
    """`sample_and_kl_backward` in one pass of `sample_kl_backward_kernel` (a (B, Z) dkl added afterwards)."""
    dmu, dlogvar = np.empty_like(mu), np.empty_like(mu)
    per_example = np.zeros(mu.shape[0]) if np.ndim(dkl) == 2 else dkl
    sample_kl_backward_kernel(dz, np.asarray(per_example, dtype=mu.dtype), mu, np.expm1(0.5 * logvar), eps,
                              dmu, dlogvar)
    if np.ndim(dkl) == 2:
        dmu += dkl * mu
        dlogvar += dkl * 0.5 * np.expm1(logvar)
    return dmu, dlogvar


@njit(cache=True)
def sample_kl_kernel(mu, logvar, eps, em, z, kl):
    """One pass, given em = expm1(½·logvar) (NumPy's vectorized expm1, faster than Numba's scalar libm calls):
    z = μ + σ·ε with σ = 1 + em into `z` (B, Z), and KL per example into `kl` (B,), using the exact identity
    exp(logvar) − 1 = (σ − 1)(σ + 1) = em·(em + 2), which keeps expm1's accuracy near logvar = 0."""
    B, Z = mu.shape
    for b in range(B):
        acc = 0.0
        for j in range(Z):
            e = em[b, j]
            z[b, j] = mu[b, j] + (1 + e) * eps[b, j]
            acc += mu[b, j] * mu[b, j] + e * (e + 2) - logvar[b, j]
        kl[b] = 0.5 * acc


@njit(cache=True)
def sample_kl_backward_kernel(dz, dkl, mu, em, eps, dmu, dlogvar):
    """One pass over (B, Z), given em = expm1(½·logvar): dμ = dz + dkl·μ and dlogvar = dz·½σε + dkl·½(σ² − 1),
    with σ = 1 + em and σ² − 1 = em·(em + 2)."""
    B, Z = mu.shape
    for b in range(B):
        w = dkl[b]
        for j in range(Z):
            e = em[b, j]
            dmu[b, j] = dz[b, j] + w * mu[b, j]
            dlogvar[b, j] = 0.5 * (dz[b, j] * (1 + e) * eps[b, j] + w * (e * (e + 2)))
