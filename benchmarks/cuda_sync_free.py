"""On a CUDA device: the harness's loop reading the losses back every step against every 32 steps
(benchmarks/sync_free.py), FCN-4-512 and the Myrtle CNN on mnist5k. Skipped, with a line saying so, on CPU."""

from __future__ import annotations

import torch

from benchmarks.sync_free import compare, result


def run(repeats: int = 3) -> dict:
    name = "sync-free loop: read every step / every 32 steps (CUDA)"
    if not torch.cuda.is_available():
        return {"name": name, "skipped": "no CUDA device here: this benchmark runs on a GPU machine only"}
    parts, ratios = [], {}
    for label, model in (("FCN-4-512", []), ("Myrtle CNN", ["model=cnn"])):
        per_step, free, what = compare("cuda", model, repeats)
        ratios[label] = per_step / free
        parts.append(f"{label}: every step {per_step:.2f} s, every 32 {free:.2f} s ({per_step / free:.2f}x)")
    out = result(name, per_step, free, what)
    out.update(ratio=ratios["Myrtle CNN"], ratios=ratios)
    out["absolute"] = f"{'; '.join(parts)} ({what}) on {torch.cuda.get_device_name(0)}"
    return out
