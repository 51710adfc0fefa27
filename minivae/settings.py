"""What a training run was asked to do, and the one set of checks that every value passes.

`TrainSettings` is stored in each checkpoint, so a run describes itself. Its values come from three places: the
command line's flags, `train(**kwargs)` from Python, and a checkpoint being resumed. All three pass the same checks
(`CHECKS`: type and range per field); the CLI's argparse types are built from the same functions (`flag_type`), so a
value refused as a flag is refused when it comes out of a stored file too.
"""
import argparse
import math
import os
from dataclasses import dataclass, fields

import numpy as np

from .data.folder import FOLDER_DEFAULTS
from .errors import MinivaeError
from .likelihoods import LIKELIHOODS


def is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def positive_int(v):
    if not (is_int(v) and v >= 1):
        raise MinivaeError(f"expected a positive integer, got {v!r}")
    return int(v)


def non_negative_int(v):
    if not (is_int(v) and v >= 0):
        raise MinivaeError(f"expected an integer ≥ 0, got {v!r}")
    return int(v)


def positive_float(v):
    if not (is_number(v) and v > 0):
        raise MinivaeError(f"expected a positive finite number, got {v!r}")
    return float(v)


def non_negative_float(v):
    if not (is_number(v) and v >= 0):
        raise MinivaeError(f"expected a finite number ≥ 0, got {v!r}")
    return float(v)


def unit_interval(v):
    if not (is_number(v) and 0 < v <= 1):
        raise MinivaeError(f"expected a number in (0, 1], got {v!r}")
    return float(v)


def open_fraction(v):
    if not (is_number(v) and 0 < v < 1):
        raise MinivaeError(f"expected a number between 0 and 1 (exclusive), got {v!r}")
    return float(v)


def channels(v):
    if not (is_int(v) and v in (1, 3)):
        raise MinivaeError(f"expected 1 (gray) or 3 (RGB), got {v!r}")
    return int(v)


def widths(v):
    if not (isinstance(v, (tuple, list)) and all(is_int(w) and w >= 1 for w in v)):
        raise MinivaeError(f"expected a list of positive integer widths, got {v!r}")
    return tuple(int(w) for w in v)


def latent_sizes(v):
    """A latent size Z, or mlp2's two (Z₁, Z₂)."""
    if is_int(v):
        return positive_int(v)
    if not (isinstance(v, (tuple, list)) and len(v) == 2 and all(is_int(z) and z >= 1 for z in v)):
        raise MinivaeError(f"expected a positive integer or two (mlp2), got {v!r}")
    return tuple(int(z) for z in v)


def hidden_sizes(v):
    """Hidden widths, or mlp2's two lists of them (x↔z₁, z₁↔z₂)."""
    if isinstance(v, (tuple, list)) and v and all(isinstance(h, (tuple, list)) for h in v):
        if len(v) != 2:
            raise MinivaeError(f"expected a list of widths, or two lists (mlp2), got {v!r}")
        return tuple(widths(h) for h in v)
    return widths(v)


def text(v):
    if not (isinstance(v, str) and v):
        raise MinivaeError(f"expected a name, got {v!r}")
    return v


def path(v):
    """A file or directory name, str or os.PathLike, stored as text (checkpoints hold JSON)."""
    return text(os.fspath(v) if isinstance(v, os.PathLike) else v)


def boolean(v):
    if not isinstance(v, bool):
        raise MinivaeError(f"expected true or false, got {v!r}")
    return v


def one_of(*names):
    def check(v):
        if v not in names:
            raise MinivaeError(f"expected one of {', '.join(names)}, got {v!r}")
        return v
    return check


def optional(check):
    return lambda v: None if v is None else check(v)


def options_dict(v):
    if v is not None and not (isinstance(v, dict) and all(isinstance(k, str) and is_number(x) for k, x in v.items())):
        raise MinivaeError(f"expected a mapping of option names to numbers, got {v!r}")
    return v


def check(name, checker, value):
    """`checker(value)`, its MinivaeError prefixed with `name`: for the arguments of the Python API's functions."""
    try:
        return checker(value)
    except MinivaeError as e:
        raise MinivaeError(f"{name}: {e}") from None


def flag_type(checker, parse):
    """An argparse type: the text parsed by `parse` (int or float), then `checker`ed; errors read as argparse's."""
    def convert(string):
        try:
            return checker(parse(string))
        except (ValueError, MinivaeError) as e:
            message = str(e) if isinstance(e, MinivaeError) else f"expected a number, got {string!r}"
            raise argparse.ArgumentTypeError(message) from None
    convert.__name__ = checker.__name__  # argparse names the type in its messages
    return convert


