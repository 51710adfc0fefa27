"""PyTorch twins of minivae's three VAEs, for the parity tests and the benchmark (not part of the library).

Each model is the same network as in `minivae.models`, written the ordinary PyTorch way (nn.Linear, nn.Conv2d,
nn.ConvTranspose2d, autograd, torch.optim.Adam). minivae's parameter names are the exchange format:

    "{encoder|decoder}.{i}.W" / ".b"   i counts every layer of the Sequential, Flatten/Reshape included;
                                       an activation is fused into the layer before it and has no index.
    Dense            W (I, O)            = nn.Linear.weight.T
    Conv2d           W (C_out, C_in, k, k) = nn.Conv2d.weight
    ConvTranspose2d  W (C_in, C_out, k, k) = nn.ConvTranspose2d.weight

To keep that numbering, the torch Sequential holds one module per minivae layer: a bare parameter layer, a
`nn.Sequential(layer, nn.ReLU())` block for a layer with a fused ReLU, or a parameter-free reshape.

Loss (nats, per example, then the batch mean), identical to minivae:
    z     = mu + exp(logvar / 2) * eps                         eps: (B, Z), passed in
    recon = sum_pixels BCEWithLogits(logits, x)               = -log p(x | z), x in [0, 1]
    kl    = 0.5 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j) = KL(N(mu, exp(logvar)) || N(0, I))
    loss  = mean_B(recon + kl)
"""
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from archs import ARCHS  # noqa: E402  (benchmarks/ is on sys.path wherever the twins are imported)


def _layer(entry):
    kind = entry[0]
    if kind == "flatten":
        return nn.Flatten()
    if kind == "reshape":
        return nn.Unflatten(1, entry[1])
    _, n_in, n_out, act = entry
    layer = {"dense": lambda: nn.Linear(n_in, n_out),
             "conv": lambda: nn.Conv2d(n_in, n_out, 4, stride=2, padding=1),
             "convT": lambda: nn.ConvTranspose2d(n_in, n_out, 4, stride=2, padding=1)}[kind]()
    return nn.Sequential(layer, nn.ReLU()) if act == "relu" else layer


class VAE(nn.Module):
    """encoder: x -> [mu | logvar] (B, 2Z);  decoder: z -> logits, shaped like one example (flat for mlp, NCHW)."""

    def __init__(self, name):
        super().__init__()
        self.name = name
        self.latent, self.x_shape, enc, dec = ARCHS[name]
        self.encoder = nn.Sequential(*[_layer(e) for e in enc])
        self.decoder = nn.Sequential(*[_layer(e) for e in dec])

    def forward(self, x, eps):
        """Returns (logits, mu, logvar); x is reshaped to (B, *x_shape) (so (B, 1, 28, 28) is fine for mlp)."""
        h = self.encoder(x.reshape(x.shape[0], *self.x_shape))
        mu, logvar = h[:, :self.latent], h[:, self.latent:]
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decoder(z), mu, logvar


def build_model(name, *, dtype=torch.float32, seed=None):
    """A twin with PyTorch's default initialization (seeded with torch.manual_seed when seed is given)."""
    if seed is not None:
        torch.manual_seed(seed)
    return VAE(name).to(dtype)


def _param_layers(module):
    """Yield (minivae prefix, parameter layer, kind) for every layer that has parameters."""
    for part in getattr(module, "parts", ("encoder", "decoder")):
        for i, block in enumerate(getattr(module, part)):
            layer = block[0] if isinstance(block, nn.Sequential) else block
            if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                yield f"{part}.{i}", layer


def to_minivae_params(module):
    """The twin's parameters as minivae's dict name -> ndarray (copies; Linear weights transposed)."""
    params = {}
    for prefix, layer in _param_layers(module):
        W = layer.weight.detach().cpu().numpy()
        params[prefix + ".W"] = np.ascontiguousarray(W.T if isinstance(layer, nn.Linear) else W)
        params[prefix + ".b"] = layer.bias.detach().cpu().numpy().copy()
    return params


def to_minivae_grads(module):
    """The gradients left by backward(), in minivae's names and layouts."""
    grads = {}
    for prefix, layer in _param_layers(module):
        gW = layer.weight.grad.detach().cpu().numpy()
        grads[prefix + ".W"] = np.ascontiguousarray(gW.T if isinstance(layer, nn.Linear) else gW)
        grads[prefix + ".b"] = layer.bias.grad.detach().cpu().numpy().copy()
    return grads


def load_minivae_params(module, params):
    """Copy minivae's dict name -> ndarray into the twin (in place, keeping the twin's dtype). Names must match."""
    expected = {p + s for p, _ in _param_layers(module) for s in (".W", ".b")}
    if set(params) != expected:
        raise KeyError(f"parameter names differ: missing {sorted(expected - set(params))}, "
                       f"unexpected {sorted(set(params) - expected)}")
    with torch.no_grad():
        for prefix, layer in _param_layers(module):
            W = np.asarray(params[prefix + ".W"])
            W = W.T if isinstance(layer, nn.Linear) else W
            if tuple(W.shape) != tuple(layer.weight.shape):
                raise ValueError(f"{prefix}.W: shape {W.shape} does not fit torch weight {tuple(layer.weight.shape)}")
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
            layer.bias.copy_(torch.from_numpy(np.asarray(params[prefix + ".b"])))
    return module


