"""The benchmark models as a framework-free table, shared by the PyTorch and JAX twins (minivae builds its
own in minivae/models.py; the parity tests check they agree)."""

# name -> (latent Z, input shape of one example, encoder spec, decoder spec).
# A spec entry is ("dense", I, O, act) | ("conv", C_in, C_out, act) | ("convT", C_in, C_out, act)
# | ("flatten",) | ("reshape", shape); every conv is k=4, stride 2, padding 1 (halves / doubles H and W).
ARCHS = {
    "mlp": (20, (784,),
            [("dense", 784, 400, "relu"), ("dense", 400, 2 * 20, None)],
            [("dense", 20, 400, "relu"), ("dense", 400, 784, None)]),
    "mlp64": (20, (12288,),  # the mlp model on 3×64×64 images (shapes)
              [("dense", 12288, 400, "relu"), ("dense", 400, 2 * 20, None)],
              [("dense", 20, 400, "relu"), ("dense", 400, 12288, None)]),
    "conv28": (16, (1, 28, 28),
               [("conv", 1, 32, "relu"), ("conv", 32, 64, "relu"), ("flatten",),
                ("dense", 3136, 256, "relu"), ("dense", 256, 2 * 16, None)],
               [("dense", 16, 256, "relu"), ("dense", 256, 3136, "relu"), ("reshape", (64, 7, 7)),
                ("convT", 64, 32, "relu"), ("convT", 32, 1, None)]),
    "conv64": (32, (3, 64, 64),
               [("conv", 3, 32, "relu"), ("conv", 32, 64, "relu"), ("conv", 64, 128, "relu"),
                ("conv", 128, 256, "relu"), ("flatten",), ("dense", 4096, 2 * 32, None)],
               [("dense", 32, 4096, "relu"), ("reshape", (256, 4, 4)), ("convT", 256, 128, "relu"),
                ("convT", 128, 64, "relu"), ("convT", 64, 32, "relu"), ("convT", 32, 3, None)]),
    "burgess": (10, (3, 64, 64),
                [("conv", 3, 32, "relu"), ("conv", 32, 32, "relu"), ("conv", 32, 64, "relu"), ("conv", 64, 64, "relu"),
                 ("flatten",), ("dense", 1024, 256, "relu"), ("dense", 256, 256, "relu"), ("dense", 256, 2 * 10, None)],
                [("dense", 10, 256, "relu"), ("dense", 256, 256, "relu"), ("dense", 256, 1024, "relu"),
                 ("reshape", (64, 4, 4)), ("convT", 64, 64, "relu"), ("convT", 64, 32, "relu"),
                 ("convT", 32, 32, "relu"), ("convT", 32, 3, None)]),
}
K, STRIDE, PAD = 4, 2, 1
