"""IDX files: the format of MNIST, Fashion-MNIST and KMNIST.

An IDX file is (all integers big-endian)

    byte 0, 1   0x00 0x00
    byte 2      element type: 0x08 = uint8 (the only type these data sets use, so the only one read here)
    byte 3      ndim, 1..4
    4 * ndim    the sizes d_1 .. d_ndim, each an int32
    d_1*...*d_ndim bytes of data, row-major, nothing after it

and the distributed files are gzipped. A data set is a directory holding the four standard files
`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each with or
without `.gz`: images (N, H, W) uint8 (28 x 28 for all three data sets), labels (N,) uint8.

Which files are "the MNIST ones" (and so are checked against the canonical md5): a `.gz` file with a standard name
whose size in bytes equals the size of the canonical MNIST file of that name. MNIST, Fashion-MNIST and KMNIST files
compress to different sizes, so the size tells them apart without reading the file, and a damaged MNIST download
(same size, other bytes) is reported as "corrupt MNIST file" instead of a confusing decoding error. Uncompressed files
cannot be told apart this way (all three data sets decompress to the same sizes), so they are only checked for
structure (header, sizes, counts).
"""

import gzip
import hashlib
import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from minivae.budget import require
from minivae.errors import MinivaeError

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
EXPECTED_FILES = "the four IDX files " + ", ".join(f"{name}[.gz]" for name in IDX_NAMES)

