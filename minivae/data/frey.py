"""Frey faces: `frey_rawface.mat`, read by a small MATLAB 5 MAT-file parser (no scipy).

The file holds one variable `ff`, a uint8 matrix of 560 x N (N = 1965). MATLAB stores matrices column-major, so the
bytes of column j are contiguous; column j is face j, its 560 = 28 * 20 pixels in row-major order. Hence the faces are
simply the data bytes reshaped to (N, 28, 20), the same as `scipy.io.loadmat(p)['ff'].T.reshape(-1, 28, 20)`.

MAT-5 layout (the subset read here; "Level 5 MAT-File Format", MathWorks):

    header, 128 bytes: 116 bytes of text ("MATLAB 5.0 MAT-file ..."), 8 bytes subsystem offset,
                       version (uint16, 0x0100), endian indicator "IM" (little-endian file) or "MI" (big-endian)
    data elements until the end of the file, each
        tag:  type (uint32), byte count (uint32), then the data, padded to a multiple of 8 bytes;
              "small element": if the upper 16 bits of the first word are nonzero they are the byte count, the lower
              16 the type, and the (<= 4) data bytes fill the rest of the 8-byte tag
        miMATRIX (14): subelements array flags (miUINT32: class in the low byte, complex flag 0x0800),
                       dimensions (miINT32), name (miINT8), real part (here miUINT8 = 2 for class mxUINT8 = 9)
        miCOMPRESSED (15): zlib stream that inflates to one data element (a miMATRIX); not padded. It is inflated
                       only up to the byte count in its own tag (the first 8 inflated bytes).
"""

import struct
import zlib

import numpy as np

from minivae.budget import require
from minivae.data.idx import read_file_bytes
from minivae.errors import MinivaeError

FREY_VARIABLE = "ff"
FREY_HEIGHT, FREY_WIDTH = 28, 20

MI_INT8, MI_UINT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 2, 5, 6, 14, 15
MX_UINT8_CLASS = 9
COMPLEX_FLAG = 0x0800
HEADER_BYTES = 128


def padded8(n):
    return (n + 7) // 8 * 8


def read_tag(buf, pos, end, order, path):
    """Tag of the data element at `pos` (it must end by `end`) -> (type, data start, data end, padded end)."""
    if pos + 8 > end:
        raise MinivaeError(f"{path}: MAT data element at byte {pos} is cut off (truncated file?)")
    first, second = struct.unpack_from(order + "II", buf, pos)
    if first >> 16:  # small data element: count and type share the first word, data in the second
        nbytes = first >> 16
        if nbytes > 4:
            raise MinivaeError(f"{path}: MAT small data element at byte {pos} claims {nbytes} bytes (at most 4)")
        return first & 0xFFFF, pos + 4, pos + 4 + nbytes, pos + 8
    if pos + 8 + second > end:
        raise MinivaeError(f"{path}: MAT data element at byte {pos} claims {second} bytes, past the end")
    return first, pos + 8, pos + 8 + second, pos + 8 + padded8(second)


def read_subelement(buf, pos, end, order, path, expected_type, what):
    """The subelement at `pos` of type `expected_type` -> (data start, data end, position of the next subelement)."""
    mtype, start, stop, after = read_tag(buf, pos, end, order, path)
    if mtype != expected_type:
        raise MinivaeError(f"{path}: MAT {what} has data type {mtype} (expected {expected_type})")
    return start, stop, after


def matrix_name(buf, pos, end, order, path):
    """Name of the miMATRIX whose data starts at `pos` -> (name, position just after the name subelement)."""
    _, _, pos = read_subelement(buf, pos, end, order, path, MI_UINT32, "array flags")
    _, _, pos = read_subelement(buf, pos, end, order, path, MI_INT32, "dimensions")
    start, stop, after = read_subelement(buf, pos, end, order, path, MI_INT8, "array name")
    return bytes(buf[start:stop]).decode("latin-1"), after


