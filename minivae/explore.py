"""Looking at what a trained VAE learned: pictures decoded from chosen points of the latent space.

    sample       decoded prior samples z ~ N(0, I): the decoder's mean (or mode), or with draw=True one x ~ p(x|z)
    interpolate  rows from one test image to another: decode((1 − t)·μ(x_a) + t·μ(x_b)), t = 0 … 1
    traverse     one row per latent dimension, sorted by its average KL over test images (most used first): the code
                 μ(x) of one test image with dimension d moved to μ_d + t, t = −span … span
    manifold     for a 2-D latent, the decoded grid over the prior's quantiles z = (Φ⁻¹(u₁), Φ⁻¹(u₂))
    reconstruct  a folder of the user's own PNG/JPEG pictures, resized to the model's input, above their
                 reconstructions decode(μ(x))

Every function takes a checkpoint (the file or its run directory), writes one PNG to `out` (None: write nothing)
and returns the pictures as an (N, C, H, W) array in [0, 1]. Decoded pictures are as pictures.py shows them (the
likelihood's mode or mean; only `sample(..., draw=True)` shows draws). The test images come from the data set the
checkpoint was trained on (`data_dir` overrides where its files are).
"""
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np

from .budget import decoding_bytes, require
from .checkpoint import load_checkpoint
from .data import load_dataset
from .data.decode import center_box
from .data.shapes import FACTOR_KINDS, scored_factors
from .errors import MinivaeError
from .factors import carried_factors
from .gaussian import gaussian_kl_per_dimension
from .images import picture_format, save_grid
from .pictures import check_images_fit, data_pictures, decode_pictures, draw_pictures, grid_scale, model_scale
from .rundir import checkpoint_file
from .settings import check, non_negative_int, optional, positive_float, positive_int, stored_settings

PICTURE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}  # read as named
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I", "F")  # Pillow's 16-bit, 32-bit integer and float gray modes


def load_model(checkpoint, out, pictures):
    """A checkpoint file or run directory -> (vae, meta, checkpoint file), once `out` names a picture format (or is
    None) and the `pictures(vae)` decoded pictures the job makes fit in memory."""
    if out is not None:
        picture_format(out)
    path = checkpoint_file(checkpoint)
    vae, _, meta = load_checkpoint(path)
    n = pictures(vae)
    require(decoding_bytes(vae.config, n), f"decoding {n} pictures")
    return vae, meta, path


def test_split(vae, meta, path, data_dir=None):
    """The data set the checkpoint's run trained on (a Dataset: its test split whole, one training image), its test
    images checked to fit `vae`."""
    s = meta.get("train") if isinstance(meta.get("train"), dict) else {}
    name = s.get("dataset")
    if name is None or name == "custom":
        raise MinivaeError("this checkpoint does not name a data set to take test images from (trained on images "
                           "passed from Python); use reconstruct with a folder of pictures instead")
    settings = stored_settings(path, meta)
    data = load_dataset(name, data_dir if data_dir is not None else settings.data_dir, seed=settings.seed,
                        n_train=1, n_test=settings.n_test, **settings.folder_options())
    check_images_fit(vae, data.test, "the checkpoint's model", f"the {name} test images")
    return data


def test_images(vae, meta, path, data_dir=None):
    """The test images (uint8 (N, C, H, W)) of the data set the checkpoint's run trained on, checked to fit `vae`."""
    return test_split(vae, meta, path, data_dir).test


def encode_mean(vae, images):
    """μ(x) of q(z|x) for images (B, C, H, W) -> (B, Z)."""
    mu, _ = vae.encode(model_scale(vae, images))
    return mu.copy()


def write(out, pictures, ncol, vae):
    if out is not None:
        save_grid(out, pictures, ncol=ncol, scale=grid_scale(vae))
    return pictures


def sample(checkpoint, out="samples.png", *, n=64, seed=0, draw=False):
    """`n` decoded prior samples z ~ N(0, I) from default_rng(seed), in a square-ish grid: the decoder's picture
    (mean or mode), or with `draw` one x ~ p(x|z) per z (drawn from the same Generator, after z)."""
    check("n", positive_int, n), check("seed", non_negative_int, seed)
    vae, _, _ = load_model(checkpoint, out, lambda vae: n)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, vae.latent))
    pictures = draw_pictures(vae, z, rng) if draw else decode_pictures(vae, z)
    return write(out, pictures, int(math.ceil(math.sqrt(n))), vae)


