"""python -m analysis phase SWEEP_DIR... [--metric best_test_acc] [--facet KEY] [--ignore KEY] [--rule test|authors]
[--out DIR]: PNG + CSV next to the sweep (or in --out), eta_max printed; runs of different configs get their own panel
and eta_max; the failure rule (analysis.phase.RULES) is named in the title and in a `rule` column of both CSVs.
python -m analysis trajectories SWEEP_DIR: loss, sharpness and 2/eta against the step.
python -m analysis reference [--data DIR]: the authors' published runs, drawn and summarized the same way.
python -m analysis status SWEEP_DIR: the grid's completed / diverged / failed / running / missing points.
An installed package has the same program as the `warmup-bench-analysis` command."""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from analysis.aggregate import SkippedItems, load_runs
from analysis.phase import LR, RULES, WARMUP, check_rule, eta_max, mixed_keys, phase_grid, plot_phase
from analysis.reference import default_dir, load_reference


def _load(args: argparse.Namespace):
    """load_runs, its skipped items as one counted line on stderr (each named with --verbose)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedItems)
        runs = load_runs(*args.sweep_dirs)
    for w in caught:
        if isinstance(w.message, SkippedItems):
            items = w.message.items
            hint = ":" if args.verbose else " (--verbose names them)"
            print(f"warning: skipped {len(items)} unreadable item(s){hint}", file=sys.stderr)
            for item in items if args.verbose else []:
                print(f"  {item}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if runs.empty:
        sys.exit(f"error: no finished runs (result.json) under {', '.join(args.sweep_dirs)}")
    return runs


def _cannot_write(out: Path, e: OSError):
    reason = e.strerror or str(e)
    return SystemExit(f"error: cannot write into {out} ({reason}): pass --out DIR to write the outputs elsewhere")


def _out_dir(args: argparse.Namespace) -> Path:
    """--out (created) or the first sweep folder; one line saying to pass --out if it cannot be written to."""
    out = Path(args.out or args.sweep_dirs[0])
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".analysis-write-test-"):
            pass
    except OSError as e:
        raise _cannot_write(out, e) from None
    return out


def _repeated(runs, keys: list[str]) -> None:
    """A note when two runs share config and seed (the same point in two sweep folders, maybe another code version):
    the cell counts both like seeds."""
    cell = [k for k in (*keys, LR, WARMUP, "seed") if k in runs]
    twice = runs[runs.astype({k: str for k in cell}).duplicated(cell, keep=False)]
    if len(twice):
        first = twice.sort_values(cell).iloc[:2]["run_dir"].tolist()
        print(f"note: {len(twice)} runs repeat another run's config and seed (e.g. {' and '.join(first)}): both count")


def _without_last_acc(runs) -> int:
    """Completed Adam-family runs without last_train_acc (the authors' rule then reads final_train_acc)."""
    adam = (runs["status"] == "completed") & runs.get("optimizer.b1", pd.Series(index=runs.index)).notna()
    return int((adam & runs.get("last_train_acc", pd.Series(index=runs.index)).isna()).sum())


def phase(args: argparse.Namespace) -> None:
    check_rule(args.rule)  # before anything is read
    runs = _load(args)
    missing = [k for k in (args.metric, *args.facet) if k not in runs.columns]
    missing += [k for k in args.ignore if k not in runs.columns and not any(c.startswith(f"{k}.") for c in runs)]
    if missing:
        sys.exit(f"error: no column {missing[0]!r} in the run table (columns: {', '.join(runs.columns)})")
    out = _out_dir(args)
    mixed = mixed_keys(runs, by=args.facet, ignore=args.ignore)
    from analysis.status import axis_values

    axes = axis_values(args.sweep_dirs, [LR, WARMUP])  # the grid's values, also where no run reached (sparse grids)
    rule = args.rule
    title = f"{args.metric}, failure rule: {rule}"  # the rule in full: the printout, analysis.phase.RULES
    fig = plot_phase(
        runs, args.metric, title=title, facet=args.facet, annot_std=args.std, ignore=args.ignore, grid=axes, rule=rule
    )
    grid = phase_grid(runs, args.metric, by=args.facet, ignore=args.ignore, rule=rule).assign(rule=rule)
    bound = eta_max(runs, by=args.facet, ignore=args.ignore, grid=axes, rule=rule).assign(rule=rule)
    png, csv = out / f"phase_{args.metric}.png", out / f"phase_{args.metric}.csv"
    try:
        grid.to_csv(csv, index=False)
        fig.savefig(png, dpi=120)
        bound.to_csv(out / "eta_max.csv", index=False)
    except OSError as e:
        raise _cannot_write(out, e) from None
    print(f"{len(runs)} runs: {', '.join(f'{k} {v}' for k, v in runs['status'].value_counts().items())}")
    _repeated(runs, [*args.facet, *mixed])
    if mixed:
        print(f"the runs differ in {', '.join(mixed)}: one panel and one eta_max per value, never averaged")
    print(f"trained by rule {rule}: {RULES[rule]}")
    if rule == "authors" and (old := _without_last_acc(runs)):
        print(
            f"note: {old} Adam-family run(s) have no last_train_acc (written before it existed): judged on "
            "final_train_acc, the mean since the last evaluation"
        )
    print("largest trainable eta_trgt per T_wrm (lower_bound: the next eta_trgt above it did not run, or none):")
    print(bound.drop(columns="rule").rename(columns={WARMUP: "T_wrm"}).to_string(index=False))
    print(f"phase diagram: {png}")
    print(f"grid: {csv}")


def trajectories(args: argparse.Namespace) -> None:
    from analysis.trajectories import plot_trajectories, summarize
    from analysis.trajectories import trajectories as per_step

    runs = _load(args)
    facet = args.facet if args.facet in runs.columns and runs[args.facet].nunique() > 1 else None
    traj = per_step(runs, [args.by] + ([facet] if facet else []))
    if traj.empty or traj[["sharpness", "pre_sharpness"]].isna().all().all():
        sys.exit("error: no sharpness in these runs' metrics.csv (run them with measure.every=1)")
    out = _out_dir(args)
    png = out / "trajectories.png"
    try:
        traj.to_csv(out / "trajectories.csv", index=False)
        plot_trajectories(traj, args.by, facet, args.xscale).savefig(png, dpi=120)
    except OSError as e:
        raise _cannot_write(out, e) from None
    print(summarize(traj, args.by, facet).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"trajectories: {png}")


def reference(args: argparse.Namespace) -> None:
    """The authors' WRN-16-4 CIFAR-10 runs: Adam vs GI-Adam vs RAdam (SP), and SGD (muP, eta_trgt in 1/lambda0)."""
    runs = load_reference(args.data, adam=args.adam)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs.drop(columns="run_dir").to_csv(out / "reference_runs.csv", index=False)
    adams = runs[runs["optimizer.name"].isin(["adam", "gi_adam", "radam"])]
    sgd = runs[runs["optimizer.name"] == "sgd"]
    figures = {
        "reference_adam": (adams, "optimizer.name", f"WRN-16-4 CIFAR-10, SP, Adam = authors' {args.adam}"),
        "reference_sgd": (sgd, None, "WRN-16-4 CIFAR-10, muP, SGD"),
    }
    for name, (sub, facet, title) in figures.items():
        if sub.empty:
            continue
        plot_phase(sub, args.metric, facet=facet, title=title).savefig(out / f"{name}.png", dpi=120)
        print(f"phase diagram: {out / f'{name}.png'}")
    bound = eta_max(runs, by=["model.param", "optimizer.name", "optimizer.lr_unit"])
    bound.to_csv(out / "reference_eta_max.csv", index=False)
    print(f"{len(runs)} reference runs from {args.data or default_dir()}; adam = the authors' {args.adam}")
    print("largest trainable eta_trgt (every run of the cell: final test accuracy >= 1.5 / num_classes):")
    print(bound.rename(columns={WARMUP: "T_wrm", LR: "eta_trgt"}).to_string(index=False))


def status(args: argparse.Namespace) -> None:
    from analysis.status import report

    print(report(args.sweep_dir))


def main(argv: list[str] | None = None) -> None:
    # the warmup-bench-analysis console script, or python -m analysis (whose argv[0] is this file)
    prog = Path(sys.argv[0]).name
    parser = argparse.ArgumentParser(prog="python -m analysis" if prog == "__main__.py" else prog, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("phase", help="phase diagram (heatmap + CSV) of one or more sweep folders")
    p.add_argument("sweep_dirs", nargs="+")
    p.add_argument("--metric", default="best_test_acc")
    p.add_argument("--out", help="folder for the PNG and CSVs (default: the first sweep folder), created if needed")
    p.add_argument(
        "--facet",
        action="append",
        default=[],
        help="one panel (and one boundary) per value of this config key, e.g. seed (repeatable); config keys that "
        "differ between the runs are facets anyway",
    )
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        help="a config key (or group, e.g. measure) that does not change results: its runs are pooled like seeds "
        "(repeatable)",
    )
    p.add_argument("--std", action="store_true", help="annotate each cell with the spread over seeds")
    p.add_argument(
        "--rule",
        default="test",
        help="when a run counts as trained: " + "; ".join(f"{k}: {v}" for k, v in RULES.items()) + " (default test)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="name every skipped item")
    p.set_defaults(func=phase)
    t = sub.add_parser("trajectories", help="loss, sharpness and 2/eta against the step, one curve per T_wrm")
    t.add_argument("sweep_dirs", nargs="+")
    t.add_argument("--by", default=WARMUP, help="one curve per value of this config key")
    t.add_argument("--facet", default="model.param", help="one row of panels per value of this key (if it varies)")
    t.add_argument("--xscale", default="log", choices=("log", "linear"))
    t.add_argument("--out", help="folder for trajectories.png and .csv (default: the first sweep folder)")
    t.add_argument("-v", "--verbose", action="store_true", help="name every skipped item")
    t.set_defaults(func=trajectories)
    r = sub.add_parser("reference", help="phase diagrams and eta_max of the authors' published runs")
    r.add_argument(
        "--data",
        help="folder of the authors' .tab files (default: the authors' tables shipped in analysis/reference_data/)",
    )
    r.add_argument("--out", default="outputs/reference", help="folder for the PNGs and CSVs")
    r.add_argument("--metric", default="best_test_acc")
    r.add_argument("--adam", default="base_adam", choices=["base_adam", "adam"], help="which authors' Adam is adam")
    r.set_defaults(func=reference)
    st = sub.add_parser("status", help="state of a sweep: completed / diverged / failed / running / missing points")
    st.add_argument("sweep_dir")
    st.set_defaults(func=status)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
