"""Phase diagrams: a metric over the (eta_trgt, T_wrm) grid, diverged and failed-to-train cells marked, and the
stability boundary eta_max(T_wrm), the largest trainable eta_trgt at each warmup length (docs/paper.md section 7).

Every function takes the run table of `load_runs` (or `load_reference`) and optional `by` / `facet` config keys
(e.g. optimizer.name, model.param): one diagram and one boundary per value. Seeds of a cell are averaged; the
spread (std) and the counts of trained, diverged, not-trained and failed runs are columns of `phase_grid`.

Runs of different configs are never averaged: every config key that differs between the runs besides the two axes,
the seed and the keys that do not change results (`mixed_keys`) is added to `by` / `facet`, so a sweep over
optimizer=sgd,adam gives one panel and one boundary per optimizer. `ignore=[KEY]` pools a key's values like seeds.

Sparse grids (a boundary search, a partial sweep): a cell that never ran is blank, a row's eta_max comes from the
cells that ran, and it is a lower bound (`lower_bound`) when the next grid value above it did not run in that row
(or it is the top of the grid).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from analysis.aggregate import LR, SEED, WARMUP  # noqa: F401  (re-exported: analysis.__main__ imports them here)
from bench.runfolder import NON_RESULT_KEYS, RULES, check_rule, trainable  # noqa: F401  (the one rule)

LR_UNIT = "optimizer.lr_unit"
# config keys that do not change a run's results (the run identity's, bench/runfolder/), where it ran and read its
# data (device, dataset.root, dataset.download), and load_reference's bookkeeping (reference.kind: which of the
# authors' files a run came from)
NOT_RESULT = (*NON_RESULT_KEYS, "device", "dataset.root", "dataset.download", "reference")
# top-level keys of conf/config.yaml: with the dotted keys, the config columns of a table load_runs did not build
TOP_LEVEL = ("seed", "steps", "batch_size", "eval_every", "loss", "diverge_factor", "stop_on_divergence")
MAX_PANELS = 12  # plot_phase refuses more configs than this in one figure

# how each kind of untrained cell is drawn: face colour, hatch, mark
MARKS = {
    "diverged": ("#bdbdbd", "///", "x", "#b2182b"),
    "not trained": ("#f2f2f2", "...", "–", "#252525"),  # completed, failed by the rule (`trainable`)
    "failed": ("#525252", "", "!", "#ffffff"),  # the run crashed (see its traceback.txt)
}


def run_state(runs: pd.DataFrame, rule: str = "test") -> pd.Series:
    """trained | diverged | not trained | failed, one per run."""
    state = pd.Series("not trained", index=runs.index)
    state[runs["status"] == "diverged"] = "diverged"
    state[~runs["status"].isin(["completed", "diverged"])] = "failed"
    state[trainable(runs, rule)] = "trained"
    return state


def _by(by: str | list[str] | None) -> list[str]:
    return [by] if isinstance(by, str) else list(by or [])


def config_keys(runs: pd.DataFrame) -> list[str]:
    """The columns that come from the runs' config.yaml (recorded by load_runs; else the dotted and top-level keys)."""
    keys = runs.attrs.get("config_keys")
    if keys is None:
        keys = [c for c in runs.columns if "." in c or c in TOP_LEVEL]
    return [k for k in keys if k in runs.columns]


def _ignored(key: str, ignore: list[str]) -> bool:
    return any(key == e or key.startswith(f"{e}.") for e in [*NOT_RESULT, *ignore])


def _hashable(v):
    return v if isinstance(v, (str, int, float, bool, type(None), np.generic)) else repr(v)


def _groups(runs: pd.DataFrame, keys: list[str]) -> pd.Series:
    """A group number per run: runs with equal values of the keys (NaN equal to NaN) share one."""
    if not keys:
        return pd.Series(0, index=runs.index)
    return pd.DataFrame({k: _groupable(runs[k]) for k in keys}).groupby(keys, sort=False).ngroup()


