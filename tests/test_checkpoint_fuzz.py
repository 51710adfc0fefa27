"""Fuzzing the checkpoint reader: bit flips, truncations, random bytes and garbled metadata of a small real
checkpoint. `load_checkpoint` must return a model or raise MinivaeError naming the file, never another exception and
never hang. (Most flips of a stored .npz land in parameter bytes, which stay a valid float, or in zip fields nobody
reads; the reader then returns a model, and that is the right answer.)"""
import io
import json
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minivae.checkpoint import load_checkpoint, save_checkpoint
from minivae.errors import MinivaeError
from minivae.models import build_model
from minivae.optim import Adam

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def small_checkpoint_bytes():
    """A real checkpoint (mlp 1x6x5 -> 7 -> 3, Adam state, training position) as bytes."""
    import tempfile
    from pathlib import Path
    vae = build_model("mlp", rng=np.random.default_rng(0), image_shape=(1, 6, 5), hidden=(7,), latent=3)
    optimizer = Adam(vae.params)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "checkpoint.npz"
        save_checkpoint(path, vae, optimizer, {"epoch": 1, "step": 3, "rng_state": {"state": 1}},
                        state={"permutation": np.arange(10)})
        return path.read_bytes()


ORIGINAL = small_checkpoint_bytes()


def model_or_minivae_error(path):
    try:
        vae, arrays, meta = load_checkpoint(path)
    except MinivaeError as e:
        assert str(path) in str(e) and "\n" not in str(e), f"message does not name the file on one line: {e!r}"
        return None
    for name, p in vae.params.items():
        assert np.all(np.isfinite(p)), f"{name} loaded with NaN/Inf"
    return vae


def test_the_original_loads(tmp_path):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(ORIGINAL)
    assert model_or_minivae_error(path) is not None


@FUZZ
@given(data=st.data())
def test_bit_flips(tmp_path, data):
    flipped = bytearray(ORIGINAL)
    for position in data.draw(st.lists(st.integers(0, 8 * len(ORIGINAL) - 1), min_size=1, max_size=6)):
        flipped[position // 8] ^= 1 << position % 8
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(bytes(flipped))
    model_or_minivae_error(path)


# Flips aimed at the parts that are parsed: zip headers and directory (start and end) and every .npy header.
HEADERS = sorted({i for i in range(len(ORIGINAL)) if ORIGINAL[i:i + 4] in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06")
                  for i in range(i, min(i + 80, len(ORIGINAL)))} |
                 {i for i in range(len(ORIGINAL)) if ORIGINAL[i:i + 6] == b"\x93NUMPY"
                  for i in range(i, min(i + 128, len(ORIGINAL)))})


@FUZZ
@given(positions=st.lists(st.sampled_from(HEADERS), min_size=1, max_size=3), bits=st.integers(0, 7))
def test_bit_flips_in_headers(tmp_path, positions, bits):
    flipped = bytearray(ORIGINAL)
    for position in positions:
        flipped[position] ^= 1 << bits
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(bytes(flipped))
    model_or_minivae_error(path)


@FUZZ
@given(data=st.data())
def test_truncations(tmp_path, data):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(ORIGINAL[:data.draw(st.integers(0, len(ORIGINAL) - 1))])
    with pytest.raises(MinivaeError, match="checkpoint.npz"):
        load_checkpoint(path)


@FUZZ
@given(prefix=st.sampled_from([b"", b"PK\x03\x04", b"\x93NUMPY\x01\x00", ORIGINAL[:64]]), tail=st.binary(max_size=400))
def test_random_bytes(tmp_path, prefix, tail):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(prefix + tail)
    model_or_minivae_error(path)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 40, 2 ** 40) | st.floats() | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                      max_size=4), max_leaves=12)


def with_meta(meta_text):
    """ORIGINAL with its "meta" entry replaced by `meta_text` (a valid zip; the arrays kept)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(ORIGINAL)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename == "meta.npy":
                buffer = io.BytesIO()
                np.save(buffer, np.array(meta_text))
                dst.writestr("meta.npy", buffer.getvalue())
            else:
                dst.writestr(item, src.read(item))
    return out.getvalue()


META = json.loads(np.load(io.BytesIO(ORIGINAL))["meta"].item())


@FUZZ
@given(key=st.sampled_from(["format", "config"] + [f"config.{k}" for k in META["config"]]), value=JSON)
def test_garbled_metadata(tmp_path, key, value):
    """Valid zip and arrays, but one metadata field replaced by an arbitrary JSON value."""
    meta = json.loads(json.dumps(META))
    if key.startswith("config."):
        meta["config"][key.split(".", 1)[1]] = value
    else:
        meta[key] = value
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(with_meta(json.dumps(meta)))
    model_or_minivae_error(path)


@FUZZ
@given(text=st.text(max_size=60))
def test_metadata_that_is_not_json(tmp_path, text):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(with_meta(text))
    model_or_minivae_error(path)


def rewrite_member(original, name, header_dict, payload, stated=None):
    """`original` with member `name` replaced by a .npy header `header_dict` + `payload`; `stated` overrides the
    uncompressed size the zip states for it (local header and central directory)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, header_dict)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, header.getvalue() + payload if info.filename == name else src.read(info))
    data = bytearray(out.getvalue())
    if stated is not None:
        encoded = name.encode()
        for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
            at = data.index(signature)
            while data[at + name_at:at + name_at + len(encoded)] != encoded:
                at = data.index(signature, at + 1)
            struct.pack_into("<I", data, at + size_at, stated % 2 ** 32)
    return bytes(data)


@FUZZ
@given(shape=st.lists(st.integers(0, 10 ** 7), min_size=0, max_size=4),
       descr=st.sampled_from(["<f4", "<f8", ">f4", "<i8", "|u1", "<U40", "|O", "<c16", "|V8"]),
       payload=st.integers(0, 200), stated=st.none() | st.integers(0, 2 ** 32 - 1))
def test_hostile_array_headers_and_stated_sizes(tmp_path, shape, descr, payload, stated):
    """A parameter member whose .npy header claims any shape and dtype (up to 10^28 values), holding a few bytes,
    with any stated uncompressed size: the reader refuses before allocating what the header or the zip claims."""
    import tracemalloc
    path = tmp_path / "hostile.npz"
    path.write_bytes(rewrite_member(ORIGINAL, "param/encoder.0.W.npy",
                                    {"descr": descr, "fortran_order": False, "shape": tuple(shape)}, bytes(payload),
                                    stated))
    tracemalloc.start()
    try:
        model_or_minivae_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 24, f"reading a {path.stat().st_size}-byte checkpoint allocated {peak} bytes"