# Canonical MNIST gz files: name -> (size in bytes, md5 of the file).
MNIST_GZ = {
    "train-images-idx3-ubyte.gz": (9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte.gz": (28881, "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte.gz": (1648877, "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte.gz": (4542, "ec29112dd5afa0611ce80d1b7f02629c"),
}

GZIP_MAGIC = b"\x1f\x8b"
IDX_UINT8 = 0x08


def read_file_bytes(path):
    """The whole file as bytes; a missing or unreadable file is a MinivaeError naming it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise MinivaeError(f"{path}: file not found") from None
    except OSError as e:
        raise MinivaeError(f"{path}: cannot read file ({e.strerror or e})") from None


MAX_HEADER = 4 + 4 * 4


def gunzip(raw, path):
    """Decompress a gzip stream, at most as many bytes as its IDX header implies (+ 1, to see trailing bytes):
    a small file that inflates to gigabytes costs what its header admits. Corrupt or truncated streams are a
    MinivaeError naming `path`."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            data = f.read(MAX_HEADER)
            if len(data) >= 4 and data[:2] == b"\0\0" and 1 <= data[3] <= 4:
                shape = struct.unpack_from(f">{data[3]}i", data.ljust(MAX_HEADER, b"\0"), 4)
                limit = 4 + 4 * data[3] + math.prod(max(0, d) for d in shape)
                require(limit, f"reading {path} (IDX data of shape {shape})")
                chunks, size = [data], len(data)
                while size <= limit and (chunk := f.read(min(limit + 1 - size, 1 << 20))):
                    chunks.append(chunk)  # in chunks: memory follows the data that is there, not the claim
                    size += len(chunk)
                data = b"".join(chunks)
            return data  # parse_idx judges the header and the size
    except (OSError, EOFError, zlib.error) as e:
        raise MinivaeError(f"{path}: corrupt or truncated gzip data ({e})") from None


def parse_idx(data, path):
    """Decode the IDX bytes `data` (already decompressed) -> uint8 array of shape (d_1, ..., d_ndim).

    The header is checked before anything is allocated: the sizes must account for exactly the bytes that follow
    (so a truncated file, trailing bytes, or an absurd header whose sizes exceed the file are all errors).
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise MinivaeError(f"{path}: not an IDX file (expected the magic bytes 00 00 <type> <ndim>)")
    dtype, ndim = data[2], data[3]
    if dtype != IDX_UINT8:
        raise MinivaeError(f"{path}: IDX element type 0x{dtype:02x} is not supported (expected 0x08 = uint8)")
    if not 1 <= ndim <= 4:
        raise MinivaeError(f"{path}: IDX header says {ndim} dimensions (expected 1..4)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MinivaeError(f"{path}: truncated IDX header ({len(data)} bytes, expected {header})")
    shape = struct.unpack_from(f">{ndim}i", data, 4)
    if min(shape) < 0:
        raise MinivaeError(f"{path}: IDX header has a negative size {shape}")
    count = math.prod(shape)  # Python ints: an absurd header cannot overflow
    have = len(data) - header
    if have < count:
        raise MinivaeError(f"{path}: truncated IDX data ({have} bytes, the header {shape} needs {count})")
    if have > count:
        raise MinivaeError(f"{path}: trailing bytes after the {count} bytes of IDX data of shape {shape}")
    if math.prod(d for d in shape if d) > np.iinfo(np.intp).max:  # an empty array, but not one NumPy can shape
        raise MinivaeError(f"{path}: IDX header {shape} describes an array too large to represent")
    return np.frombuffer(data, np.uint8, count, offset=header).reshape(shape).copy()


def decode_idx(raw, path):
    """The bytes of an IDX file, gzipped or not -> uint8 array. Gzip is recognised by its magic bytes 1f 8b."""
    data = gunzip(raw, path) if raw[:2] == GZIP_MAGIC else raw
    return parse_idx(data, path)


def read_idx(path):
    """Read an IDX file, gzipped or not (recognised by content, not name) -> uint8 array of the header's shape."""
    return decode_idx(read_file_bytes(path), path)


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def check_mnist_md5(raw, path):
    """If `path` (with bytes `raw`) is a canonical MNIST gz file (standard name and size), check its md5."""
    path = Path(path)
    if path.name not in MNIST_GZ or len(raw) != MNIST_GZ[path.name][0]:
        return
    digest = md5_hex(raw)
    if digest != MNIST_GZ[path.name][1]:
        raise MinivaeError(f"{path}: corrupt MNIST file (md5 {digest}, expected {MNIST_GZ[path.name][1]})")


def find_idx_file(directory, stem):
    """`directory/stem.gz` if it exists, else `directory/stem`, else a MinivaeError listing what was expected."""
    for path in (directory / f"{stem}.gz", directory / stem):
        if path.is_file():
            return path
    raise MinivaeError(f"{directory}: missing {stem}[.gz] (expected {EXPECTED_FILES})")


def load_idx_dir(directory):
    """Load an MNIST-style directory -> (train_images, train_labels, test_images, test_labels).

    Images (N, H, W) uint8, labels (N,) uint8; N = 60000 / 10000 for MNIST, H = W = 28. Each image file must have as
    many images as its label file has labels, and train and test images must have the same H, W.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise MinivaeError(f"{directory}: no such directory (expected a directory with {EXPECTED_FILES})")
    paths = [find_idx_file(directory, stem) for stem in IDX_NAMES]
    arrays = []
    for path in paths:
        raw = read_file_bytes(path)
        check_mnist_md5(raw, path)
        arrays.append(decode_idx(raw, path))
    for images, labels, image_path, label_path in zip(arrays[0::2], arrays[1::2], paths[0::2], paths[1::2]):
        if images.ndim != 3 or 0 in images.shape:
            raise MinivaeError(f"{image_path}: images have shape {images.shape} (expected 3-D (N, H, W), none zero)")
        if labels.ndim != 1:
            raise MinivaeError(f"{label_path}: labels have shape {labels.shape} (expected 1-D (N,))")
        if len(images) != len(labels):
            raise MinivaeError(
                f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels (expected equal)")
    if arrays[0].shape[1:] != arrays[2].shape[1:]:
        raise MinivaeError(f"{paths[0]} has {arrays[0].shape[1:]} images but {paths[2]} has {arrays[2].shape[1:]} "
                           "(expected the same image size)")
    return tuple(arrays)
