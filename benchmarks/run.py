"""make bench: run every benchmark, print the table, write benchmarks/results.json and benchmarks/results.md.

Each benchmark runs its contenders in one process, alternating, several repeats, and reports medians.
    python -m benchmarks.run [--only NAME ...] [--repeats N]
    python -m benchmarks.run --cuda     the CUDA section only (make gpu-check) -> benchmarks/results-cuda.{md,json}
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

from benchmarks.common import machine

OUT = Path(__file__).resolve().parent
CUDA_BENCHMARKS = ["cuda_wrn", "cuda_packed", "cuda_sync_free"]  # skipped, with a line, without a CUDA device
BENCHMARKS = [
    "step_overhead",
    "sync_free",
    "sharpness_solver",
    "sweep_throughput",
    "grid_check",
    "divergence_savings",
    "packed_runs",
    "leaderboard",
    "boundary_search",
    "boundary_search_fig3",
    *CUDA_BENCHMARKS,
]


def verdict(r: dict) -> str:
    if r.get("skipped"):
        return "skipped"
    if r.get("target") is None:
        return "measured"
    ok = r["ratio"] <= r["target"] if r["better"] == "lower" else r["ratio"] >= r["target"]
    return "met" if ok else "MISSED"


def table(results: list[dict], header: str) -> str:
    lines = [header, "", "| benchmark | ratio | target | verdict | absolute |", "|---|---|---|---|---|"]
    for r in results:
        if r.get("skipped"):
            lines.append(f"| {r['name']} | - | - | skipped | {r['skipped']} |")
            continue
        if r.get("target") is None:
            ratio = f"{r['ratio']:.2f}x" if r.get("ratio") else "-"
            lines.append(f"| {r['name']} | {ratio} | - | measured | {r['absolute']} |")
            continue
        sign = "<=" if r["better"] == "lower" else ">="
        lines.append(f"| {r['name']} | {r['ratio']:.2f}x | {sign} {r['target']}x | {verdict(r)} | {r['absolute']} |")
    return "\n".join(lines) + "\n"


def _previous() -> dict[str, dict]:
    try:
        return {r["benchmark"]: r for r in json.loads((OUT / "results.json").read_text())["results"]}
    except (OSError, ValueError, KeyError):
        return {}


def run_one(name: str, repeats: int | None) -> dict:
    module = importlib.import_module(f"benchmarks.{name}")
    start = time.perf_counter()
    r = module.run(repeats) if repeats else module.run()
    r["benchmark"], r["seconds"] = name, time.perf_counter() - start
    r["verdict"] = verdict(r)
    print(
        f"{name}: {r['verdict']} "
        + (f"{r['ratio']:.2f}x" if r.get("ratio") else r.get("skipped", r.get("absolute", ""))),
        flush=True,
    )
    return r


def cuda_section(repeats: int | None) -> None:
    """The CUDA benchmarks alone, into results-cuda.md (the CPU table in results.md is left as it is)."""
    import torch

    if not torch.cuda.is_available():
        print("benchmarks: no CUDA device here: the CUDA section runs on a GPU machine only")
        return
    results = [run_one(name, repeats) for name in CUDA_BENCHMARKS]
    header = (
        f"Machine: {machine()}  \nDevice: {torch.cuda.get_device_name(0)}  \nDate: {time.strftime('%Y-%m-%d %H:%M')}"
    )
    md = table(results, header)
    (OUT / "results-cuda.md").write_text(md)
    (OUT / "results-cuda.json").write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")
    print()
    print(md)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per benchmark (default: each one's own)")
    parser.add_argument("--cuda", action="store_true", help="the CUDA section only -> benchmarks/results-cuda.md")
    args = parser.parse_args(argv)
    if args.cuda:
        return cuda_section(args.repeats)
    results = [run_one(name, args.repeats) for name in args.only or BENCHMARKS]
    if args.only:  # keep the other benchmarks' last results in the table
        previous = _previous()
        results = [next((r for r in results if r["benchmark"] == b), previous.get(b)) for b in BENCHMARKS]
        results = [r for r in results if r is not None]
    header = f"Machine: {machine()}  \nDate: {time.strftime('%Y-%m-%d %H:%M')}"
    md = table(results, header)
    (OUT / "results.md").write_text(md)
    (OUT / "results.json").write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")
    print()
    print(md)


if __name__ == "__main__":
    main()
