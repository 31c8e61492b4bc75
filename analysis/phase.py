"""Phase diagrams: a metric over the (eta_trgt, T_wrm) grid, diverged and failed-to-train cells marked, and the
stability boundary eta_max(T_wrm), the largest trainable eta_trgt at each warmup length (SPEC section 7).

Every function takes the run table of `load_runs` (or `load_reference`) and optional `by` / `facet` config keys
(e.g. optimizer.name, model.param): one diagram and one boundary per value. Seeds of a cell are averaged; the
spread (std) and the counts of trained, diverged, not-trained and failed runs are columns of `phase_grid`.
"""

from __future__ import annotations

import sys

import matplotlib

if "ipykernel" not in sys.modules:  # headless by default; a notebook keeps its inline backend
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

LR, WARMUP, LR_UNIT = "optimizer.lr", "schedule.warmup_steps", "optimizer.lr_unit"

# how each kind of untrained cell is drawn: face colour, hatch, mark
MARKS = {
    "diverged": ("#bdbdbd", "///", "x", "#b2182b"),
    "not trained": ("#f2f2f2", "...", "–", "#252525"),  # completed, accuracy below 1.5 / num_classes
    "failed": ("#525252", "", "!", "#ffffff"),  # the run crashed (see its traceback.txt)
}


def _col(runs: pd.DataFrame, key: str) -> pd.Series:
    return runs[key] if key in runs else pd.Series(np.nan, index=runs.index)


def trainable(runs: pd.DataFrame) -> pd.Series:
    """Completed and trained: final test accuracy at least 1.5 / num_classes (the authors' failure rule)."""
    chance = 1.5 / _col(runs, "num_classes").astype(float)
    return (runs["status"] == "completed") & (_col(runs, "final_test_acc").astype(float) >= chance)


def run_state(runs: pd.DataFrame) -> pd.Series:
    """trained | diverged | not trained | failed, one per run."""
    state = pd.Series("not trained", index=runs.index)
    state[runs["status"] == "diverged"] = "diverged"
    state[~runs["status"].isin(["completed", "diverged"])] = "failed"
    state[trainable(runs)] = "trained"
    return state


def _by(by: str | list[str] | None) -> list[str]:
    return [by] if isinstance(by, str) else list(by or [])


def phase_grid(
    runs: pd.DataFrame,
    metric: str = "best_test_acc",
    x: str = LR,
    y: str = WARMUP,
    by: str | list[str] | None = None,
) -> pd.DataFrame:
    """One row per (by..., y, x) cell: the metric's mean and std over the cell's trained seeds, the counts, and the
    cell's state: trained (at least one seed trained), else diverged (some seed diverged), not trained or failed."""
    keys = [*_by(by), y, x]
    state = run_state(runs)
    df = runs.assign(
        _value=runs[metric].astype(float).where(state == "trained"),
        **{f"_{s}": state == s for s in ("trained", "diverged", "not trained", "failed")},
    )
    cells = df.groupby(keys).agg(
        mean=("_value", "mean"),
        std=("_value", "std"),
        runs=("status", "size"),
        trainable=("_trained", "sum"),
        diverged=("_diverged", "sum"),
        not_trained=("_not trained", "sum"),
        failed=("_failed", "sum"),
    )
    cells["state"] = np.select(
        [cells["trainable"] > 0, cells["diverged"] > 0, cells["not_trained"] > 0],
        ["trained", "diverged", "not trained"],
        "failed",
    )
    return cells.reset_index().rename(columns={"mean": metric, "std": f"{metric}_std"})


def eta_max(runs: pd.DataFrame, x: str = LR, y: str = WARMUP, by: str | list[str] | None = None) -> pd.DataFrame:
    """The stability boundary: the largest eta_trgt at which every seed trains, for each T_wrm (and each value of
    the `by` keys); NaN where none does."""
    keys = [*_by(by), y]
    df = runs.assign(_trainable=trainable(runs))
    ok = df.groupby([*keys, x])["_trainable"].all().reset_index()
    best = ok[ok["_trainable"]].groupby(keys)[x].max().rename("eta_max")
    every = df[keys].drop_duplicates().sort_values(keys)
    return every.merge(best.reset_index(), on=keys, how="left").reset_index(drop=True)


def lr_unit(runs: pd.DataFrame) -> str:
    """absolute, or inverse_sharpness when every run's eta_trgt is in units of 1/lambda0."""
    units = set(runs[LR_UNIT].dropna()) if LR_UNIT in runs else set()
    if len(units) > 1:
        raise ValueError(f"runs mix {LR_UNIT} values {sorted(units)}: facet by {LR_UNIT}")
    return units.pop() if units else "absolute"


