"""Output distributions p(x|z): the decoder's outputs are the *parameters* of a distribution over the data.

Every likelihood has the same interface (the shared part in support.Likelihood), so the ELBO never needs to know
which one it has:

    lik.name                       e.g. "bernoulli"
    lik.outputs_per_value          k: network outputs per data value (Bernoulli 1, Normal 2, Categorical 256, ...)
    lik.discrete                   True if log p is a log probability *mass* (then bits/dim are meaningful)
    lik.options()                  the constructor arguments (hyperparameters) that rebuild it: get_likelihood(name, **o)
    lik.check_data(x)              MinivaeError if x is not in the distribution's support
    lik.from_uint8(images, dtype)  8-bit images -> the data as this distribution models it (always i/255, see below)
    lik.log_prob(out, x)           log p(x|out) in nats, summed over the D data values: (B, k·D), (B, D) -> (B,)
    lik.log_prob_backward(out, x)  ∂ log p(x|out) / ∂out, per example: -> (B, k·D)
    lik.reference_nll_and_grad(out, x, scale)   (−log p (B,), scale · ∂(−log p)/∂out (B, k·D)) from the two above
    lik.nll_and_grad(out, x, scale)             the same from one fused Numba kernel (the fast engine's)
    lik.mean(out), lik.sample(out, rng)   (B, D) in the data's scale; `mode(out)` too where it is natural
    lik.to_unit(x)                 data, means or samples -> pictures in [0, 1] (clipped where the support is wider)
    picture(lik, out)              the natural picture of the decoded distribution: to_unit(mode) where a likelihood
                                   has a mode (categorical: a mean over 256 levels is blurrier), else to_unit(mean)
    lik.gradcheck_points(rng)      {label: (out, x)} float64: typical values and the likelihood's hard regions

The network output row of one example is laid out as (k, D): parameter j of value d sits at column j·D + d
(for a convolutional decoder, output channel j·C + c).

Data scaling. Every likelihood receives an 8-bit image as x = i/255 ∈ [0, 1] (so the encoder's input is the same
whichever decoder distribution is used); they differ in what they accept and what the number means:

    name                  data                      outputs/value   log p is
    bernoulli             [0, 1]; {0, 1} binarized  1               a mass on {0, 1}; a cross-entropy on grayscale
    categorical           levels i/255 only         256             a mass over the 256 levels
    normal-fixed          [0, 1]                    1               a density (σ² fixed, default 0.01)
    normal                [0, 1]                    2               a density (σ² ≥ floor, default (1/255)²/12)
    continuous-bernoulli  [0, 1]                    1               a density on [0, 1]
    discretized-logistic  levels i/255 only         3M (M = 5)      a mass over the 256 levels

Densities and masses are not comparable numbers: a density on [0, 1] can exceed 1 (negative nats); bits/dim are
reported only where `discrete` is True.

Training minimizes −Σ log p(x|z), a sum of log-probabilities; never a product of probabilities, which underflows.
"""
from ..errors import MinivaeError
from .bernoulli import Bernoulli
from .categorical import Categorical
from .continuous_bernoulli import ContinuousBernoulli
from .discretized_logistic import DiscretizedLogistic
from .normal import Normal, NormalFixed
from .support import bits_per_dim, reports_bits_per_dim

LIKELIHOODS = {cls.name: cls for cls in (Bernoulli, Categorical, NormalFixed, Normal, ContinuousBernoulli,
                                         DiscretizedLogistic)}

__all__ = ["LIKELIHOODS", "get_likelihood", "bits_per_dim", "reports_bits_per_dim", "picture", "Bernoulli", "Categorical", "NormalFixed", "Normal",
           "ContinuousBernoulli", "DiscretizedLogistic"]


def picture(lik, out):
    """Pictures in [0, 1], (B, D), of the distributions with parameters `out`: the mode where defined, else the mean."""
    return lik.to_unit(lik.mode(out) if hasattr(lik, "mode") else lik.mean(out))


def get_likelihood(name, **options):
    """The likelihood called `name` (an instance), built with its hyperparameters `options` (defaults if absent)."""
    if name not in LIKELIHOODS:
        raise MinivaeError(f"unknown likelihood {name!r}; expected one of {', '.join(LIKELIHOODS)}")
    try:
        return LIKELIHOODS[name](**options)
    except TypeError:
        accepted = ", ".join(LIKELIHOODS[name]().options()) or "none"
        raise MinivaeError(f"likelihood {name} got options {sorted(options)}; it accepts: {accepted}") from None
