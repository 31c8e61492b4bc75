"""The leaderboard's report: leaderboard.md (the scores, each workload's metrics with their intervals, whether
warmup matters there, what the CPU tier stands for), leaderboard.csv (the metrics table), the two performance
profiles, the rank stability, and one final-loss-against-eta_trgt figure per workload (Wortsman et al. 2023's LR
sensitivity figure). Figures are drawn on matplotlib Figure objects (no pyplot, no global backend)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.leaderboard.scores import (
    BASELINE,
    CI,
    R_MAX,
    SCORED,
    by_rate,
    eta_max_moved,
    metrics,
    performance_profile,
    scores,
    warmup_matters,
)
from bench.runfolder import atomic_write, atomic_write_text

N_BOOT, SEED = 1000, 0
DPI = 100
TAUS = np.linspace(1.0, R_MAX, 301)
TITLES = {"steps": "steps to target (tuned: best rate per entry)", "sensitivity": "LR sensitivity (untuned)"}
PROFILES = {"steps": "profile_steps_to_target.png", "sensitivity": "profile_sensitivity.png"}
STABILITY = "rank_stability.png"

PROXY = """## A small-scale CPU proxy

Every number above comes from the CPU tier: small models on small offline datasets (an FCN on 5,000 MNIST images,
a Myrtle CNN, a small pre-LN Transformer on offline text), short step budgets and a few seeds, trained on a 2-core
machine. It is a small-scale proxy in the sense of Wortsman et al. (2023): it keeps the mechanisms warmup
acts on (the sharpness at initialization, the catapult, Adam's early preconditioner) and the way methods fail at
high learning rates, not the scale of the paper's experiments. Rankings here say which method lets these
workloads train at higher rates, reach a loss sooner, and suffer less from a poorly chosen rate; they are
hypotheses for larger models, not measurements of them.

What the GPU tier would add: the paper's workloads (WRN-16-4 on CIFAR-10 in SP and muP with SGD and with Adam, the
pre-LN Transformer on WikiText-2) at the paper's budgets, where warmup's effect on the stable rate is the one the
paper measures; longer training, so that steps to target separates methods on the part of training that costs;
more seeds, so that the intervals tighten and fewer entries tie; and wall time on the hardware the methods are
meant for (the catapult's and GI-Adam's extra passes cost differently on a GPU)."""


def _num(v: float, digits: int = 3, inf: str = "inf") -> str:
    if pd.isna(v):
        return "-"
    return inf if math.isinf(v) else f"{v:.{digits}g}"


def _with_interval(row: pd.Series, name: str, inf: str = "inf", digits: int = 3) -> str:
    """'0.52 [0.51, 0.55]' (the value and its interval); `inf` stands for +inf."""
    lo, hi = row.get(f"{name}_lo", np.nan), row.get(f"{name}_hi", np.nan)
    interval = "" if pd.isna(lo) else f" [{_num(lo, digits, inf)}, {_num(hi, digits, inf)}]"
    return _num(row[name], digits, inf) + interval


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _scores_section(board: pd.DataFrame, n_boot: int) -> str:
    rows = [
        [
            r["rank_label"],
            f"`{r['entry']}`",
            str(r["workloads"]),
            _with_interval(r, "B_steps", digits=2),
            _with_interval(r, "B_sensitivity", digits=2) + f" ({r['rank_sensitivity_label']})",
            _num(r["rank_stability"], 2),
        ]
        for _, r in board.iterrows()
    ]
    header = ["rank", "entry", "workloads", "B steps to target", "B LR sensitivity (rank)", "rank stability"]
    return f"""## Scores

{_table(header, rows)}

B is AlgoPerf's benchmark score (Dahl et al. 2023): on each workload an entry's performance ratio is its metric
over the best entry's, r = t / min t; B = 1/(r_max - 1) x the integral from 1 to r_max = {R_MAX:g} of the share of
its workloads with r <= tau (its performance profile, below): 1 = the best on every workload, 0 = never within
{R_MAX:g}x of the best. *B steps to target* is tuned (each entry at its best eta_trgt), *B LR sensitivity* untuned
(the whole eta_trgt grid). An entry is scored on the workloads of its optimizer family (*workloads*). Ranks
follow B steps to target; **=k**: the entry's {CI:.0%} interval overlaps its neighbour's, so the data do not
order them. Rank stability: the share of {n_boot} bootstrap resamples of the seeds in which the entry keeps its rank.
Intervals: {CI:.0%} bootstrap over seeds. Formulas and sources: `analysis/leaderboard/scores.py`.

