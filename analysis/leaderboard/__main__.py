"""python -m analysis.leaderboard [--quick] [--entry NAME ...] [--workload NAME ...] [--config-dir DIR ...]
[--out DIR] [--reports DIR] [--report-only]

Runs every entry on every CPU-tier workload it applies to (conf/leaderboard/), merges the runs into the stored table
(REPORTS/leaderboard/runs.csv) and writes the report (REPORTS/leaderboard.md, .csv, the figures).
  --entry NAME    only these entries (on every CPU workload they apply to), merged into the stored table: a new
                  method joins without rerunning the others (the stored table must exist)
  --quick         a first look in under 3 minutes: one workload, three entries, two seeds, four rates, a short budget,
                  into outputs/leaderboard/quick/ (runs and report), never over reports/
  --report-only   no runs: the report from the stored table
  --config-dir    also read entries from DIR/leaderboard/entry/ (and launch.py's configs from DIR: a method's groups)
Reruns skip the finished points: an interrupted leaderboard resumes."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from analysis.leaderboard import runs as lb
from analysis.leaderboard.spec import SpecError, applicable, load_entries, load_workloads, pick

# QUICK: the demo's workload (the cheapest), the two references and the longest warmup, on a short budget
QUICK_WORKLOAD = "fcn_sp_mse_sgd"
QUICK_ENTRIES = ("no_warmup", "linear_5pct", "linear_25pct")
QUICK_SEEDS = 2
QUICK_RATES = 4
QUICK_OVERRIDES = ("steps=128", "eval_every=32")
QUICK_JOBS = 1  # one pack a multirun: the fewest processes (the tests run it beside others)
OUT, QUICK_OUT, REPORTS = Path("outputs/leaderboard"), Path("outputs/leaderboard/quick"), Path("reports")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m analysis.leaderboard", description=__doc__.split("\n\n")[1])
    p.add_argument("--quick", action="store_true", help="one workload, three entries, two seeds, four rates")
    p.add_argument("--entry", nargs="+", default=[], metavar="NAME", help="run these entries, merge the stored table")
    p.add_argument("--workload", nargs="+", default=[], metavar="NAME", help="only these workloads")
    p.add_argument("--config-dir", nargs="+", default=[], type=Path, metavar="DIR", help="more entries and configs")
    p.add_argument("--out", type=Path, help="run folders (default outputs/leaderboard, --quick: .../quick)")
    p.add_argument("--reports", type=Path, help="report and stored table (default reports, --quick: the --out)")
    p.add_argument("--report-only", action="store_true", help="no runs: the report from the stored table")
    return p.parse_args(argv)


def quick_rates(lrs: tuple[float, ...]) -> tuple[float, ...]:
    """QUICK_RATES rates spread over the workload's grid, its ends included."""
    idx = np.unique(np.linspace(0, len(lrs) - 1, QUICK_RATES).round().astype(int))
    return tuple(lrs[i] for i in idx)


def plans(args: argparse.Namespace, workloads: dict, entries: dict) -> list[lb.Plan]:
    """The multiruns to launch: each selected entry on each selected workload it applies to. A workload named with
    --workload must be CPU tier; an entry named with --entry must apply to a selected workload (one line if not)."""
    w_names = pick("workload", args.workload or ([QUICK_WORKLOAD] if args.quick else []), workloads)
    e_names = pick("entry", args.entry or (list(QUICK_ENTRIES) if args.quick else []), entries)
    if args.workload:
        for w in (workloads[n] for n in w_names if workloads[n].tier != "cpu"):
            raise SpecError(f"workload {w.name} is {w.tier} tier: it runs on a cluster, not here (see {w.path})")
    selected = [workloads[n] for n in w_names if workloads[n].tier == "cpu"]
    if not selected:
        raise SpecError("no CPU-tier workload selected")
    chosen = [entries[n] for n in e_names]
    for entry in chosen if args.entry or args.quick else []:
        if args.workload or not any(entry.applies_to(w) for w in selected):
            for w in selected:  # a named entry on a named workload (or on none at all): say which does not fit
                applicable(entry, w)
    out = []
    for w in selected:  # workload by workload: a leaderboard stopped early has whole workloads
        for entry in (e for e in chosen if e.applies_to(w)):
            if args.quick:
                out.append(lb.Plan(w, entry, quick_rates(w.lrs), QUICK_SEEDS, QUICK_OVERRIDES))
            else:
                out.append(lb.Plan(w, entry, w.lrs, w.seeds))
    return out


def writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".leaderboard-write-test-"):
            pass
    except OSError as e:
        raise SpecError(f"cannot write into {folder} ({e.strerror or e}): pass --out / --reports DIR") from None


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    out = args.out or (QUICK_OUT if args.quick else OUT)
    reports = args.reports or (out if args.quick else REPORTS)
    stored_path = reports / lb.STORED
    try:
        workloads, entries = load_workloads(), load_entries(args.config_dir)
        todo = [] if args.report_only else plans(args, workloads, entries)
        if (args.entry or args.report_only) and not stored_path.is_file():
            make = "make leaderboard QUICK=1" if args.quick else "make leaderboard"
            raise SpecError(f"no stored runs table {stored_path}: `{make}` makes it (every entry), then add entries")
        stored = lb.read_table(stored_path) if stored_path.is_file() else None
        for folder in (out, reports):
            writable(folder)
        jobs = QUICK_JOBS if args.quick else lb.JOBS
        lb.check(todo, out, args.config_dir, jobs)  # every point composes and validates before the first run
    except (SpecError, ValueError) as e:
        sys.exit(f"error: {e}")

    failed = []
    for plan in todo:
        new = lb.table(lb.sweep_dir(out, plan), plan)
        if lb.finished(new, plan):  # a rerun: no launch.py started for nothing
            print(f"[leaderboard] {plan.workload.name} / {plan.entry.name}: {plan.runs} runs, all finished before")
        else:
            if not lb.run(plan, out, args.config_dir, jobs):
                failed.append(plan)
            new = lb.table(lb.sweep_dir(out, plan), plan)
        stored = lb.update_table(stored_path, new, plan)  # after every multirun: a stop keeps what finished
    if stored is None or stored.empty:
        sys.exit(f"error: no runs in {stored_path}")

    from analysis.leaderboard import report  # matplotlib: imported when the report is drawn

    info = {n: w.info() for n, w in workloads.items() if n in set(stored["workload"])}
    note = (
        f"Made by `make leaderboard` (`python -m analysis.leaderboard`) from the runs table `{lb.STORED}` beside this"
        f" file: {len(stored)} runs, each row one run folder's result (`docs/leaderboard.md` says how to rerun it or"
        " add an entry)."
    )
    try:
        written = report.write(stored, info, reports, note)
    except ValueError as e:  # e.g. a stored row of a workload whose YAML is gone
        sys.exit(f"error: {e}")
    for path in written:
        print(f"[leaderboard] wrote {path}")
    if failed:
        names = ", ".join(f"{p.workload.name}/{p.entry.name}" for p in failed)
        sys.exit(f"error: points failed in {names} (their logs: {out}/<workload>/<entry>.log); rerun to retry them")


if __name__ == "__main__":
    main()
