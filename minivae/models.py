"""Model builders: the architectures minivae trains, by name.

mlp   (the PyTorch examples VAE, and Burda et al.'s deeper variant with --hidden 200,200 --latent 50 --activation tanh)
      encoder  Dense(D→U₁) f, ..., Dense(U_last→2Z)          decoder  Dense(Z→U_last) f, ..., Dense(U₁→k·D)
conv28 (MNIST-sized images; any C×H×W with H, W divisible by 4, e.g. Frey's 1×28×20)
      encoder  Conv(C→32) f, Conv(32→64) f, Flatten (64·H/4·W/4 = 3136), Dense(3136→256) f, Dense(256→2Z)
      decoder  Dense(Z→256) f, Dense(256→3136) f, Reshape(64, H/4, W/4), ConvT(64→32) f, ConvT(32→k·C)
conv64 (64×64×3 images; any C×H×W with H, W divisible by 16)
      encoder  Conv C→32→64→128→256 (each f), Flatten (256·H/16·W/16 = 4096), Dense(4096→2Z)
      decoder  Dense(Z→4096) f, Reshape(256, H/16, W/16), ConvT 256→128→64→32 (each f), ConvT(32→k·C)
burgess (the 64×64 VAE of the disentanglement literature, Burgess et al. 2018; any C×H×W with H, W divisible by 16)
      encoder  Conv C→32→32→64→64 (each f), Flatten (64·H/16·W/16 = 1024), Dense(1024→256) f, Dense(256→256) f,
               Dense(256→2Z)
      decoder  Dense(Z→256) f, Dense(256→256) f, Dense(256→1024) f, Reshape(64, H/16, W/16),
               ConvT 64→64→32→32 (each f), ConvT(32→k·C)
linear (probabilistic PCA with the normal likelihood, Tipping & Bishop 1999; ppca.py has its exact log p(x))
      encoder  Dense(D→2Z)                                    decoder  Dense(Z→k·D), no activation
      with the normal likelihood: decoder Dense(Z→D), AppendShared(D): one learned log-variance s for every value
      and every z, σ² = σ²_min + e^s (isotropic, as in pPCA: a per-value σ² is factor analysis, which has no
      closed-form maximum-likelihood solution)
mlp2  (Burda et al.'s two stochastic layers, hvae.py; defaults latent (100, 50), hidden ((200, 200), (100, 100)), tanh)
      encoder1 Dense(D→H₁…) f, Dense(→2Z₁)     encoder2 Dense(Z₁→H₂…) f, Dense(→2Z₂)
      decoder2 Dense(Z₂→H₂ reversed…) f, Dense(→2Z₁)     decoder1 Dense(Z₁→H₁ reversed…) f, Dense(→k·D)
      `latent` is the pair (Z₁, Z₂) and `hidden` the pair of width lists (H₁, H₂).
Every Conv/ConvT is kernel 4, stride 2, padding 1: a convolution halves H and W, a transposed one doubles them.
f is the config's `activation` (default relu) for every hidden layer, dense or convolutional; `hidden` (the dense
widths) applies to mlp only. "conv" names conv28 for images up to 32 pixels high and conv64 for larger ones.

Parameter names are "{encoder|decoder}.{layer index}.{W|b}" ("{encoder1|encoder2|decoder2|decoder1}.…" for mlp2);
the index counts every layer of the Sequential.
"""
import numpy as np

from .elbo import VAE
from .engines import get_engine
from .errors import MinivaeError
from .hvae import TwoLayerVAE
from .layers import AppendShared, Flatten, Reshape, Sequential
from .likelihoods import get_likelihood

DEFAULTS = {
    "mlp": {"image_shape": (1, 28, 28), "latent": 20, "hidden": (400,), "activation": "relu"},
    "conv28": {"image_shape": (1, 28, 28), "latent": 16, "hidden": (), "activation": "relu"},
    "conv64": {"image_shape": (3, 64, 64), "latent": 32, "hidden": (), "activation": "relu"},
    "burgess": {"image_shape": (3, 64, 64), "latent": 10, "hidden": (), "activation": "relu"},
    "linear": {"image_shape": (1, 28, 28), "latent": 20, "hidden": (), "activation": "identity"},
    "mlp2": {"image_shape": (1, 28, 28), "latent": (100, 50), "hidden": ((200, 200), (100, 100)), "activation": "tanh"},
}


