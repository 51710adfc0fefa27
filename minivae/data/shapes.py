"""Shapes: the built-in data set of 64 x 64 RGB images, generated procedurally (no files needed).

Each image is one coloured shape on a grey background. It is a function of seven factors, drawn independently with a
seeded `numpy.random.Generator` (ranges chosen so every shape is clearly visible and mostly inside the frame):

    shape       integer index into SHAPE_NAMES, uniform
    x, y        centre, as a fraction of the image width / height (y grows downwards), uniform in [0.25, 0.75]
    scale       shape radius r as a fraction of the image side, uniform in [0.12, 0.24] (r = 7.7 .. 15.4 px at 64)
    rotation    radians, uniform in [0, 2 pi)
    hue         shape colour = HSV(hue, SATURATION, VALUE), hue uniform in [0, 1)
    background  grey level of the background, uniform in [0, 0.4] (the shape's brightest channel is VALUE = 1)

Geometry. A sample point p (pixel units) is mapped to the shape's unit frame by (a, b) = R(-rotation) (p - c) / r,
c = (x, y) * size, r = scale * size, and tested against the unit shape:

    square      max(|a|, |b|) <= 0.7
    ellipse     a^2 + (b / 0.6)^2 <= 1
    triangle    equilateral, apex up, circumradius 1.2: n_k . (a, b) <= 0.6 for the three edge normals n_k
    cross       (|a| <= 0.3 and |b| <= 0.9) or (|a| <= 0.9 and |b| <= 0.3)

(all have areas within 1.3 .. 2.0 r^2 and lie inside the disc of radius EXTENT = 1.2 r).

Anti-aliasing. Pixel (i, j) covers [j, j+1] x [i, i+1]; it is sampled on a SUPERSAMPLING x SUPERSAMPLING grid at
((j S + s + 1/2) / S, (i S + t + 1/2) / S). With coverage = (samples inside) / S^2, each channel is

    value = background + coverage * (colour - background),   pixel = floor(255 value + 1/2)   (uint8).

`render_reference` is this specification in plain NumPy; `render_kernel` is the same in Numba, parallel over
images, visiting only the pixels whose square can meet the disc of radius EXTENT r (the rest are background).
"""

import numpy as np
from numba import njit, prange

SHAPE_NAMES = ("square", "ellipse", "triangle", "cross")
SQUARE, ELLIPSE, TRIANGLE, CROSS = range(len(SHAPE_NAMES))

SUPERSAMPLING = 4
EXTENT = 1.2  # radius, in units of r, of a disc that holds every unit shape
SQUARE_HALF_SIDE = 0.7
ELLIPSE_MINOR = 0.6  # semi-axes 1 and 0.6, so rotation changes the image
TRIANGLE_INRADIUS = 0.6  # circumradius 1.2
TRIANGLE_NORMALS = np.array([[np.cos(t), np.sin(t)] for t in np.pi / 2 + 2 * np.pi / 3 * np.arange(3)])
CROSS_HALF_LENGTH, CROSS_HALF_WIDTH = 0.9, 0.3
SATURATION, VALUE = 0.8, 1.0
ROTATION_SYMMETRY = (4, 2, 3, 4)  # each shape looks the same turned by 2π/k: square, ellipse, triangle, cross
FACTOR_KINDS = {"shape": "categorical", "x": "continuous", "y": "continuous", "scale": "continuous",
                "rotation": "angular", "hue": "angular", "background": "continuous"}  # as factors.py scores them


def draw_factors(n, rng):
    """Draw n sets of factors with the Generator `rng` -> dict of (n,) arrays (ranges in the module docstring)."""
    return {
        "shape": rng.integers(0, len(SHAPE_NAMES), n),
        "x": rng.uniform(0.25, 0.75, n),
        "y": rng.uniform(0.25, 0.75, n),
        "scale": rng.uniform(0.12, 0.24, n),
        "rotation": rng.uniform(0.0, 2 * np.pi, n),
        "hue": rng.uniform(0.0, 1.0, n),
        "background": rng.uniform(0.0, 0.4, n),
    }


def factor_colours(factors):
    """Factors -> (colour, background), both (n, 3) RGB in [0, 1].

    colour = HSV(hue, SATURATION, VALUE) -> RGB by channel_m = V - V S clip(min(k, 4 - k), 0, 1),
    k = (m + 6 hue) mod 6 with m = 5, 3, 1 for R, G, B.
    """
    k = (np.array([5.0, 3.0, 1.0]) + 6.0 * factors["hue"][:, None]) % 6.0
    colour = VALUE - VALUE * SATURATION * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    background = np.repeat(factors["background"][:, None], 3, axis=1)
    return colour, background


def scored_factors(factors):
    """The factors as an image shows them, for factors.py: hue as the angle 2π·hue, rotation as the angle
    k·rotation mod 2π for a shape of k-fold symmetry (rotations that draw the same image get the same angle)."""
    k = np.asarray(ROTATION_SYMMETRY)[factors["shape"]]
    return {**factors, "hue": 2 * np.pi * factors["hue"], "rotation": np.mod(k * factors["rotation"], 2 * np.pi)}