def mixed_keys(
    runs: pd.DataFrame, x: str = LR, y: str = WARMUP, by: str | list[str] | None = None, ignore: list[str] = ()
) -> list[str]:
    """The config keys, besides the axes, the seed, `by`, `ignore` and the keys that do not change results, whose
    value differs between runs: the runs hold several configs. The smallest such set that tells them apart: a key
    that follows from the others (optimizer.b1 is set iff optimizer.name is adam) is left out. Keys with fewer
    values (and set in more runs) come first."""
    fixed = {x, y, SEED, *_by(by)}
    candidates = [k for k in config_keys(runs) if k not in fixed and not _ignored(k, list(ignore))]
    candidates = [k for k in candidates if _groups(runs, [k]).nunique() > 1]
    candidates.sort(key=lambda k: (runs[k].isna().sum(), _groups(runs, [k]).nunique(), k))
    chosen = []
    partition = _groups(runs, _by(by))
    for k in candidates:
        finer = _groups(runs, [*_by(by), *chosen, k])
        if finer.nunique() > partition.nunique():
            chosen.append(k)
            partition = finer
    return chosen


def _facets(runs, x, y, by, ignore) -> tuple[pd.DataFrame, list[str]]:
    """`by` plus the mixed keys, and the runs with those columns made groupable (lists as text, NaN as '<unset>')."""
    for k in (x, y):
        if k not in runs:
            raise ValueError(f"no column {k!r} in the run table")
        if k in _by(by):
            raise ValueError(f"{k} is an axis of the diagram, not a facet")
    keys = [*_by(by), *mixed_keys(runs, x, y, by, ignore)]
    return runs.assign(**{k: _groupable(runs[k]) for k in keys}), keys


def _groupable(column: pd.Series) -> pd.Series:
    """NaN as '<unset>' (a key some runs do not have), lists as text; other columns as they are."""
    if column.notna().all() and column.map(_hashable).equals(column):
        return column
    return column.map(_hashable).astype(object).where(column.notna(), "<unset>")


