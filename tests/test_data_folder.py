"""Training on a folder of pictures: the cache (decode once, then map; added, removed, changed files), the hashed
split, every kind of bad picture, and a memory-mapped run that equals the in-memory run bit for bit."""
import io
import os
import warnings

import numpy as np
import pytest
from PIL import Image

import minivae
from minivae.cli import main
from minivae.data import load_dataset
from minivae.data import cache as cache_module
from minivae.data.cache import open_cache
from minivae.data.decode import BadPicture, decode_picture
from minivae.data.folder import is_test, split_fraction
from minivae.data.mapped import MappedImages
from minivae.errors import MinivaeError


def write_pictures(folder, names, seed=0, size=(20, 24)):
    """Random RGB PNGs `names` under `folder` (subfolders made as needed), different for each name and seed."""
    for name in names:
        rng = np.random.default_rng([seed, *name.encode()])
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / name)


def fresh(folder, tmp_path, shape=(3, 8, 8)):
    """The cache of `folder` built from nothing in a new directory -> {path: decoded picture}."""
    images, rows, paths, _ = open_cache(folder, tmp_path / f"fresh-{len(list(tmp_path.iterdir()))}", shape, True)
    return {p: images[r] for p, r in zip(paths, rows)}


def cached(folder, cache, capsys, shape=(3, 8, 8)):
    """open_cache -> ({path: picture}, how many pictures it decoded, per its stderr summary)."""
    images, rows, paths, _ = open_cache(folder, cache, shape, quiet=False)
    err = capsys.readouterr().err
    decoded = int(err.split("decoded ")[1].split(" of ")[1].split()[0]) if "decoded " in err else 0
    return {p: images[r] for p, r in zip(paths, rows)}, decoded


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_cache_invalidation(tmp_path, capsys):
    folder, cache = tmp_path / "pics", tmp_path / "cache"
    names = [f"d{i % 3}/p{i:02d}.png" for i in range(12)]
    write_pictures(folder, names)
    first, n = cached(folder, cache, capsys)
    assert n == 12 and list(first) == sorted(names) and same(first, fresh(folder, tmp_path))
    again, n = cached(folder, cache, capsys)
    assert n == 0 and same(again, first)  # unchanged: mapped, nothing decoded

    write_pictures(folder, ["d1/new.png", "a.png"], seed=1)  # add
    added, n = cached(folder, cache, capsys)
    assert n == 2 and len(added) == 14 and same(added, fresh(folder, tmp_path))

    (folder / names[4]).unlink()  # remove
    removed, n = cached(folder, cache, capsys)
    assert n == 0 and names[4] not in removed and same(removed, fresh(folder, tmp_path))

    st = os.stat(folder / names[5])  # touch: same bytes, new mtime -> decoded again
    os.utime(folder / names[5], ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    touched, n = cached(folder, cache, capsys)
    assert n == 1 and same(touched, removed)

    write_pictures(folder, [names[6]], seed=2)  # changed content
    os.utime(folder / names[6], ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10 ** 9))
    changed, n = cached(folder, cache, capsys)
    assert n == 1 and not np.array_equal(changed[names[6]], touched[names[6]])
    assert same(changed, fresh(folder, tmp_path))
    assert len(list(cache.glob("images-*.npy"))) == 1  # replaced caches are deleted

    other, n = cached(folder, cache, capsys, shape=(1, 8, 8))  # another shape: its own cache beside
    assert n == 13 and next(iter(other.values())).shape == (1, 8, 8) and len(list(cache.glob("images-*.npy"))) == 2


def test_interrupted_decode_keeps_what_it_decoded(tmp_path, monkeypatch, capsys):
    write_pictures(tmp_path / "pics", [f"p{i:02d}.png" for i in range(10)])
    real = cache_module.decode_files

    def interrupted_after_four(paths, *shape):
        for i, picture in enumerate(real(paths, *shape)):
            if i == 4:
                raise KeyboardInterrupt
            yield picture

    monkeypatch.setattr(cache_module, "decode_files", interrupted_after_four)
    with pytest.raises(KeyboardInterrupt, match="the 4 pictures decoded so far are cached"):
        open_cache(tmp_path / "pics", tmp_path / "cache", (3, 8, 8))
    monkeypatch.setattr(cache_module, "decode_files", real)
    capsys.readouterr()
    pictures, n = cached(tmp_path / "pics", tmp_path / "cache", capsys)
    assert n == 6 and same(pictures, fresh(tmp_path / "pics", tmp_path))


