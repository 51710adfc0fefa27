"""From data and decoder outputs to pictures in [0, 1], the one place that decides how a model's output is shown.

A decoded picture is the likelihood's mode where it has one (categorical: the most probable level is sharper than a
mean over 256 levels), else its mean (e.g. σ(logits) for Bernoulli) — never a sample, so pictures are not speckled.
"""
import numpy as np

from .likelihoods import picture


def model_scale(vae, images):
    """Images as the likelihood models them: uint8 intensities through `from_uint8`; floats are taken as they are."""
    if images.dtype == np.uint8:
        return vae.likelihood.from_uint8(images, dtype=vae.dtype)
    return images.astype(vae.dtype)


def decode_pictures(vae, z):
    """Latent codes (B, Z) -> decoded pictures (B, C, H, W) in [0, 1]."""
    out = vae.decode(z.astype(vae.dtype))
    return np.clip(picture(vae.likelihood, out), 0, 1).reshape(len(z), *vae.image_shape)


def data_pictures(vae, images):
    """uint8 (or model-scale float) images -> pictures in [0, 1]."""
    return np.clip(vae.likelihood.to_unit(model_scale(vae, images)), 0, 1).reshape(len(images), *vae.image_shape)


def grid_scale(vae):
    """Pixel enlargement for grids: MNIST-sized pictures twice, 64 × 64 ones as they are."""
    return 2 if max(vae.image_shape[1:]) <= 32 else 1
