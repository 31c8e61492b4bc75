"""One seed drives everything: separate, named RNG streams derived from it (init, data order, augmentation)."""

from __future__ import annotations

import hashlib

import torch


def derive(seed: int, stream: str) -> int:
    """A 63-bit seed for one named stream, stable across Python processes and platforms."""
    digest = hashlib.sha256(f"{seed}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for one stream (CPU so that results do not depend on the device)."""
    return torch.Generator().manual_seed(derive(seed, stream))
