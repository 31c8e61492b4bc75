"""The leaderboard's metrics per (workload, entry) and its scores per entry, from the runs table (one row per run,
the columns of COLUMNS; see the leaderboard's runs.py). Lower is better for every metric but accuracy and B.

Metrics (`metrics`, one row per (workload, entry); "median" is over the seeds of one eta_trgt):
- eta_max: the largest eta_trgt at which every seed trains (the `trained` column: bench.runfolder.trainable under
  the workload's rule), NaN where none does: the rule of analysis.phase.eta_max, the phase diagram's stability
  boundary (Kalra & Barkeshli 2024). `eta_max_lower_bound`: eta_max is the top of the grid (the boundary may lie
  higher). eta_max_gain = eta_max / eta_max(no_warmup), same workload. No interval: eta_max is a rule over all the
  seeds, and a resample can only drop a failing seed.
- best_test_loss = min over eta of the median final test loss L(eta) (a run that did not complete counts +inf);
  best_eta is its rate. best_test_acc = max over eta of the median final test accuracy (not completed: 0).
- sensitivity, LR sensitivity as Wortsman et al. 2023 define it ("Small-scale proxies for large-scale Transformer
  training instabilities", section 2.2, "LR vs. loss curves and learning rate sensitivity"):
      sensitivity = mean over the eta grid of [ min(L(eta), L0) - L* ],   L* = min over the grid of L(eta)
  with L(eta) the final test loss (median over seeds), L0 the loss at initialization (median initial_loss of the
  entry's runs; not resampled) and L* this entry's best. The paper's expectation over eta is over a log-spaced LR
  grid: here the workload's log2-spaced eta_trgt grid. A run that diverged or failed counts as L0, a completed run
  is capped at its own initial loss: divergence costs the same wherever it happens. 0 = the same loss at every
  rate. An entry with no trained run at any rate would score 0 (every L(eta) = L0, a flat curve): it gets +inf.
- steps_to_target: the first evaluation step at which the median test loss (over the seeds' test_loss_curve; an
  evaluation a run did not make, e.g. after it diverged, or a non-finite loss, counts +inf) is at most the
  workload's target_test_loss, minimised over the grid (tuned: the best rate); +inf = never reached.
- cost_fraction = (extra_forward_passes / 3 + extra_gradients) / steps, mean over runs: the passes the method
  spends beyond training (the catapult's forward passes, GI-Adam's gradient at theta0) as a share of the training's
  `steps` forward-backward passes, counting a forward-backward pass as ~3 forward passes (the backward pass costs
  about twice the forward). wall_time_s: median over runs.

Intervals: a bootstrap over seeds. Each (workload, entry, eta_trgt) cell's seeds are resampled with replacement
n_boot times and every metric is recomputed from the resampled cells; the 90% interval is the 5th and 95th
percentile of the replicates (the nearest replicate, no interpolation, so that +inf stays +inf). Each cell's
generator is seeded with (seed, the cell's key): the same table gives the same numbers whatever its row order, and
the point estimates (every seed once) never depend on the seed. Replicate b of all cells together is one resample
of the whole table: `scores` takes its intervals and rank stability from the same replicates (the *_boot columns).
"""

from __future__ import annotations

import json
import math
import warnings
import zlib

import numpy as np
import pandas as pd

KEY = ["workload", "entry"]
RUN_KEY = [*KEY, "eta_trgt", "seed"]  # one row per run
COLUMNS = (
    *KEY,
    *("eta_trgt", "seed", "status", "trained", "initial_loss", "final_test_loss", "final_test_acc"),
    *("test_loss_curve", "steps", "extra_forward_passes", "extra_gradients", "wall_time_s"),
)
BASELINE = "no_warmup"  # eta_max_gain and warmup_matters compare with it
CI = 0.90
R_MAX = 4.0  # AlgoPerf's
EPS = 1e-3  # sensitivity ratios: (t + eps) / (min + eps), eps = EPS x the workload's initial loss
FORWARD_PER_PASS = 3  # a forward-backward pass costs ~3 forward passes
SCORED = {"steps": "steps_to_target", "sensitivity": "sensitivity"}  # B_<name> is scored on this metric
INF = math.inf


def check_runs(runs: pd.DataFrame) -> None:
    """One line naming what is wrong with a runs table (ValueError)."""
    missing = [c for c in COLUMNS if c not in runs]
    if missing:
        raise ValueError(f"the runs table has no column {', '.join(missing)}")
    if runs.empty:
        raise ValueError("the runs table is empty: nothing to score")
    twice = runs[runs.duplicated(RUN_KEY, keep=False)]
    if len(twice):
        example = ", ".join(f"{k}={v}" for k, v in twice.iloc[0][RUN_KEY].items())
        raise ValueError(f"{len(twice)} rows of the runs table share their {', '.join(RUN_KEY)} (e.g. {example})")


