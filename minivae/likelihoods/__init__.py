"""Output distributions p(x|z): the decoder's outputs are the *parameters* of a distribution over the data.

Every likelihood has the same interface, so the ELBO never needs to know which one it has:

    lik.name                       e.g. "bernoulli"
    lik.outputs_per_value          k: network outputs per data value (Bernoulli 1, Normal 2, Categorical 256, ...)
    lik.check_data(x)              MinivaeError if x is not in the distribution's support
    lik.from_uint8(images)         the data as this distribution models it (e.g. [0,1] floats), float dtype
    lik.log_prob(out, x)           log p(x|out) in nats, summed over the D data values: (B, k·D), (B, D) -> (B,)
    lik.log_prob_backward(out, x)  ∂ log p(x|out) / ∂out, per example: -> (B, k·D)
    lik.nll_and_grad(out, x, scale)  fused kernel: (−log p (B,), scale · ∂(−log p)/∂out (B, k·D))
    lik.mean(out), lik.sample(out, rng)   pictures in data space (B, D)

The network output row of one example is laid out as (k, D): parameter j of value d sits at column j·D + d
(for a convolutional decoder, output channel j·C + c).

Training minimizes −Σ log p(x|z), a sum of log-probabilities; never a product of probabilities, which underflows.
"""
from ..errors import MinivaeError
from .bernoulli import Bernoulli

LIKELIHOODS = {cls.name: cls for cls in (Bernoulli,)}


def get_likelihood(name):
    """The likelihood called `name` (an instance)."""
    if name not in LIKELIHOODS:
        raise MinivaeError(f"unknown likelihood {name!r}; expected one of {', '.join(LIKELIHOODS)}")
    return LIKELIHOODS[name]()
