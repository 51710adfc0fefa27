"""Frey faces (minivae.data.frey) and load_dataset("frey"): the real file, and variants written by a tiny MAT-5
writer (compressed, big-endian, extra variables, malformed)."""

import re
import struct
import zlib

import numpy as np
import pytest

from minivae.data.datasets import frey_split, load_dataset
from minivae.data.frey import read_frey
from minivae.errors import MinivaeError

MI_INT8, MI_UINT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 2, 5, 6, 14, 15
MX_UINT8_CLASS = 9


def mat_element(mtype, payload, order):
    """One MAT-5 data element: small format (count and type in one word) for <= 4 bytes, else an 8-byte tag;
    the payload is padded to a multiple of 8 bytes either way."""
    if len(payload) <= 4:
        return struct.pack(order + "I", len(payload) << 16 | mtype) + payload.ljust(4, b"\0")
    return struct.pack(order + "II", mtype, len(payload)) + payload + b"\0" * (-len(payload) % 8)


def mat_matrix(name, array, order="<", mx_class=MX_UINT8_CLASS, flags=0, dims=None, compress=False):
    """A top-level miMATRIX element holding the uint8 2-D `array` (column-major), optionally inside miCOMPRESSED.
    `mx_class`, `flags` and `dims` override what is written, to make malformed files."""
    dims = array.shape if dims is None else dims
    body = (mat_element(MI_UINT32, struct.pack(order + "II", mx_class | flags, 0), order)
            + mat_element(MI_INT32, struct.pack(f"{order}{len(dims)}i", *dims), order)
            + mat_element(MI_INT8, name.encode(), order)
            + mat_element(MI_UINT8, np.asarray(array, np.uint8).tobytes(order="F"), order))
    element = struct.pack(order + "II", MI_MATRIX, len(body)) + body
    if compress:
        packed = zlib.compress(element)
        element = struct.pack(order + "II", MI_COMPRESSED, len(packed)) + packed
    return element


def mat_header(order="<", version=0x0100):
    text = b"MATLAB 5.0 MAT-file, written by the minivae tests".ljust(116)
    return text + b"\0" * 8 + struct.pack(order + "H", version) + (b"IM" if order == "<" else b"MI")


def mat5_bytes(ff, order="<", compress=False):
    """A MAT-5 file with the single uint8 variable `ff` (rows, cols)."""
    return mat_header(order) + mat_matrix("ff", ff, order, compress=compress)


def faces_to_ff(faces):
    """(N, 28, 20) faces -> the (560, N) matrix `ff` as MATLAB holds it (column j = face j, row-major pixels)."""
    return faces.reshape(len(faces), -1).T


def neighbour_correlation(image, axis):
    a, b = np.moveaxis(image, axis, 0)[:-1].ravel(), np.moveaxis(image, axis, 0)[1:].ravel()
    return np.corrcoef(a, b)[0, 1]


# --- the real file ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faces(frey_path):
    return read_frey(frey_path)


def test_real_file_structure(faces):
    assert faces.shape == (1965, 28, 20) and faces.dtype == np.uint8
    assert faces.min() == 8 and faces.max() == 238


def test_real_faces_look_like_faces(faces):
    """Neighbouring pixels correlate: 0.87 in both directions for the mean face, 0.75..0.80 for single faces. A wrong
    layout (20 x 28, transposed faces, row- instead of column-major data) drops one direction to 0.2 or below."""
    mean_face = faces.mean(axis=0)
    assert neighbour_correlation(mean_face, 0) > 0.8 and neighbour_correlation(mean_face, 1) > 0.8
    for axis in (0, 1):
        assert np.median([neighbour_correlation(f.astype(float), axis) for f in faces[::50]]) > 0.7
    # a face is brighter in the middle (skin) than at the left and right edges (background / hair)
    assert mean_face[:, 7:13].mean() > mean_face[:, [0, 19]].mean()


def test_written_variants_read_back_identically(faces, tmp_path):
    ff = faces_to_ff(faces[:40])
    for order in "<>":
        for compress in (False, True):
            path = tmp_path / f"frey{order == '<'}{compress}.mat"
            path.write_bytes(mat5_bytes(ff, order, compress))
            assert np.array_equal(read_frey(path), faces[:40]), (order, compress)


