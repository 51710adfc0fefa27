"""What the latent dimensions measure, on data whose generating factors are known (shapes, or your own factors).

Every score reads the encoder's mean code μ(x) (N, Z) against the factors v_k (N,) of the same images. Three kinds
of factor: *categorical* (integer classes, e.g. the shape), *angular* (an angle in [0, 2π), e.g. shapes' hue and
rotation, where 0 and 2π are the same value) and *continuous* (anything else).

Linear probe (how much of v_k a linear read-out of μ(x) recovers on held-out images): least squares with an
intercept, fitted on one set of images, scored on another:

    continuous   ŷ = [μ, 1] w,  R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²            (held-out ȳ; 1 perfect, ≤ 0 nothing)
    angular      the same R² for the pair (cos v, sin v), sums over both columns
    categorical  one-hot targets, class = argmax of [μ, 1] W: accuracy     (chance: the largest class's share)

Mutual information gap (MIG, Chen et al. 2018, "Isolating sources of disentanglement in VAEs"): each latent μ_j is
discretized into BINS equal-width bins over its range, and so is each non-categorical factor (angles over [0, 2π)).
With the plug-in estimate I(μ_j; v_k) from the joint histogram and H(v_k) the factor's entropy (nats),

    MIG_k = (I(μ_{j₁}; v_k) − I(μ_{j₂}; v_k)) / H(v_k),    j₁, j₂ the latents of largest and second largest I,
    MIG   = (1/K) Σ_k MIG_k  ∈ [0, 1]:

1 when each factor is carried by one latent alone, 0 when two latents carry it equally or none carries it. (With
N images, the plug-in I is biased upwards by about (bins_j − 1)(bins_k − 1)/(2N) nats, e.g. 0.05 for 20 × 20 bins
and N = 2000.)
"""
import numpy as np

from .data.shapes import FACTOR_KINDS, scored_factors

BINS = 20


def design(codes):
    """[μ, 1]: the probe's inputs, (N, Z + 1) float64."""
    return np.column_stack([np.asarray(codes, np.float64), np.ones(len(codes))])


def fit_probe(codes, targets):
    """Least-squares weights W (Z + 1, T) with [μ, 1] W ≈ targets (N, T)."""
    return np.linalg.lstsq(design(codes), targets, rcond=None)[0]


def angle_targets(angles):
    """Angles (N,) -> (N, 2) points (cos, sin) on the circle."""
    return np.column_stack([np.cos(angles), np.sin(angles)])


def probe_score(kind, train_codes, train_values, test_codes, test_values):
    """Held-out score of a linear probe from μ to one factor: R² (continuous, angular) or accuracy (categorical)."""
    if kind == "categorical":
        classes = np.unique(train_values)
        w = fit_probe(train_codes, (train_values[:, None] == classes).astype(np.float64))
        return float(np.mean(classes[np.argmax(design(test_codes) @ w, axis=1)] == test_values))
    prepare = angle_targets if kind == "angular" else (lambda v: np.asarray(v, np.float64)[:, None])
    y_train, y_test = prepare(train_values), prepare(test_values)
    residual = y_test - design(test_codes) @ fit_probe(train_codes, y_train)
    return float(1 - np.sum(residual ** 2) / np.sum((y_test - y_test.mean(axis=0)) ** 2))


def discretize(values, bins=BINS, lo=None, hi=None):
    """Equal-width bin index 0..bins−1 of each value over [lo, hi] (default: the values' range)."""
    values = np.asarray(values, np.float64)
    lo = values.min() if lo is None else lo
    hi = values.max() if hi is None else hi
    return np.clip(np.floor((values - lo) / max(hi - lo, 1e-300) * bins), 0, bins - 1).astype(np.int64)


def discrete_factor(kind, values, bins=BINS):
    """A factor as integer labels for MIG: classes as they are, angles in bins over [0, 2π), else bins of its range."""
    if kind == "categorical":
        return np.unique(values, return_inverse=True)[1]
    if kind == "angular":
        return discretize(np.mod(values, 2 * np.pi), bins, 0.0, 2 * np.pi)
    return discretize(values, bins)


