"""Losses over soft labels (one-hot or mixup) and accuracy (docs/paper.md section 6).

For language modelling the targets are integer token ids (B, T) and the outputs logits (B, T, vocab): xent is
then the next-token cross-entropy averaged over tokens, and mse compares the outputs with one-hot rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def xent(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a probability vector per example (or a token id), averaged over the batch."""
    if not targets.is_floating_point():
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0.5 * mean over batch and classes of (f - y)^2."""
    if not targets.is_floating_point():
        targets = F.one_hot(targets, outputs.shape[-1]).to(outputs.dtype)
    return 0.5 * (outputs - targets).pow(2).mean()


LOSSES = {"xent": xent, "mse": mse}


def xent_each(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """xent of each example (a token window: the mean over its tokens); xent is their mean."""
    if not targets.is_floating_point():
        return F.cross_entropy(logits.transpose(1, -1), targets, reduction="none").flatten(1).mean(1)
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1)


def mse_each(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """mse of each example; mse is their mean."""
    if not targets.is_floating_point():
        targets = F.one_hot(targets, outputs.shape[-1]).to(outputs.dtype)
    return 0.5 * (outputs - targets).pow(2).flatten(1).mean(1)


# each loss per example: evaluation sums them over the test set in one float64 sum, so that its value does not
# depend on the chunks it is computed in (eval_batch_size does not change results: bench/runfolder/)
PER_EXAMPLE = {"xent": xent_each, "mse": mse_each}


def correct(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Number of examples whose top output is the top target class (a 0-dim tensor, no sync). A token window
    counts as the fraction of its tokens predicted right, so that correct / examples is the token accuracy."""
    if not targets.is_floating_point():
        return (outputs.argmax(-1) == targets).float().flatten(1).mean(1).sum()
    return (outputs.argmax(-1) == targets.argmax(-1)).sum()
