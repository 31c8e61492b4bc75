"""On a CUDA device: FCN-4-512 packed K = 1, 8, 32 (bench/ensemble.py) against the same K points run one after
another (benchmarks/packed_runs.py). Skipped, with a line saying so, on CPU."""

from __future__ import annotations

import torch

from benchmarks.packed_runs import compare

STEPS = 300


def run(repeats: int = 1) -> dict:
    name = "FCN-4-512 packed K = 1, 8, 32 vs separate runs (CUDA)"
    if not torch.cuda.is_available():
        return {"name": name, "skipped": "no CUDA device here: this benchmark runs on a GPU machine only"}
    parts, ratios = [], {}
    for k in (1, 8, 32):
        sep, pack = compare(k, STEPS, "cuda", repeats)
        ratios[k] = sep / pack
        parts.append(f"K={k}: separate {sep:.1f} s, packed {pack:.1f} s ({sep / pack:.2f}x)")
    return {
        "name": name,
        "target": None,
        "absolute": f"{'; '.join(parts)} ({STEPS} steps, batch 128) on {torch.cuda.get_device_name(0)}",
        "ratios": ratios,
    }
