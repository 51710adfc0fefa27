"""Each likelihood trains end to end on a data set it suits: the test loss falls and prior samples look like the data.

Small budgets (a few hundred Adam steps of a one-hidden-layer MLP on a subset) keep each test to a few seconds; MNIST
is 2×2 average-pooled to 14×14 (rounded, so still 8-bit levels: the categorical decoder's 256 logits per value make
28×28 ten times slower). Sample grids go to the test's temporary directory; the assertions are on statistics (mean
intensity, share of dark pixels, correlation with the mean face), never on pixels.
"""
import numpy as np
import pytest

from minivae.data import load_dataset
from minivae.images import save_grid
from minivae.likelihoods import bits_per_dim, picture
from minivae.models import build_model
from minivae.optim import Adam

# name: (data set, Adam steps, batch size, learning rate, hidden width)
CASES = {"bernoulli": ("mnist", 300, 32, 3e-3, 64),
         "categorical": ("mnist", 60, 16, 1e-2, 64),
         "discretized-logistic": ("mnist", 300, 32, 3e-3, 64),
         "continuous-bernoulli": ("mnist", 1000, 32, 1e-2, 64),  # slow to darken: see test below
         "normal-fixed": ("frey", 800, 32, 3e-3, 128),
         "normal": ("frey", 800, 32, 3e-3, 128)}
LATENT = 8


def pool2(images):
    """(N, 1, 28, 28) uint8 -> (N, 1, 14, 14) uint8 by rounded 2×2 means."""
    N, C, H, W = images.shape
    return np.rint(images.reshape(N, C, H // 2, 2, W // 2, 2).mean((3, 5))).astype(np.uint8)


@pytest.fixture(scope="module")
def mnist14(mnist_dir):
    data = load_dataset("mnist", mnist_dir, n_train=1000, n_test=200)
    return pool2(data.train), pool2(data.test)


@pytest.fixture(scope="module")
def frey(frey_path):
    data = load_dataset("frey", frey_path.parent, n_test=196)
    return data.train, data.test


def mean_loss(vae, x, eps):
    """Mean negative ELBO over x (nats per example) with fixed noise."""
    return float(np.mean(vae.forward(x, eps).loss))


def train(name, train_images, test_images, steps, batch, lr, hidden, seed=0):
    """Returns (vae, test loss before, test loss after)."""
    rng = np.random.default_rng(seed)
    vae = build_model("mlp", rng=rng, image_shape=train_images.shape[1:], likelihood=name, hidden=(hidden,),
                      latent=LATENT)
    lik = vae.likelihood
    x_train, x_test = lik.from_uint8(train_images), lik.from_uint8(test_images)
    lik.check_data(x_train)
    eps_test = np.random.default_rng(seed + 1).standard_normal((len(x_test), LATENT)).astype(vae.dtype)
    before = mean_loss(vae, x_test, eps_test)
    optimizer = Adam(vae.params, lr=lr)
    for _ in range(steps):
        idx = rng.integers(0, len(x_train), batch)
        vae.forward(x_train[idx], rng.standard_normal((batch, LATENT)).astype(vae.dtype))
        optimizer.step(vae.backward())
    return vae, before, mean_loss(vae, x_test, eps_test)


def prior_pictures(vae, n, rng):
    """n prior samples z ~ N(0, I) decoded: (means, samples) as pictures in [0, 1], each (n, C, H, W)."""
    lik = vae.likelihood
    out = vae.decode(rng.standard_normal((n, vae.latent)).astype(vae.dtype))
    shape = (n, *vae.image_shape)
    return lik.to_unit(lik.mean(out)).reshape(shape), lik.to_unit(lik.sample(out, rng)).reshape(shape), out


@pytest.mark.parametrize("name", list(CASES))
def test_likelihood_trains_and_samples_look_like_the_data(name, request, tmp_path):
    dataset, steps, batch, lr, hidden = CASES[name]
    train_images, test_images = request.getfixturevalue("mnist14" if dataset == "mnist" else "frey")
    vae, before, after = train(name, train_images, test_images, steps, batch, lr, hidden)
    lik = vae.likelihood
    D = int(np.prod(vae.image_shape))
    assert np.isfinite(after) and after < before - 0.1 * abs(before) - 10, (name, before, after)
    if lik.discrete:
        assert 0 < bits_per_dim(after, D) < 8, bits_per_dim(after, D)

    rng = np.random.default_rng(1)
    means, samples, out = prior_pictures(vae, 64, rng)
    save_grid(tmp_path / f"{name}-means.png", means, ncol=8)
    save_grid(tmp_path / f"{name}-samples.png", samples, ncol=8)
    save_grid(tmp_path / f"{name}-pictures.png", picture(lik, out).reshape(means.shape), ncol=8)
    assert (tmp_path / f"{name}-samples.png").stat().st_size > 0
    if name not in ("normal", "normal-fixed"):
        lik.check_data(lik.sample(out, rng))  # samples are data the likelihood accepts

    data = test_images / 255.0
    for label, pictures in (("means", means), ("samples", samples)):
        assert abs(pictures.mean() - data.mean()) < (0.1 if dataset == "mnist" else 0.15), \
            (label, pictures.mean(), data.mean())
    assert means.std(0).mean() > 0.02  # the pictures differ from each other: the decoder uses z
    if dataset == "mnist":  # digits: strokes where digits have them, on a background darker than the strokes
        corr = np.corrcoef(samples.mean(0).ravel(), data.mean(0).ravel())[0, 1]
        assert corr > 0.7, corr
        assert np.mean(samples > 0.5) > 0.02
        # The continuous Bernoulli's background is grey for long: its density at x = 0 grows only like |l| as the
        # logit l → −∞ (log p like log|l|), so the pull toward black fades; the Bernoulli's grows like e^{|l|}.
    else:  # faces: reconstructions beat the average face, so z carries who and which expression
        x = lik.from_uint8(test_images)
        recon = lik.to_unit(lik.mean(vae.decode(vae.encode(x)[0])))
        flat = data.reshape(len(data), -1)
        baseline = np.abs(flat - flat.mean(0)).mean()
        assert np.abs(recon - flat).mean() < 0.8 * baseline, (np.abs(recon - flat).mean(), baseline)