![performance profile, steps to target]({PROFILES["steps"]})
![performance profile, LR sensitivity]({PROFILES["sensitivity"]})

![rank stability]({STABILITY})
"""


def _matters_line(workload: str, rows: pd.DataFrame, matters: bool) -> str:
    base = rows.loc[rows["entry"] == BASELINE, "eta_max"]
    if base.empty:
        return f"**Warmup matters?** Cannot tell: `{BASELINE}` did not run on `{workload}`."
    if matters:
        return (
            f"**Warmup matters here**: {eta_max_moved(rows).sum()} of {len(rows) - 1} entries move eta_max away from "
            f"`{BASELINE}`'s ({_num(base.iloc[0])})."
        )
    return (
        f"**Warmup does not matter here by eta_max**: no entry's eta_max differs from `{BASELINE}`'s "
        f"({_num(base.iloc[0])}), so this workload cannot rank warmup methods by eta_max (its other metrics still "
        "count); a wider eta_trgt grid or a shorter budget may separate them."
    )


def _workload_section(workload: str, rows: pd.DataFrame, info: dict, matters: bool) -> str:
    comment = f" — {info['comment']}" if info.get("comment") else ""
    facts = ", ".join(f"{k} {info[k]}" for k in ("tier", "family", "rule") if info.get(k) is not None)
    first = rows.iloc[0]
    table = [
        [
            f"`{r['entry']}`",
            _num(r["eta_max"]) + ("+" if r["eta_max_lower_bound"] else ""),
            _num(r["eta_max_gain"], 2),
            _with_interval(r, "best_test_loss"),
            _with_interval(r, "best_test_acc"),
            _with_interval(r, "sensitivity"),
            _with_interval(r, "steps_to_target", inf="never"),
            f"{r['cost_fraction']:.2%}",
            _num(r["wall_time_s"]),
        ]
        for _, r in rows.iterrows()
    ]
    header = ["entry", "eta_max", "gain", "best test loss", "best test acc", "LR sensitivity", "steps to target"]
    return f"""### {workload}{comment}

{facts}; target test loss {_num(first["target_test_loss"], 4)}; {first["rates"]} rates x {first["seeds"]} seeds.

{_matters_line(workload, rows, matters)}

{_table([*header, "cost", "wall time (s)"], table)}