def config_labels(table: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Each row's config as plot_phase titles its panels ("schedule.name=linear"; "all runs" without keys): what a
    notebook's own plots split by (col, row, hue), so that configs are never pooled."""
    if not keys:
        return pd.Series("all runs", index=table.index)
    values = zip(*(_groupable(table[k]) for k in keys))
    return pd.Series([", ".join(f"{k}={v}" for k, v in zip(keys, row)) for row in values], index=table.index)


def _sort_key(column: pd.Series) -> pd.Series:
    return column if pd.api.types.is_numeric_dtype(column) else column.astype(str)


def phase_grid(
    runs: pd.DataFrame,
    metric: str = "best_test_acc",
    x: str = LR,
    y: str = WARMUP,
    by: str | list[str] | None = None,
    ignore: list[str] = (),
    rule: str = "test",
) -> pd.DataFrame:
    """One row per (by..., y, x) cell that ran: the metric's mean and std over the cell's trained seeds, the counts,
    and the cell's state: trained (at least one seed trained, by `rule`), else diverged (some seed diverged), not
    trained or failed. Config keys that differ between the runs (`mixed_keys`) are added to `by`, never averaged."""
    runs, by = _facets(runs, x, y, by, ignore)
    keys = [*by, y, x]
    state = run_state(runs, rule)
    df = runs.assign(
        _value=numeric(runs, metric).where(state == "trained"),
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


def numeric(runs: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats; one line naming a run where it is not a number."""
    if column not in runs:
        raise ValueError(f"no column {column!r} in the run table")
    values = pd.to_numeric(runs[column].where(runs[column].notna()), errors="coerce")
    bad = values.isna() & runs[column].notna()
    if bad.any():
        first = runs[bad].iloc[0]
        where = f" ({first['run_dir']})" if "run_dir" in runs else ""
        raise ValueError(f"{column} is not a number in {bad.sum()} run(s), e.g. {first[column]!r}{where}")
    return values.astype(float)


def eta_max(
    runs: pd.DataFrame,
    x: str = LR,
    y: str = WARMUP,
    by: str | list[str] | None = None,
    ignore: list[str] = (),
    grid: dict | None = None,
    rule: str = "test",
) -> pd.DataFrame:
    """The stability boundary: the largest eta_trgt at which every seed trains (by `rule`), for each T_wrm (and each
    value of the `by` keys and of the config keys that differ between the runs); NaN where none does. From the cells
    that ran; `lower_bound` is true where the next grid value above eta_max (the panel's eta_trgt values) did not run
    in that row, or eta_max is the top of the grid: the boundary may lie higher. `grid` ({x: values, y: values}, e.g.
    from the sweep's multirun.yaml) adds the grid values no run of a panel reached."""
    runs, by = _facets(runs, x, y, by, ignore)
    df = runs.assign(_trainable=trainable(runs, rule), _panel=_groups(runs, by))
    cells = df.groupby(["_panel", *by, y, x])["_trainable"].all().reset_index()
    rows = []
    for _, panel in cells.groupby("_panel"):
        xs = np.unique([*panel[x], *(grid or {}).get(x, [])])
        for _, row in panel.groupby(y):
            trained = row.loc[row["_trainable"], x]
            e = trained.max() if len(trained) else np.nan
            above = xs[xs > e]
            lower = bool(pd.notna(e) and (len(above) == 0 or above[0] not in set(row[x])))
            rows.append({**row.iloc[0][[*by, y]].to_dict(), "eta_max": e, "lower_bound": lower})
    out = pd.DataFrame(rows, columns=[*by, y, "eta_max", "lower_bound"])
    return out.sort_values([*by, y], key=_sort_key).reset_index(drop=True)


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


def pyplot():
    """matplotlib.pyplot and seaborn, imported when a figure is drawn (here and in the other analysis modules), so
    that `import analysis` (tables, eta_max, `python -m analysis status`) does without them: seaborn alone imports
    scipy.stats, seconds in every process."""
    import matplotlib

    if "ipykernel" not in sys.modules:  # headless by default; a notebook keeps its inline backend
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    return plt, sns


def _draw(ax, runs: pd.DataFrame, metric: str, x: str, y: str, norm, cbar: bool, annot_std: bool, ignore, grid, rule):
    cells = phase_grid(runs, metric, x, y, ignore=ignore, rule=rule)
    values = cells.pivot(index=y, columns=x, values=metric)
    rows = sorted({*values.index, *(grid or {}).get(y, [])}, reverse=True)
    values = values.reindex(index=rows, columns=sorted({*values.columns, *(grid or {}).get(x, [])}))
    states = cells.pivot(index=y, columns=x, values="state").reindex_like(values)  # NaN: the cell never ran
    unit = lr_unit(runs) if x == LR else "absolute"
    annot = values.map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    if annot_std:
        spread = cells.pivot(index=y, columns=x, values=f"{metric}_std").reindex_like(values)
        annot = annot + spread.map(lambda s: "" if pd.isna(s) else f"\n±{s:.2f}")
    ax.set_facecolor("white")  # a grid point that never ran stays blank
    plt, sns = pyplot()
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
    bound = eta_max(runs, x, y, ignore=ignore, grid=grid, rule=rule).set_index(y)
    cols = list(values.columns)
    xs, ys, lower = [], [], []
    for i, t in enumerate(values.index):  # the right edge of the last trainable cell of each row
        e = bound["eta_max"].get(t, np.nan)
        if pd.notna(e):
            xs += [cols.index(e) + 1] * 2
            ys += [i, i + 1]
            if bound["lower_bound"].get(t):
                lower.append((cols.index(e) + 1, i + 0.5))
    ax.plot(xs, ys, color="#ff7f00", lw=3, label=r"$\eta_{max}(T_{wrm})$")
    if lower:  # the boundary may lie further right: the next cell of the row never ran, or the grid ends
        ax.plot(*zip(*lower), ls="", marker=">", ms=9, color="#ff7f00", mec="black", label=LOWER_BOUND)
    ax.set_xlabel(r"$\eta_{trgt}$" + (r" (units of $1/\lambda_0$)" if unit == "inverse_sharpness" else ""))
    ax.set_ylabel(r"$T_{wrm}$")
    ax.tick_params(axis="x", labelrotation=90)
    ax.tick_params(axis="y", labelrotation=0)
    return int(states.isna().to_numpy().sum())


LOWER_BOUND = r"$\eta_{max}$ is a lower bound"


def plot_phase(
    runs: pd.DataFrame,
    metric: str = "best_test_acc",
    x: str = LR,
    y: str = WARMUP,
    title: str = "",
    facet: str | list[str] | None = None,
    annot_std: bool = False,
    ignore: list[str] = (),
    grid: dict | None = None,
    rule: str = "test",
):
    """Heatmap of the metric (seed mean; `annot_std` adds the spread), eta_trgt ticks as powers of two (or of
    1/lambda0), diverged cells hatched grey with a red x, not-trained cells dotted with a dash, crashed runs dark
    with a !, cells that never ran blank, and the boundary eta_max(T_wrm) as an orange line on the right edge of the
    last trainable cell of each row (a triangle where it is a lower bound). `facet`: one panel per value of these
    keys (stacked), sharing the colour scale; config keys that differ between the runs are facets too (see
    `mixed_keys`); more than MAX_PANELS panels is refused (ValueError). `grid` ({x: values, y: values}, e.g. from
    the sweep's multirun.yaml): rows and columns no run reached are drawn too, blank. `rule`: `trainable`'s."""
    keyed, keys = _facets(runs, x, y, facet, ignore)
    mixed = [k for k in keys if k not in _by(facet)]
    groups = list(keyed.groupby(keys, sort=True)) if keys else [((), keyed)]
    if len(groups) > MAX_PANELS:
        raise ValueError(
            f"the runs hold {len(groups)} configs (they differ in {', '.join(mixed or keys)}), more than "
            f"{MAX_PANELS} panels: analyse fewer at a time, or ignore a key that does not change results"
        )
    cells = phase_grid(runs, metric, x, y, by=facet, ignore=ignore, rule=rule)
    norm = (np.nanmin(cells[metric]), np.nanmax(cells[metric])) if cells[metric].notna().any() else (0.0, 1.0)
    width = 4.0 + (0.6 if annot_std else 0.5) * len({*runs[x], *(grid or {}).get(x, [])})
    height = 1.6 + (0.5 if annot_std else 0.4) * len({*runs[y], *(grid or {}).get(y, [])})
    size = (width, max(height, 2.4) * len(groups))
    plt, _ = pyplot()
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(len(groups), 1, layout="constrained", figsize=size, squeeze=False)
    blank = 0
    for ax, (values, sub) in zip(axes[:, 0], groups):
        blank += _draw(ax, runs.loc[sub.index], metric, x, y, norm, True, annot_std, ignore, grid, rule)
        values = values if isinstance(values, tuple) else (values,)
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, values))
        ax.set_title(label if keys else (title or f"{metric} over the (eta_trgt, T_wrm) grid"))
    if keys and title:
        fig.suptitle(title)
    handles = [
        Patch(facecolor=face, hatch=hatch, edgecolor="#636363", label=f"{state} ({mark})")
        for state, (face, hatch, mark, _) in MARKS.items()
    ]
    if blank:
        handles.append(Patch(facecolor="white", edgecolor="#636363", label="never ran (blank)"))
    lines = {line.get_label(): line for ax in axes[:, 0] for line in ax.get_lines()}
    fig.legend(handles=handles + list(lines.values()), loc="outside lower center", ncols=4, fontsize=8)
    return fig
