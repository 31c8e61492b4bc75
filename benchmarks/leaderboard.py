"""The leaderboard's runs (analysis/leaderboard/runs.py): one (workload, entry) multirun through the local launcher, 2
jobs at a time, with packing (hydra.launcher.ensemble: the runs in 2 packs, one process each) against without (one
process a run), the same points into fresh folders, alternating. Reported as runs per hour of wall time and per
CPU-hour (user + system time of the launcher and its jobs); the ratio is packed / unpacked runs per hour."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from analysis.leaderboard import runs as lb
from analysis.leaderboard.spec import load_entries, load_workloads
from benchmarks.common import alternate, median

WORKLOAD, ENTRY = "fcn_sp_mse_sgd", "linear_5pct"  # the demo's regime; its lowest rates train to the end


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_multirun(plan: lb.Plan, pack: bool, cpu: list[float]) -> float:
    """The plan's multirun into a fresh folder; its wall time returned, its CPU time appended to `cpu`."""
    with tempfile.TemporaryDirectory() as d:
        start, start_cpu = time.perf_counter(), _children_cpu()
        if not lb.run(plan, Path(d), pack=pack):
            raise RuntimeError(f"the leaderboard multirun failed (pack={pack})")
        cpu.append(_children_cpu() - start_cpu)
        return time.perf_counter() - start


def run(repeats: int = 2, rates: int = 4, seeds: int = 2) -> dict:
    workload = load_workloads()[WORKLOAD]
    plan = lb.Plan(workload, load_entries()[ENTRY], workload.lrs[:rates], seeds)
    cpu = {"packed": [], "one job a run": []}
    walls = alternate({k: lambda k=k: timed_multirun(plan, k == "packed", cpu[k]) for k in cpu}, repeats)
    per_hour = {k: plan.runs * 3600 / median(walls[k]) for k in cpu}
    per_cpu_hour = {k: plan.runs * 3600 / median(cpu[k]) for k in cpu}
    return {
        "name": f"leaderboard runs per hour, packed / one job a run ({plan.runs} runs, local launcher, 2 jobs)",
        "ratio": per_hour["packed"] / per_hour["one job a run"],
        "target": None,
        "better": "higher",
        "absolute": "; ".join(
            f"{k}: {per_hour[k]:.0f} runs/h, {per_cpu_hour[k]:.0f} runs/CPU-h ({median(walls[k]):.0f} s, "
            f"{median(cpu[k]):.0f} CPU-s)"
            for k in cpu
        )
        + f" ({WORKLOAD} x {ENTRY}, {workload.lrs[0]:g}-{workload.lrs[rates - 1]:g}, {seeds} seeds)",
    }