def inside_unit_shape(shape, a, b):
    """Boolean mask of the points (a, b) (arrays, unit frame) inside unit shape number `shape`."""
    if shape == SQUARE:
        return np.maximum(np.abs(a), np.abs(b)) <= SQUARE_HALF_SIDE
    if shape == ELLIPSE:
        return a**2 + (b / ELLIPSE_MINOR) ** 2 <= 1.0
    if shape == TRIANGLE:
        return np.max([nx * a + ny * b for nx, ny in TRIANGLE_NORMALS], axis=0) <= TRIANGLE_INRADIUS
    a, b = np.abs(a), np.abs(b)
    return (a <= CROSS_HALF_WIDTH) & (b <= CROSS_HALF_LENGTH) | (a <= CROSS_HALF_LENGTH) & (b <= CROSS_HALF_WIDTH)


def render_reference(factors, size):
    """The specification: factors (dict of (n,) arrays) -> uint8 images (n, 3, size, size), one image at a time."""
    colour, background = factor_colours(factors)
    S = SUPERSAMPLING
    samples = (np.arange(size * S) + 0.5) / S  # sample coordinate (j S + s + 1/2) / S along one axis
    px, py = np.meshgrid(samples, samples)  # px varies along columns (x), py along rows (y)
    images = np.empty((len(factors["shape"]), 3, size, size), np.uint8)
    for n in range(len(images)):
        r = factors["scale"][n] * size
        cos_r, sin_r = np.cos(factors["rotation"][n]) / r, np.sin(factors["rotation"][n]) / r  # R(-rotation) / r
        dx, dy = px - factors["x"][n] * size, py - factors["y"][n] * size
        a, b = cos_r * dx + sin_r * dy, -sin_r * dx + cos_r * dy
        inside = inside_unit_shape(factors["shape"][n], a, b)
        coverage = inside.reshape(size, S, size, S).sum(axis=(1, 3)) / S**2
        value = background[n, :, None, None] + coverage * (colour[n] - background[n])[:, None, None]
        images[n] = np.floor(255.0 * value + 0.5)
    return images


@njit(cache=True)
def inside_unit_shape_scalar(shape, a, b):
    """`inside_unit_shape` for one point."""
    if shape == SQUARE:
        return max(abs(a), abs(b)) <= SQUARE_HALF_SIDE
    if shape == ELLIPSE:
        return a * a + (b / ELLIPSE_MINOR) ** 2 <= 1.0
    if shape == TRIANGLE:
        for k in range(3):
            if TRIANGLE_NORMALS[k, 0] * a + TRIANGLE_NORMALS[k, 1] * b > TRIANGLE_INRADIUS:
                return False
        return True
    return ((abs(a) <= CROSS_HALF_WIDTH and abs(b) <= CROSS_HALF_LENGTH)
            or (abs(a) <= CROSS_HALF_LENGTH and abs(b) <= CROSS_HALF_WIDTH))


@njit(cache=True, parallel=True)
def render_kernel(shape, x, y, scale, rotation, colour, background, size):
    """`render_reference` in Numba: (n,) factor arrays, colour/background (n, 3) -> uint8 (n, 3, size, size)."""
    n = shape.shape[0]
    S = SUPERSAMPLING
    images = np.empty((n, 3, size, size), np.uint8)
    for m in prange(n):
        for c in range(3):
            images[m, c] = np.uint8(np.floor(255.0 * background[m, c] + 0.5))
        r = scale[m] * size
        cos_r, sin_r = np.cos(rotation[m]) / r, np.sin(rotation[m]) / r
        cx, cy = x[m] * size, y[m] * size
        # only pixels [i, i+1] x [j, j+1] that can meet the disc of radius EXTENT r around (cx, cy): those whose
        # centre is within EXTENT r + sqrt(2)/2 (the half diagonal) of it, inside this bounding box
        reach = EXTENT * r + np.sqrt(0.5)
        i0, i1 = max(0, int(np.floor(cy - EXTENT * r))), min(size - 1, int(np.floor(cy + EXTENT * r)))
        j0, j1 = max(0, int(np.floor(cx - EXTENT * r))), min(size - 1, int(np.floor(cx + EXTENT * r)))
        for i in range(i0, i1 + 1):
            for j in range(j0, j1 + 1):
                if (i + 0.5 - cy) ** 2 + (j + 0.5 - cx) ** 2 > reach * reach:
                    continue
                count = 0
                for t in range(S):
                    dy = (i * S + t + 0.5) / S - cy
                    for s in range(S):
                        dx = (j * S + s + 0.5) / S - cx
                        if inside_unit_shape_scalar(shape[m], cos_r * dx + sin_r * dy, -sin_r * dx + cos_r * dy):
                            count += 1
                coverage = count / S**2
                for c in range(3):
                    value = background[m, c] + coverage * (colour[m, c] - background[m, c])
                    images[m, c, i, j] = np.uint8(np.floor(255.0 * value + 0.5))
    return images


def render(factors, size):
    """Factors -> uint8 images (n, 3, size, size) with the Numba kernel."""
    colour, background = factor_colours(factors)
    return render_kernel(factors["shape"], factors["x"], factors["y"], factors["scale"], factors["rotation"],
                         colour, background, size)


def make_shapes(n, seed, size=64):
    """n shape images -> (images uint8 (n, 3, size, size), factors dict of (n,) arrays).

    Deterministic in `seed` (anything `np.random.default_rng` takes): all factors are drawn first, then rendered.
    """
    factors = draw_factors(n, np.random.default_rng(seed))
    return render(factors, size), factors
