"""`python -m analysis.reproduce` (`make reproduce`): run the sweeps, then write the report (see the package's
docstring for the flags)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from analysis import reproduce
from analysis.reproduce.claims import ERROR
from analysis.reproduce.report import write_report, write_search
from analysis.reproduce.runs import FIGURES, ROOT, run_all


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis.reproduce", description=reproduce.__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "outputs" / "reproduce"), help="where the sweeps go")
    parser.add_argument("--reports", default=str(ROOT / "reports"), help="where the report and figures go")
    parser.add_argument("--jobs", type=int, default=2, help="runs at the same time (the launcher's max_parallel)")
    parser.add_argument("--only", nargs="*", choices=list(FIGURES), help="run only these presets")
    parser.add_argument("--resume", action="store_true", help="keep the finished runs of earlier calls")
    parser.add_argument("--report-only", action="store_true", help="do not run; report on the sweeps on disk")
    parser.add_argument("--fig4-search", nargs="+", metavar="FOLDER", help="write reports/fig4_search.md only")
    parser.add_argument("--note", default="", help="a line for the report's header (e.g. what was not rerun)")
    args = parser.parse_args(argv)
    if args.fig4_search:
        try:
            print(f"[reproduce] {write_search([Path(f).resolve() for f in args.fig4_search], Path(args.reports))}")
        except (FileNotFoundError, ValueError) as e:  # a folder that is not a sweep of the search: one line
            sys.exit(f"error: {e}")
        return
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    out, rep = Path(args.out).resolve(), Path(args.reports).resolve()
    walls, total = {}, None
    if not args.report_only:
        start = time.time()
        walls = run_all(args.only or list(FIGURES), out, args.jobs, args.resume)
        total = time.time() - start
        (out / "last_run.json").write_text(json.dumps({"total_s": total, "sweeps": walls}, indent=2))
    elif (out / "last_run.json").exists():  # the last call that ran sweeps
        last = json.loads((out / "last_run.json").read_text())
        walls, total = last["sweeps"], last["total_s"]
    path = write_report(out, rep, walls, total, args.note)
    print(f"[reproduce] report: {path}")
    text = path.read_text()
    print(text.split("## Claims")[1].split("\n\n")[1])
    if f"| **{ERROR}** |" in text:
        sys.exit("error: the evidence of a claim failed (its row in the report says why)")


if __name__ == "__main__":
    main()
