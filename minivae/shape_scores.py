"""Did it learn the shapes? Two scores of the reconstructions decode(μ(x)) of shapes images (data/shapes.py).

For a picture y and its reconstruction ŷ, both (C, H, W) in [0, 1]:

    PSNR   = 10 log10(1 / MSE),   MSE = mean over every pixel and channel of the set of (ŷ − y)²   (dB; ∞ if MSE = 0)

The shape's mask in a picture: pixel p belongs to the shape when its colour is nearer the shape's colour c than the
background's colour g (the generator knows both for each image, `factor_colours`), in Euclidean RGB distance:

    mask(y)_p = ‖y_p − c‖² < ‖y_p − g‖²
    IoU       = |mask(y) ∧ mask(ŷ)| / |mask(y) ∨ mask(ŷ)|       per image (1 when both masks are empty),

averaged over the images. A blob in the right place and colour scores a middling IoU; only the right outline scores
near 1; a reconstruction of the background alone scores 0.
"""
import math

import numpy as np

from .data.shapes import factor_colours
from .pictures import data_pictures, decode_pictures, model_scale


def psnr(mse):
    """10 log10(1 / MSE) dB for pictures in [0, 1]; math.inf for a perfect reconstruction (MSE = 0)."""
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def shape_masks(pictures, colour, background):
    """(N, 3, H, W) pictures in [0, 1], (N, 3) shape and background colours -> (N, H, W) bool: nearer the shape's."""
    to_shape = np.sum((pictures - colour[:, :, None, None]) ** 2, axis=1)
    to_background = np.sum((pictures - background[:, :, None, None]) ** 2, axis=1)
    return to_shape < to_background


def mask_iou(masks, true_masks):
    """Per-image IoU of two (N, H, W) boolean masks -> (N,), 1 where both are empty."""
    union = np.sum(masks | true_masks, axis=(1, 2))
    return np.where(union == 0, 1.0, np.sum(masks & true_masks, axis=(1, 2)) / np.maximum(union, 1))


def shape_scores(vae, images, factors, batch_size=500):
    """{"psnr": dB, "iou": mean mask IoU} of the reconstructions decode(μ(x)) of shapes `images` (uint8 (N, 3, H, W))
    generated from `factors` (dict of (N,) arrays)."""
    colour, background = factor_colours(factors)
    squared, ious = 0.0, []
    for i in range(0, len(images), batch_size):
        batch = images[i:i + batch_size]
        truth = data_pictures(vae, batch).astype(np.float64)
        mu, _ = vae.encode(model_scale(vae, batch))
        rec = decode_pictures(vae, mu).astype(np.float64)
        squared += float(np.sum((rec - truth) ** 2))
        part = slice(i, i + len(batch))
        ious.append(mask_iou(shape_masks(rec, colour[part], background[part]),
                             shape_masks(truth, colour[part], background[part])))
    return {"psnr": psnr(squared / images.size), "iou": float(np.mean(np.concatenate(ious)))}