def loss(module, x, eps):
    """(mean_loss, recon_mean, kl_mean) in nats; see the module docstring. Tensors with autograd history."""
    logits, mu, logvar = module(x, eps)
    x = x.reshape(logits.shape)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = 0.5 * (mu * mu + torch.exp(logvar) - 1.0 - logvar).sum(1)
    return (recon + kl).mean(), recon.mean(), kl.mean()


# ---- two stochastic layers (minivae/hvae.py, Burda et al. 2016): z2 -> z1 -> x, inference x -> z1 -> z2

class TwoLayerVAE(nn.Module):
    """Four tanh MLPs named as minivae's: encoder1 q(z1|x), encoder2 q(z2|z1), decoder2 p(z1|z2), decoder1 p(x|z1).

    Each Gaussian network outputs [mu | logvar]; decoder1 outputs Bernoulli logits. Defaults: Burda et al.'s MNIST
    model, latents (100, 50), hidden ((200, 200), (100, 100))."""

    parts = ("encoder1", "encoder2", "decoder2", "decoder1")

    def __init__(self, D=784, latents=(100, 50), hidden=((200, 200), (100, 100))):
        super().__init__()
        (Z1, Z2), (H1, H2) = latents, hidden
        self.latents = latents

        def mlp(widths, n_out):
            return nn.Sequential(*[nn.Sequential(nn.Linear(a, b), nn.Tanh()) for a, b in zip(widths, widths[1:])],
                                 nn.Linear(widths[-1], n_out))
        self.encoder1, self.encoder2 = mlp([D, *H1], 2 * Z1), mlp([Z1, *H2], 2 * Z2)
        self.decoder2, self.decoder1 = mlp([Z2, *H2[::-1]], 2 * Z1), mlp([Z1, *H1[::-1]], D)

    def terms(self, x, eps, analytic_top):
        """recon = -log p(x|z1) and kl = log q(z1|x) - log p(z1|z2) + top per sample, each (B, K), for x (B, ...)
        and eps = [eps1 | eps2] (B, K, Z1 + Z2); top = KL(q(z2|z1) || N(0, I)) in closed form (analytic_top) or
        log q(z2|z1) - log p(z2) at the sample, written with torch.distributions."""
        Z1, Z2 = self.latents
        B, K, _ = eps.shape
        x = x.reshape(B, -1)
        normal = torch.distributions.Normal

        def gaussian(h, Z):
            return normal(h[..., :Z], torch.exp(0.5 * h[..., Z:]))
        q1 = gaussian(self.encoder1(x)[:, None], Z1)
        z1 = q1.loc + q1.scale * eps[..., :Z1]
        q2 = gaussian(self.encoder2(z1), Z2)
        z2 = q2.loc + q2.scale * eps[..., Z1:]
        p1 = gaussian(self.decoder2(z2), Z1)
        logits = self.decoder1(z1)
        recon = F.binary_cross_entropy_with_logits(logits, x[:, None].expand_as(logits), reduction="none").sum(-1)
        prior = normal(torch.zeros_like(z2), torch.ones_like(z2))
        top = (torch.distributions.kl_divergence(q2, prior) if analytic_top
               else q2.log_prob(z2) - prior.log_prob(z2)).sum(-1)
        return recon, q1.log_prob(z1).sum(-1) - p1.log_prob(z1).sum(-1) + top


def two_layer_elbo_loss(module, x, eps):
    """(mean -ELBO, recon mean, kl mean) with one sample eps (B, Z1 + Z2) and the top KL in closed form."""
    recon, kl = module.terms(x, eps[:, None], analytic_top=True)
    return (recon + kl).mean(), recon.mean(), kl.mean()


def two_layer_iwae_loss(module, x, eps):
    """-(1/B) sum_b log (1/K) sum_k w_bk for eps (B, K, Z1 + Z2), every log-density sampled."""
    recon, kl = module.terms(x, eps, analytic_top=False)
    return -(torch.logsumexp(-(recon + kl), 1) - np.log(eps.shape[1])).mean()


def make_optimizer(module, lr=1e-3):
    """torch.optim.Adam with PyTorch's defaults (betas 0.9/0.999, eps 1e-8, no weight decay)."""
    return torch.optim.Adam(module.parameters(), lr=lr)


def train_step(module, opt, x, eps):
    """One step: forward, backward, Adam. Returns the mean loss as a (detached) tensor."""
    opt.zero_grad(set_to_none=True)
    mean_loss, _, _ = loss(module, x, eps)
    mean_loss.backward()
    opt.step()
    return mean_loss.detach()
