"""Trajectories of the warmup mechanisms (docs/paper.md section 7, the paper's Figures 1, 2 and 6): the training loss,
the sharpness lambda^H (or Adam's lambda^{P^-1 H}) and the stability threshold (2/eta_t, ...) against the step, one
curve per run (e.g. one per T_wrm), from the per-step rows `measure.every` adds to metrics.csv. A measurement whose
eigen-solver did not converge (`sharpness_converged` False) is drawn as a hollow marker on its curve."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.aggregate import WARMUP, load_metrics
from analysis.phase import pyplot


def trajectories(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The per-step rows of the runs, with the given config keys: step, lr, loss (the step's minibatch loss where
    measured, else the running train loss), sharpness, pre_sharpness, threshold."""
    m = load_metrics(runs, [k for k in keys if k in runs.columns])
    if m.empty:
        return m
    # a run's per-step losses where it logged them, else its running train loss (never the two mixed in one curve)
    batch = m["batch_loss"] if "batch_loss" in m else pd.Series(np.nan, index=m.index)
    has_batch = batch.notna().groupby(m["run_dir"]).transform("any")
    m["loss"] = batch.where(has_batch, m["train_loss"] if "train_loss" in m else np.nan)
    for col in ("sharpness", "pre_sharpness", "threshold"):
        if col not in m:
            m[col] = np.nan
    for col in ("sharpness", "pre_sharpness"):  # runs from before the solver's flag count as converged
        flag = m[f"{col}_converged"] if f"{col}_converged" in m else pd.Series(np.nan, index=m.index)
        m[f"{col}_converged"] = ~flag.map(is_false)
    return m


def is_false(value) -> bool:
    """A `*_converged` cell that says False (bool, or as a CSV / parquet round trip spells it); empty is not."""
    return value is False or value is np.False_ or str(value).strip().lower() in ("false", "0", "0.0")


def summarize(traj: pd.DataFrame, by: str = WARMUP, facet: str | None = None) -> pd.DataFrame:
    """One row per run: initial loss and sharpness, the loss peak, and where the sharpness ends against the
    threshold (the ratio sharpness / threshold at the last measurement)."""
    sharp = "pre_sharpness" if traj["pre_sharpness"].notna().any() else "sharpness"
    rows = []
    for _, run in traj.groupby("run_dir"):
        run = run.sort_values("step")
        meas = run.dropna(subset=[sharp])
        peak = run.loc[run["loss"].idxmax()] if run["loss"].notna().any() else None
        last = meas.iloc[-1] if len(meas) else None
        rows.append(
            {
                **({facet: run[facet].iloc[0]} if facet else {}),
                by: run[by].iloc[0],
                "loss_0": run["loss"].iloc[0],
                "loss_peak": None if peak is None else peak["loss"],
                "peak_step": None if peak is None else int(peak["step"]),
                f"{sharp}_0": None if last is None else meas[sharp].iloc[0],
                f"{sharp}_max": None if last is None else meas[sharp].max(),
                "last_step": None if last is None else int(last["step"]),
                f"{sharp}_last": None if last is None else last[sharp],
                "threshold_last": None if last is None else last["threshold"],
                "ratio_last": None if last is None else last[sharp] / last["threshold"],
                "unconverged": int((~meas[f"{sharp}_converged"]).sum()),  # drawn hollow in the plot
            }
        )
    return pd.DataFrame(rows).sort_values([c for c in (facet, by) if c])


def plot_trajectories(traj: pd.DataFrame, by: str = WARMUP, facet: str | None = None, xscale: str = "log"):
    """Rows: one per value of `facet` (e.g. model.param); columns: loss, then lambda^H, then lambda^{P^-1 H} where
    measured; one colour per value of `by`, the threshold dashed in the same colour next to the sharpness it bounds.
    Log axes as in the paper."""
    pre = traj["pre_sharpness"].notna().any()
    panels = ["loss", "sharpness"] + (["pre_sharpness"] if pre else [])
    facets = sorted(traj[facet].unique()) if facet else [None]
    values = sorted(traj[by].unique())
    plt, _ = pyplot()
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(values)))
    fig, axes = plt.subplots(len(facets), len(panels), figsize=(4.2 * len(panels), 3.2 * len(facets)), squeeze=False)
    titles = {"loss": "training loss", "sharpness": r"sharpness $\lambda^H$", "pre_sharpness": r"$\lambda^{P^{-1}H}$"}
    for i, f in enumerate(facets):
        rows = traj if f is None else traj[traj[facet] == f]
        for j, panel in enumerate(panels):
            ax = axes[i, j]
            for v, c in zip(values, colours):
                run = rows[rows[by] == v].dropna(subset=[panel]).sort_values("step")
                if run.empty:
                    continue
                ax.plot(run["step"], run[panel], color=c, lw=1.3, label=f"{by.split('.')[-1]}={v}")
                if panel != "loss":  # the solver hit max_iter twice: a hollow marker, not to be trusted
                    bad = run[~run[f"{panel}_converged"]]
                    ax.scatter(bad["step"], bad[panel], s=22, facecolors="none", edgecolors=[c], lw=1, zorder=3)
                if panel == ("pre_sharpness" if pre else "sharpness"):
                    ax.plot(run["step"], run["threshold"], color=c, lw=1, ls="--")
            ax.set_xscale(xscale)
            ax.set_yscale("log")
            ax.set_xlabel("step")
            ax.set_title(titles[panel] + (f" ({facet.split('.')[-1]}={f})" if f is not None else ""), fontsize=10)
            ax.grid(alpha=0.3, which="both", lw=0.4)
        axes[i, 0].legend(fontsize=7)
    sharp_ax = axes[0, len(panels) - 1]
    # the dashed curve is the threshold of the run's optimizer (bench/measure.py): name the right one
    adam, sgd = r"$(2 + 2 b_1)/(\eta_t (1 - b_1))$ (Adam)", r"$2/\eta_t$ (SGD; $(2 + 2\beta)/\eta_t$ with momentum)"
    label = "threshold " + (adam if pre else sgd)
    sharp_ax.plot([], [], color="grey", ls="--", label=label)
    sharp_ax.scatter([], [], s=22, facecolors="none", edgecolors="grey", label="hollow: solver not converged")
    sharp_ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