def interpolate(checkpoint, out="interpolate.png", *, data_dir=None, rows=6, steps=10, seed=0):
    """`rows` pairs of test images (drawn with default_rng(seed)); each row is x_a, then decode((1 − t)·μ(x_a) +
    t·μ(x_b)) for `steps` values t = 0 … 1, then x_b.  -> rows · (steps + 2) pictures."""
    check("rows", positive_int, rows), check("seed", non_negative_int, seed)
    if check("steps", positive_int, steps) < 2:
        raise MinivaeError(f"interpolate needs steps >= 2, got {steps}")
    vae, meta, path = load_model(checkpoint, out, lambda vae: rows * (steps + 2))
    images = test_images(vae, meta, path, data_dir)
    if len(images) < 2:
        raise MinivaeError("interpolate needs at least two test images")
    pick = np.random.default_rng(seed).choice(len(images), size=2 * rows, replace=len(images) < 2 * rows)
    a, b = images[pick[:rows]], images[pick[rows:]]
    mu_a, mu_b = encode_mean(vae, a), encode_mean(vae, b)
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    z = ((1 - t) * mu_a[:, None, :] + t * mu_b[:, None, :]).reshape(rows * steps, vae.latent)
    middle = decode_pictures(vae, z).reshape(rows, steps, *vae.image_shape)
    grid = np.concatenate([data_pictures(vae, a)[:, None], middle, data_pictures(vae, b)[:, None]], axis=1)
    return write(out, grid.reshape(rows * (steps + 2), *vae.image_shape), steps + 2, vae)


def mean_kl_per_dimension(vae, images, batch_size=500):
    """Average over images of KL(q(z_d|x) ‖ N(0, 1)) for each latent dimension d -> (Z,) nats.
    A dimension the encoder ignores (posterior = prior) has KL ≈ 0."""
    total = np.zeros(vae.latent)
    for i in range(0, len(images), batch_size):
        mu, logvar = vae.encode(model_scale(vae, images[i:i + batch_size]))
        total += gaussian_kl_per_dimension(mu.astype(np.float64), logvar.astype(np.float64)).sum(0)
    return total / len(images)


def traverse(checkpoint, out="traverse.png", *, data_dir=None, index=0, span=3.0, steps=11, dims=None):
    """Rows: latent dimensions in decreasing average KL (the first `dims` of them, default all); columns: the code
    μ(x) of test image `index` with that dimension set to μ_d + t, t = −span … span (`steps` values).

    On data with known factors (shapes) each row is labelled with the factor its dimension carries most, the
    largest I(μ_d; v_k) / H(v_k) over the test images (factors.py).

    -> (pictures (rows · steps, C, H, W), the dimension of each row, the average KL of each row's dimension, the
    factor of each row (None without known factors))."""
    check("index", non_negative_int, index), check("span", positive_float, span)
    if check("steps", positive_int, steps) < 2:
        raise MinivaeError(f"traverse needs steps >= 2, got {steps}")
    dims = check("dims", optional(positive_int), dims)
    vae, meta, path = load_model(checkpoint, out, lambda vae: min(dims or vae.latent, vae.latent) * steps)
    data = test_split(vae, meta, path, data_dir)
    images = data.test
    if not 0 <= index < len(images):
        raise MinivaeError(f"image index {index} is outside the {len(images)} test images")
    kl = mean_kl_per_dimension(vae, images[:500])
    order = np.argsort(-kl, kind="stable")[:dims or vae.latent]
    mu = encode_mean(vae, images[index:index + 1])[0]
    offsets = np.linspace(-span, span, steps)
    z = np.repeat(mu[None, None, :], len(order) * steps, axis=0).reshape(len(order), steps, vae.latent)
    for row, d in enumerate(order):
        z[row, :, d] += offsets
    pictures = decode_pictures(vae, z.reshape(-1, vae.latent))
    labels = None
    if data.factors is not None:
        carried = carried_factors(encode_mean(vae, images), scored_factors(data.factors["test"]), FACTOR_KINDS)
        labels = [f"z{d}: {carried[d]}" for d in order]
    if out is not None:
        save_grid(out, pictures, ncol=steps, scale=grid_scale(vae), row_labels=labels)
    return pictures, order, kl[order], labels


