"""Datasets as tensors on the device, from the `dataset` config group.

Every image dataset returns a `Data`: inputs already standardized, targets as one-hot (soft-label ready) float
rows. The text dataset returns token windows with integer next-token targets (`Data.is_lm`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.data.sampler import EpochSampler

__all__ = ["Data", "EpochSampler", "build_dataset", "check_available", "standardize_per_image"]


@dataclass
class Data:
    x_train: torch.Tensor
    y_train: torch.Tensor  # (N, C) one-hot / soft labels
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def is_lm(self) -> bool:
        """Language modelling: integer next-token targets (B, T) instead of soft labels (B, C)."""
        return not self.y_train.is_floating_point()

    def to(self, device) -> Data:
        return Data(*(t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test)), self.num_classes)


def standardize_per_image(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over each image's own pixels."""
    flat = x.reshape(len(x), -1)
    mean = flat.mean(1, keepdim=True)
    std = flat.std(1, keepdim=True)
    return ((flat - mean) / (std + eps)).reshape(x.shape)


def one_hot(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(y.long(), num_classes).float()


def subset(data: Data, num_examples: int) -> Data:
    """The first num_examples training examples (the split is already shuffled with a fixed seed)."""
    if num_examples <= 0 or num_examples >= len(data.x_train):
        return data
    return Data(data.x_train[:num_examples], data.y_train[:num_examples], data.x_test, data.y_test, data.num_classes)


VISION = ("cifar10", "cifar100", "mnist", "fashion_mnist")  # torchvision's, read from data_dir
DATASETS = ("mnist5k", "text", *VISION)


def build_dataset(cfg, device: torch.device) -> Data:
    if cfg.name == "mnist5k":
        from bench.data.mnist5k import load_mnist5k

        data = load_mnist5k(cfg.num_test)
    elif cfg.name == "text":
        from bench.data.text import load_text

        data = load_text(cfg)
    elif cfg.name in VISION:
        from bench.data.vision import load_torchvision

        data = load_torchvision(cfg)
    else:
        raise ValueError(f"dataset.name={cfg.name}: unknown dataset")
    return subset(data, cfg.num_examples).to(device)


def check_available(cfg) -> None:
    """Raise DataMissing (one line: where to put the files, how to fetch them) if the dataset is not on disk, and
    ConfigError for a name that is no dataset."""
    if cfg.name not in DATASETS:
        from bench.errors import ConfigError

        raise ConfigError(f"dataset.name={cfg.name}: no such dataset (available: {', '.join(DATASETS)})")
    if cfg.name == "text":
        from bench.data.text import missing_message
    elif cfg.name in VISION:
        from bench.data.vision import missing_message
    else:
        return
    message = missing_message(cfg)
    if message:
        from bench.data.vision import DataMissing

        raise DataMissing(message)