![final test loss against eta_trgt on {workload}](loss_vs_eta_{workload}.png)
"""


METRICS_HELP = f"""eta_max: the largest eta_trgt at which every seed trains (+: the top of the grid, a lower
bound); gain: over `{BASELINE}`'s. Best test loss / accuracy: median over seeds at the best eta_trgt. LR
sensitivity (Wortsman et al. 2023): the mean over the grid of min(L(eta), L0) - L*, diverged runs counted as L0;
lower is better. Steps to target: the first evaluation at which the median test loss reaches the workload's
target, at the best eta_trgt; never = not within the budget. Cost: extra forward passes / 3 plus extra gradients,
per training step. Brackets: {CI:.0%} bootstrap intervals over seeds."""


def _markdown(runs, table, board, matters, workloads_info, note, n_boot) -> str:
    parts = ["# Warmup leaderboard", note.strip()] if note.strip() else ["# Warmup leaderboard"]
    parts += [
        f"Runs: {len(runs)}; entries: {table['entry'].nunique()}; workloads: {len(matters)}. Each entry ran over its "
        "workloads' eta_trgt grids and seeds.",
        _scores_section(board, n_boot),
        "## Workloads",
        METRICS_HELP,
    ]
    for w, rows in table.groupby("workload", sort=True):
        rows = rows.set_index("entry").loc[_order(rows, board)].reset_index()
        parts.append(_workload_section(w, rows, workloads_info[w], matters[w]))
    parts.append(PROXY)
    pending = sorted(w for w, i in workloads_info.items() if w not in matters and i.get("tier") == "gpu")
    if pending:
        parts.append(f"GPU-tier workloads configured, not run here: {', '.join(f'`{w}`' for w in pending)}.")
    return "\n\n".join(p.strip() for p in parts) + "\n"


def _order(rows: pd.DataFrame, board: pd.DataFrame) -> list[str]:
    """A workload's entries in the scores' order."""
    present = set(rows["entry"])
    return [e for e in board["entry"] if e in present]


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI), binary=True)
    return path


def _styles(entries: list[str]) -> dict[str, dict]:
    """A colour and line style per entry, fixed by its place in the sorted list (same look in every figure)."""
    from matplotlib import colormaps

    colours = colormaps["tab10"].colors
    return {e: {"color": colours[i % 10], "ls": ("-", "--", ":")[i // 10 % 3]} for i, e in enumerate(entries)}


def _profile_figure(table: pd.DataFrame, name: str, styles: dict):
    from matplotlib.figure import Figure

    rho = performance_profile(table, name, TAUS)
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for entry in rho.columns:
        ax.step(TAUS, rho[entry], where="post", label=entry, lw=1.5, **styles[entry])
    ax.set(xlim=(1, R_MAX), ylim=(-0.02, 1.02), xlabel=r"$\tau$ (ratio to the best entry)", ylabel=r"$\rho(\tau)$")
    fig.suptitle(f"Performance profile: {TITLES[name]}", fontsize=10)
    fig.legend(loc="outside right center", fontsize=7)
    return fig


def _stability_figure(board: pd.DataFrame):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 0.8 + 0.25 * len(board)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(board))
    ax.barh(y - 0.2, board["rank_stability"], height=0.4, label="B steps to target")
    ax.barh(y + 0.2, board["rank_sensitivity_stability"], height=0.4, label="B LR sensitivity")
    ax.set(yticks=y, yticklabels=[f"{lbl} {e}" for lbl, e in zip(board["rank_label"], board["entry"])], xlim=(0, 1))
    ax.invert_yaxis()
    ax.set_xlabel("share of bootstrap resamples in which the entry keeps its rank")
    fig.legend(fontsize=7, loc="outside lower center", ncols=2)
    ax.tick_params(labelsize=7)
    return fig


def _loss_figure(workload: str, cells: pd.DataFrame, target: float, styles: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for entry, c in cells.groupby("entry", sort=True):
        ax.plot(c["eta_trgt"], c["loss"], marker="o", ms=3, label=entry, **styles[entry])
        ax.fill_between(c["eta_trgt"], c["loss_lo"], c["loss_hi"], color=styles[entry]["color"], alpha=0.15, lw=0)
        failed = c[c["trained"] < c["runs"]]  # not every seed trained: a cross on the point
        ax.plot(failed["eta_trgt"], failed["loss"], ls="", marker="x", ms=7, color=styles[entry]["color"])
    ax.axhline(cells["initial_loss"].median(), color="grey", lw=0.8, ls="-.", label=r"$L_0$ (diverged runs)")
    ax.axhline(target, color="black", lw=0.8, ls=":", label="target test loss")
    ax.set_xscale("log", base=2)
    ax.set(xlabel=r"$\eta_{trgt}$", ylabel="final test loss (median over seeds)")
    fig.suptitle(f"{workload}: final test loss, {CI:.0%} band; x: not every seed trained", fontsize=10)
    fig.legend(loc="outside right center", fontsize=7)
    return fig


def write(runs: pd.DataFrame, workloads_info: dict[str, dict], out_dir, note: str = "") -> list[Path]:
    """Score the runs table and write the report into out_dir (created): leaderboard.md, leaderboard.csv (the
    metrics, one row per (workload, entry)), profile_steps_to_target.png, profile_sensitivity.png,
    rank_stability.png, loss_vs_eta_<workload>.png per workload. Every file is written whole or not at all.
    `workloads_info`: workload -> {target_test_loss, tier, family, rule, comment}; `note`: a paragraph put under
    the title (e.g. how and when the runs were made). Returns the paths written."""
    missing = sorted(set(runs["workload"]) - set(workloads_info)) if "workload" in runs else []
    if missing:
        raise ValueError(f"no workload info (its YAML) for workload {', '.join(map(str, missing))}")
    targets = {w: info.get("target_test_loss") for w, info in workloads_info.items()}
    table = metrics(runs, targets, N_BOOT, SEED)
    board, matters = scores(table), warmup_matters(table)
    cells = by_rate(runs, N_BOOT, SEED)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    styles = _styles(sorted(table["entry"].unique()))
    written = [_save(_profile_figure(table, name, styles), out / PROFILES[name]) for name in SCORED]
    written.append(_save(_stability_figure(board), out / STABILITY))
    for workload, c in cells.groupby("workload", sort=True):
        fig = _loss_figure(workload, c, targets[workload], styles)
        written.append(_save(fig, out / f"loss_vs_eta_{workload}.png"))
    csv = table.drop(columns=[c for c in table if c.endswith("_boot")])
    atomic_write_text(out / "leaderboard.csv", csv.to_csv(index=False))
    atomic_write_text(out / "leaderboard.md", _markdown(runs, table, board, matters, workloads_info, note, N_BOOT))
    return [out / "leaderboard.md", out / "leaderboard.csv", *written]
