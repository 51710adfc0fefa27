"""IDX reading (minivae.data.idx) and the MNIST download (minivae.data.download), on the real files and on small
hand-written ones. No test uses the network: downloads come from `file://` URLs or an unreachable local port."""

import gzip
import re
import shutil
import struct

import numpy as np
import pytest

from minivae.data.datasets import load_dataset
from minivae.data.download import download_mnist
from minivae.data.idx import IDX_NAMES, MNIST_GZ, load_idx_dir, read_idx
from minivae.errors import MinivaeError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(array, dtype_code=0x08):
    """An IDX file holding the uint8 `array`: 00 00 <type> <ndim>, big-endian int32 sizes, data."""
    array = np.asarray(array, np.uint8)
    return bytes([0, 0, dtype_code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()


def write_idx_dir(directory, n_train=5, n_test=3, size=(4, 3), compress=False):
    """A small MNIST-style directory of random images and labels -> the four arrays written."""
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (n_train, *size)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, *size)), rng.integers(0, 10, n_test)]
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in zip(IDX_NAMES, arrays):
        data = idx_bytes(array)
        (directory / (name + ".gz" if compress else name)).write_bytes(gzip.compress(data) if compress else data)
    return [a.astype(np.uint8) for a in arrays]


def raises_naming(path, match=""):
    """pytest.raises for a one-line MinivaeError whose message names `path` (and matches `match`)."""
    return pytest.raises(MinivaeError, match=re.escape(str(path)) + ".*" + match)


def assert_one_line(excinfo):
    assert "\n" not in str(excinfo.value), f"message is not one line: {excinfo.value!r}"


# --- the real MNIST files ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return load_idx_dir(mnist_dir)


def test_mnist_shapes_dtypes_and_label_counts(mnist):
    train_images, train_labels, test_images, test_labels = mnist
    assert train_images.shape == (60000, 28, 28) and test_images.shape == (10000, 28, 28)
    assert train_labels.shape == (60000,) and test_labels.shape == (10000,)
    assert all(a.dtype == np.uint8 for a in mnist)
    assert np.bincount(train_labels).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(test_labels).tolist() == MNIST_TEST_COUNTS
    assert train_images.min() == 0 and train_images.max() == 255


def test_gzipped_and_raw_files_give_the_same_array(mnist_dir, tmp_path):
    gz = mnist_dir / "t10k-labels-idx1-ubyte.gz"
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(gzip.decompress(gz.read_bytes()))
    misnamed = tmp_path / "gzipped-without-suffix"  # gzip is recognised by its magic bytes, not the name
    shutil.copy(gz, misnamed)
    expected = read_idx(gz)
    assert np.array_equal(read_idx(raw), expected) and np.array_equal(read_idx(misnamed), expected)


def test_directory_of_uncompressed_mnist_files(mnist_dir, tmp_path):
    for name in IDX_NAMES:
        (tmp_path / name).write_bytes(gzip.decompress((mnist_dir / f"{name}.gz").read_bytes()))
    test_images, test_labels = load_idx_dir(tmp_path)[2:]
    assert test_images.shape == (10000, 28, 28) and np.bincount(test_labels).tolist() == MNIST_TEST_COUNTS


def test_corrupt_mnist_file_is_caught_by_md5(mnist_dir, tmp_path):
    write_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    corrupt = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = bytearray((mnist_dir / corrupt.name).read_bytes())
    data[4] ^= 0x01  # the gzip mtime field: still a valid gzip stream, so only the md5 can tell
    corrupt.write_bytes(bytes(data))
    with raises_naming(corrupt, "corrupt MNIST file") as excinfo:
        load_idx_dir(tmp_path)
    assert_one_line(excinfo)


# --- small hand-written files -----------------------------------------------------------------------------------


def test_small_directory_roundtrip(tmp_path):
    for compress in (False, True):
        expected = write_idx_dir(tmp_path / str(compress), compress=compress)
        loaded = load_idx_dir(tmp_path / str(compress))
        assert all(np.array_equal(a, b) and a.dtype == np.uint8 for a, b in zip(loaded, expected))


