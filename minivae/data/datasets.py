"""The data-set registry: a name -> train/test uint8 images (N, C, H, W).

    name     C, H, W      train / test        labels            source
    shapes   3, 64, 64    20000 / 2000        shape index       generated (shapes.py), no data_dir
    mnist    1, 28, 28    60000 / 10000       digit 0..9        data_dir with the four IDX files (idx.py)
    frey     1, 28, 20    1769 / 196          none              data_dir with frey_rawface.mat (frey.py)
    folder   1|3, S, S    ~90% / ~10%         none              data_dir with your PNG/JPEG pictures (folder.py)

Images stay raw 8-bit intensities; scaling to [0, 1] or binarising belongs to the likelihood that uses them.
`n_train` / `n_test` keep the first n images of each split.

Shapes: train is drawn from the seed sequence `SeedSequence(seed).spawn(2)[0]`, test from `[1]`, so the two splits
are independent draws (disjoint with probability 1, the factors being continuous).

Frey has no official split. Ours is fixed, independent of `seed`: a permutation of the N = 1965 faces from
`np.random.default_rng(FREY_SPLIT_SEED)`, its last N // 10 = 196 entries are the test set; each split is then sorted
so faces keep their video order. (The faces are frames of one video, so test faces have close neighbours in train.)
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minivae.data.folder import load_folder
from minivae.data.frey import read_frey
from minivae.data.idx import load_idx_dir
from minivae.data.shapes import make_shapes
from minivae.errors import MinivaeError

DATASET_NAMES = ("shapes", "mnist", "frey", "folder")
SHAPES_TRAIN, SHAPES_TEST = 20000, 2000
FREY_FILE = "frey_rawface.mat"
FREY_SPLIT_SEED = 0


@dataclass(frozen=True)
class Dataset:
    """Train and test images, uint8 (N, C, H, W) raw intensities, with optional labels and generating factors."""

    name: str
    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray | None
    test_labels: np.ndarray | None
    factors: dict | None  # shapes only: {"train": {factor: (N,)}, "test": {factor: (M,)}}


def check_count(n, default, limit, what, name):
    """The number of images to keep: `default` when n is None, else n, an integer in 1..limit (limit None: any)."""
    if n is None:
        return default
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 or (limit is not None and n > limit):
        raise MinivaeError(f"{what}={n!r} for {name} (expected a positive integer{f' <= {limit}' if limit else ''})")
    return int(n)


def load_shapes(data_dir, seed, n_train, n_test):
    if data_dir is not None:
        raise MinivaeError(f"shapes is generated and takes no data directory (got {data_dir})")
    n_train = check_count(n_train, SHAPES_TRAIN, None, "n_train", "shapes")
    n_test = check_count(n_test, SHAPES_TEST, None, "n_test", "shapes")
    train_seed, test_seed = np.random.SeedSequence(seed).spawn(2)
    train, train_factors = make_shapes(n_train, train_seed)
    test, test_factors = make_shapes(n_test, test_seed)
    return Dataset("shapes", train, test, train_factors["shape"], test_factors["shape"],
                   {"train": train_factors, "test": test_factors})


def load_mnist(data_dir, n_train, n_test):
    if data_dir is None:
        raise MinivaeError("--data-dir is required for mnist (a directory with the four IDX files)")
    train, train_labels, test, test_labels = load_idx_dir(data_dir)
    n_train = check_count(n_train, len(train), len(train), "n_train", "mnist")
    n_test = check_count(n_test, len(test), len(test), "n_test", "mnist")
    return Dataset("mnist", train[:n_train, None], test[:n_test, None], train_labels[:n_train],
                   test_labels[:n_test], None)


def frey_split(n):
    """The fixed Frey split of n faces -> (train indices, test indices), see the module docstring."""
    permutation = np.random.default_rng(FREY_SPLIT_SEED).permutation(n)
    n_test = n // 10
    return np.sort(permutation[:n - n_test]), np.sort(permutation[n - n_test:])


def load_frey(data_dir, n_train, n_test):
    if data_dir is None:
        raise MinivaeError(f"--data-dir is required for frey (a directory with {FREY_FILE})")
    path = Path(data_dir) / FREY_FILE
    if not path.is_file():
        raise MinivaeError(f"{path}: file not found (expected {FREY_FILE} in the frey data directory)")
    faces = read_frey(path)[:, None]
    if len(faces) < 10:
        raise MinivaeError(f"{path}: {len(faces)} faces are too few for a train/test split (at least 10: the test set "
                           f"is every tenth)")
    train_index, test_index = frey_split(len(faces))
    n_train = check_count(n_train, len(train_index), len(train_index), "n_train", "frey")
    n_test = check_count(n_test, len(test_index), len(test_index), "n_test", "frey")
    return Dataset("frey", faces[train_index[:n_train]], faces[test_index[:n_test]], None, None, None)


def load_dataset(name, data_dir=None, *, seed=0, n_train=None, n_test=None, quiet=True, **folder_options):
    """Load data set `name` (one of DATASET_NAMES) -> Dataset. `seed` only affects shapes; see the module docstring.
    folder only: `folder_options` (channels, image_size, test_fraction, cache_dir; None = default) and `quiet` (no
    progress bar while decoding)."""
    if name == "folder":
        return load_folder(data_dir, n_train, n_test, quiet=quiet, **folder_options)
    given = [option for option, value in folder_options.items() if value is not None]
    if given:
        raise MinivaeError(f"{', '.join(given)}: only for the folder data set, not {name}")
    if name == "shapes":
        return load_shapes(data_dir, seed, n_train, n_test)
    if name == "mnist":
        return load_mnist(data_dir, n_train, n_test)
    if name == "frey":
        return load_frey(data_dir, n_train, n_test)
    raise MinivaeError(f"unknown data set {name!r} (expected one of {', '.join(DATASET_NAMES)})")
