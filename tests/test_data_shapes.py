"""The procedural shapes data set (minivae.data.shapes) and load_dataset("shapes"): determinism, factor ranges,
Numba kernel vs NumPy reference, visibility and anti-aliasing of every shape."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minivae.data.datasets import DATASET_NAMES, load_dataset
from minivae.data.shapes import EXTENT, SHAPE_NAMES, factor_colours, make_shapes, render, render_reference
from minivae.errors import MinivaeError

FACTOR_RANGES = {"x": (0.25, 0.75), "y": (0.25, 0.75), "scale": (0.12, 0.24), "rotation": (0.0, 2 * np.pi),
                 "hue": (0.0, 1.0), "background": (0.0, 0.4)}


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(200, seed=7)


def test_deterministic_in_the_seed(shapes):
    images, factors = make_shapes(200, seed=7)
    assert images.tobytes() == shapes[0].tobytes()
    assert all(np.array_equal(factors[k], shapes[1][k]) for k in factors)
    assert make_shapes(20, seed=8)[0].tobytes() != images[:20].tobytes()


def test_shapes_and_factor_ranges(shapes):
    images, factors = shapes
    assert images.shape == (200, 3, 64, 64) and images.dtype == np.uint8
    assert sorted(factors) == sorted([*FACTOR_RANGES, "shape"])
    assert all(v.shape == (200,) for v in factors.values())
    assert np.issubdtype(factors["shape"].dtype, np.integer)
    assert set(factors["shape"].tolist()) == set(range(len(SHAPE_NAMES))), "every shape class appears"
    for name, (low, high) in FACTOR_RANGES.items():
        assert low <= factors[name].min() and factors[name].max() <= high, name
    assert make_shapes(3, seed=0, size=32)[0].shape == (3, 3, 32, 32)


def test_every_shape_is_visible_and_antialiased(shapes):
    """Inside the disc that holds the shape many pixels differ clearly from the background, some only partly
    (edge pixels between background and colour); outside it every pixel is exactly the background."""
    images, factors = shapes
    colour, background = factor_colours(factors)
    rows, cols = np.mgrid[0:64, 0:64] + 0.5
    for n in range(len(images)):
        image, bg = images[n].astype(float), np.floor(255 * background[n] + 0.5)[:, None, None]
        r = factors["scale"][n] * 64
        distance = np.hypot(cols - factors["x"][n] * 64, rows - factors["y"][n] * 64)
        difference = np.abs(image - bg).max(axis=0)
        assert np.all(difference[distance > EXTENT * r + 1] == 0), f"image {n}: shape pixels outside its disc"
        full = np.abs(255 * colour[n] - bg[:, 0, 0]).max()  # difference of a fully covered pixel
        assert full >= 60, f"image {n}: weak contrast {full}"
        name = SHAPE_NAMES[factors["shape"][n]]
        assert np.sum(difference >= full - 1) >= 0.5 * r**2, f"image {n} ({name}): too few fully covered pixels"
        partial = (difference > 1) & (difference < full - 1)
        assert partial.sum() >= r, f"image {n}: no anti-aliased edge"


def test_kernel_matches_reference_on_generated_images(shapes):
    images, factors = shapes
    subset = {k: v[:30] for k, v in factors.items()}
    assert np.abs(render_reference(subset, 64).astype(int) - images[:30]).max() <= 1


@settings(max_examples=60, deadline=None)
@given(shape=st.integers(0, len(SHAPE_NAMES) - 1), x=st.floats(-0.2, 1.2), y=st.floats(-0.2, 1.2),
       scale=st.floats(0.01, 0.6), rotation=st.floats(-10, 10), hue=st.floats(0, 1, exclude_max=True),
       background=st.floats(0, 1), size=st.sampled_from([1, 7, 16, 33]))
def test_kernel_matches_reference(shape, x, y, scale, rotation, hue, background, size):
    """Any factors, also shapes partly or wholly outside the frame, tiny or large: kernel == reference (+-1)."""
    factors = {"shape": np.array([shape]), "x": np.array([x]), "y": np.array([y]), "scale": np.array([scale]),
               "rotation": np.array([rotation]), "hue": np.array([hue]), "background": np.array([background])}
    difference = np.abs(render(factors, size).astype(int) - render_reference(factors, size))
    worst = np.unravel_index(difference.argmax(), difference.shape)
    assert difference.max() <= 1, f"max |kernel - reference| = {difference.max()} at (image, channel, row, col) {worst}"


# --- load_dataset("shapes") and the registry --------------------------------------------------------------------


def test_load_dataset_shapes():
    data = load_dataset("shapes", seed=3, n_train=64, n_test=16)
    assert data.name == "shapes" and data.train.shape == (64, 3, 64, 64) and data.test.shape == (16, 3, 64, 64)
    assert np.array_equal(data.train_labels, data.factors["train"]["shape"])
    assert np.array_equal(data.test_labels, data.factors["test"]["shape"])
    assert not np.isin(data.factors["test"]["x"], data.factors["train"]["x"]).any(), "test is a separate draw"
    again = load_dataset("shapes", seed=3, n_train=64, n_test=16)
    assert again.train.tobytes() == data.train.tobytes() and again.test.tobytes() == data.test.tobytes()
    assert load_dataset("shapes", seed=4, n_train=64, n_test=16).train.tobytes() != data.train.tobytes()


@pytest.mark.parametrize("kwargs, match", [
    ({"n_train": 0}, "n_train=0 for shapes"),
    ({"n_test": 2.5}, "n_test=2.5 for shapes"),
    ({"n_train": True}, "n_train=True for shapes"),
])
def test_load_dataset_shapes_rejects_bad_counts(kwargs, match):
    with pytest.raises(MinivaeError, match=match):
        load_dataset("shapes", **kwargs)


def test_shapes_takes_no_data_dir(tmp_path):
    with pytest.raises(MinivaeError, match="shapes is generated and takes no data directory"):
        load_dataset("shapes", tmp_path)


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(MinivaeError, match="unknown data set 'cifar' \\(expected one of shapes, mnist, frey, "
                                           "folder\\)"):
        load_dataset("cifar")
    assert DATASET_NAMES == ("shapes", "mnist", "frey", "folder")