GOOD = idx_bytes(np.arange(24).reshape(2, 3, 4))
BAD_FILES = {
    "empty file": (b"", "not an IDX file"),
    "wrong magic": (b"\x00\x01" + GOOD[2:], "not an IDX file"),
    "float type": (idx_bytes(np.zeros(3), dtype_code=0x0D), "not supported"),
    "ndim 0": (b"\x00\x00\x08\x00", "0 dimensions"),
    "ndim 5": (idx_bytes(np.zeros((1, 1, 1, 1, 1))), "5 dimensions"),
    "truncated header": (GOOD[:10], "truncated IDX header"),
    "truncated data": (GOOD[:-1], "truncated IDX data"),
    "trailing bytes": (GOOD + b"\x00", "trailing bytes"),
    "absurd sizes": (b"\x00\x00\x08\x03" + struct.pack(">3i", 2**31 - 1, 2**31 - 1, 2**31 - 1), "truncated IDX data"),
    "negative size": (b"\x00\x00\x08\x01" + struct.pack(">i", -1), "negative size"),
    "truncated gzip": (gzip.compress(GOOD)[:-5], "gzip"),
    "gzip crc error": (gzip.compress(GOOD)[:-8] + b"\x00" * 4 + gzip.compress(GOOD)[-4:], "gzip"),
    "gzip then garbage": (gzip.compress(GOOD) + b"garbage", "gzip"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_idx_file_raises_naming_the_file(tmp_path, case):
    data, match = BAD_FILES[case]
    path = tmp_path / "bad-idx"
    path.write_bytes(data)
    with raises_naming(path, match) as excinfo:
        read_idx(path)
    assert_one_line(excinfo)


def test_missing_file_and_directory_path(tmp_path):
    with raises_naming(tmp_path / "nothing", "not found"):
        read_idx(tmp_path / "nothing")
    with raises_naming(tmp_path, "cannot read"):
        read_idx(tmp_path)


def test_missing_directory_lists_expected_files(tmp_path):
    with raises_naming(tmp_path / "absent", "no such directory.*train-images-idx3-ubyte") as excinfo:
        load_idx_dir(tmp_path / "absent")
    assert_one_line(excinfo)


def test_missing_file_lists_expected_files(tmp_path):
    write_idx_dir(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with raises_naming(tmp_path, "missing t10k-images-idx3-ubyte.*t10k-labels-idx1-ubyte") as excinfo:
        load_idx_dir(tmp_path)
    assert_one_line(excinfo)


def test_count_mismatch_names_both_files_and_counts(tmp_path):
    write_idx_dir(tmp_path, n_train=5)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(4)))
    with pytest.raises(MinivaeError, match="train-images-idx3-ubyte has 5 images but .*train-labels-idx1-ubyte has 4"):
        load_idx_dir(tmp_path)


@pytest.mark.parametrize("name, array, match", [
    ("train-images-idx3-ubyte", np.zeros((5, 12)), "expected 3-D"),
    ("t10k-labels-idx1-ubyte", np.zeros((3, 1)), "expected 1-D"),
    ("t10k-images-idx3-ubyte", np.zeros((3, 5, 5)), "expected the same image size"),
])
def test_wrong_array_layout(tmp_path, name, array, match):
    write_idx_dir(tmp_path)
    (tmp_path / name).write_bytes(idx_bytes(array))
    with raises_naming(tmp_path / name, match):
        load_idx_dir(tmp_path)


# --- download ---------------------------------------------------------------------------------------------------


@pytest.fixture
def mirror(mnist_dir, tmp_path):
    """A local copy of the MNIST files (symlinks), served as a file:// base URL."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    for name in MNIST_GZ:
        (folder / name).symlink_to(mnist_dir / name)
    return folder


def test_download_from_file_url(mirror, mnist_dir, tmp_path):
    target = tmp_path / "downloaded"
    assert download_mnist(target, base_url=mirror.as_uri()) == target
    assert sorted(p.name for p in target.iterdir()) == sorted(MNIST_GZ)  # no temporary files left
    assert all((target / n).read_bytes() == (mnist_dir / n).read_bytes() for n in MNIST_GZ)
    download_mnist(target, base_url="http://127.0.0.1:9/")  # everything present and valid: nothing is fetched


def test_download_offline_is_one_clear_line(tmp_path):
    with pytest.raises(MinivaeError, match=r"cannot download MNIST from http://127\.0\.0\.1:9/.*put the four IDX "
                                           f"files in {re.escape(str(tmp_path))} yourself") as excinfo:
        download_mnist(tmp_path, base_url="http://127.0.0.1:9/")
    assert_one_line(excinfo)
    assert list(tmp_path.iterdir()) == []


def test_download_with_wrong_md5_leaves_nothing(mirror, tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    data = bytearray((mirror / name).read_bytes())
    data[-1] ^= 0xFF
    (mirror / name).unlink()
    (mirror / name).write_bytes(bytes(data))
    target = tmp_path / "downloaded"
    with pytest.raises(MinivaeError, match=f"{name}: downloaded file has md5"):
        download_mnist(target, base_url=mirror.as_uri())
    assert name not in {p.name for p in target.iterdir()} and not list(target.glob(".*"))


# --- load_dataset("mnist") --------------------------------------------------------------------------------------


def test_load_dataset_mnist(mnist_dir, mnist):
    data = load_dataset("mnist", mnist_dir, n_train=100, n_test=50)
    assert data.name == "mnist" and data.factors is None
    assert data.train.shape == (100, 1, 28, 28) and data.test.shape == (50, 1, 28, 28) and data.train.dtype == np.uint8
    assert np.array_equal(data.train[:, 0], mnist[0][:100]) and np.array_equal(data.test_labels, mnist[3][:50])


def test_load_dataset_mnist_needs_a_directory_and_valid_counts(mnist_dir):
    expected = "--data-dir is required for mnist (a directory with the four IDX files)"
    with pytest.raises(MinivaeError, match=f"^{re.escape(expected)}$"):
        load_dataset("mnist")
    with pytest.raises(MinivaeError, match="n_train=60001 for mnist"):
        load_dataset("mnist", mnist_dir, n_train=60001)