def test_split_is_stable_when_files_are_added():
    paths = [f"celeba/{i:06d}.jpg" for i in range(4000)]
    test = is_test(paths, 0.1)
    assert abs(test.mean() - 0.1) < 4 * np.sqrt(0.1 * 0.9 / len(paths))
    more = [f"more/{i}.png" for i in range(500)] + paths
    assert np.array_equal(is_test(more, 0.1)[500:], test)  # adding pictures moves none of the others
    assert np.all(is_test(paths, 0.2)[test])               # a larger fraction only adds test pictures
    assert split_fraction("ä.png") == split_fraction("a\u0308.png")  # NFC: a macOS copy splits the same way


def jpeg_with_orientation(orientation):
    """A 30×20 JPEG, left half black and right half white, tagged with an EXIF orientation."""
    a = np.zeros((20, 30, 3), np.uint8)
    a[:, 15:] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Image.fromarray(a).save(out, "JPEG", quality=95, exif=exif)
    return out.getvalue()


def png(img):
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def palette_with_transparency():
    img = Image.new("P", (16, 16), 0)
    img.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    img.paste(1, (0, 0, 16, 8))
    img.info["transparency"] = 0
    return png(img)


def cmyk_jpeg():
    out = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(out, "JPEG", quality=95)  # full magenta + yellow: red
    return out.getvalue()


