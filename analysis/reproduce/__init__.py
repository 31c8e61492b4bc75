"""`make reproduce`: the CPU-scale Figures 1-7 and GI-Adam vs untuned warmup, their figures, reports/reproduction.md.

The report is a registry (CLAIMS): one entry per claim of the paper (docs/paper.md section 7) with its figure, text,
the CPU presets it needs (conf/experiment/cpu/<name>.yaml), the stand-in those presets use for the paper's setting, an
evidence function that computes the measured numbers from the run folders, and named checks, each a rule with its
threshold, the outcome that would have failed it (could_fail), the failure rule its evidence uses (trainable(rule=
...), with the reason), and gates: checks that the paper's effect is there in the stand-in at all. A claim is
reproduced when every check passes, partly when some do, not reproduced when none does, not testable at CPU scale
when a gate fails, and not run when a preset has no runs. reports/reproduction.md prints each check's rule, number
and margin beside the verdict, and where the other failure rule gives other numbers.

    python -m analysis.reproduce                 # run the sweeps, then write the report
    python -m analysis.reproduce --report-only   # redraw and rewrite from the sweeps already on disk
    python -m analysis.reproduce --only fig4_transformer_adam --resume

The sweeps run through the project's own launcher, one preset after another, each as
`launch.py -m experiment=cpu/NAME hydra/launcher=local hydra.launcher.max_parallel=JOBS threads=1` in a
subprocess; like the rest of `analysis`, this package reads run folders only and imports no training code.

Its modules, in the order they build on each other: runs.py (the presets and running their sweeps), evidence.py
(the numbers from the run tables), claims.py (the registry CLAIMS and its verdicts), report.py (the markdown reports),
__main__.py (the command line).
"""

from analysis.reproduce.claims import (
    CLAIMS,
    ERROR,
    NOT,
    NOT_RUN,
    NOT_TESTABLE,
    OPS,
    PARTLY,
    REPRODUCED,
    Check,
    Claim,
    Judged,
    judge,
    verdict,
)
from analysis.reproduce.evidence import Evidence, gain
from analysis.reproduce.report import load_sweeps, write_report, write_search
from analysis.reproduce.runs import FIGURES, run_all, sweep_command

__all__ = [
    "CLAIMS",
    "ERROR",
    "FIGURES",
    "NOT",
    "NOT_RUN",
    "NOT_TESTABLE",
    "OPS",
    "PARTLY",
    "REPRODUCED",
    "Check",
    "Claim",
    "Evidence",
    "Judged",
    "gain",
    "judge",
    "load_sweeps",
    "run_all",
    "sweep_command",
    "verdict",
    "write_report",
    "write_search",
]
