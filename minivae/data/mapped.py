"""Some rows of a memory-mapped array, read only when indexed: a data split that never loads the whole set.

    images = MappedImages(np.load("images.npy", mmap_mode="r"), rows)   # rows: which rows form the split
    images[idx]   ->  an in-memory uint8 array (len(idx), C, H, W), the rows rows[idx] in the order of idx
    images[:8], images[3], len(images), images.shape, images.dtype      # like an ndarray

The result is exactly what indexing the loaded array would give; rows are read in the order asked for (sorting
them first was measured, docs/own-pictures.md).
"""
import numpy as np


class MappedImages:
    """The rows `rows` (int array) of `array` (a read-only np.memmap (N, C, H, W)), indexed like an (n, C, H, W)
    ndarray; indexing returns an ndarray copy of just the rows asked for."""

    def __init__(self, array, rows):
        self.array = np.asarray(array)  # a plain ndarray view of the map: indexing skips np.memmap's subclass hooks
        self.rows = np.asarray(rows, dtype=np.int64)

    @property
    def shape(self):
        return (len(self.rows), *self.array.shape[1:])

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def ndim(self):
        return self.array.ndim

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        """key: an int, a slice or an int array (positions in this split) -> a copy of those rows."""
        return np.take(self.array, self.rows[key], axis=0)