def build_model(name, *, rng, image_shape=None, latent=None, hidden=None, activation=None, likelihood="bernoulli",
                likelihood_options=None, dtype=np.float32, engine="fast"):
    """A freshly initialized VAE called `name`, on `engine` ("fast" or "reference", engines.py); unset arguments take
    the model's defaults (DEFAULTS).

    `likelihood_options` are the likelihood's hyperparameters (e.g. {"variance": 0.01} for normal-fixed)."""
    return build_from_config(model_config(name, image_shape=image_shape, latent=latent, hidden=hidden,
                                          activation=activation, likelihood=likelihood,
                                          likelihood_options=likelihood_options, dtype=dtype), rng=rng,
                             engine=engine)


def model_config(name, *, image_shape=None, latent=None, hidden=None, activation=None, likelihood="bernoulli",
                 likelihood_options=None, dtype=np.float32):
    """The config dict `build_model` records (and checkpoints store), built without allocating the model."""
    if name == "conv":
        name = "conv28" if image_shape is None or image_shape[1] <= 32 else "conv64"
    if hidden and name not in ("mlp", "mlp2"):
        raise MinivaeError(f"hidden widths apply to the mlp and mlp2 models only, not to {name!r}")
    if name == "linear" and activation not in (None, "identity"):
        raise MinivaeError(f"the linear model has no activation, got {activation!r}")
    if name not in DEFAULTS:
        raise MinivaeError(f"unknown model {name!r}; expected one of {', '.join(DEFAULTS)}, conv")
    if name != "mlp2" and (np.ndim(latent or 0) or any(np.ndim(h) for h in hidden or ())):
        raise MinivaeError(f"two latent sizes and grouped hidden widths (a/b) apply to mlp2 only, not to {name!r}")
    d = DEFAULTS[name]
    return {"model": name,
            "image_shape": [int(s) for s in (image_shape or d["image_shape"])],
            **(two_layer_sizes(latent or d["latent"], hidden or d["hidden"]) if name == "mlp2" else
               {"latent": int(latent or d["latent"]), "hidden": [int(h) for h in (hidden or d["hidden"])]}),
            "activation": activation or d["activation"],
            "likelihood": likelihood,
            "likelihood_options": get_likelihood(likelihood, **(likelihood_options or {})).options(),
            "dtype": np.dtype(dtype).name}


def describe(config):
    """A short name of the model of `config`, e.g. "mlp 784-400-20 (bernoulli, float32)"; mlp2 lists x, H₁, Z₁, H₂, Z₂."""
    C, H, W = config["image_shape"]
    if config["model"] == "mlp2":
        (H1, H2), (Z1, Z2) = config["hidden"], config["latent"]
        sizes = (C * H * W, *H1, Z1, *H2, Z2)
    else:
        sizes = (C * H * W, *config["hidden"], config["latent"])
    return f"{config['model']} {'-'.join(map(str, sizes))} ({config['likelihood']}, {config['dtype']})"


def two_layer_sizes(latent, hidden):
    """mlp2's {"latent": [Z₁, Z₂], "hidden": [[H₁…], [H₂…]]}; MinivaeError unless latent is two sizes and hidden two
    width lists."""
    try:
        latent, hidden = [int(z) for z in latent], [[int(h) for h in widths] for widths in hidden]
    except (TypeError, ValueError):
        latent = hidden = None
    if latent is None or len(latent) != 2 or len(hidden) != 2:
        raise MinivaeError("model mlp2 takes latent = (Z1, Z2) and hidden = ((widths x↔z1), (widths z1↔z2)), e.g. "
                           "--latent 100,50 --hidden 200,200/100,100")
    return {"latent": latent, "hidden": hidden}