def manifold(checkpoint, out="manifold.png", *, n=20, low=0.05, high=0.95):
    """For a 2-D latent: an n × n grid of decode(z), z = (Φ⁻¹(u_col), Φ⁻¹(u_row)) for u evenly spaced in
    [low, high], so equal areas of prior mass get equal room; z₂ grows upwards, as in the Keras VAE example."""
    if check("n", positive_int, n) < 2 or not 0 < low < high < 1:
        raise MinivaeError(f"manifold needs n >= 2 and 0 < low < high < 1, got n={n}, low={low}, high={high}")
    vae, _, _ = load_model(checkpoint, out, lambda vae: n * n)
    if vae.latent != 2:
        raise MinivaeError(f"manifold draws a 2-D latent space; this model's latent size is {vae.latent} "
                           f"(train one with --latent 2)")
    q = np.array([NormalDist().inv_cdf(u) for u in np.linspace(low, high, n)])
    z1, z2 = np.meshgrid(q, q[::-1])
    z = np.stack([z1.ravel(), z2.ravel()], axis=1)
    return write(out, decode_pictures(vae, z), n, vae)


def picture_values(img, path):
    """A Pillow image of 16-bit or float values -> float64 (H, W) intensities in [0, 1], scaled, not clipped:
    16-bit by 65535, float as it is (it must lie in [0, 1])."""
    a = np.asarray(img, dtype=np.float64)
    if img.mode == "F":
        if not (np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1):
            raise MinivaeError(f"{path}: float picture with values in [{a.min()}, {a.max()}] (expected [0, 1])")
        return a
    if a.min() < 0 or a.max() > 65535:
        raise MinivaeError(f"{path}: {img.mode} picture with values in [{a.min():g}, {a.max():g}] (expected 16-bit)")
    return a / 65535


def read_picture(path, C, H, W):
    """One picture file -> uint8 (C, H, W): in the format its extension names, turned upright by its EXIF
    orientation, converted to gray (C = 1) or RGB (C = 3), its centered H : W box resized with Lanczos (cropped as
    training on a folder crops, data/decode.py). 16-bit and float pictures (gray only in Pillow) are scaled to 8
    bits after resizing, so nothing is clipped."""
    from PIL import Image, ImageOps

    with Image.open(path, formats=[PICTURE_FORMATS[path.suffix.lower()]]) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in HIGH_DEPTH_MODES:
            small = Image.fromarray(picture_values(img, path).astype(np.float32), "F").resize(
                (W, H), Image.Resampling.LANCZOS, box=center_box(img.size, H, W))
            gray = np.rint(np.clip(np.asarray(small), 0, 1) * 255).astype(np.uint8)  # clip: Lanczos overshoot only
            return np.repeat(gray[None], C, axis=0)
        a = np.asarray(img.convert("L" if C == 1 else "RGB").resize((W, H), Image.Resampling.LANCZOS,
                                                                    box=center_box(img.size, H, W)), dtype=np.uint8)
    return a[None] if C == 1 else a.transpose(2, 0, 1)


def read_pictures(folder, shape, limit=None):
    """The picture files of `folder` (.png, .jpg, .jpeg, .tif, .tiff; sorted by name) as the model's input -> (uint8
    (N, C, H, W), their paths); see read_picture."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    if not folder.is_dir():
        raise MinivaeError(f"{folder}: no such directory (expected a folder of PNG or JPEG pictures)")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in PICTURE_FORMATS and p.is_file())[:limit]
    if not paths:
        raise MinivaeError(f"{folder}: no {', '.join(PICTURE_FORMATS)} files")
    C, H, W = shape
    if C not in (1, 3):
        raise MinivaeError(f"the model takes {C}-channel images; pictures can become 1 (gray) or 3 (RGB) channels")
    out = np.empty((len(paths), C, H, W), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            out[i] = read_picture(path, C, H, W)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise MinivaeError(f"{path}: not a readable picture (a {PICTURE_FORMATS[path.suffix.lower()]} file by its "
                               f"extension; {type(e).__name__}: {e})") from None
    return out, paths


def reconstruct(checkpoint, data_dir, out="reconstruct.png", *, limit=64, ncol=8):
    """Your own pictures (a folder of PNG/JPEG, at most `limit`), resized to the model's input, in rows of `ncol`
    with each row of originals above the row of their reconstructions decode(μ(x))."""
    check("limit", positive_int, limit), check("ncol", positive_int, ncol)
    vae, _, _ = load_model(checkpoint, out, lambda vae: 2 * (limit + ncol))
    images, _ = read_pictures(data_dir, vae.image_shape, limit)
    check_images_fit(vae, images, "the checkpoint's model", f"the pictures of {data_dir}")
    originals = data_pictures(vae, images)
    recon = decode_pictures(vae, encode_mean(vae, images))
    rows = []
    for i in range(0, len(images), ncol):
        pad = ncol - len(originals[i:i + ncol])
        blank = np.ones((pad, *vae.image_shape))
        rows += [originals[i:i + ncol], blank, recon[i:i + ncol], blank]
    return write(out, np.concatenate(rows), ncol, vae)
