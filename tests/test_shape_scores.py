"""Reconstruction PSNR and mask IoU of shapes runs (shape_scores.py) on hand-made reconstructions."""
import math

import numpy as np
import pytest

from minivae.data.shapes import factor_colours, make_shapes
from minivae.likelihoods import get_likelihood
from minivae.shape_scores import mask_iou, psnr, shape_masks, shape_scores


class Reconstructor:
    """A stand-in VAE whose decoder returns `picture(x)` exactly: μ(x) is the image itself, the likelihood's mean
    (normal-fixed) is the decoder output."""

    def __init__(self, picture):
        self.picture, self.likelihood, self.image_shape, self.dtype = picture, get_likelihood("normal-fixed"), \
            (3, 64, 64), np.float64

    def encode(self, x):
        return x.reshape(len(x), -1), None

    def decode(self, z):
        return self.picture(z.reshape(len(z), *self.image_shape)).reshape(len(z), -1)


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(40, seed=3)


def test_perfect_reconstruction_has_infinite_psnr_and_iou_one(shapes):
    images, factors = shapes
    scores = shape_scores(Reconstructor(lambda x: x), images, factors, batch_size=16)
    assert scores == {"psnr": math.inf, "iou": 1.0}


def test_background_only_reconstruction_has_iou_zero(shapes):
    images, factors = shapes
    _, background = factor_colours(factors)
    flat = np.broadcast_to(background[:, :, None, None], images.shape)
    scores = shape_scores(Reconstructor(lambda x: flat[:len(x)]), images, factors, batch_size=40)
    assert scores["iou"] == 0.0
    assert scores["psnr"] == pytest.approx(psnr(np.mean((flat - images / 255.0) ** 2)), rel=1e-6)


def test_true_mask_is_the_drawn_shape(shapes):
    """The colour rule recovers the generator's shape: its area is that of the unit shape (1.3 .. 2.0 r²)."""
    images, factors = shapes
    colour, background = factor_colours(factors)
    area = shape_masks(images / 255.0, colour, background).sum(axis=(1, 2)) / (factors["scale"] * 64) ** 2
    assert np.all((1.2 < area) & (area < 2.1)), area


def test_iou_of_hand_made_masks():
    a = np.zeros((3, 4, 4), bool)
    b = np.zeros((3, 4, 4), bool)
    a[0, :2], b[0, 1:3] = True, True  # 4 shared of 12: 1/3
    a[1, 0, 0] = True                 # disjoint from an empty mask: 0
    np.testing.assert_allclose(mask_iou(a, b), [1 / 3, 0.0, 1.0])  # both empty: 1


def test_psnr():
    assert psnr(0.0) == math.inf
    assert psnr(0.01) == pytest.approx(20.0)