TRUTH = {True: True, False: False, "True": True, "False": False, "true": True, "false": False}  # 1 == True


def _prepared(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs in key order (a cell's seeds always in the same order, so that a resample picks the same seeds),
    `trained` as bools (a table read back from CSV may hold it as text)."""
    trained = runs["trained"].map(lambda v: TRUTH.get(v) if isinstance(v, (bool, str, int, np.bool_)) else None)
    bad = runs["trained"][trained.isna()]
    if len(bad):
        raise ValueError(f"trained is not true or false in {len(bad)} run(s), e.g. {bad.iloc[0]!r}")
    return runs.assign(trained=trained.astype(bool)).sort_values(RUN_KEY, kind="stable")


def curve(text) -> dict[int, float]:
    """test_loss_curve's JSON text ([[step, test_loss], ...]) -> {step: loss}; {} for a run with no evaluation."""
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        return {int(step): INF if loss is None else float(loss) for step, loss in json.loads(text)}
    except (ValueError, TypeError) as e:
        raise ValueError(f"test_loss_curve is not a list of [step, test_loss] pairs: {text[:60]!r}") from e


def draws(n: int, n_boot: int, seed: int, workload: str, entry: str, eta: float) -> np.ndarray:
    """(1 + n_boot, n) seed indices of one cell: row 0 takes every seed once (the point estimate), then n_boot
    resamples, from a generator seeded with (seed, the cell's key): the same whatever the table's row order."""
    key = f"{workload}\0{entry}\0{float(eta)!r}"
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    return np.vstack([np.arange(n)[None], rng.integers(0, n, size=(n_boot, n))])


def interval(replicates: np.ndarray) -> tuple[float, float]:
    """The CI percentile interval of the replicates (nearest replicate: +inf stays +inf); NaN without any."""
    if len(replicates) == 0:
        return np.nan, np.nan
    tail = (1 - CI) / 2
    lo, hi = np.quantile(replicates, tail, method="lower"), np.quantile(replicates, 1 - tail, method="higher")
    return float(lo), float(hi)


def _runs_arrays(cell: pd.DataFrame, l0: float, steps: np.ndarray) -> dict[str, np.ndarray]:
    """Per run: the final loss (+inf unless completed), accuracy (0 unless completed), the loss capped at L0
    (diverged or failed: L0), trained, and the test loss at each evaluation step (+inf where missing)."""
    completed = (cell["status"] == "completed").to_numpy()
    loss = cell["final_test_loss"].to_numpy(float)
    init = np.nan_to_num(cell["initial_loss"].to_numpy(float), nan=l0)
    curves = [curve(text) for text in cell["test_loss_curve"]]
    losses = np.array([[c.get(int(s), INF) for s in steps] for c in curves], dtype=float).reshape(len(cell), -1)
    return {
        "loss": np.where(completed & np.isfinite(loss), loss, INF),
        "acc": np.where(completed, np.nan_to_num(cell["final_test_acc"].to_numpy(float)), 0.0),
        "capped": np.where(completed & np.isfinite(loss), np.minimum(loss, init), init),
        "trained": cell["trained"].to_numpy(bool),
        "curve": np.where(np.isfinite(losses), losses, INF),
    }


def _first_step(median_curve: np.ndarray, target: float, steps: np.ndarray) -> np.ndarray:
    """(replicates, T) median test losses -> the first step at or below the target per replicate, +inf if none."""
    reached = median_curve <= target
    first = steps[reached.argmax(axis=1)] if len(steps) else np.zeros(len(reached))
    return np.where(reached.any(axis=1), first, INF)


def initial_loss(runs: pd.DataFrame, workload_runs: pd.DataFrame) -> float:
    """L0: the median initial loss of an entry's runs on a workload; the workload's where none of them has one (every
    run failed before its first step)."""
    l0 = runs["initial_loss"].astype(float).median()
    return float(workload_runs["initial_loss"].astype(float).median() if pd.isna(l0) else l0)


def _entry(runs: pd.DataFrame, l0: float, target: float, steps: np.ndarray, n_boot: int, seed: int) -> dict:
    """One (workload, entry)'s metrics, each with its (1 + n_boot) replicates (row 0: the point estimate)."""
    workload, entry = runs["workload"].iloc[0], runs["entry"].iloc[0]
    rates = np.sort(runs["eta_trgt"].unique())
    per_rate = {k: [] for k in ("loss", "acc", "capped", "trained", "steps")}
    for eta in rates:
        cell = runs[runs["eta_trgt"] == eta]
        idx = draws(len(cell), n_boot, seed, workload, entry, eta)
        a = _runs_arrays(cell, l0, steps)
        for k in ("loss", "acc", "capped"):
            per_rate[k].append(np.median(a[k][idx], axis=1))
        per_rate["trained"].append(a["trained"][idx].any(axis=1))
        per_rate["steps"].append(_first_step(np.median(a["curve"][idx], axis=1), target, steps))
    m = {k: np.stack(v, axis=1) for k, v in per_rate.items()}  # (1 + n_boot, rates)
    best = m["capped"].min(axis=1)
    sensitivity = np.minimum(m["capped"], l0).mean(axis=1) - best
    trained = runs.groupby("eta_trgt")["trained"].all()
    eta_max = float(trained[trained].index.max()) if trained.any() else np.nan
    return {
        "workload": workload,
        "entry": entry,
        "runs": len(runs),
        "seeds": runs["seed"].nunique(),
        "rates": len(rates),
        "initial_loss": l0,
        "eta_max": eta_max,
        "eta_max_lower_bound": bool(eta_max == rates.max()),
        "best_eta": float(rates[m["loss"][0].argmin()]),
        "best_test_loss": m["loss"].min(axis=1),
        "best_test_acc": m["acc"].max(axis=1),
        "sensitivity": np.where(m["trained"].any(axis=1), sensitivity, INF),
        "steps_to_target": m["steps"].min(axis=1),
        "target_test_loss": target,
        "cost_fraction": float(
            ((runs["extra_forward_passes"] / FORWARD_PER_PASS + runs["extra_gradients"]) / runs["steps"]).mean()
        ),
        "wall_time_s": float(runs["wall_time_s"].median()),
    }


def metrics(runs: pd.DataFrame, targets: dict[str, float], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (workload, entry): the metrics of the module docstring, each bootstrapped one with _lo / _hi (its
    90% interval), the scored ones with their replicates (steps_to_target_boot, sensitivity_boot: arrays)."""
    check_runs(runs)
    missing = sorted(set(runs["workload"]) - set(targets))
    if missing:
        raise ValueError(f"no target_test_loss for workload {', '.join(map(str, missing))}")
    for workload in sorted(set(runs["workload"])):
        if not isinstance(targets[workload], (int, float)) or not math.isfinite(targets[workload]):
            raise ValueError(f"the target_test_loss of workload {workload} is {targets[workload]!r}, not a number")
    rows = []
    for workload, wruns in _prepared(runs).groupby("workload", sort=True):
        steps = np.array(sorted({s for text in wruns["test_loss_curve"] for s in curve(text)}), dtype=float)
        for _, eruns in wruns.groupby("entry", sort=True):
            l0 = initial_loss(eruns, wruns)
            rows.append(_entry(eruns, l0, float(targets[workload]), steps, n_boot, seed))
    for row in rows:
        for name in ("best_test_loss", "best_test_acc", "sensitivity", "steps_to_target"):
            replicates = row[name][1:]
            row[name], (row[f"{name}_lo"], row[f"{name}_hi"]) = float(row[name][0]), interval(replicates)
            if name in SCORED.values():
                row[f"{name}_boot"] = replicates
    table = pd.DataFrame(rows)
    base = table[table["entry"] == BASELINE].set_index("workload")["eta_max"]
    table.insert(table.columns.get_loc("eta_max") + 1, "eta_max_gain", table["eta_max"] / table["workload"].map(base))
    order = [c for c in table if not c.endswith(("_lo", "_hi", "_boot"))]
    for name in ("best_test_loss", "best_test_acc", "sensitivity", "steps_to_target"):
        order[order.index(name) + 1 : order.index(name) + 1] = [f"{name}_lo", f"{name}_hi"]
    return table[order + [c for c in table if c.endswith("_boot")]]


def by_rate(runs: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (workload, entry, eta_trgt): L(eta) as the sensitivity takes it (median over seeds of the final
    test loss, a run that did not complete counted as L0) with its 90% interval (the same replicates as `metrics`),
    and the counts of runs and trained runs: the LR-sensitivity figure (loss against eta_trgt)."""
    check_runs(runs)
    rows = []
    runs = _prepared(runs)
    for (workload, entry), eruns in runs.groupby(KEY, sort=True):
        l0 = initial_loss(eruns, runs[runs["workload"] == workload])
        for eta, cell in eruns.groupby("eta_trgt", sort=True):
            idx = draws(len(cell), n_boot, seed, workload, entry, eta)
            a = _runs_arrays(cell, l0, np.array([]))
            loss = np.median(a["capped"][idx], axis=1)
            lo, hi = interval(loss[1:])
            rows.append((workload, entry, eta, loss[0], lo, hi, len(cell), int(a["trained"].sum()), l0))
    columns = [*KEY, "eta_trgt", "loss", "loss_lo", "loss_hi", "runs", "trained", "initial_loss"]
    return pd.DataFrame(rows, columns=columns)


def eta_max_moved(metrics: pd.DataFrame) -> pd.Series:
    """Per row: is this entry's eta_max different from no_warmup's on the same workload (NaN, nothing trains, equals
    NaN)? False for no_warmup itself and where no_warmup did not run."""
    base = metrics["workload"].map(metrics[metrics["entry"] == BASELINE].set_index("workload")["eta_max"])
    same = (metrics["eta_max"] == base) | (metrics["eta_max"].isna() & base.isna())
    has_base = metrics["workload"].isin(metrics.loc[metrics["entry"] == BASELINE, "workload"])
    return has_base & ~same & (metrics["entry"] != BASELINE)


def warmup_matters(metrics: pd.DataFrame) -> dict[str, bool]:
    """Per workload: does any entry's eta_max differ from no_warmup's? Where none does, or no_warmup did not run,
    the workload cannot rank warmup methods by eta_max."""
    return {w: bool(moved.any()) for w, moved in eta_max_moved(metrics).groupby(metrics["workload"], sort=True)}


# --- scores: performance profiles -----------------------------------------------------------------------------------
def ratios(t: np.ndarray, eps: np.ndarray | float = 0.0) -> np.ndarray:
    """Performance ratios over the last axis (entries) of t (..., workloads, entries), NaN = the entry did not run
    there: r = (t + eps) / (min over entries + eps); +inf where t is +inf (never reached: never counted, also when
    no entry reached it); 1 for the best."""
    t = np.asarray(t, dtype=float)
    eps = np.broadcast_to(np.asarray(eps, dtype=float)[..., None], t.shape) if np.ndim(eps) else eps
    best = np.nanmin(np.where(np.isnan(t), INF, t), axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (t + eps) / (best + eps)
    r = np.where(np.isfinite(t) & (t == best), 1.0, r)
    r = np.where(np.isinf(t), INF, r)
    return np.where(np.isnan(t), np.nan, r)


def profile(r: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rho(tau) per entry: the share of the entry's workloads with r <= tau. r: (workloads, entries)."""
    ran = (~np.isnan(r)).sum(axis=0)
    with np.errstate(invalid="ignore"):
        return (r[None] <= np.asarray(taus)[:, None, None]).sum(axis=1) / np.where(ran, ran, np.nan)


def performance_profile(metrics: pd.DataFrame, name: str, taus: np.ndarray) -> pd.DataFrame:
    """rho(tau) (rows: taus) per entry (columns) for B_<name> (a key of SCORED), from the point estimates."""
    entries = sorted(metrics["entry"].unique())
    point, _, eps = _grid(metrics, SCORED[name], entries)
    return pd.DataFrame(profile(ratios(point, eps), taus), index=pd.Index(taus, name="tau"), columns=entries)


def score(r: np.ndarray, r_max: float = R_MAX) -> np.ndarray:
    """B = 1/(r_max - 1) * integral_1^r_max rho(tau) dtau over the workloads axis (-2) of r (..., workloads,
    entries): rho is a step function, each workload adds r_max - r to the integral (0 when r > r_max)."""
    gain = np.clip(r_max - r, 0, None) / (r_max - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an entry that ran nowhere: NaN
        return np.nanmean(gain, axis=-2)


def _grid(metrics: pd.DataFrame, column: str, entries: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The metric as (workloads, entries) and its replicates as (n_boot, workloads, entries), NaN where an entry
    did not run; eps per workload (EPS x its initial loss) for the sensitivity, 0 for steps."""
    workloads = sorted(metrics["workload"].unique())
    rows = metrics.set_index(KEY)
    replicates = f"{column}_boot" in metrics  # not in a table read back from leaderboard.csv: no intervals
    n_boot = len(metrics[f"{column}_boot"].iloc[0]) if replicates else 0
    point = np.full((len(workloads), len(entries)), np.nan)
    boot = np.full((n_boot, *point.shape), np.nan)
    for i, w in enumerate(workloads):
        for j, e in enumerate(entries):
            if (w, e) in rows.index:
                point[i, j] = rows.at[(w, e), column]
                boot[:, i, j] = rows.at[(w, e), f"{column}_boot"] if replicates else []
    l0 = metrics.groupby("workload")["initial_loss"].median().reindex(workloads).to_numpy()
    eps = EPS * l0 if column == "sensitivity" else np.zeros(len(workloads))
    return point, boot, eps


def _ranks(b: np.ndarray) -> np.ndarray:
    """Competition ranks (1 = the highest B; equal B share a rank) over the last axis."""
    b = np.round(np.nan_to_num(b, nan=-1.0), 12)
    return 1 + (b[..., None, :] > b[..., :, None]).sum(axis=-1)


def _tie_labels(point: np.ndarray, lo: np.ndarray, hi: np.ndarray, rank: np.ndarray) -> list[str]:
    """'=k' for entries in a chain of overlapping 90% intervals (neighbours by B), k the chain head's rank."""
    order = np.argsort(rank, kind="stable")
    labels, chains = [""] * len(point), []
    for pos, j in enumerate(order):
        prev = order[pos - 1] if pos else None
        overlap = prev is not None and (rank[j] == rank[prev] or max(lo[j], lo[prev]) <= min(hi[j], hi[prev]))
        if overlap:
            chains[-1].append(j)
        else:
            chains.append([j])
    for chain in chains:
        for j in chain:
            labels[j] = f"={rank[chain[0]]}" if len(chain) > 1 else f"{rank[chain[0]]}"
    return labels


def scores(metrics: pd.DataFrame, r_max: float = R_MAX) -> pd.DataFrame:
    """Per entry, AlgoPerf-style scores (Dahl et al. 2023, "Benchmarking Neural Network Training Algorithms", the
    scoring section: performance profiles, after Dolan & More 2002, integrated into the benchmark score; also "Benchmark
    score using performance profiles" in AlgoPerf's documentation):
    - ratio r(e, w) = t(e, w) / min over entries e' of t(e', w), with t = steps_to_target (B_steps: tuned, each
      entry at its best rate) or t = sensitivity (B_sensitivity: untuned, the whole grid). t = +inf (never reached;
      no rate trained) gives r = +inf: never counted. A sensitivity can be 0 (the same loss at every rate), so
      sensitivity ratios are (t + eps) / (min + eps), eps = 1e-3 x the workload's median initial loss: a
      sensitivity that small counts as none.
    - profile rho_e(tau) = |{w : r(e, w) <= tau}| / n_e, for tau in [1, r_max]
    - B_e = 1/(r_max - 1) * integral_1^r_max rho_e(tau) dtau = mean over w of max(0, r_max - r(e, w)) / (r_max - 1),
      r_max = 4 as in AlgoPerf: 1 = the best on every workload, 0 = within r_max of the best on none.
    - n_e (`workloads`): the workloads the entry ran on. AlgoPerf divides by all workloads, since every submission
      runs on every one; an entry here applies only to its optimizer families (RAdam: Adam workloads), so a workload
      it does not apply to is out of its profile (neither a failure nor a win), and the count stands by its score.
      The min of a workload is over the entries that ran on it.
    Intervals: the CI percentiles of B over the bootstrap replicates of `metrics`. rank (1 = the best B; equal B
    share a rank); rank_label '=k' where the entry's B interval overlaps its neighbour's (by B) in a chain headed
    by rank k: the data do not order them; rank_stability: the share of replicates in which the entry keeps its
    rank. The rank_* columns follow B_steps, the rank_sensitivity* columns B_sensitivity."""
    entries = sorted(metrics["entry"].unique())
    table = pd.DataFrame({"entry": entries, "workloads": metrics.groupby("entry").size().reindex(entries).to_numpy()})
    for name, column in SCORED.items():
        point, boot, eps = _grid(metrics, column, entries)
        b, b_boot = score(ratios(point, eps), r_max), score(ratios(boot, eps), r_max)
        lo, hi = (np.array(v) for v in zip(*(interval(b_boot[:, j]) for j in range(len(entries)))))
        rank = _ranks(b)
        prefix = "rank" if name == "steps" else f"rank_{name}"
        stable = (_ranks(b_boot) == rank).mean(axis=0) if len(b_boot) else np.full(len(entries), np.nan)
        table[f"B_{name}"], table[f"B_{name}_lo"], table[f"B_{name}_hi"] = b, lo, hi
        table[prefix], table[f"{prefix}_label"] = rank, _tie_labels(b, lo, hi, rank)
        table[f"{prefix}_stability"] = stable
    return table.sort_values(["rank", "entry"], kind="stable").reset_index(drop=True)
