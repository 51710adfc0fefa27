"""Data sets: raw uint8 images (N, C, H, W) with a train/test split, loaded by name.

    datasets.py   the registry: load_dataset(name, data_dir) -> Dataset
    shapes.py     the built-in procedurally generated 64 x 64 RGB shapes
    idx.py        IDX files (MNIST, Fashion-MNIST, KMNIST)
    download.py   fetching the MNIST files
    frey.py       Frey faces from frey_rawface.mat (MATLAB 5 MAT-file)
    folder.py     a folder of your own PNG/JPEG pictures, split by a hash of each path
    decode.py     one picture file -> uint8 (C, H, W): orientation, mode, crop, resize; bad pictures
    cache.py      the decoded pictures of a folder, a memory-mapped .npy kept up to date
    mapped.py     MappedImages: a split's rows of the memory map, read a batch at a time
"""

from minivae.data.datasets import DATASET_NAMES, Dataset, load_dataset
from minivae.data.download import download_mnist
from minivae.data.frey import read_frey
from minivae.data.idx import load_idx_dir, read_idx
from minivae.data.shapes import SHAPE_NAMES, make_shapes

__all__ = ["DATASET_NAMES", "SHAPE_NAMES", "Dataset", "download_mnist", "load_dataset", "load_idx_dir", "make_shapes",
           "read_frey", "read_idx"]
