"""What every likelihood shares: the data-support checks, the 8-bit grid, bits per dimension.

All likelihoods see an image as the same floats, the 8-bit intensity i ∈ {0, …, 255} divided by 255, so the encoder
gets the same input whatever the decoder's distribution. They differ in which of those values they accept:

    [0, 1]                 bernoulli (a mass only on {0, 1}), continuous-bernoulli, normal-fixed, normal
    {0, 1/255, …, 1}       categorical, discretized-logistic: the 256 levels i/255, nothing in between

`check_*` raise MinivaeError with one line saying what was wrong and what was expected, so that raw 0..255 values,
integers, NaN or dequantized (off-grid) data fail loudly instead of producing a silent NaN or a meaningless number.
"""
import numpy as np

from ..errors import MinivaeError

LEVELS = 256  # 8-bit intensities 0..255
GRID_TOLERANCE = 1e-3  # |255·x − round(255·x)| allowed for a value to count as on the grid (float32 keeps ~3e-5)


def bits_per_dim(nll_nats, D):
    """Negative log-likelihood in nats per example -> bits per data value: nll / (D · ln 2)."""
    return np.asarray(nll_nats) / (D * np.log(2.0))


def reports_bits_per_dim(likelihood, binarized):
    """Whether log p is a probability mass, so that bits/dim mean something: a discrete likelihood, and for the
    Bernoulli only on binarized data (on grayscale data its log p is a cross-entropy)."""
    return likelihood.discrete and (binarized or likelihood.name != "bernoulli")


def unit_from_uint8(images, dtype):
    """8-bit intensities 0..255 (any integer array) -> floats i/255 in [0, 1] of `dtype`."""
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.integer):
        raise MinivaeError(f"from_uint8 needs integer 8-bit intensities 0..255, got dtype {images.dtype}")
    if images.size and (np.min(images) < 0 or np.max(images) > LEVELS - 1):
        raise MinivaeError(f"from_uint8 needs intensities in 0..255, got values in [{np.min(images)}, {np.max(images)}]")
    return images.astype(dtype) / np.asarray(LEVELS - 1, dtype=dtype)


def check_float(name, x):
    if not np.issubdtype(np.asarray(x).dtype, np.floating):
        raise MinivaeError(f"{name} likelihood needs floating-point data (use its from_uint8), got dtype {x.dtype}")
    if x.size and not np.all(np.isfinite(x)):
        raise MinivaeError(f"{name} likelihood needs finite data, got {np.sum(~np.isfinite(x))} NaN/inf values")


def check_unit_interval(name, x):
    """x must be floats in [0, 1]."""
    check_float(name, x)
    if x.size and (np.min(x) < 0 or np.max(x) > 1):
        raise MinivaeError(f"{name} likelihood needs data in [0, 1] (8-bit images / 255, see from_uint8), got values "
                           f"in [{np.min(x):.4g}, {np.max(x):.4g}]")


def check_8bit_grid(name, x):
    """x must be one of the 256 levels i/255, i = 0..255 (as from_uint8 makes them)."""
    check_unit_interval(name, x)
    if x.size:
        off = np.abs(x * (LEVELS - 1) - np.rint(x * (LEVELS - 1)))
        if np.max(off) > GRID_TOLERANCE:
            bad = x.reshape(-1)[np.argmax(off)]
            raise MinivaeError(f"{name} likelihood needs 8-bit levels i/255 (a probability mass over 256 values), got "
                               f"{bad:.6g} = {bad * 255:.4g}/255, off the grid")


def level_index(x):
    """Data i/255 -> the integer level i (int64), rounding away float32's representation error."""
    return np.rint(np.asarray(x, dtype=np.float64) * (LEVELS - 1)).astype(np.int64)


class Likelihood:
    """What every likelihood shares: data are 8-bit images as i/255 (`from_uint8`), checked to lie in [0, 1]
    (`check_data`; the 8-bit likelihoods narrow it to the 256 levels), no hyperparameters (`options`) unless a
    subclass has some, and the calls into its math. A subclass names its NumPy reference `log_prob_fn(out, x, *args)`
    and `log_prob_backward_fn(out, x, *args)`, its Numba `nll_kernel(out, x, *args, scale, nll, dout)`, and the
    extra arguments `args()` (its hyperparameters in the form the formulas take)."""

    def options(self):
        return {}

    def args(self):
        return ()

    def log_prob(self, out, x):
        """log p(x|out) in nats, summed over the D values.   out: (B, k·D), x: (B, D) -> (B,)."""
        return self.log_prob_fn(out, x, *self.args())

    def log_prob_backward(self, out, x):
        """∂ log p(x|out) / ∂out, per example.   -> (B, k·D)."""
        return self.log_prob_backward_fn(out, x, *self.args())

    def reference_nll_and_grad(self, out, x, scale):
        """(−log p(x|out) (B,), scale · ∂(−log p)/∂out (B, k·D)) from `log_prob` and `log_prob_backward`."""
        return (-self.log_prob(out, x)).astype(out.dtype), (-scale * self.log_prob_backward(out, x)).astype(out.dtype)

    def nll_and_grad(self, out, x, scale):
        """`reference_nll_and_grad` in one pass of the Numba `nll_kernel`."""
        nll, dout = np.empty(out.shape[0], dtype=out.dtype), np.empty_like(out)
        self.nll_kernel(out, x, *self.args(), scale, nll, dout)
        return nll, dout

    def output_offset(self):
        """Added to the decoder's last bias at initialization, one value per block of outputs (k,): where the
        network's zero output is a poor first distribution. Zeros by default."""
        return np.zeros(self.outputs_per_value)

    def check_data(self, x):
        check_unit_interval(self.name, x)

    def from_uint8(self, images, dtype=np.float32):
        """8-bit intensities i -> i/255 in [0, 1]."""
        return unit_from_uint8(images, dtype)