def read_uint8_matrix(buf, pos, end, order, path, name):
    """The miMATRIX `name` whose data starts at `pos` (array flags first) -> uint8 (rows, cols), a view of `buf`."""
    start, stop, after_flags = read_subelement(buf, pos, end, order, path, MI_UINT32, "array flags")
    if stop - start < 4:
        raise MinivaeError(f"{path}: MAT array flags have {stop - start} bytes (expected 8)")
    (flags,) = struct.unpack_from(order + "I", buf, start)
    if flags & 0xFF != MX_UINT8_CLASS or flags & COMPLEX_FLAG:
        raise MinivaeError(f"{path}: variable '{name}' has MATLAB class {flags & 0xFF}"
                           f"{' (complex)' if flags & COMPLEX_FLAG else ''} (expected real uint8, class 9)")
    start, stop, _ = read_subelement(buf, after_flags, end, order, path, MI_INT32, "dimensions")
    dims = struct.unpack_from(f"{order}{(stop - start) // 4}i", buf, start)
    if len(dims) != 2 or min(dims) < 0:
        raise MinivaeError(f"{path}: variable '{name}' has dimensions {dims} (expected a 2-D matrix)")
    _, pos = matrix_name(buf, pos, end, order, path)
    start, stop, _ = read_subelement(buf, pos, end, order, path, MI_UINT8, "real part")
    if stop - start != dims[0] * dims[1]:
        raise MinivaeError(f"{path}: variable '{name}' has {stop - start} data bytes for dimensions "
                           f"{dims} (expected {dims[0] * dims[1]})")
    rows, cols = dims
    return np.frombuffer(buf, np.uint8, stop - start, offset=start).reshape(cols, rows).T


def inflate_element(compressed, order, path, pos):
    """The data element a miCOMPRESSED element at `pos` holds, inflated only as far as its own tag's byte count says:
    a small file that inflates to gigabytes costs what its header admits."""
    inflate = zlib.decompressobj()
    try:
        tag = inflate.decompress(compressed, 8)
        if len(tag) < 8:
            raise MinivaeError(f"{path}: compressed MAT data element at byte {pos} is cut off")
        first, second = struct.unpack_from(order + "II", tag)
        size = 8 if first >> 16 else 8 + second  # a small element lives in its tag
        require(size, f"reading {path} (a compressed MAT element of {second} bytes)")
        element = tag + inflate.decompress(inflate.unconsumed_tail, size - 8)
        if inflate.decompress(inflate.unconsumed_tail, 1) or not inflate.eof:  # the end, and its checksum, come next
            raise zlib.error(f"the stream does not end after the {size} bytes its element's tag states")
        return element
    except zlib.error as e:
        raise MinivaeError(f"{path}: corrupt compressed MAT data element at byte {pos} ({e})") from None


def find_matrix(buf, order, path, name):
    """Walk the top-level data elements -> the uint8 matrix called `name`."""
    pos, found = HEADER_BYTES, []
    while pos < len(buf):
        mtype, start, stop, _ = read_tag(buf, pos, len(buf), order, path)
        element, element_start, element_end = buf, start, stop
        if mtype == MI_COMPRESSED:
            element = inflate_element(buf[start:stop], order, path, pos)
            mtype, element_start, element_end, _ = read_tag(element, 0, len(element), order, path)
        if mtype == MI_MATRIX:
            variable, _ = matrix_name(element, element_start, element_end, order, path)
            if variable == name:
                return read_uint8_matrix(element, element_start, element_end, order, path, name)
            found.append(variable)
        pos = max(stop, pos + 8)  # top-level elements are not padded (miMATRIX byte counts are multiples of 8 anyway)
    raise MinivaeError(f"{path}: no variable '{name}' in the MAT file (found {found or 'none'})")


def read_frey(path):
    """Read `frey_rawface.mat` -> uint8 array (N, 28, 20) of faces (N = 1965), values 0..255 (8..238 in practice)."""
    buf = read_file_bytes(path)
    if len(buf) < HEADER_BYTES or not buf.startswith(b"MATLAB"):
        raise MinivaeError(f"{path}: not a MATLAB 5 MAT-file (expected a 128-byte header starting with 'MATLAB')")
    endian = buf[126:128]
    if endian not in (b"IM", b"MI"):
        raise MinivaeError(f"{path}: MAT endian indicator is {endian!r} (expected b'IM' or b'MI')")
    order = "<" if endian == b"IM" else ">"
    (version,) = struct.unpack_from(order + "H", buf, 124)
    if version != 0x0100:
        raise MinivaeError(f"{path}: MAT version 0x{version:04x} is not supported (expected 0x0100, MATLAB 5; "
                           "save with -v6 or -v7, not -v7.3)")
    ff = find_matrix(buf, order, path, FREY_VARIABLE)
    if ff.shape[0] != FREY_HEIGHT * FREY_WIDTH or ff.shape[1] == 0:
        raise MinivaeError(f"{path}: '{FREY_VARIABLE}' has shape {ff.shape} "
                           f"(expected {FREY_HEIGHT * FREY_WIDTH} rows and at least one column, a 28 x 20 face each)")
    return ff.T.reshape(-1, FREY_HEIGHT, FREY_WIDTH).copy()
