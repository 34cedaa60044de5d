"""A model in plain numpy (no torch): each image pooled to a 4x4 grid per channel (48 values, its
embedding), then a fixed random linear layer to 1000 logits. It knows nothing, so its accuracy is
chance; it shows the shape of a model with an embedding, and runs in any environment with numpy.
"""

import numpy as np


class PooledLinear:
    def __init__(self, seed, grid):
        self.grid = grid
        rng = np.random.default_rng(seed)
        self.weights = rng.standard_normal((3 * grid * grid, 1000)).astype(np.float32)

    def embed(self, batch):
        """[N, 3, H, W] -> [N, 3 * grid * grid]: the mean of each cell of a grid x grid split."""
        n, c, h, w = batch.shape
        g = self.grid
        cells = batch[:, :, : h - h % g, : w - w % g].reshape(n, c, g, h // g, g, w // g)
        return cells.mean(axis=(3, 5)).reshape(n, -1)

    def __call__(self, batch):
        return self.embed(batch) @ self.weights


def load(seed=0, grid=4):
    return PooledLinear(seed, grid)
