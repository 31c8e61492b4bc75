"""python -m analysis phase SWEEP_DIR [--metric best_test_acc]: PNG + CSV next to the sweep, eta_max printed.
python -m analysis status SWEEP_DIR: the grid's completed / diverged / failed / running / missing points."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.aggregate import load_runs
from analysis.phase import WARMUP, eta_max, phase_grid, plot_phase


def phase(args: argparse.Namespace) -> None:
    runs = load_runs(*args.sweep_dirs)
    if runs.empty:
        sys.exit(f"error: no finished runs (result.json) under {', '.join(args.sweep_dirs)}")
    out = Path(args.out or args.sweep_dirs[0])
    grid = phase_grid(runs, args.metric)
    grid.to_csv(out / f"phase_{args.metric}.csv", index=False)
    fig = plot_phase(runs, args.metric)
    png = out / f"phase_{args.metric}.png"
    fig.savefig(png, dpi=120)
    bound = eta_max(runs)
    bound.to_csv(out / "eta_max.csv", index=False)
    print(f"{len(runs)} runs: {', '.join(f'{k} {v}' for k, v in runs['status'].value_counts().items())}")
    print("largest trainable eta_trgt per T_wrm:")
    print(bound.rename(columns={WARMUP: "T_wrm", "eta_max": "eta_max"}).to_string(index=False))
    print(f"phase diagram: {png}")
    print(f"grid: {out / f'phase_{args.metric}.csv'}")


def status(args: argparse.Namespace) -> None:
    from analysis.status import report

    print(report(args.sweep_dir))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("phase", help="phase diagram (heatmap + CSV) of one or more sweep folders")
    p.add_argument("sweep_dirs", nargs="+")
    p.add_argument("--metric", default="best_test_acc")
    p.add_argument("--out", help="folder for the PNG and CSV (default: the first sweep folder)")
    p.set_defaults(func=phase)
    p = sub.add_parser("status", help="state of a sweep: completed / diverged / failed / running / missing points")
    p.add_argument("sweep_dir")
    p.set_defaults(func=status)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except FileNotFoundError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
