"""A chain of layers: forward runs them in order, backward in reverse (the chain rule, one layer at a time)."""


class Sequential:
    """Layers applied in order. Parameters are named "{index}.{name}", the index counting every layer."""

    def __init__(self, layers):
        self.layers = list(layers)

    @property
    def params(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    @property
    def grads(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy, need_dx=True):
        """Back through every layer; the first one computes dL/dx only if the caller needs it."""
        for i in range(len(self.layers) - 1, -1, -1):
            dy = self.layers[i].backward(dy, need_dx=need_dx or i > 0)
        return dy
