"""Image grids with Pillow: a batch of pictures in [0, 1] laid out in rows, written atomically (files.py)."""
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import MinivaeError
from .files import atomic_write


def grid(images, ncol, pad=2):
    """(N, C, H, W) values in [0, 1] (C = 1 or 3) -> a uint8 (rows·(H+pad)+pad, ncol·(W+pad)+pad, C) mosaic."""
    N, C, H, W = images.shape
    nrow = -(-N // ncol)
    canvas = np.full((nrow * (H + pad) + pad, ncol * (W + pad) + pad, C), 255, dtype=np.uint8)
    pixels = np.clip(np.rint(images * 255), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for i in range(N):
        r, c = divmod(i, ncol)
        canvas[pad + r * (H + pad):pad + r * (H + pad) + H, pad + c * (W + pad):pad + c * (W + pad) + W] = pixels[i]
    return canvas


def picture_format(path):
    """The Pillow format that writes `path`, named by its extension (.png, .jpg, ...); MinivaeError for a path whose
    extension names no picture format Pillow can write, so a job checks its output before doing the work."""
    Image.init()
    suffix = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise MinivaeError(f"{path}: the extension {suffix or '(none)'!r} names no picture format to write "
                           f"(use .png, .jpg, ...)")
    return fmt


def save_image(path, img):
    """Write the Pillow image `img` to `path` in the format its extension names, atomically (files.atomic_write)."""
    buffer, fmt = io.BytesIO(), picture_format(path)
    try:
        img.save(buffer, format=fmt)
    except OSError as e:  # the encoder's own failures
        raise MinivaeError(f"cannot write {path}: {e.strerror or e}") from None
    atomic_write(path, buffer.getbuffer())


def save_grid(path, images, ncol, scale=1, row_labels=None):
    """Write `grid(images, ncol)` to `path`, each pixel enlarged `scale` times (nearest neighbour), with
    `row_labels` (one string a row) written in a margin on the left.

    A failed write (no such directory, not writable, disk full) raises MinivaeError naming the file."""
    canvas = grid(images, ncol)
    img = Image.fromarray(canvas[:, :, 0] if canvas.shape[2] == 1 else canvas)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    if row_labels:
        font = ImageFont.load_default()
        margin = 8 + max(int(ImageDraw.Draw(img).textlength(label, font=font)) for label in row_labels)
        labelled = Image.new(img.mode, (img.width + margin, img.height), 255 if img.mode == "L" else (255, 255, 255))
        labelled.paste(img, (margin, 0))
        draw, row_height = ImageDraw.Draw(labelled), (images.shape[2] + 2) * scale
        for r, label in enumerate(row_labels):
            draw.text((4, 2 * scale + r * row_height + row_height // 2 - 6), label, fill=0, font=font)
        img = labelled
    save_image(path, img)
