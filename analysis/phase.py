"""Phase diagrams: a metric over the (eta_trgt, T_wrm) grid, diverged cells marked, and the stability boundary
eta_max(T_wrm), the largest trainable eta_trgt at each warmup length (SPEC section 7)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

LR, WARMUP = "optimizer.lr", "schedule.warmup_steps"


def trainable(runs: pd.DataFrame) -> pd.Series:
    """Completed and trained: final test accuracy at least 1.5 / num_classes (the authors' failure rule)."""
    chance = 1.5 / runs["num_classes"].astype(float)
    return (runs["status"] == "completed") & (runs["final_test_acc"].astype(float) >= chance)


def phase_grid(runs: pd.DataFrame, metric: str = "best_test_acc", x: str = LR, y: str = WARMUP) -> pd.DataFrame:
    """One row per (y, x) cell: the metric's mean and std over seeds (trainable runs only), and the cell's counts."""
    df = runs.assign(_trainable=trainable(runs), _diverged=runs["status"] == "diverged")
    df["_value"] = df[metric].where(df["_trainable"])
    cells = df.groupby([y, x]).agg(
        mean=("_value", "mean"),
        std=("_value", "std"),
        runs=("status", "size"),
        trainable=("_trainable", "sum"),
        diverged=("_diverged", "sum"),
    )
    return cells.reset_index().rename(columns={"mean": metric, "std": f"{metric}_std"})


def eta_max(runs: pd.DataFrame, x: str = LR, y: str = WARMUP) -> pd.DataFrame:
    """The largest eta_trgt at which every seed trains, for each T_wrm (NaN where none does)."""
    df = runs.assign(_trainable=trainable(runs))
    ok = df.groupby([y, x])["_trainable"].all().reset_index()
    best = ok[ok["_trainable"]].groupby(y)[x].max()
    return best.reindex(sorted(df[y].unique())).rename("eta_max").reset_index()


def _tick(v: float) -> str:
    e = np.log2(v)
    return f"$2^{{{e:.0f}}}$" if np.isclose(e, round(e)) else f"{v:.3g}"


def plot_phase(runs: pd.DataFrame, metric: str = "best_test_acc", x: str = LR, y: str = WARMUP, title: str = ""):
    """Heatmap of the metric (eta_trgt on a log2 axis), diverged cells hatched grey with a cross, and the
    boundary eta_max(T_wrm) drawn as an orange line on the right edge of the last trainable cell of each row."""
    cells = phase_grid(runs, metric, x, y)
    values = cells.pivot(index=y, columns=x, values=metric).sort_index(ascending=False)
    diverged = cells.pivot(index=y, columns=x, values="diverged").reindex_like(values).fillna(0) > 0
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * values.shape[1], 1.2 + 0.6 * values.shape[0]))
    ax.set_facecolor("#d9d9d9")  # cells with no trainable run
    sns.heatmap(
        values,
        ax=ax,
        annot=True,
        fmt=".2f",
        cmap="viridis",
        cbar_kws={"label": metric},
        xticklabels=[_tick(v) for v in values.columns],
        yticklabels=[str(v) for v in values.index],
    )
    for i, j in zip(*np.nonzero(diverged.to_numpy())):
        ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=True, facecolor="#bdbdbd", hatch="///", edgecolor="#636363"))
        ax.text(j + 0.5, i + 0.5, "x", ha="center", va="center", color="#b2182b", fontsize=14, fontweight="bold")
    bound = eta_max(runs, x, y).set_index(y)["eta_max"]
    cols = list(values.columns)
    xs, ys = [], []
    for i, t in enumerate(values.index):
        e = bound.get(t, np.nan)
        if pd.notna(e):
            xs += [cols.index(e) + 1] * 2
            ys += [i, i + 1]
    ax.plot(xs, ys, color="#ff7f00", lw=3, label=r"$\eta_{max}(T_{wrm})$")
    ax.set_xlabel(r"$\eta_{trgt}$" + (" (x 1/$\\lambda_0$)" if "lr_unit" in x else ""))
    ax.set_ylabel(r"$T_{wrm}$")
    ax.set_title(title or f"{metric} over the ($\\eta_{{trgt}}$, $T_{{wrm}}$) grid")
    handles = [
        Patch(facecolor="#bdbdbd", hatch="///", edgecolor="#636363", label="diverged"),
        Patch(facecolor="#d9d9d9", label="did not train"),
    ]
    ax.legend(handles=handles + ax.get_lines(), loc="upper left", bbox_to_anchor=(1.25, 1.0), fontsize=8)
    fig.tight_layout()
    return fig
