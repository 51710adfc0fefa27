"""Probabilistic PCA (Tipping & Bishop 1999): the linear-Gaussian VAE, whose log p(x) and p(z|x) are exact.

The model, in the library's row convention (x and z are rows, as in the dense layer y = xW + b):

    z ~ N(0, I_Z),   x | z ~ N(zW + b, σ² I_D)                  W: (Z, D), b: (D,), σ² > 0
    marginal    x ~ N(b, C),              C = WᵀW + σ² I_D                                   (D, D)
    posterior   z | x ~ N((x − b)Wᵀ M⁻¹, σ² M⁻¹),   M = W Wᵀ + σ² I_Z                      (Z, Z)

(Tipping & Bishop write x = Wz + μ with W (D, Z): their W is our Wᵀ.) The maximum-likelihood solution, for data
with mean x̄ and covariance S = (1/N) Σ_n (x_n − x̄)ᵀ(x_n − x̄), eigenvalues λ₁ ≥ … ≥ λ_D and eigenvectors U:

    b = x̄,   σ²_ML = (1/(D − Z)) Σ_{i>Z} λ_i,   W_ML = R (Λ_Z − σ²_ML I)^{½} U_Zᵀ    for any rotation R (Z, Z)

so W_MLᵀ W_ML = U_Z (Λ_Z − σ²I) U_Zᵀ does not depend on R: that is what a trained W is compared by.

models.py's "linear" model with the normal likelihood is this model with an amortized Gaussian q(z|x): encoder
[μ | logvar] = x A + a, decoder [zW + b | s], σ² = σ²_min + e^s. Its ELBO's expectation is exact over 2Z points:
log p(x|z) is a quadratic function of z, and for a quadratic f and q = N(μ, diag(v)),

    E_q f(z) = f(μ) + ½ Σ_j v_j ∂²f/∂z_j² = (1/2Z) Σ_{j, ±} f(μ ± √(Z v_j) e_j)

(each pair contributes 2f(μ) + Z v_j ∂²f/∂z_j²; odd terms cancel). `quadrature_noise` returns those ε = ±√Z e_j, so
the library's own forward (sampler, KL, decoder, likelihood) computes the exact ELBO, and its backward the exact
ELBO gradient. Everything here is float64.
"""
import numpy as np

from .likelihoods.normal import floored_logvar

LOG_2PI = np.log(2 * np.pi)


def linear_vae_parameters(vae):
    """(W (Z, D), b (D,), σ²) of a "linear" VAE with the normal likelihood, in float64."""
    p = vae.params
    s = p["decoder.1.s"].astype(np.float64)
    variance = float(np.exp(floored_logvar(s, vae.likelihood.log_floor))[0])
    return p["decoder.0.W"].astype(np.float64), p["decoder.0.b"].astype(np.float64), variance


def ppca_log_likelihood(x, W, b, variance):
    """log N(x; b, WᵀW + σ²I) per row, through the Cholesky factor L of C: −½ [D log 2π + 2 Σ log L_ii + |L⁻¹r|²].
    x: (N, D) -> (N,) nats."""
    D = x.shape[1]
    L = np.linalg.cholesky(W.T @ W + variance * np.eye(D))
    u = np.linalg.solve(L, (x - b).T)                                  # L⁻¹ rᵀ   (D, N)
    return -0.5 * (D * LOG_2PI + 2 * np.sum(np.log(np.diag(L))) + np.sum(u * u, axis=0))


def ppca_posterior(x, W, b, variance):
    """p(z|x) = N((x − b)Wᵀ M⁻¹, σ² M⁻¹), M = WWᵀ + σ²I.   x: (N, D) -> mean (N, Z), covariance (Z, Z)."""
    M = W @ W.T + variance * np.eye(W.shape[0])
    return np.linalg.solve(M, W @ (x - b).T).T, variance * np.linalg.inv(M)


def ppca_ml(x, latent):
    """The maximum-likelihood (W (Z, D), b (D,), σ²) for data x (N, D), with R = I (rows of W along the principal
    axes, longest first)."""
    b = x.mean(axis=0)
    r = x - b
    eigenvalues, U = np.linalg.eigh(r.T @ r / len(x))                  # ascending
    eigenvalues, U = eigenvalues[::-1], U[:, ::-1]
    variance = float(np.mean(eigenvalues[latent:]))
    W = np.sqrt(eigenvalues[:latent] - variance)[:, None] * U[:, :latent].T
    return W, b, variance


def kl_diagonal_to_full(mu_q, logvar_q, mu_p, cov_p):
    """KL(N(μ_q, diag(e^logvar_q)) ‖ N(μ_p, Σ_p)) per row
    = ½ [tr(Σ_p⁻¹ Σ_q) + (μ_p − μ_q) Σ_p⁻¹ (μ_p − μ_q)ᵀ − Z + log det Σ_p − Σ_j logvar_q,j].
    mu_q, logvar_q, mu_p: (N, Z), cov_p: (Z, Z) -> (N,) nats."""
    Z = mu_q.shape[1]
    P = np.linalg.inv(cov_p)
    d = mu_p - mu_q
    trace = np.exp(logvar_q) @ np.diag(P)
    return 0.5 * (trace + np.einsum("ni,ij,nj->n", d, P, d) - Z + np.linalg.slogdet(cov_p)[1]
                  - logvar_q.sum(axis=1))


def quadrature_noise(latent):
    """The 2Z points ε = ±√Z e_j over which a mean is E_{N(0,I)} of any quadratic (module docstring).   -> (2Z, Z)."""
    e = np.sqrt(latent) * np.eye(latent)
    return np.concatenate([e, -e])


def exact_elbo(vae, x):
    """The ELBO of a linear-Gaussian VAE per example, its expectation exact: `vae.forward` on every example repeated
    at the 2Z quadrature points, averaged. x: (N, D) float64 -> (N,) nats. Leaves the forward's cache for `backward`
    (the gradient of the mean −ELBO over the N examples)."""
    eps = quadrature_noise(vae.latent)
    P = len(eps)
    terms = vae.forward(np.repeat(x, P, axis=0), np.tile(eps, (len(x), 1)))
    return -terms.loss.reshape(len(x), P).mean(axis=1)