def test_ff_is_found_among_other_variables(tmp_path):
    ff = np.arange(560 * 3).reshape(560, 3) % 251
    path = tmp_path / "many.mat"
    path.write_bytes(mat_header() + mat_matrix("a_long_name", np.ones((2, 2)), compress=True)
                     + mat_matrix("x", np.ones((3, 1))) + mat_matrix("ff", ff))
    assert np.array_equal(read_frey(path), ff.T.reshape(3, 28, 20))


# --- malformed files --------------------------------------------------------------------------------------------

FF = np.arange(560 * 2).reshape(560, 2) % 256
GOOD = mat5_bytes(FF)
COMPRESSED = mat5_bytes(FF, compress=True)
BAD_FILES = {
    "empty": (b"", "not a MATLAB 5 MAT-file"),
    "short header": (GOOD[:100], "not a MATLAB 5 MAT-file"),
    "not a MAT file": (b"x" * 2000, "not a MATLAB 5 MAT-file"),
    "endian indicator": (GOOD[:126] + b"XX" + GOOD[128:], "endian indicator"),
    "version 7.3": (mat_header(version=0x0200) + GOOD[128:], "version 0x0200"),
    "header only": (GOOD[:128], "no variable 'ff'.*found none"),
    "truncated tag": (GOOD[:132], "cut off"),
    "truncated data": (GOOD[:-9], "past the end"),
    "truncated compressed": (COMPRESSED[:-9], "past the end"),
    "corrupt compressed": (COMPRESSED[:140] + bytes(b ^ 0x55 for b in COMPRESSED[140:150]) + COMPRESSED[150:],
                           "corrupt compressed"),
    "no ff": (mat_header() + mat_matrix("gg", FF), "no variable 'ff'.*gg"),
    "double class": (mat_header() + mat_matrix("ff", FF, mx_class=6), "class 6"),
    "complex": (mat_header() + mat_matrix("ff", FF, flags=0x0800), "complex"),
    "3-D": (mat_header() + mat_matrix("ff", FF, dims=(560, 2, 1)), "2-D matrix"),
    "negative dims": (mat_header() + mat_matrix("ff", FF, dims=(-560, -2)), "2-D matrix"),
    "data count": (mat_header() + mat_matrix("ff", FF, dims=(560, 3)), "1120 data bytes"),
    "absurd dims": (mat_header() + mat_matrix("ff", FF, dims=(2**31 - 1, 2**31 - 1)), "data bytes"),
    "wrong rows": (mat_header() + mat_matrix("ff", FF.reshape(1120, 1)), "560 rows"),
    "no faces": (mat_header() + mat_matrix("ff", np.zeros((560, 0))), "at least one column"),
    "bad small element": (GOOD[:136] + struct.pack("<I", 9 << 16 | MI_UINT32) + GOOD[140:], "at most 4"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_malformed_file_raises_naming_the_file(tmp_path, case):
    data, match = BAD_FILES[case]
    path = tmp_path / "frey_rawface.mat"
    path.write_bytes(data)
    with pytest.raises(MinivaeError, match=re.escape(str(path)) + ".*" + match) as excinfo:
        read_frey(path)
    assert "\n" not in str(excinfo.value)


def test_missing_file(tmp_path):
    with pytest.raises(MinivaeError, match=re.escape(str(tmp_path / "none.mat")) + ": file not found"):
        read_frey(tmp_path / "none.mat")


# --- load_dataset("frey") ---------------------------------------------------------------------------------------


def test_split_is_fixed_disjoint_and_complete():
    train, test = frey_split(1965)
    assert len(train) == 1769 and len(test) == 196
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1965))
    assert np.array_equal(frey_split(1965)[1], test) and np.all(np.diff(test) > 0)


def test_load_dataset_frey(frey_path, faces):
    data = load_dataset("frey", frey_path.parent, seed=123)
    train_index, test_index = frey_split(1965)
    assert data.train.shape == (1769, 1, 28, 20) and data.test.shape == (196, 1, 28, 20)
    assert np.array_equal(data.test[:, 0], faces[test_index]) and np.array_equal(data.train[:, 0], faces[train_index])
    assert data.train_labels is None and data.factors is None
    assert load_dataset("frey", frey_path.parent, n_train=10, n_test=5).test.shape == (5, 1, 28, 20)


def test_load_dataset_frey_needs_a_directory_with_the_file(tmp_path):
    with pytest.raises(MinivaeError, match="--data-dir is required for frey"):
        load_dataset("frey")
    with pytest.raises(MinivaeError, match=re.escape(str(tmp_path / "frey_rawface.mat")) + ": file not found"):
        load_dataset("frey", tmp_path)
