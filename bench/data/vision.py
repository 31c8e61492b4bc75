"""CIFAR-10/100, MNIST and Fashion-MNIST through torchvision's dataset classes (they read and download the files).

Offline, a missing dataset is one line (DataMissing) that says where the files go and how to fetch them, raised
before anything trains (the preflight and the Trainer both check).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from bench.errors import ConfigError

SUBSET_SEED = 20240613  # the num_examples subset is fixed, whatever the run's seed

NAMES = {"cifar10": "CIFAR10", "cifar100": "CIFAR100", "mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "mnist": 10, "fashion_mnist": 10}


class DataMissing(ConfigError):
    """The dataset's files are not where the config says."""


def dataset_class(name: str):
    import torchvision.datasets

    return getattr(torchvision.datasets, NAMES[name])


def expected_files(cls, root: str) -> list[str]:
    """The files torchvision reads, from the class's own file lists."""
    if hasattr(cls, "base_folder"):  # CIFAR
        names = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        return [os.path.join(root, cls.base_folder, f) for f in names]
    raw = os.path.join(root, cls.__name__, "raw")  # MNIST, FashionMNIST: MNIST.raw_folder
    return [os.path.join(raw, os.path.splitext(os.path.basename(url))[0]) for url, _ in cls.resources]


def missing_message(cfg) -> str | None:
    """One line if the dataset is not on disk and download is off; None when it can be loaded."""
    if cfg.download:
        return None
    cls = dataset_class(cfg.name)
    missing = [f for f in expected_files(cls, cfg.root) if not os.path.exists(f)]
    if not missing:
        return None
    folder = os.path.dirname(missing[0])
    return (
        f"dataset={cfg.name}: not found under dataset.root={cfg.root} (missing {missing[0]}); put torchvision's "
        f"files in {folder}/, or fetch them once with dataset={cfg.name} dataset.download=true on a machine with "
        f"network"
    )


def load_torchvision(cfg):
    """The train and test sets as a Data: standardized per image, NCHW float32, one-hot targets."""
    from bench.data import Data, one_hot, standardize_per_image

    message = missing_message(cfg)
    if message:
        raise DataMissing(message)
    cls = dataset_class(cfg.name)
    try:
        train, test = (cls(cfg.root, train=t, download=cfg.download) for t in (True, False))
    except RuntimeError as e:  # torchvision's integrity check: a corrupt or partial download
        raise DataMissing(f"dataset={cfg.name}: could not read it under dataset.root={cfg.root}: {e}") from e

    def tensors(ds):
        x = torch.as_tensor(np.asarray(ds.data), dtype=torch.float32)
        x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x[:, None]  # CIFAR: NHWC -> NCHW; MNIST: NHW -> N1HW
        return standardize_per_image(x), one_hot(torch.as_tensor(np.asarray(ds.targets)), NUM_CLASSES[cfg.name])

    x_train, y_train = tensors(train)
    if 0 < cfg.num_examples < len(x_train):  # a fixed random subset, so that classes stay balanced on average
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(SUBSET_SEED))
        x_train, y_train = x_train[order], y_train[order]
    return Data(x_train, y_train, *tensors(test), num_classes=NUM_CLASSES[cfg.name])
