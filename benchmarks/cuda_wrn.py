"""On a CUDA device: WRN-16-4 (LayerNorm) step time at batch 128 on CIFAR-shaped data, and the achieved TFLOP/s
(FLOPs of one forward+backward counted by torch.utils.flop_counter in FP32; the same count serves every precision),
through the harness's own numerics (bench/numerics.py) at precision fp32 / tf32 / bf16, eager and torch.compile'd.
Skipped, with a line saying so, on CPU."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.losses import xent
from bench.models import build_model
from bench.numerics import Numerics
from benchmarks.common import compose_cfg, median

BATCH, STEPS = 128, 50
VARIANTS = [(p, c) for c in (False, True) for p in ("fp32", "tf32", "bf16")]


def _stepper(cfg, precision: str, compile: bool, device: torch.device):
    numerics = Numerics(precision, False, compile, device)
    numerics.setup()
    torch.manual_seed(0)
    model = build_model(cfg.model, (3, 32, 32), 10).to(device)
    forward = numerics.forward(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(BATCH, 3, 32, 32, device=device)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (BATCH,), device=device), 10).float()

    def step():
        with numerics.training():
            loss = xent(forward(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
        opt.step()

    return step


def _time(step, repeats: int) -> float:
    for _ in range(5):  # warm-up (and, compiled, the compilation)
        step()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(STEPS):
            step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000 / STEPS)
    return median(times)


def run(repeats: int = 3) -> dict:
    name = "WRN-16-4 step time at batch 128 (CUDA)"
    if not torch.cuda.is_available():
        return {"name": name, "skipped": "no CUDA device here: this benchmark runs on a GPU machine only"}
    device = torch.device("cuda")
    cfg = compose_cfg("model=wrn", "model.width_factor=4")
    step = _stepper(cfg, "fp32", False, device)
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    rows, parts = {}, []
    for precision, compile in VARIANTS:
        label = precision + (" compiled" if compile else "")
        t = _time(_stepper(cfg, precision, compile, device), repeats)
        rows[label] = t
        parts.append(f"{label} {t * 1000:.2f} ms ({flops / t / 1e12:.1f} TFLOP/s)")
    Numerics("fp32", False, False, device).setup()  # leave the process in the default state
    return {
        "name": name,
        "target": None,
        "absolute": f"{'; '.join(parts)}; {flops / 1e9:.1f} GFLOP per step on {torch.cuda.get_device_name(0)}",
        "step_s": rows,
        "flops_per_step": flops,
    }
