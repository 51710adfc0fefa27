"""One picture file -> uint8 (C, H, W) intensities: how a PNG or JPEG becomes a training image.

    open (reads the header only)
    -> refuse more than PIL.Image.MAX_IMAGE_PIXELS pixels (Pillow's decompression-bomb limit, 89 478 485 unless
       you change it) and pictures that would need more than MAX_ENLARGEMENT times enlarging (1×1 pixels, icons)
    -> JPEG only: let libjpeg decode at 1/2, 1/4 or 1/8 scale while that still leaves at least W × H pixels
    -> apply the EXIF orientation (a phone's portrait photo stands upright)
    -> 16-bit gray to 8 bits (the top byte; Pillow's own conversion would clip everything above 255 to white)
    -> transparency (RGBA, LA, palette with a transparent colour) over a white background
    -> L (ITU-R 601-2 luma) or RGB; CMYK and palette pictures convert here
    -> the largest centered box with the aspect ratio W : H, resized to W × H with Pillow's Lanczos filter

Lanczos (a = 3): Pillow widens the kernel by the shrink factor, so downscaling is antialiased, and it is the
sharpest of Pillow's filters without visible ringing on photographs; `reconstruct` shows pictures through this same
function, so a model sees a picture there exactly as in training.
A picture that cannot be used raises BadPicture with a one-line reason.
"""
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, ImageOps

SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_ENLARGEMENT = 8
SIXTEEN_BIT_GRAY = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # "I": 16-bit PNG gray in older Pillow versions


class BadPicture(Exception):
    """A picture file that cannot become a training image; the message says why in one line."""


def center_box(size, height, width):
    """(left, upper, right, lower) of the largest box centered in a `size` = (w, h) picture with aspect W : H."""
    w, h = size
    crop_w, crop_h = min(w, h * width / height), min(h, w * height / width)
    left, upper = (w - crop_w) / 2, (h - crop_h) / 2
    return left, upper, left + crop_w, upper + crop_h


def to_8bit_mode(img, channels):
    """An opened picture in any mode -> "L" (channels 1) or "RGB" (channels 3), as the module docstring says."""
    if img.mode in SIXTEEN_BIT_GRAY:
        img = Image.fromarray((np.asarray(img).astype(np.int64).clip(0, 65535) >> 8).astype(np.uint8), "L")
    if "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert("L" if channels == 1 else "RGB")


def decode_picture(path, channels, height, width):
    """The picture at `path` as uint8 (channels, height, width), see the module docstring; BadPicture if unusable."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            if Image.MAX_IMAGE_PIXELS and w * h > Image.MAX_IMAGE_PIXELS:
                raise BadPicture(f"{w}×{h} pixels, more than PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS}")
            if min(w * MAX_ENLARGEMENT / width, h * MAX_ENLARGEMENT / height) < 1:
                raise BadPicture(f"{w}×{h} pixels is too small for {width}×{height} (more than "
                                 f"{MAX_ENLARGEMENT}× enlarged)")
            if img.format == "JPEG":  # square request: the EXIF orientation may swap width and height
                img.draft(None, (max(width, height),) * 2)
            img = to_8bit_mode(ImageOps.exif_transpose(img), channels)
            img = img.resize((width, height), Image.Resampling.LANCZOS, box=center_box(img.size, height, width))
    except BadPicture:
        raise
    except Exception as e:  # Pillow's decoders raise many kinds (OSError, SyntaxError, ValueError...) for bad files
        raise BadPicture(f"{type(e).__name__}: {e}") from None
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def decode_files(paths, channels, height, width, chunk=256):
    """Yield uint8 (C, H, W), or the BadPicture, for each of `paths` in order, decoded `chunk` at a time on a
    thread per CPU (Pillow releases the GIL while it decodes and resizes; a Ctrl-C waits for one chunk at most)."""
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    def one(path):
        try:
            return decode_picture(path, channels, height, width)
        except BadPicture as e:
            return e

    # Pillow warns above MAX_IMAGE_PIXELS while opening; decode_picture refuses such a picture in one line instead.
    with warnings.catch_warnings(), ThreadPoolExecutor(workers) as pool:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for i in range(0, len(paths), chunk):
            yield from pool.map(one, paths[i:i + chunk])