def build_from_config(config, *, rng, engine="fast"):
    """Rebuild a VAE from the `config` dict that `build_model` records (and checkpoints store)."""
    if config.get("model") == "mlp2":
        return build_mlp2(config, rng, get_engine(engine))
    if config["latent"] < 1 or any(h < 1 for h in config["hidden"]):
        raise MinivaeError(f"latent size and hidden widths must be ≥ 1, got latent {config['latent']}, "
                           f"hidden {config['hidden']}")
    name = config.get("model", "mlp")
    if name not in BUILDERS:
        raise MinivaeError(f"unknown model {name!r}; expected one of {', '.join(BUILDERS)}")
    lik = get_likelihood(config["likelihood"], **config.get("likelihood_options", {}))
    engine = get_engine(engine)
    encoder, decoder, encoder_input_shape = BUILDERS[name](config, lik.outputs_per_value, rng, engine,
                                                           np.dtype(config["dtype"]))
    shift_output_bias(decoder, lik)
    return VAE(encoder, decoder, lik, config["latent"], config["image_shape"], encoder_input_shape, config, engine)


def shift_output_bias(decoder, lik):
    """Add the likelihood's `output_offset` to the decoder's last bias, block by block: outputs are laid out
    j·D + d (dense) or as channels j·C + c (convolutional), so block j is the j-th run of b.size / k entries."""
    offset = lik.output_offset()
    if np.any(offset):
        b = decoder.layers[-1].params["b"]
        b += offset.astype(b.dtype).repeat(b.size // len(offset))


def dense_stack(widths, n_out, *, engine, activation, rng, dtype):
    """Dense(widths[0]→widths[1]) f, …, Dense(widths[-1]→n_out) with no activation on the last layer."""
    Dense = engine.Dense
    return Sequential([*(Dense(a, b, activation, rng=rng, dtype=dtype) for a, b in zip(widths, widths[1:])),
                       Dense(widths[-1], n_out, rng=rng, dtype=dtype)])


def build_mlp(config, k, rng, engine, dtype):
    """Encoder, decoder and encoder input shape (D,) of the mlp model (module docstring)."""
    C, H, W = config["image_shape"]
    D, Z = C * H * W, config["latent"]
    kw = {"engine": engine, "activation": config["activation"], "rng": rng, "dtype": dtype}
    encoder = dense_stack([D, *config["hidden"]], 2 * Z, **kw)
    decoder = dense_stack([Z, *config["hidden"][::-1]], k * D, **kw)
    return encoder, decoder, (D,)


def build_mlp2(config, rng, engine):
    """The two-stochastic-layer TwoLayerVAE of `config` (module docstring, hvae.py)."""
    sizes = two_layer_sizes(config["latent"], config["hidden"])
    (Z1, Z2), (H1, H2) = sizes["latent"], sizes["hidden"]
    if min(Z1, Z2, *H1, *H2) < 1:
        raise MinivaeError(f"latent sizes and hidden widths must be ≥ 1, got latent {[Z1, Z2]}, hidden {[H1, H2]}")
    lik = get_likelihood(config["likelihood"], **config.get("likelihood_options", {}))
    C, H, W = config["image_shape"]
    D = C * H * W
    kw = {"engine": engine, "activation": config["activation"], "rng": rng, "dtype": np.dtype(config["dtype"])}
    networks = {"encoder1": dense_stack([D, *H1], 2 * Z1, **kw), "encoder2": dense_stack([Z1, *H2], 2 * Z2, **kw),
                "decoder2": dense_stack([Z2, *H2[::-1]], 2 * Z1, **kw),
                "decoder1": dense_stack([Z1, *H1[::-1]], lik.outputs_per_value * D, **kw)}
    shift_output_bias(networks["decoder1"], lik)
    return TwoLayerVAE(networks, lik, (Z1, Z2), config["image_shape"], config, engine)


def conv_image_shape(config, factor):
    """(C, H, W) of a conv model whose stack of stride-2 layers shrinks H and W by `factor`; MinivaeError if the
    image does not divide evenly (the decoder could not mirror the encoder)."""
    C, H, W = config["image_shape"]
    if H % factor or W % factor:
        raise MinivaeError(f"model {config['model']!r} needs image height and width divisible by {factor}, "
                           f"got {C}×{H}×{W}")
    return C, H, W


def build_conv28(config, k, rng, engine, dtype):
    """Encoder, decoder and encoder input shape (C, H, W) of conv28 (module docstring)."""
    C, H, W = conv_image_shape(config, 4)
    Z, f, kw = config["latent"], config["activation"], {"rng": rng, "dtype": dtype}
    Dense, Conv2d, ConvTranspose2d = engine.Dense, engine.Conv2d, engine.ConvTranspose2d
    flat = (64, H // 4, W // 4)
    encoder = Sequential([Conv2d(C, 32, 4, 2, 1, f, **kw), Conv2d(32, 64, 4, 2, 1, f, **kw), Flatten(),
                          Dense(int(np.prod(flat)), 256, f, **kw), Dense(256, 2 * Z, **kw)])
    decoder = Sequential([Dense(Z, 256, f, **kw), Dense(256, int(np.prod(flat)), f, **kw), Reshape(flat),
                          ConvTranspose2d(64, 32, 4, 2, 1, f, **kw), ConvTranspose2d(32, k * C, 4, 2, 1, **kw)])
    return encoder, decoder, (C, H, W)


def build_conv_stack(config, k, rng, engine, dtype, channels, dense):
    """Encoder, decoder and encoder input shape (C, H, W) of a stack of stride-2 convolutions with `channels`
    (after C), then Dense layers of widths `dense`; the decoder mirrors it (conv64, burgess: module docstring)."""
    C, H, W = conv_image_shape(config, 2 ** len(channels))
    Z, f, kw = config["latent"], config["activation"], {"rng": rng, "dtype": dtype}
    Dense, Conv2d, ConvTranspose2d = engine.Dense, engine.Conv2d, engine.ConvTranspose2d
    flat = (channels[-1], H >> len(channels), W >> len(channels))
    convs, widths = [C, *channels], [int(np.prod(flat)), *dense]
    encoder = Sequential([*(Conv2d(a, b, 4, 2, 1, f, **kw) for a, b in zip(convs, convs[1:])), Flatten(),
                          *(Dense(a, b, f, **kw) for a, b in zip(widths, widths[1:])),
                          Dense(widths[-1], 2 * Z, **kw)])
    back, up = [Z, *widths[::-1]], convs[:0:-1]
    decoder = Sequential([*(Dense(a, b, f, **kw) for a, b in zip(back, back[1:])), Reshape(flat),
                          *(ConvTranspose2d(a, b, 4, 2, 1, f, **kw) for a, b in zip(up, up[1:])),
                          ConvTranspose2d(up[-1], k * C, 4, 2, 1, **kw)])
    return encoder, decoder, (C, H, W)


def build_conv64(config, k, rng, engine, dtype):
    return build_conv_stack(config, k, rng, engine, dtype, (32, 64, 128, 256), ())


def build_burgess(config, k, rng, engine, dtype):
    return build_conv_stack(config, k, rng, engine, dtype, (32, 32, 64, 64), (256, 256))


def build_linear(config, k, rng, engine, dtype):
    """Encoder, decoder and encoder input shape (D,) of the linear model (module docstring); k = 2 means the normal
    likelihood, whose log-variance becomes one shared parameter."""
    C, H, W = config["image_shape"]
    D, Z, kw = C * H * W, config["latent"], {"rng": rng, "dtype": dtype}
    Dense = engine.Dense
    encoder = Sequential([Dense(D, 2 * Z, **kw)])
    shared_variance = config["likelihood"] == "normal"
    decoder = Sequential([Dense(Z, D, **kw), AppendShared(D, dtype=dtype)] if shared_variance
                         else [Dense(Z, k * D, **kw)])
    return encoder, decoder, (D,)


BUILDERS = {"mlp": build_mlp, "conv28": build_conv28, "conv64": build_conv64, "burgess": build_burgess,
            "linear": build_linear}