def tick(v: float, unit: str = "absolute") -> str:
    """A powers-of-two tick ($2^{-3}$), in units of 1/lambda0 when the sweep used them ($2^{3}/\\lambda_0$)."""
    e = np.log2(v) if v > 0 else np.nan
    text = f"2^{{{e:.0f}}}" if np.isfinite(e) and np.isclose(e, round(e)) else f"{v:.3g}"
    text = text if text.startswith("2^") else text.replace("e-0", "e-").replace("e+0", "e")
    return f"${text}/\\lambda_0$" if unit == "inverse_sharpness" else (f"${text}$" if text.startswith("2^") else text)


def _draw(ax, runs: pd.DataFrame, metric: str, x: str, y: str, norm: tuple[float, float], cbar: bool, annot_std: bool):
    cells = phase_grid(runs, metric, x, y)
    values = cells.pivot(index=y, columns=x, values=metric).sort_index(ascending=False)
    states = cells.pivot(index=y, columns=x, values="state").reindex_like(values)
    unit = lr_unit(runs) if x == LR else "absolute"
    annot = values.map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    if annot_std:
        spread = cells.pivot(index=y, columns=x, values=f"{metric}_std").reindex_like(values)
        annot = annot + spread.map(lambda s: "" if pd.isna(s) else f"\n±{s:.2f}")
    ax.set_facecolor("white")  # a grid point with no run
    sns.heatmap(
        values,
        ax=ax,
        annot=annot.to_numpy(),
        fmt="",
        annot_kws={"fontsize": 7},
        cmap="viridis_r" if "loss" in metric else "viridis",
        vmin=norm[0],
        vmax=norm[1],
        cbar=cbar,
        cbar_kws={"label": metric},
        xticklabels=[tick(v, unit) for v in values.columns],
        yticklabels=[str(v) for v in values.index],
    )
    for i, j in zip(*np.nonzero(states.isin(list(MARKS)).to_numpy())):
        face, hatch, mark, color = MARKS[states.iat[i, j]]
        ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor=face, hatch=hatch, edgecolor="#636363", lw=0.5))
        ax.text(j + 0.5, i + 0.5, mark, ha="center", va="center", color=color, fontsize=13, fontweight="bold")
    bound = eta_max(runs, x, y).set_index(y)["eta_max"]
    cols = list(values.columns)
    xs, ys = [], []
    for i, t in enumerate(values.index):  # the right edge of the last trainable cell of each row
        e = bound.get(t, np.nan)
        if pd.notna(e):
            xs += [cols.index(e) + 1] * 2
            ys += [i, i + 1]
    ax.plot(xs, ys, color="#ff7f00", lw=3, label=r"$\eta_{max}(T_{wrm})$")
    ax.set_xlabel(r"$\eta_{trgt}$" + (r" (units of $1/\lambda_0$)" if unit == "inverse_sharpness" else ""))
    ax.set_ylabel(r"$T_{wrm}$")
    ax.tick_params(axis="x", labelrotation=90)
    ax.tick_params(axis="y", labelrotation=0)


def plot_phase(
    runs: pd.DataFrame,
    metric: str = "best_test_acc",
    x: str = LR,
    y: str = WARMUP,
    title: str = "",
    facet: str | None = None,
    annot_std: bool = False,
):
    """Heatmap of the metric (seed mean; `annot_std` adds the spread), eta_trgt ticks as powers of two (or of
    1/lambda0), diverged cells hatched grey with a red x, not-trained cells dotted with a dash, crashed runs dark
    with a !, and the boundary eta_max(T_wrm) as an orange line on the right edge of the last trainable cell of
    each row. `facet`: one panel per value of that key (stacked), sharing the colour scale."""
    groups = list(runs.groupby(facet, sort=True)) if facet else [("", runs)]
    cells = phase_grid(runs, metric, x, y, by=facet)
    norm = (np.nanmin(cells[metric]), np.nanmax(cells[metric])) if cells[metric].notna().any() else (0.0, 1.0)
    width = 4.0 + (0.6 if annot_std else 0.5) * runs[x].nunique()
    height = 1.6 + (0.5 if annot_std else 0.4) * runs[y].nunique()
    size = (width, max(height, 2.4) * len(groups))
    fig, axes = plt.subplots(len(groups), 1, layout="constrained", figsize=size, squeeze=False)
    for ax, (value, sub) in zip(axes[:, 0], groups):
        _draw(ax, sub, metric, x, y, norm, cbar=True, annot_std=annot_std)
        ax.set_title(f"{facet}={value}" if facet else (title or f"{metric} over the (eta_trgt, T_wrm) grid"))
    if facet and title:
        fig.suptitle(title)
    handles = [
        Patch(facecolor=face, hatch=hatch, edgecolor="#636363", label=f"{state} ({mark})")
        for state, (face, hatch, mark, _) in MARKS.items()
    ]
    fig.legend(handles=handles + axes[0, 0].get_lines()[:1], loc="outside lower center", ncols=4, fontsize=8)
    return fig
