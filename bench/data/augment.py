"""Augmentation of training batches on the device (docs/paper.md section 6), as the authors coded it.

- flip: horizontal flip of each image with probability 0.5;
- crop: zero-pad `crop_padding` pixels on each side, crop back to the original size at a random corner drawn
  from [0, 2 * padding) per axis (the authors' randint(0, 2p): shifts -p .. p-1);
- mixup: each example mixed with the reversed batch, weight w ~ U(0, 1) per example, labels mixed with the same
  w (soft labels that still sum to one).
Random numbers come from one generator on the batch's device, seeded once from the run's "augment" stream, so the
same seed gives the same augmented batches; nothing is copied from the host per step. The batches measured at
initialization (lambda0, GI-Adam's g0) are augmented too, each by its own instance seeded from its own stream
("lambda0_augment", "g0_augment"), so that measuring them never moves the training stream.
"""

from __future__ import annotations

import torch

from bench.seeding import generator


class Augment:
    def __init__(self, cfg, seed: int, device: torch.device, stream: str = "augment"):
        self.flip = getattr(cfg, "flip", False)
        self.padding = getattr(cfg, "crop_padding", 0)
        self.mixup = getattr(cfg, "mixup", False)
        seed_on_device = int(torch.randint(2**62, (1,), generator=generator(seed, stream)))
        self.generator = torch.Generator(device=device).manual_seed(seed_on_device)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.flip:
            x = self.random_flip(x)
        if self.padding:
            x = self.random_crop(x)
        if self.mixup:
            x, y = self.random_mixup(x, y)
        return x, y

    def uniform(self, *shape: int, like: torch.Tensor) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator, device=like.device, dtype=like.dtype)

    def random_flip(self, x: torch.Tensor) -> torch.Tensor:
        flip = self.uniform(len(x), 1, 1, 1, like=x) < 0.5
        return torch.where(flip, x.flip(-1), x)

    def random_crop(self, x: torch.Tensor) -> torch.Tensor:
        p = self.padding
        B, C, H, W = x.shape
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        corner = torch.randint(2 * p, (B, 2), generator=self.generator, device=x.device)
        rows = (corner[:, 0:1] + torch.arange(H, device=x.device))[:, None, :, None]
        cols = (corner[:, 1:2] + torch.arange(W, device=x.device))[:, None, None, :]
        batch = torch.arange(B, device=x.device)[:, None, None, None]
        channel = torch.arange(C, device=x.device)[None, :, None, None]
        return padded[batch, channel, rows, cols]

    def random_mixup(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.uniform(len(x), 1, like=y)
        y = w * y + (1 - w) * y.flip(0)
        w = w.view(-1, *([1] * (x.ndim - 1)))
        return w * x + (1 - w) * x.flip(0), y

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def build_augment(cfg, seed: int, device: torch.device, stream: str = "augment") -> Augment:
    """The dataset's augmentation (the identity when every flag is off), its random numbers from `stream`."""
    return Augment(cfg, seed, device, stream)
