"""Step overhead: the harness's training loop (default logging and evaluation cadence, no sharpness) against a
bare PyTorch loop on the same model, data, device, batch size and steps. Target: at most 1.05x."""

from __future__ import annotations

import tempfile

import torch

from bench.config import validate
from bench.data import build_dataset
from bench.losses import mse
from bench.models import build_model
from bench.runfolder.store import RunStore
from bench.train import Trainer
from benchmarks.common import alternate, compose_cfg, median, timed

STEPS = 1000


def harness(cfg) -> float:
    with tempfile.TemporaryDirectory() as d:
        trainer = Trainer(validate(cfg), RunStore(d))  # building is not timed: only the loop
        return timed(trainer.train)


def bare(cfg) -> float:
    data = build_dataset(cfg.dataset, torch.device(cfg.device))
    torch.manual_seed(0)
    model = build_model(cfg.model, data.input_shape, data.num_classes)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr)
    x_all, y_all, n, b = data.x_train, data.y_train, len(data.x_train), cfg.batch_size

    def loop():
        steps = 0
        while steps < cfg.steps:
            perm = torch.randperm(n)
            for i in range(0, n, b):
                idx = perm[i : i + b]
                loss = mse(model(x_all[idx]), y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
                if steps == cfg.steps:
                    break

    return timed(loop)


def run(repeats: int = 5) -> dict:
    cfg = compose_cfg(f"steps={STEPS}", "device=cpu", "optimizer.lr=0.05")
    harness(cfg), bare(cfg)  # warm-up
    times = alternate({"harness": lambda: harness(cfg), "bare": lambda: bare(cfg)}, repeats)
    h, b = median(times["harness"]), median(times["bare"])
    return {
        "name": "step overhead (harness loop / bare PyTorch loop)",
        "ratio": h / b,
        "target": 1.05,
        "better": "lower",
        "absolute": f"harness {h:.3f} s, bare {b:.3f} s for {STEPS} steps (FCN-4-512, batch 128, eval every "
        f"{cfg.eval_every})",
        "times": times,
    }
