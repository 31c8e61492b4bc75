"""Minibatch indices: a fresh permutation each epoch, the last partial batch kept (docs/paper.md section 6)."""

from __future__ import annotations

import torch


class EpochSampler:
    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device):
        self.n = n
        self.batch_size = batch_size if batch_size > 0 else n  # 0 = full batch
        self.generator = generator
        self.device = device
        self._perm: torch.Tensor | None = None
        self._pos = n  # start with an exhausted epoch

    def next(self) -> torch.Tensor:
        if self._pos >= self.n:
            # drawn on the CPU so that the order does not depend on the device; one copy per epoch (every step at
            # full batch), from pinned memory on CUDA so that the host does not wait for the device
            perm = torch.randperm(self.n, generator=self.generator)
            if self.device.type == "cuda":
                perm = perm.pin_memory()
            self._perm = perm.to(self.device, non_blocking=True)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx

    def state_dict(self) -> dict:
        return {
            "perm": None if self._perm is None else self._perm.cpu(),
            "pos": self._pos,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self._perm = None if state["perm"] is None else state["perm"].to(self.device)
        self._pos = state["pos"]
        self.generator.set_state(state["generator"])