good_jpeg = jpeg_with_orientation(1)
BAD_PICTURES = {  # name: (file bytes, expected: a check of the (3, 16, 16) picture, or a piece of the skip reason)
    "truncated.jpg": (good_jpeg[:len(good_jpeg) // 2], "(?i)truncated"),
    "text.jpg": (b"these are not the pixels you are looking for", "cannot identify image file"),
    "sixteen.png": (png(Image.fromarray(np.full((16, 16), 40000, np.uint16))),
                    lambda a: np.all(a == 40000 >> 8)),  # the top byte, not clipped to 255
    "cmyk.jpg": (cmyk_jpeg(), lambda a: np.all(a[0] > 200) and np.all(a[1:] < 60)),
    "palette.png": (palette_with_transparency(), lambda a: np.all(abs(a[:, :4] - [[[200]], [[0]], [[0]]]) <= 2)
                    and np.all(a[:, 12:] >= 253)),  # the transparent colour over white (Lanczos: ±2 near the edge)
    "rotated.jpg": (jpeg_with_orientation(6), lambda a: np.all(a[:, :6] < 30) and np.all(a[:, 10:] > 225)),
    "upright.jpg": (good_jpeg, lambda a: np.all(a[:, :, :6] < 30) and np.all(a[:, :, 10:] > 225)),
    "tiny.png": (png(Image.new("RGB", (1, 1), (9, 9, 9))), "too small"),
    "huge.png": (png(Image.new("L", (100, 100))), "MAX_IMAGE_PIXELS = 6000"),
    "bomb.png": (png(Image.new("L", (200, 200))), "decompression bomb"),  # > 2 × the limit: Pillow's own error
}


@pytest.mark.parametrize("channels", [3, 1])
def test_bad_pictures(tmp_path, monkeypatch, capsys, channels):
    """Each row of BAD_PICTURES converts (RGB: its check holds; gray: it converts) or is skipped saying why."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # Pillow's, from open(); pytest restores filters
    for name, (data, expected) in BAD_PICTURES.items():
        (tmp_path / name).write_bytes(data)
        if isinstance(expected, str):
            with pytest.raises(BadPicture, match=expected):
                decode_picture(tmp_path / name, channels, 16, 16)
        else:
            a = decode_picture(tmp_path / name, channels, 16, 16)
            assert a.shape == (channels, 16, 16) and a.dtype == np.uint8
            assert channels == 1 or expected(a), (name, a)
    # Through the cache: one line per skipped file on stderr (and not Pillow's warning), the others usable.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, _, paths, skipped = open_cache(tmp_path, tmp_path / "cache", (channels, 16, 16), quiet=True)
    assert not caught, [str(w.message) for w in caught]
    bad = sorted(name for name, (_, expected) in BAD_PICTURES.items() if isinstance(expected, str))
    assert [p for p, _ in skipped] == bad and len(paths) == len(BAD_PICTURES) - len(bad)
    assert sorted(line.split(": ")[1].split("/")[-1] for line in capsys.readouterr().err.splitlines()) == bad


def test_one_broken_file_still_trains_and_none_readable_is_an_error(tmp_path, capsys):
    write_pictures(tmp_path / "pics", [f"{i:03d}.png" for i in range(30)])
    (tmp_path / "pics" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code = main(["train", "--dataset", "folder", "--data-dir", str(tmp_path / "pics"), "--image-size", "8",
                 "--hidden", "16", "--latent", "2", "--epochs", "1", "--quiet", "--test-fraction", "0.3",
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 0 and "broken.png" in err and "1 of 31 files" in err and (tmp_path / "run/checkpoint.npz").exists()

    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "a.jpg").write_text("no")
    (tmp_path / "none" / "b.png").write_bytes(b"")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    for folder, needle in (("none", "none of its 2 .png/.jpg/.jpeg files is a readable picture"),
                           ("empty", "no .png, .jpg or .jpeg files"), ("nowhere", "no such directory")):
        code = main(["train", "--dataset", "folder", "--data-dir", str(tmp_path / folder), "--cache-dir",
                     str(tmp_path / "cache2"), "--out", str(tmp_path / "run2")])
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("minivae: error")]
        assert code == 2 and len(err) == 1 and needle in err[0], err
    code = main(["train", "--dataset", "shapes", "--channels", "1", "--out", str(tmp_path / "run3")])
    assert code == 2 and "channels: only for the folder data set" in capsys.readouterr().err


def test_memory_mapped_run_matches_in_memory_run(tmp_path):
    write_pictures(tmp_path / "pics", [f"{i:03d}.png" for i in range(48)], size=(24, 20))
    options = dict(channels=1, image_size=16, test_fraction=0.25, cache_dir=tmp_path / "cache")
    data = load_dataset("folder", tmp_path / "pics", **options)
    assert isinstance(data.train, MappedImages) and data.train.shape[1:] == (1, 16, 16)
    settings = dict(model="mlp", hidden=(32,), latent=4, epochs=2, batch_size=8, seed=3)
    mapped = minivae.train(tmp_path / "mapped", dataset="folder", data_dir=str(tmp_path / "pics"), quiet=True,
                           **{**options, "cache_dir": str(options["cache_dir"])}, **settings)
    loaded = minivae.train(tmp_path / "loaded", data=(data.train[:], data.test[:]), quiet=True, **settings)
    assert mapped.metrics[-1]["test_loss"] == loaded.metrics[-1]["test_loss"]
    for name, p in mapped.vae.params.items():
        assert np.array_equal(p, loaded.vae.params[name]), name


def test_mapped_images_index_like_an_array(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (20, 1, 2, 2), dtype=np.uint8)
    np.save(tmp_path / "a.npy", a)
    rows = np.array([3, 17, 0, 9, 4])
    m = MappedImages(np.load(tmp_path / "a.npy", mmap_mode="r"), rows)
    for key in (np.array([4, 0, 2, 2]), slice(1, 4), slice(None), 3, -1):
        assert np.array_equal(m[key], a[rows][key]) and type(m[key]) is np.ndarray
    assert m.shape == (5, 1, 2, 2) and len(m) == 5


def test_folder_options_are_checked(tmp_path):
    write_pictures(tmp_path, ["a.png"])
    for options, needle in ((dict(channels=2), "channels must be 1"), (dict(test_fraction=1.0), "test_fraction"),
                            (dict(image_size=0), "image_size")):
        with pytest.raises(MinivaeError, match=needle):
            load_dataset("folder", tmp_path, cache_dir=tmp_path / "c", **options)
    with pytest.raises(MinivaeError, match="leave the (train|test) split empty"):
        load_dataset("folder", tmp_path, cache_dir=tmp_path / "c")
