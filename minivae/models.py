"""Model builders: the architectures minivae trains, by name.

mlp   (the PyTorch examples VAE, and Burda et al.'s deeper variant with --hidden 200,200 --latent 50 --activation tanh)
      encoder  Dense(D→H₁) f, ..., Dense(H_last→2Z)          decoder  Dense(Z→H_last) f, ..., Dense(H₁→k·D)

Parameter names are "{encoder|decoder}.{layer index}.{W|b}"; the index counts every layer of the Sequential.
"""
import numpy as np

from .elbo import VAE
from .errors import MinivaeError
from .layers import Dense, Sequential
from .likelihoods import get_likelihood

DEFAULTS = {
    "mlp": {"image_shape": (1, 28, 28), "latent": 20, "hidden": (400,), "activation": "relu"},
}


def build_model(name, *, rng, image_shape=None, latent=None, hidden=None, activation=None, likelihood="bernoulli",
                dtype=np.float32):
    """A freshly initialized VAE called `name`; unset arguments take the model's defaults (DEFAULTS)."""
    if name not in DEFAULTS:
        raise MinivaeError(f"unknown model {name!r}; expected one of {', '.join(DEFAULTS)}")
    d = DEFAULTS[name]
    config = {"model": name,
              "image_shape": [int(s) for s in (image_shape or d["image_shape"])],
              "latent": int(latent or d["latent"]),
              "hidden": [int(h) for h in (hidden or d["hidden"])],
              "activation": activation or d["activation"],
              "likelihood": likelihood,
              "dtype": np.dtype(dtype).name}
    return build_from_config(config, rng=rng)


def build_from_config(config, *, rng):
    """Rebuild a VAE from the `config` dict that `build_model` records (and checkpoints store)."""
    if config["latent"] < 1 or any(h < 1 for h in config["hidden"]):
        raise MinivaeError(f"latent size and hidden widths must be ≥ 1, got latent {config['latent']}, "
                           f"hidden {config['hidden']}")
    lik = get_likelihood(config["likelihood"])
    dtype = np.dtype(config["dtype"])
    C, H, W = config["image_shape"]
    D, Z, act = C * H * W, config["latent"], config["activation"]
    widths = [D, *config["hidden"]]
    encoder = Sequential([*(Dense(a, b, act, rng=rng, dtype=dtype) for a, b in zip(widths, widths[1:])),
                          Dense(widths[-1], 2 * Z, rng=rng, dtype=dtype)])
    back = [Z, *config["hidden"][::-1]]
    decoder = Sequential([*(Dense(a, b, act, rng=rng, dtype=dtype) for a, b in zip(back, back[1:])),
                          Dense(back[-1], lik.outputs_per_value * D, rng=rng, dtype=dtype)])
    return VAE(encoder, decoder, lik, Z, (C, H, W), (D,), config)
