"""Sums of exponentials computed in log space, where the terms would overflow or underflow as plain numbers.

    logsumexp(a) = log Σ_i e^{a_i} = m + log Σ_i e^{a_i − m},   m = max_i a_i
    log_softmax(a)_i = a_i − logsumexp(a)
    log_mean_exp(a) = log (1/K) Σ_k e^{a_k} = m + log mean_k e^{a_k − m}

Subtracting the max keeps every exponent ≤ 0 (no overflow), and the largest term is exactly 1, so the log never sees
0 (no underflow to −inf): arguments of ±1000 are fine. The likelihoods (log-softmax over classes or mixture
components), the IWAE bound and the log-likelihood estimate all use these.
"""
import numpy as np


def logsumexp(a, axis=-1, keepdims=False):
    """log Σ e^a over `axis`, max-shifted."""
    m = np.max(a, axis=axis, keepdims=True)
    s = m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))
    return s if keepdims else np.squeeze(s, axis)


def log_softmax(a, axis=-1):
    """a − logsumexp(a) over `axis`: log-probabilities of the softmax, same shape as a."""
    return a - logsumexp(a, axis, keepdims=True)


def log_mean_exp(a, axis=-1):
    """log (1/K) Σ_k e^{a_k} over `axis` (K its length), max-shifted."""
    m = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.mean(np.exp(a - m), axis=axis))
