"""Parameter-free reshapes between image tensors and vectors (the gradient is the inverse reshape)."""


class Flatten:
    """(B, C, H, W) -> (B, C·H·W); backward reshapes dy back."""

    params = grads = {}

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self.shape) if need_dx else None


class Reshape:
    """(B, C·H·W) -> (B, C, H, W) for a fixed `shape` = (C, H, W); backward flattens dy."""

    params = grads = {}

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, dy, need_dx=True):
        return dy.reshape(dy.shape[0], -1) if need_dx else None
