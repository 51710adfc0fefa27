"""From data and decoder outputs to pictures in [0, 1], the one place that decides how a model's output is shown.

A decoded picture is the likelihood's mode where it has one (categorical: the most probable level is sharper than a
mean over 256 levels), else its mean (e.g. σ(logits) for Bernoulli); `draw_pictures` shows draws x ~ p(x|z) instead,
the randomness the model puts at its output.
"""
import numpy as np

from .errors import MinivaeError
from .likelihoods import picture


def model_scale(vae, images):
    """Images as the likelihood models them: uint8 intensities through `from_uint8`; floats are taken as they are."""
    if images.dtype == np.uint8:
        return vae.likelihood.from_uint8(images, dtype=vae.dtype)
    return images.astype(vae.dtype)


def check_images_fit(vae, images, model, what):
    """MinivaeError unless `images` (N, C, H, W) have the model's (C, H, W) and every value lies in its likelihood's
    support; `model` and `what` name the two in the message."""
    if tuple(images.shape[1:]) != tuple(vae.image_shape):
        raise MinivaeError(f"{model} takes images of shape {tuple(vae.image_shape)} (C, H, W), but {what} have "
                           f"{tuple(images.shape[1:])}")
    # uint8 -> floats is elementwise, so all 256 possible values cover any uint8 images without reading them (a
    # memory-mapped set stays on disk).
    values = np.arange(256, dtype=np.uint8) if images.dtype == np.uint8 else images
    try:
        vae.likelihood.check_data(model_scale(vae, values))
    except MinivaeError as e:
        raise MinivaeError(f"{what}: {e}") from None


def decode_pictures(vae, z):
    """Latent codes (B, Z) -> decoded pictures (B, C, H, W) in [0, 1]."""
    out = vae.decode(z.astype(vae.dtype))
    return np.clip(picture(vae.likelihood, out), 0, 1).reshape(len(z), *vae.image_shape)


def draw_pictures(vae, z, rng):
    """Latent codes (B, Z) -> one draw x ~ p(x|z) each, as pictures (B, C, H, W) in [0, 1] (clipped where the
    distribution reaches beyond, e.g. a Normal's tails)."""
    out = vae.decode(z.astype(vae.dtype))
    return np.clip(vae.likelihood.to_unit(vae.likelihood.sample(out, rng)), 0, 1).reshape(len(z), *vae.image_shape)


def data_pictures(vae, images):
    """uint8 (or model-scale float) images -> pictures in [0, 1]."""
    return np.clip(vae.likelihood.to_unit(model_scale(vae, images)), 0, 1).reshape(len(images), *vae.image_shape)


def grid_scale(vae):
    """Pixel enlargement for grids: MNIST-sized pictures twice, 64 × 64 ones as they are."""
    return 2 if max(vae.image_shape[1:]) <= 32 else 1
