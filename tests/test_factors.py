"""What the factors measure (factors.py): MIG and linear probes on codes with a known answer, and the commands."""
import json

import numpy as np
import pytest
from PIL import Image

import minivae
from minivae.cli import main
from minivae.data.shapes import FACTOR_KINDS, ROTATION_SYMMETRY, render, scored_factors
from minivae.factors import carried_factors, entropy, mig, mutual_information, probe_score, scored_labels

N = 4000
KINDS = {"class": "categorical", "size": "continuous", "angle": "angular"}


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(0)
    return {"class": rng.integers(0, 4, N), "size": rng.uniform(1, 3, N), "angle": rng.uniform(0, 2 * np.pi, N)}


def test_mig_of_a_code_that_copies_each_factor_is_one(factors):
    labels = scored_labels(factors, KINDS)
    copy = np.column_stack([factors["class"], factors["size"], np.mod(factors["angle"], 2 * np.pi)])
    assert mig(copy, labels) == pytest.approx(1.0, abs=0.03)
    # two latents copying the same factor: its gap is 0
    assert mig(np.column_stack([copy, copy[:, 1]]), labels) == pytest.approx(2 / 3, abs=0.03)


def test_mig_of_noise_is_zero(factors):
    noise = np.random.default_rng(1).standard_normal((N, 5))
    assert mig(noise, scored_labels(factors, KINDS)) == pytest.approx(0.0, abs=0.03)


def test_mutual_information_and_entropy():
    a = np.array([0, 1, 2, 3] * 50)
    assert entropy(a) == pytest.approx(np.log(4))
    assert mutual_information(a, a) == pytest.approx(np.log(4))
    assert mutual_information(a, a // 2) == pytest.approx(np.log(2))
    assert mutual_information(a, np.repeat([0, 1], 100)) == pytest.approx(0.0, abs=1e-12)


def test_linear_probes(factors):
    rng = np.random.default_rng(2)
    mix = rng.standard_normal((3, 3))
    code = np.column_stack([np.cos(factors["angle"]), np.sin(factors["angle"]), factors["size"]]) @ mix
    half = N // 2
    for name, expected in (("size", 1.0), ("angle", 1.0)):
        score = probe_score(KINDS[name], code[:half], factors[name][:half], code[half:], factors[name][half:])
        assert score == pytest.approx(expected, abs=1e-9), name
    noise = rng.standard_normal((N, 3))
    assert probe_score("continuous", noise[:half], factors["size"][:half], noise[half:], factors["size"][half:]) < 0.01
    one_hot = np.eye(4)[factors["class"]] + 0.1 * rng.standard_normal((N, 4))
    assert probe_score("categorical", one_hot[:half], factors["class"][:half], one_hot[half:],
                       factors["class"][half:]) == 1.0


def test_rotations_that_draw_the_same_image_score_the_same():
    f = {"shape": np.arange(4), "x": np.full(4, 0.5), "y": np.full(4, 0.5), "scale": np.full(4, 0.2),
         "rotation": np.full(4, 0.3), "hue": np.full(4, 0.1), "background": np.full(4, 0.2)}
    turned = {**f, "rotation": f["rotation"] + 2 * np.pi / np.array(ROTATION_SYMMETRY)}
    assert np.array_equal(render(f, 32), render(turned, 32))
    np.testing.assert_allclose(scored_factors(f)["rotation"], scored_factors(turned)["rotation"], atol=1e-12)


def test_carried_factors(factors):
    code = np.column_stack([factors["size"], np.random.default_rng(3).standard_normal(N), factors["class"]])
    assert carried_factors(code, factors, KINDS)[::2] == ["size", "class"]


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("factors") / "run"
    minivae.train(out, dataset="shapes", n_train=256, n_test=300, hidden=(16,), latent=3, batch_size=64, epochs=1,
                  quiet=True)
    return out


def test_factors_command(shapes_run, capsys):
    assert main(["factors", "--checkpoint", str(shapes_run), "--n-probe", "300", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["factors"]) == set(FACTOR_KINDS) and 0 <= r["mig"] <= 1
    assert all(-1 < f["probe"] <= 1 and 0 <= f["latent"] < 3 for f in r["factors"].values())
    assert main(["factors", "--checkpoint", str(shapes_run)]) == 0
    assert "MIG" in capsys.readouterr().out


def test_traverse_labels_rows_by_factor(shapes_run, tmp_path, capsys):
    assert main(["traverse", "--checkpoint", str(shapes_run), "--out", str(tmp_path / "t.png"), "--steps", "4"]) == 0
    assert "factor each row carries most: z" in capsys.readouterr().out
    _, dims, _, labels = minivae.traverse(shapes_run, None, steps=4)
    assert len(labels) == 3 and all(label.split(": ")[1] in FACTOR_KINDS for label in labels)
    assert Image.open(tmp_path / "t.png").width > 4 * 66  # the margin holding the labels
