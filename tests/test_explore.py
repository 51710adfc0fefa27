"""What users see: interpolate / traverse / manifold / reconstruct / sample (Python and CLI), curves.png, the
progress bar, and the package-level API."""
import io
import sys

import numpy as np
import pytest
from PIL import Image

import minivae
from minivae.cli import main
from minivae.errors import MinivaeError
from minivae.explore import encode_mean, mean_kl_per_dimension, read_pictures
from minivae.pictures import decode_pictures
from minivae.plots import PALETTE, nice_ticks, plot
from minivae.progress import bar_enabled, progress_bar
from test_data_idx import write_idx_dir


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One epoch of a 784-16-2 VAE on 64 random 28 x 28 'MNIST' images (the pictures need not be pretty)."""
    root = tmp_path_factory.mktemp("explore")
    write_idx_dir(root / "mnist", n_train=64, n_test=16, size=(28, 28))
    minivae.train(root / "run", dataset="mnist", data_dir=str(root / "mnist"), epochs=2, hidden=(16,), latent=2,
                  batch_size=32, quiet=True)
    return root / "run"


def test_interpolate_rows_run_between_two_codes(run, tmp_path):
    pictures = minivae.interpolate(run, tmp_path / "i.png", rows=3, steps=5, seed=1)
    assert pictures.shape == (3 * 7, 1, 28, 28)
    vae, _, _ = minivae.load_checkpoint(run / "checkpoint.npz")
    grid = pictures.reshape(3, 7, 1, 28, 28)
    ends = np.concatenate([grid[:, 0], grid[:, 6]])  # the two test images of each row, as pictures in [0, 1]
    assert np.all(np.isin(np.rint(ends * 255), np.arange(256))), "the end columns are not the 8-bit test images"
    images = np.rint(ends * 255).astype(np.uint8)
    mu = encode_mean(vae, images)
    assert np.allclose(grid[:, 1], decode_pictures(vae, mu[:3]), atol=1e-6), "t = 0 is not decode(μ(x_a))"
    assert np.allclose(grid[:, 5], decode_pictures(vae, mu[3:]), atol=1e-6), "t = 1 is not decode(μ(x_b))"
    assert Image.open(tmp_path / "i.png").size == (2 * (7 * 30 + 2), 2 * (3 * 30 + 2))


def test_traverse_sorts_dimensions_by_kl_and_moves_one_at_a_time(run, tmp_path):
    pictures, dims, kl, _ = minivae.traverse(run, tmp_path / "t.png", index=2, span=2.0, steps=5)
    assert pictures.shape == (2 * 5, 1, 28, 28) and sorted(dims) == [0, 1]
    assert kl[0] >= kl[1], "rows are not in decreasing KL"
    vae, _, _ = minivae.load_checkpoint(run)
    from minivae.data import load_dataset
    test = load_dataset("mnist", str(run.parent / "mnist")).test
    assert np.allclose(kl, mean_kl_per_dimension(vae, test)[dims])
    mu = encode_mean(vae, test[2:3])[0]
    for row, d in enumerate(dims):
        z = np.repeat(mu[None], 5, 0)
        z[:, d] += np.linspace(-2, 2, 5)
        assert np.allclose(pictures[row * 5:(row + 1) * 5], decode_pictures(vae, z), atol=1e-6)
    assert np.allclose(pictures[2], pictures[7], atol=1e-6), "the middle column (t = 0) should be decode(μ(x))"
    assert len(minivae.traverse(run, None, dims=1)[1]) == 1


def test_manifold_is_the_decoded_quantile_grid(run, tmp_path):
    pictures = minivae.manifold(run, tmp_path / "m.png", n=4)
    vae, _, _ = minivae.load_checkpoint(run)
    q = np.array([-1.6448536269514729, -0.385320466407568, 0.385320466407568, 1.6448536269514722])  # Φ⁻¹(u)
    top_left, bottom_right = decode_pictures(vae, np.array([[q[0], q[3]], [q[3], q[0]]]))
    assert np.allclose(pictures[0], top_left, atol=1e-5) and np.allclose(pictures[15], bottom_right, atol=1e-5)
    assert Image.open(tmp_path / "m.png").size == (2 * (4 * 30 + 2),) * 2


def test_manifold_needs_a_2d_latent(tmp_path, capsys):
    write_idx_dir(tmp_path / "mnist", n_train=32, n_test=8, size=(28, 28))
    minivae.train(tmp_path / "run", dataset="mnist", data_dir=str(tmp_path / "mnist"), epochs=1, hidden=(8,),
                  latent=3, quiet=True)
    assert main(["manifold", "--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "m.png")]) == 2
    assert "latent size is 3" in capsys.readouterr().err
    assert not (tmp_path / "m.png").exists()


def test_reconstruct_own_pictures(run, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)).save(folder / "a.jpg")
    Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8)).save(folder / "b.PNG")
    Image.new("RGBA", (28, 28), (255, 255, 255, 128)).save(folder / "c.png")
    (folder / "notes.txt").write_text("not a picture, and not a picture suffix: skipped")
    images, paths = read_pictures(folder, (1, 28, 28))
    assert [p.name for p in paths] == ["a.jpg", "b.PNG", "c.png"] and images.shape == (3, 1, 28, 28)
    assert np.all(images[2] == 255)  # RGBA white -> gray 255
    pictures = minivae.reconstruct(run, folder, tmp_path / "r.png", ncol=4)
    assert pictures.shape == (8, 1, 28, 28)  # a row of 4 originals (one blank) above a row of 4 reconstructions
    assert np.allclose(pictures[:3] * 255, images) and np.all(pictures[3] == 1)
    vae, _, _ = minivae.load_checkpoint(run)
    assert np.allclose(pictures[4:7], decode_pictures(vae, encode_mean(vae, images)), atol=1e-6)


def test_reconstruct_errors(run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    for folder, needle in [("empty", "no .png"), ("bad", "x.png: not a readable picture"), ("nowhere", "no such")]:
        code = main(["reconstruct", "--checkpoint", str(run), "--data-dir", str(tmp_path / folder),
                     "--out", str(tmp_path / "r.png")])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_cli_commands(run, tmp_path, capsys):
    for command in ("interpolate", "traverse", "manifold", "sample"):
        out = tmp_path / f"{command}.png"
        assert main([command, "--checkpoint", str(run / "checkpoint.npz"), "--out", str(out)]) == 0, command
        assert out.stat().st_size > 0
    assert "by average KL" in capsys.readouterr().out
    assert main(["traverse", "--checkpoint", str(run), "--index", "99"]) == 2
    assert "outside the 16 test images" in capsys.readouterr().err


def test_sample_is_seeded(run):
    a = minivae.sample(run, None, n=5, seed=3)
    assert a.shape == (5, 1, 28, 28) and np.array_equal(a, minivae.sample(run, None, n=5, seed=3))
    assert not np.array_equal(a, minivae.sample(run, None, n=5, seed=4))


def test_training_writes_curves(run):
    img = Image.open(run / "curves.png")
    assert img.size == (900, 230)
    assert len(np.unique(np.asarray(img).reshape(-1, 3), axis=0)) > 10, "curves.png is blank"


def test_nice_ticks():
    assert nice_ticks(0, 10) == [0, 5, 10]
    assert nice_ticks(93.2, 181.7) == [50, 100, 150, 200]
    assert len(nice_ticks(5.0, 5.0)) >= 2


def test_scatter_labels_of_coinciding_points_are_stacked(tmp_path):
    def rows_with_labels(texts):
        path = tmp_path / f"{len(texts)}.png"
        plot(path, "t", "x", "y", {"a": ([1.0, 1.0, 2.0], [0.0, 0.0, 1.0])}, lines=False, point_labels={"a": texts})
        pixels = np.asarray(Image.open(path).convert("RGB"), np.float64)[:, :430]  # the plot, without the legend
        near = np.linalg.norm(pixels - np.array(PALETTE[0]), axis=2) < 60  # anti-aliased text: near the colour
        return int(near.any(axis=1).sum())

    one, two = rows_with_labels(["first"]), rows_with_labels(["first", "second"])
    assert two >= one + 8, f"the second label adds {two - one} rows: drawn over the first"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal(tmp_path, monkeypatch):
    assert not bar_enabled(False, io.StringIO()) and bar_enabled(False, Terminal()) and not bar_enabled(True,
                                                                                                          Terminal())
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    train_module = sys.modules["minivae.training"]  # redraw at every step (tqdm waits 0.1 s between redraws)
    monkeypatch.setattr(train_module, "progress_bar",
                        lambda it, quiet, **kw: progress_bar(it, quiet, mininterval=0, miniters=1, **kw))
    rng = np.random.default_rng(0)
    data = (rng.integers(0, 256, (200, 1, 4, 4), dtype=np.uint8), rng.integers(0, 256, (8, 1, 4, 4), dtype=np.uint8))
    minivae.train(tmp_path / "a", data=data, epochs=1, batch_size=10, hidden=(4,), latent=2)
    shown = terminal.getvalue()
    for needle in ("epoch 1/1", "step=20", "loss=", "kl=", "img_s="):
        assert needle in shown, f"{needle!r} not in the progress bar: {shown[-300:]!r}"
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    minivae.train(tmp_path / "b", data=data, epochs=1, batch_size=10, hidden=(4,), latent=2, quiet=True)
    assert quiet.getvalue() == ""
    assert list(progress_bar(range(3), quiet=True)) == [0, 1, 2]


def test_package_api():
    for name in ("train", "sample", "evaluate", "interpolate", "traverse", "manifold", "reconstruct",
                 "load_checkpoint", "gradcheck"):
        assert callable(getattr(minivae, name)), name


def test_pictures_read_as_a_user_expects(tmp_path):
    """16-bit and float pictures are scaled (not clipped at 255), EXIF orientation is applied, and a file is read
    only in the format its extension names."""
    ramp = np.linspace(0, 1, 8 * 8).reshape(8, 8)
    Image.fromarray((ramp * 65535).astype(np.uint16)).save(tmp_path / "a16.png")
    Image.fromarray(ramp.astype(np.float32), "F").save(tmp_path / "b-float.tif")
    images, _ = read_pictures(tmp_path, (1, 8, 8))
    for picture in images:
        assert np.abs(picture[0].astype(float) - ramp * 255).max() <= 1, picture  # the ramp, not a wall of 255s

    upright = np.zeros((4, 8), np.uint8)
    upright[:, :2] = 255  # a bright stripe on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    folder = tmp_path / "exif"
    folder.mkdir()
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(folder / "c.png", exif=exif)
    images, _ = read_pictures(folder, (1, 4, 8))
    assert np.array_equal(images[0, 0], upright)

    (folder / "c.png").unlink()
    Image.fromarray(upright).save(folder / "d.png", format="JPEG")
    with pytest.raises(MinivaeError, match="d.png: not a readable picture"):
        read_pictures(folder, (1, 4, 8))


def test_sample_draw_shows_draws_from_the_decoded_distribution(run, tmp_path, capsys):
    """--draw: one x ~ p(x|z) per prior z (Bernoulli: 0 or 1 only), seeded, from the same z as the mean pictures."""
    means = minivae.sample(run, None, n=200, seed=3)
    draws = minivae.sample(run, None, n=200, seed=3, draw=True)
    assert set(np.unique(draws)) <= {0.0, 1.0} and not np.array_equal(draws, means)
    assert np.array_equal(draws, minivae.sample(run, None, n=200, seed=3, draw=True))
    # each pixel is 1 with probability equal to its mean picture: the counts agree within 4 binomial deviations
    assert abs(draws.sum() - means.sum()) < 4 * np.sqrt(np.sum(means * (1 - means)))
    out = tmp_path / "draws.png"
    assert main(["sample", "--checkpoint", str(run), "--draw", "--n", "9", "--out", str(out)]) == 0
    assert "draws x ~ p(x|z)" in capsys.readouterr().out and out.stat().st_size > 0
