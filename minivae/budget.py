"""Memory budgets: what a job will allocate, computed from its model config and sizes before anything is allocated.

A job that cannot fit is refused with the figures ("training needs 66.1 GB, 23.4 GB available") instead of being
killed by the kernel half-way, with no message, or raising MemoryError from deep inside NumPy.

Available memory is the smaller of
    MemAvailable in /proc/meminfo   what the kernel can hand out without swapping (free + reclaimable caches)
    RLIMIT_AS − VmSize              the room left under the process's address-space limit (`ulimit -v`), if one is set
(either is ignored where the system does not report it). The estimates count the arrays that scale with the job:

    model        P parameters (dense W, b; conv W, b) × bytes per value
    training     4 P (parameters, gradients, Adam's two moments) + B × A × 3 bytes per value, A = the values every
                 layer outputs for one example (conv layers also their im2col columns), kept for the backward pass,
                 its gradient, and a temporary
    decoding     n rows through the decoder, its outputs and the pictures (float64) and PNG canvas they become
    evaluation   the float64 twin of the model, `rows` rows of K-sample passes (evaluation.py's docstring: 3Z + ΣH + 3kD
                 float64 values a row for the MLP, every decoder layer's output for a conv model; 1.5× for the
                 previous pass still alive), and the test set in float64

Small fixed costs (Python, NumPy, Numba, one batch of uint8 data) are not counted: the budget guards against the
orders of magnitude a mistyped flag or a hostile file asks for, not against the last megabyte.
"""
import math
import os
import resource

from .errors import MinivaeError


def available_bytes():
    """Bytes this process can still allocate (module docstring); None where the system reports neither figure."""
    limits = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(max(0, soft - address_space_used()))
    return min(limits) if limits else None


def address_space_used():
    """VmSize of this process in bytes (0 where /proc/self/status is absent)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def format_bytes(n):
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n} bytes"


def require(nbytes, what):
    """MinivaeError "<what> needs X GB, Y GB available" unless `nbytes` fit in the available memory."""
    available = available_bytes()
    if available is not None and nbytes > available:
        raise MinivaeError(f"{what} needs {format_bytes(nbytes)}, {format_bytes(available)} available")


CONV_STACKS = {"conv64": ((32, 64, 128, 256), ()), "burgess": ((32, 32, 64, 64), (256, 256))}  # as models.py


def layer_sizes(config, k):
    """(encoder, decoder) lists of (parameters, values output per example) for each layer of `config`'s model
    (models.py's architectures); k = the likelihood's outputs per data value."""
    C, H, W = config["image_shape"]
    D, Z, hidden = C * H * W, config["latent"], list(config["hidden"])

    def dense(a, b):
        return a * b + b, b

    def conv(cin, cout, h, w):  # kernel 4, stride 2: output (cout, h, w), im2col columns (cin·16, h·w)
        return cin * cout * 16 + cout, cout * h * w + cin * 16 * h * w

    def conv_t(cin, cout, h, w):  # its transpose: output (cout, h, w), columns (cout·16, h/2 · w/2) before col2im
        return cin * cout * 16 + cout, cout * h * w + cout * 16 * (h // 2) * (w // 2)

    def stack(widths):
        return [dense(a, b) for a, b in zip(widths, widths[1:])]

    if config["model"] in ("mlp", "linear"):  # linear: no hidden layers (its shared σ² counted as a z-dependent one)
        return stack([D, *hidden, 2 * Z]), stack([Z, *hidden[::-1], k * D])
    if config["model"] == "mlp2":  # encoder1 + encoder2; decoder2 + decoder1 (hvae.py)
        (Z1, Z2), (H1, H2) = Z, hidden
        return (stack([D, *H1, 2 * Z1]) + stack([Z1, *H2, 2 * Z2]),
                stack([Z2, *H2[::-1], 2 * Z1]) + stack([Z1, *H1[::-1], k * D]))
    if config["model"] == "conv28":
        flat = 64 * (H // 4) * (W // 4)
        return ([conv(C, 32, H // 2, W // 2), conv(32, 64, H // 4, W // 4), dense(flat, 256), dense(256, 2 * Z)],
                [dense(Z, 256), dense(256, flat), conv_t(64, 32, H // 2, W // 2), conv_t(32, k * C, H, W)])
    convs, dense_widths = CONV_STACKS[config["model"]]
    channels, n = [C, *convs], len(convs)
    encoder = [conv(a, b, H >> i, W >> i) for i, (a, b) in enumerate(zip(channels, channels[1:]), 1)]
    widths = [channels[-1] * (H >> n) * (W >> n), *dense_widths]
    back, up = [Z, *widths[::-1]], channels[:0:-1]
    decoder = [*(dense(a, b) for a, b in zip(back, back[1:])),
               *(conv_t(a, b, H >> i, W >> i) for i, (a, b) in zip(range(n - 1, 0, -1), zip(up, up[1:])))]
    return ([*encoder, *(dense(a, b) for a, b in zip(widths, widths[1:])), dense(widths[-1], 2 * Z)],
            [*decoder, conv_t(up[-1], k * C, H, W)])


def latent_values(config):
    """Latent values per sample: Z, or Z₁ + Z₂ for mlp2."""
    return sum(config["latent"]) if config["model"] == "mlp2" else config["latent"]


def outputs_per_value(config):
    from .likelihoods import get_likelihood
    return get_likelihood(config["likelihood"], **(config.get("likelihood_options") or {})).outputs_per_value


def itemsize(config):
    return 8 if config["dtype"] == "float64" else 4


def model_bytes(config):
    encoder, decoder = layer_sizes(config, outputs_per_value(config))
    return sum(p for p, _ in encoder + decoder) * itemsize(config)


def training_bytes(config, batch_size):
    """Parameters, gradients, Adam's moments and one batch's activations (module docstring)."""
    encoder, decoder = layer_sizes(config, outputs_per_value(config))
    activations = sum(a for _, a in encoder + decoder) + 3 * latent_values(config)
    return 4 * model_bytes(config) + 3 * batch_size * activations * itemsize(config)


def decoding_bytes(config, n):
    """The model and `n` latent rows decoded into pictures and laid out in a PNG grid (at most 2× enlarged)."""
    _, decoder = layer_sizes(config, outputs_per_value(config))
    C, H, W = config["image_shape"]
    per_row = 2 * sum(a for _, a in decoder) * itemsize(config) + 2 * C * H * W * 8 + 4 * C * (H + 2) * (W + 2)
    return model_bytes(config) + n * per_row


def evaluation_bytes(config, rows, n_images):
    """The float64 twin, `rows` K-sample rows (evaluation.py) and `n_images` test images in float64."""
    C, H, W = config["image_shape"]
    D, k = C * H * W, outputs_per_value(config)
    _, decoder = layer_sizes(config, k)
    per_row = (3 * latent_values(config) + sum(a for _, a in decoder) + 2 * k * D) * 8
    twin = model_bytes(config) // itemsize(config) * 8
    return model_bytes(config) + twin + math.ceil(1.5 * rows * per_row) + n_images * D * 8
