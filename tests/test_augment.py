"""On-device augmentation: seeded, flips and crops as closed forms, mixup labels that sum to one."""

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from bench.config import validate
from bench.data.augment import Augment
from bench.runfolder.store import RunStore
from bench.train import Trainer
from tests.conftest import compose_cfg

CPU = torch.device("cpu")


def flags(flip=False, crop_padding=0, mixup=False):
    return SimpleNamespace(flip=flip, crop_padding=crop_padding, mixup=mixup)


def batch(n=16, c=2, size=8):
    x = torch.arange(n * c * size * size, dtype=torch.float32).view(n, c, size, size) + 1  # every pixel distinct
    y = F.one_hot(torch.arange(n) % 10, 10).float()
    return x, y


def test_same_seed_same_augmented_batches():
    x, y = batch()
    cfg = flags(True, 2, True)
    a, b, c = Augment(cfg, 0, CPU), Augment(cfg, 0, CPU), Augment(cfg, 1, CPU)
    for _ in range(3):
        (xa, ya), (xb, yb), (xc, _) = a(x, y), b(x, y), c(x, y)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert not torch.equal(xa, xc)


def test_off_is_the_identity():
    x, y = batch()
    xa, ya = Augment(flags(), 0, CPU)(x, y)
    assert xa is x and ya is y


def test_flip_mirrors_about_half_the_images():
    x, y = batch(n=400, c=1, size=4)
    out, labels = Augment(flags(flip=True), 0, CPU)(x, y)
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert torch.all(flipped ^ kept) and 150 < int(flipped.sum()) < 250
    assert labels is y


def test_crop_is_a_shift_of_the_zero_padded_image():
    p, size = 2, 6
    x, y = batch(n=64, c=2, size=size)
    out, _ = Augment(flags(crop_padding=p), 0, CPU)(x, y)
    padded = F.pad(x, (p, p, p, p))
    shifts = set()
    for o, img in zip(out, padded):
        corners = [(i, j) for i in range(2 * p) for j in range(2 * p)]
        match = [(i, j) for i, j in corners if torch.equal(o, img[:, i : i + size, j : j + size])]
        assert len(match) == 1  # exactly one corner in [0, 2p) x [0, 2p)
        shifts.add(match[0])
    assert len(shifts) > 8  # the corners vary


def test_mixup_labels_sum_to_one_and_match_the_images():
    x, y = batch(n=32)
    out, soft = Augment(flags(mixup=True), 0, CPU)(x, y)
    torch.testing.assert_close(soft.sum(1), torch.ones(32))
    # the label weight on the example's own class is the image weight w: out = w x + (1 - w) x_reversed
    own = (soft * y).sum(1)
    for i in range(32):
        if not torch.equal(y[i], y.flip(0)[i]):
            torch.testing.assert_close(out[i], own[i] * x[i] + (1 - own[i]) * x.flip(0)[i])


def test_runs_with_augmentation_see_the_same_batches(tmp_path, tiny):
    aug = ["dataset.flip=true", "dataset.crop_padding=4", "dataset.mixup=true"]
    seen = []
    for run in ("a", "b"):
        trainer = Trainer(validate(compose_cfg(*tiny, *aug)), RunStore(tmp_path / run))
        batches: list[torch.Tensor] = []
        trainer.model.register_forward_pre_hook(lambda m, a, seen=batches: seen.append(a[0].clone()))
        for s in range(1, 4):
            trainer.train_step(s)
        seen.append(batches)
    assert all(torch.equal(a, b) for a, b in zip(*seen)) and len(seen[0]) == 3
