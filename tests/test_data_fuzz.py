"""Fuzzing the file readers: random bytes, truncations and bit flips of small valid IDX files (raw and gzipped) and
MAT-5 files (plain and compressed). `read_idx` / `read_frey` must return an array or raise MinivaeError, nothing else.
(A flipped bit can leave a valid file, e.g. in the pixel data or a gzip header field; then an array is the answer.)"""

import gzip
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minivae.data.frey import read_frey
from minivae.data.idx import read_idx
from minivae.errors import MinivaeError
from test_data_frey import mat5_bytes
from test_data_idx import idx_bytes

IDX = idx_bytes(np.arange(60).reshape(3, 4, 5))
MAT = mat5_bytes(np.arange(560 * 2).reshape(560, 2) % 256)
FILES = {
    "idx": (IDX, read_idx),
    "idx.gz": (gzip.compress(IDX), read_idx),
    "mat": (MAT, read_frey),
    "mat-compressed": (mat5_bytes(np.arange(560 * 2).reshape(560, 2) % 256, compress=True), read_frey),
    "mat-big-endian": (mat5_bytes(np.arange(560 * 2).reshape(560, 2) % 256, order=">"), read_frey),
}
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def array_or_minivae_error(read, path):
    try:
        result = read(path)
    except MinivaeError as e:
        assert str(path) in str(e) and "\n" not in str(e), f"message does not name the file on one line: {e!r}"
        return
    assert isinstance(result, np.ndarray) and result.dtype == np.uint8


@pytest.mark.parametrize("kind", FILES)
@FUZZ
@given(data=st.data())
def test_bit_flips(tmp_path, kind, data):
    original, read = FILES[kind]
    flipped = bytearray(original)
    for position in data.draw(st.lists(st.integers(0, 8 * len(original) - 1), min_size=1, max_size=4)):
        flipped[position // 8] ^= 1 << position % 8
    path = tmp_path / "fuzzed"
    path.write_bytes(bytes(flipped))
    array_or_minivae_error(read, path)


@pytest.mark.parametrize("kind", FILES)
@FUZZ
@given(data=st.data())
def test_truncations(tmp_path, kind, data):
    original, read = FILES[kind]
    path = tmp_path / "fuzzed"
    path.write_bytes(original[:data.draw(st.integers(0, len(original) - 1))])
    with pytest.raises(MinivaeError, match=re.escape(str(path))):
        read(path)


@pytest.mark.parametrize("read", [read_idx, read_frey])
@FUZZ
@given(prefix=st.sampled_from([b"", b"\x1f\x8b", b"\x00\x00\x08\x03", MAT[:128]]), tail=st.binary(max_size=300))
def test_random_bytes(tmp_path, read, prefix, tail):
    """Random bytes, also after a valid gzip magic, IDX magic or MAT header, so the parsers get past the first check."""
    path = tmp_path / "fuzzed"
    path.write_bytes(prefix + tail)
    array_or_minivae_error(read, path)


@FUZZ
@given(shape=st.lists(st.integers(-2, 2 ** 31 - 1), min_size=1, max_size=4), have=st.integers(0, 3000),
       extra_members=st.integers(0, 3))
def test_hostile_gzip_idx_headers(tmp_path, shape, have, extra_members):
    """A gzip IDX file whose header claims any shape, followed by any amount of data and further gzip members: an
    array when they agree, else MinivaeError, and never more memory than the data that is there."""
    import struct
    import tracemalloc
    body = bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}i", *shape) + bytes(have)
    path = tmp_path / "hostile.gz"
    path.write_bytes(gzip.compress(body) + gzip.compress(bytes(1 << 16)) * extra_members)
    tracemalloc.start()
    try:
        array_or_minivae_error(read_idx, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 22, f"a {path.stat().st_size}-byte file cost {peak} bytes"


@FUZZ
@given(claimed=st.integers(0, 2 ** 32 - 1), have=st.integers(0, 2000), small=st.booleans())
def test_hostile_compressed_mat_elements(tmp_path, claimed, have, small):
    """A MAT file whose compressed element's inflated tag claims any size (or is a small element) over any amount of
    data: MinivaeError (no valid ff can come out), never more memory than the data that is there."""
    import struct
    import tracemalloc
    import zlib
    tag = struct.pack("<I", (min(claimed, 4) << 16) | 14) + bytes(4) if small else struct.pack("<II", 14, claimed)
    stream = zlib.compress(tag + bytes(have))
    path = tmp_path / "hostile.mat"
    path.write_bytes(MAT[:128] + struct.pack("<II", 15, len(stream)) + stream)
    tracemalloc.start()
    try:
        with pytest.raises(MinivaeError, match=re.escape(str(path))):
            read_frey(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 22, f"a {path.stat().st_size}-byte file cost {peak} bytes"