@dataclass
class TrainSettings:
    """What `minivae train` was asked to do (stored in the checkpoint, so a run is self-describing)."""
    dataset: str = "shapes"
    data_dir: str | None = None
    model: str = "mlp"
    likelihood: str = "bernoulli"
    likelihood_options: dict | None = None  # the likelihood's hyperparameters, e.g. {"components": 10}
    epochs: int = 4  # the default run, MLP on shapes, in < 90 s on 2 quiet cores (docs/running-example.md)
    batch_size: int = 128
    lr: float = 1e-3
    lr_decay: float = 1.0  # learning rate of epoch e (1-based): lr · lr_decay^(e − 1)
    lr_schedule: str = "decay"  # "burda": stage i = 0, 1, … lasts 3^i epochs at lr · 10^(−i/7) (train.learning_rate)
    adam_eps: float = 1e-8      # Adam's ε (Burda et al. 2016: 1e-4)
    latent: int | tuple | None = None  # mlp2: (Z₁, Z₂)
    hidden: tuple | None = None        # mlp2: ((H₁…), (H₂…))
    activation: str | None = None
    seed: int = 0
    binarize: bool = False
    dtype: str = "float32"
    n_train: int | None = None
    n_test: int | None = None
    objective: str = "elbo"  # what the optimizer minimizes (objectives.py): elbo (β, warm-up, free bits) or iwae
    k: int | None = None     # iwae: importance samples per example (default 5)
    beta: float = 1.0        # elbo: weight β on the KL
    warmup: float = 0.0      # elbo: epochs over which the KL weight rises linearly from 0 to β
    free_bits: float = 0.0   # elbo: KL floor λ per latent dimension (nats)
    init_from: str | None = None  # start from this run's (or checkpoint's) parameters with a fresh optimizer
    channels: int | None = None        # folder: 1 (gray) or 3 (RGB, default)
    image_size: int | None = None      # folder: pictures become image_size × image_size (default 64)
    test_fraction: float | None = None  # folder: share of pictures held out for testing (default 0.1)
    cache_dir: str | None = None       # folder: where the decoded pictures are cached (data/cache.py)
    engine: str = "fast"     # "reference": every step through the NumPy reference functions (engines.py)

    def folder_options(self):
        return {name: getattr(self, name) for name in FOLDER_DEFAULTS}

    def make_objective(self):
        from .objectives import make_objective
        return make_objective(self.objective, k=self.k, beta=self.beta, warmup=self.warmup, free_bits=self.free_bits)

    def validate(self):
        """Check every field's type and range (CHECKS), then the combinations; MinivaeError names the field."""
        for name, checker in CHECKS.items():
            setattr(self, name, check(name, checker, getattr(self, name)))
        if self.binarize and self.likelihood != "bernoulli":
            raise MinivaeError(f"binarize resamples pixels to {{0, 1}} and only fits the bernoulli likelihood, "
                               f"not {self.likelihood}")
        if self.lr_schedule == "burda" and self.lr_decay != 1:
            raise MinivaeError("lr_schedule burda sets the rate of every epoch; it takes no lr_decay")
        if self.free_bits and self.model == "mlp2":
            raise MinivaeError("free bits need a closed-form KL per latent dimension; mlp2's middle layer has only "
                               "a sampled one")
        self.make_objective()  # MinivaeError for a bad combination of objective, k, beta, warmup and free_bits
        return self


CHECKS = {
    "dataset": one_of("shapes", "mnist", "frey", "folder", "custom"), "data_dir": optional(path), "model": text,
    "likelihood": one_of(*LIKELIHOODS), "likelihood_options": options_dict,
    "epochs": positive_int, "batch_size": positive_int, "lr": positive_float, "lr_decay": unit_interval,
    "lr_schedule": one_of("decay", "burda"), "adam_eps": positive_float,
    "latent": optional(latent_sizes), "hidden": optional(hidden_sizes), "activation": optional(text),
    "seed": non_negative_int, "binarize": boolean, "dtype": one_of("float32", "float64"),
    "n_train": optional(positive_int), "n_test": optional(positive_int), "objective": one_of("elbo", "iwae"),
    "k": optional(positive_int), "beta": positive_float, "warmup": non_negative_float,
    "free_bits": non_negative_float, "init_from": optional(path), "channels": optional(channels),
    "image_size": optional(positive_int), "test_fraction": optional(open_fraction), "cache_dir": optional(path),
    "engine": one_of("fast", "reference"),
}
assert set(CHECKS) == {f.name for f in fields(TrainSettings)}


def known_names(given):
    unknown = sorted(set(given) - set(CHECKS))
    if unknown:
        raise MinivaeError(f"unknown training setting{'s' * (len(unknown) > 1)} {', '.join(unknown)} (expected some "
                           f"of {', '.join(CHECKS)})")


def new_settings(given):
    """TrainSettings from the settings `given` (the rest take their defaults), validated."""
    known_names(given)
    return TrainSettings(**given).validate()


def stored_settings(path, meta):
    """The TrainSettings stored in checkpoint `path`'s meta, validated like flags; MinivaeError if absent or bad."""
    stored = meta.get("train")
    names = {f.name for f in fields(TrainSettings)}
    if not isinstance(stored, dict) or not set(stored) <= names:
        raise MinivaeError(f"checkpoint {path} holds no training settings of this minivae version")
    try:
        return TrainSettings(**stored).validate()
    except MinivaeError as e:
        raise MinivaeError(f"checkpoint {path} has invalid training settings: {e}") from None


def resumed_settings(path, meta, given):
    """The stored settings of the run being resumed, with `epochs` (and `data_dir`, `cache_dir`) changed to the values
    `given`; any other setting given must equal the stored one (a resumed run is the same run). `given` holds only
    what the user actually passed (flags on the command line, keyword arguments in Python)."""
    s = stored_settings(path, meta)
    known_names(given)
    for name, value in given.items():
        value = check(name, CHECKS[name], value)
        if name in ("epochs", "data_dir", "cache_dir"):
            setattr(s, name, value)
        elif value != getattr(s, name):
            raise MinivaeError(f"resuming continues the run in {path.parent} with its own settings: {name} is "
                               f"{getattr(s, name)!r} there, not {value!r} (only epochs, data_dir and cache_dir may "
                               f"change)")
    return s
