"""python -m analysis phase SWEEP_DIR [--metric best_test_acc]: PNG + CSV next to the sweep, eta_max printed."""

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


def trajectories(args: argparse.Namespace) -> None:
    from analysis.trajectories import plot_trajectories, summarize
    from analysis.trajectories import trajectories as per_step

    runs = load_runs(*args.sweep_dirs)
    if runs.empty:
        sys.exit(f"error: no finished runs (result.json) under {', '.join(args.sweep_dirs)}")
    facet = args.facet if args.facet in runs.columns and runs[args.facet].nunique() > 1 else None
    traj = per_step(runs, [args.by] + ([facet] if facet else []))
    if traj.empty or traj[["sharpness", "pre_sharpness"]].isna().all().all():
        sys.exit("error: no sharpness in these runs' metrics.csv (run them with measure.every=1)")
    out = Path(args.out or args.sweep_dirs[0])
    traj.to_csv(out / "trajectories.csv", index=False)
    png = out / "trajectories.png"
    plot_trajectories(traj, args.by, facet, args.xscale).savefig(png, dpi=120)
    print(summarize(traj, args.by, facet).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"trajectories: {png}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("phase", help="phase diagram (heatmap + CSV) of one or more sweep folders")
    p.add_argument("sweep_dirs", nargs="+")
    p.add_argument("--metric", default="best_test_acc")
    p.add_argument("--out", help="folder for the PNG and CSV (default: the first sweep folder)")
    p.set_defaults(func=phase)
    t = sub.add_parser("trajectories", help="loss, sharpness and 2/eta against the step, one curve per T_wrm")
    t.add_argument("sweep_dirs", nargs="+")
    t.add_argument("--by", default="schedule.warmup_steps", help="one curve per value of this config key")
    t.add_argument("--facet", default="model.param", help="one row of panels per value of this key (if it varies)")
    t.add_argument("--xscale", default="log", choices=("log", "linear"))
    t.add_argument("--out", help="folder for trajectories.png and .csv (default: the first sweep folder)")
    t.set_defaults(func=trajectories)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except FileNotFoundError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
