"""Losses over soft labels (one-hot or mixup) and accuracy (SPEC section 6)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def xent(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a probability vector per example, averaged over the batch."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0.5 * mean over batch and classes of (f - y)^2."""
    return 0.5 * (outputs - targets).pow(2).mean()


LOSSES = {"xent": xent, "mse": mse}


def correct(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Number of examples whose top output is the top target class (a 0-dim tensor, no sync)."""
    return (outputs.argmax(-1) == targets.argmax(-1)).sum()