def entropy(labels):
    """H of integer labels (N,), plug-in, nats."""
    p = np.bincount(labels) / len(labels)
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def mutual_information(a, b):
    """I(a; b) of two integer label arrays (N,), plug-in from the joint histogram, nats."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= len(a)
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])))


def mutual_information_matrix(codes, labels, bins=BINS):
    """I(μ_j; v_k) for every latent j and factor k: codes (N, Z), labels {name: (N,) ints} -> (Z, K) nats."""
    binned = [discretize(codes[:, j], bins) for j in range(codes.shape[1])]
    return np.array([[mutual_information(b, v) for v in labels.values()] for b in binned])


def gaps(ratio):
    """MIG_k = largest − second largest I(μ_j; v_k) / H(v_k) over j: ratio (Z, K) -> (K,)."""
    top = -np.sort(-ratio, axis=0)
    return top[0] - (top[1] if len(top) > 1 else 0.0)


def mig(codes, labels, bins=BINS):
    """MIG (module docstring): codes (N, Z), labels {name: (N,) ints} -> the mean over factors of MIG_k."""
    return float(np.mean(gaps(normalized_mi(codes, labels, bins)[0])))


def scored_labels(factors, kinds, bins=BINS):
    """{name: (N,) integer labels} of the factors named in `kinds`, as MIG counts them."""
    return {name: discrete_factor(kind, factors[name], bins) for name, kind in kinds.items()}


def normalized_mi(codes, labels, bins=BINS):
    """I(μ_j; v_k) / H(v_k), (Z, K), and the entropies H(v_k), (K,)."""
    entropies = np.array([entropy(v) for v in labels.values()])
    return mutual_information_matrix(codes, labels, bins) / entropies, entropies


def factor_scores(train_codes, train_factors, test_codes, test_factors, kinds, bins=BINS):
    """Per factor: held-out linear probe score and MIG_k; overall MIG (on the test codes).

    kinds: {name: "categorical" | "angular" | "continuous"} for each factor to score.
    -> {"mig": float, "factors": {name: {"kind", "probe" (R² or accuracy), "mig" (MIG_k), "latent" (j₁, the latent
    of largest I), "normalized_mi" (I(μ_{j₁}; v_k) / H(v_k))}}}."""
    labels = scored_labels(test_factors, kinds, bins)
    ratio, _ = normalized_mi(test_codes, labels, bins)
    gap = gaps(ratio)
    rows = {}
    for k, (name, kind) in enumerate(kinds.items()):
        j = int(np.argmax(ratio[:, k]))
        rows[name] = {"kind": kind, "probe": probe_score(kind, train_codes, train_factors[name], test_codes,
                                                         test_factors[name]),
                      "mig": float(gap[k]), "latent": j, "normalized_mi": float(ratio[j, k])}
    return {"mig": float(np.mean(gap)), "factors": rows}


def carried_factors(codes, factors, kinds, bins=BINS):
    """For each latent j, the factor it carries most, argmax_k I(μ_j; v_k) / H(v_k) -> list of Z names."""
    ratio, _ = normalized_mi(codes, scored_labels(factors, kinds, bins), bins)
    return [list(kinds)[k] for k in np.argmax(ratio, axis=1)]


def checkpoint_factors(checkpoint, *, n_probe=5000, batch_size=500):
    """factor_scores of a run trained on a data set with known factors (shapes): the probe is fitted on μ(x) of the
    first `n_probe` training images and scored, with MIG, on the test images."""
    from .checkpoint import load_checkpoint
    from .data import load_dataset
    from .errors import MinivaeError
    from .explore import encode_mean
    from .rundir import checkpoint_file
    from .settings import stored_settings

    path = checkpoint_file(checkpoint)
    vae, _, meta = load_checkpoint(path)
    settings = stored_settings(path, meta)
    if settings.dataset != "shapes":
        raise MinivaeError(f"factors needs a run trained on a data set with known factors (shapes), not "
                           f"{settings.dataset!r}")
    data = load_dataset("shapes", seed=settings.seed, n_train=n_probe, n_test=settings.n_test)

    def codes(images):
        return np.concatenate([encode_mean(vae, images[i:i + batch_size]) for i in range(0, len(images), batch_size)])

    values = {split: scored_factors(data.factors[split]) for split in ("train", "test")}
    return factor_scores(codes(data.train), values["train"], codes(data.test), values["test"], FACTOR_KINDS)
