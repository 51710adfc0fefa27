"""A folder of your own pictures as a data set: every PNG/JPEG under it, square, decoded once and memory-mapped.

    load_folder(data_dir, channels=3, image_size=64, test_fraction=0.1, cache_dir=None) -> Dataset

Pictures are taken recursively in the order of their relative paths and made uint8 (C, S, S) by decode.py (EXIF
orientation, gray or RGB, center crop, Lanczos resize to S × S); pictures that cannot be read are skipped, one line
each on stderr and a count. The decoded pictures live in a cache (cache.py; default
$XDG_CACHE_HOME/minivae/<folder>-<hash>, else ~/.cache/...), and train and test are MappedImages over its memory map,
so a set larger than memory trains reading one batch at a time.

Held-out split: a picture is a test picture when u < test_fraction, u = the first 8 bytes of
SHA-256(SPLIT_KEY + its relative path, NFC) read as an integer / 2⁶⁴. A picture's side depends on its own path
only, so adding or removing pictures never moves another one across, and a larger fraction only adds test pictures.
The key is fixed (not --seed), so runs with different seeds are compared on the same test pictures.
"""
import hashlib
import sys
import unicodedata

import numpy as np

from ..errors import MinivaeError
from .cache import open_cache
from .mapped import MappedImages

SPLIT_KEY = "minivae-split-0:"
FOLDER_DEFAULTS = {"channels": 3, "image_size": 64, "test_fraction": 0.1, "cache_dir": None}


def split_fraction(rel_path):
    """The picture's place u in [0, 1): SHA-256 of SPLIT_KEY + path (NFC, so macOS and Linux copies agree)."""
    key = (SPLIT_KEY + unicodedata.normalize("NFC", rel_path)).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2 ** 64


def is_test(rel_paths, test_fraction):
    """Boolean mask: which of `rel_paths` belong to the test split."""
    return np.array([split_fraction(p) < test_fraction for p in rel_paths], dtype=bool)


def check_folder_options(channels, image_size, test_fraction):
    if channels not in (1, 3):
        raise MinivaeError(f"channels must be 1 (gray) or 3 (RGB), got {channels!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise MinivaeError(f"image_size must be a positive integer, got {image_size!r}")
    if not (isinstance(test_fraction, float | int) and 0 < test_fraction < 1):
        raise MinivaeError(f"test_fraction must be a number between 0 and 1 (exclusive), got {test_fraction!r}")


def load_folder(data_dir, n_train=None, n_test=None, *, channels=None, image_size=None, test_fraction=None,
                cache_dir=None, quiet=False):
    """Your pictures in `data_dir` -> Dataset("folder", train, test) of MappedImages (N, C, S, S), the first
    n_train / n_test of each split; unset options take FOLDER_DEFAULTS; see the module docstring.
    MinivaeError when no picture is usable or a split would be empty."""
    from .datasets import Dataset, check_count  # datasets.py registers this loader

    if data_dir is None:
        raise MinivaeError("--data-dir is required for folder (a folder of PNG or JPEG pictures, searched "
                           "recursively)")
    channels = FOLDER_DEFAULTS["channels"] if channels is None else channels
    image_size = FOLDER_DEFAULTS["image_size"] if image_size is None else image_size
    test_fraction = FOLDER_DEFAULTS["test_fraction"] if test_fraction is None else test_fraction
    check_folder_options(channels, image_size, test_fraction)
    images, rows, paths, skipped = open_cache(data_dir, cache_dir, (channels, image_size, image_size), quiet)
    if skipped:
        print(f"minivae: {len(skipped)} of {len(paths) + len(skipped)} files in {data_dir} are not usable pictures "
              f"and are left out", file=sys.stderr)
    if not paths:
        raise MinivaeError(f"{data_dir}: none of its {len(skipped)} .png/.jpg/.jpeg files is a readable picture "
                           f"(first: {skipped[0][0]}: {skipped[0][1]})")
    test = is_test(paths, test_fraction)
    if test.all() or not test.any():
        raise MinivaeError(f"{data_dir}: {len(paths)} pictures leave the {'train' if test.all() else 'test'} split "
                           f"empty with test fraction {test_fraction}; add pictures or change --test-fraction")
    train_rows, test_rows = rows[~test], rows[test]
    n_train = check_count(n_train, len(train_rows), len(train_rows), "n_train", "folder")
    n_test = check_count(n_test, len(test_rows), len(test_rows), "n_test", "folder")
    return Dataset("folder", MappedImages(images, train_rows[:n_train]), MappedImages(images, test_rows[:n_test]),
                   None, None, None)
