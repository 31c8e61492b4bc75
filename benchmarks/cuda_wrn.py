"""On a CUDA device: WRN-16-4 (LayerNorm) step time at batch 128 on CIFAR-shaped data, and the achieved TFLOP/s
(FLOPs of one forward+backward counted by torch.utils.flop_counter). Skipped, with a line saying so, on CPU."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.losses import xent
from bench.models import build_model
from benchmarks.common import compose_cfg, median

BATCH, STEPS = 128, 50


def run(repeats: int = 3) -> dict:
    name = "WRN-16-4 step time at batch 128 (CUDA)"
    if not torch.cuda.is_available():
        return {"name": name, "skipped": "no CUDA device here: this benchmark runs on a GPU machine only"}
    device = torch.device("cuda")
    cfg = compose_cfg("model=wrn", "model.width_factor=4")
    model = build_model(cfg.model, (3, 32, 32), 10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(BATCH, 3, 32, 32, device=device)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (BATCH,), device=device), 10).float()

    def step():
        loss = xent(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    times = []
    for _ in range(repeats):
        for _ in range(5):
            step()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(STEPS):
            step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000 / STEPS)
    t = median(times)
    return {
        "name": name,
        "target": None,
        "absolute": f"{t * 1000:.2f} ms per step, {flops / t / 1e12:.1f} TFLOP/s achieved ({flops / 1e9:.1f} GFLOP "
        f"per step) on {torch.cuda.get_device_name(0)}",
        "step_s": t,
        "flops_per_step": flops,
    }
