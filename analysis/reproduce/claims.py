"""The claim registry (CLAIMS): one entry per claim of the paper (docs/paper.md section 7) with its figure, text,
CPU presets, stand-in, evidence function and named checks; `judge` turns a claim's evidence into its verdict."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.reproduce.evidence import (
    Evidence,
    ev_adam_unstable,
    ev_catapult_no_warmup,
    ev_catapult_saves,
    ev_eta_c,
    ev_flat_accuracy,
    ev_gi_adam_flatter,
    ev_gi_adam_no_warmup,
    ev_mup_flatter,
    ev_persistent,
    ev_sp_longer_warmup,
    ev_sp_mse_growth,
    ev_untuned_vs_gi,
    fmt,
)

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
REPRODUCED, PARTLY, NOT, NOT_RUN, ERROR = "reproduced", "partly", "not reproduced", "not run", "error"


# --- the registry's types ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A named check: the measured quantity `name` against `threshold` with `op`. NaN (not measurable) fails."""

    name: str
    op: str  # ">=", ">", "<=", "<"
    threshold: float

    def passes(self, value: float) -> bool:
        return value is not None and math.isfinite(value) and OPS[self.op](value, self.threshold)

    @property
    def rule(self) -> str:
        return f"{self.name} {self.op} {fmt(self.threshold)}"


@dataclass(frozen=True)
class Claim:
    key: str
    figure: str
    text: str
    presets: tuple[str, ...]
    standin: str  # what the CPU presets use in place of the paper's setting
    evidence: Callable[[dict[str, pd.DataFrame], Path], Evidence]
    checks: tuple[Check, ...]


@dataclass
class Judged:
    claim: Claim
    verdict: str
    measured: str
    results: list[tuple[Check, float, bool]]
    details: list[str]


def verdict(*passed: bool) -> str:
    n = sum(bool(p) for p in passed)
    return REPRODUCED if n == len(passed) else (PARTLY if n else NOT)


def judge(claim: Claim, sweeps: dict[str, pd.DataFrame], rep: Path, progress: dict[str, str] | None = None) -> Judged:
    """The claim's evidence from its presets' runs and its checks; `not run` when a preset has no (complete) runs."""
    missing = [p for p in claim.presets if sweeps.get(p) is None or sweeps[p].empty]
    if missing:
        runs = ", ".join(f"{p} ({(progress or {}).get(p, '0')} runs finished)" for p in missing)
        return Judged(claim, NOT_RUN, "not (completely) run: " + runs, [], [])
    try:
        ev = claim.evidence(sweeps, rep)
    except Exception as e:  # one claim's broken evidence is shown as such; the other claims are still judged
        return Judged(claim, ERROR, f"evidence failed: {type(e).__name__}: {e}", [], [])
    names = {c.name for c in claim.checks}
    if set(ev.values) != names:  # a value without a check, or a check without a value: a bug of the registry
        raise KeyError(f"{claim.key}: values {sorted(set(ev.values) ^ names)} do not match the checks")
    results = [(c, ev.values.get(c.name, math.nan), c.passes(ev.values.get(c.name, math.nan))) for c in claim.checks]
    return Judged(claim, verdict(*[ok for *_, ok in results]), ev.measured, results, ev.details)


# --- the registry: one entry per claim of the paper (docs/paper.md section 7) -----------------------------------------

WRN_STANDIN = (
    "FCN-4-256 ({param}) on mnist5k (5,000 images, no augmentation), 256 steps of B = 128, lambda0 from 1 minibatch, "
    "for WRN-16-4 on augmented CIFAR-10, 1e5 steps"
)
FCN_STANDIN = (
    "FCN-4-128 on 1,000 mnist5k images, full batch, T_wrm + 128 steps, for FCN-4-512 on 5,000 CIFAR-10 images, 2048 "
    "steps"
)
FIG3 = ("fig3_wrn_sp_mse", "fig3_wrn_mup_xent", "fig3_wrn_sp_xent")
CLAIMS = (
    Claim(
        "sp_mse_growth",
        "Figure 3 (left)",
        "SP + MSE: the largest trainable eta_trgt grows strongly with T_wrm",
        ("fig3_wrn_sp_mse",),
        WRN_STANDIN.format(param="SP") + "; T_wrm in {1, 16, 64} (paper: up to 1e4); 2 seeds",
        ev_sp_mse_growth,
        (
            Check("warmup gain eta_max(longest T_wrm)/eta_max(T_wrm=1), least over seeds", ">=", 2),
            Check("eta_max non-decreasing in T_wrm in every seed (1 = yes)", ">=", 1),
        ),
    ),
    Claim(
        "mup_flatter",
        "Figures 1 and 3",
        "The muP model starts far flatter than SP and gains less from warmup",
        ("fig1_fcn_mechanisms", "fig3_wrn_sp_mse", "fig3_wrn_mup_xent"),
        "lambda0: " + FCN_STANDIN + "; warmup gains: the Figure 3 stand-ins (FCN-4-256 on mnist5k, 2 seeds)",
        ev_mup_flatter,
        (
            Check("lambda0(SP) / lambda0(muP)", ">=", 10),
            Check("warmup gain SP+MSE / warmup gain muP+xent (least over seeds)", ">", 1),
        ),
    ),
    Claim(
        "catapult_no_warmup",
        "Figure 1",
        "With T_wrm = 1 and eta_trgt above 2/lambda0, the loss catapults and the sharpness falls",
        ("fig1_fcn_mechanisms",),
        FCN_STANDIN + "; eta_trgt = 8/lambda0 (paper: 32/lambda0)",
        ev_catapult_no_warmup,
        (
            Check("loss peak / initial loss at T_wrm=1, least over SP and muP", ">", 1),
            Check("last sharpness / initial sharpness at T_wrm=1, largest over SP and muP", "<", 1),
        ),
    ),
    Claim(
        "sp_longer_warmup",
        "Figure 1",
        "SP (sharpness reduction): with longer warmup the catapults get smaller and the sharpness stays at or below "
        "2/eta_t",
        ("fig1_fcn_mechanisms",),
        FCN_STANDIN,
        ev_sp_longer_warmup,
        (
            Check("SP loss peak ratio, longest T_wrm / T_wrm=1", "<", 1),
            Check("SP sharpness / (2/eta_t) at the end of warmup, largest over T_wrm > 1", "<=", 1.1),
        ),
    ),
    Claim(
        "flat_accuracy",
        "Figure 3",
        "Away from the boundary, test accuracy depends mainly on eta_trgt, hardly on T_wrm",
        FIG3,
        WRN_STANDIN.format(param="SP and muP") + "; 2 seeds averaged",
        ev_flat_accuracy,
        (Check("spread over T_wrm / spread over eta_trgt, largest over the three sweeps", "<", 1),),
    ),
    Claim(
        "adam_unstable",
        "Figure 2",
        "Adam without warmup starts with lambda^{P^-1 H} far above 38/eta_trgt and the loss spikes; warmup keeps "
        "lambda^{P^-1 H} near 38/eta_t",
        ("fig2_fcn_adam_mechanisms",),
        FCN_STANDIN.replace("full batch", "full-batch Adam") + "; T_wrm in {1, 64, 256}",
        ev_adam_unstable,
        (
            Check("lambda^{P^-1 H}_0 / (38/eta_trgt) at T_wrm=1, least over SP and muP", ">", 1),
            Check("loss peak / initial loss at T_wrm=1, least over SP and muP", ">", 1),
            Check("lambda^{P^-1 H} / (38/eta_t) at the end of warmup, largest over T_wrm > 1", "<=", 2),
        ),
    ),
    Claim(
        "gi_adam_flatter",
        "Figure 6",
        "GI-Adam lowers the initial lambda^{P^-1 H} by about 1/sqrt(1 - b2)",
        ("fig6_gi_adam_mechanisms",),
        FCN_STANDIN.replace("T_wrm + 128", "128").replace("full batch", "full-batch Adam and GI-Adam, no warmup"),
        ev_gi_adam_flatter,
        (Check("initial lambda^{P^-1 H}, Adam / GI-Adam, least over SP and muP", ">=", 10),),
    ),
    Claim(
        "gi_adam_no_warmup",
        "Figure 4",
        "GI-Adam without warmup trains at a rate where Adam without warmup fails",
        ("fig4_transformer_adam",),
        "FCN-4-256 (SP) on mnist5k with MSE, 256 steps of B = 128, 3 seeds a cell, for a Pre-LN Transformer "
        "LM-4-128 on WikiText-2 (not on this machine), 1e4 steps",
        ev_gi_adam_no_warmup,
        (
            Check("largest lead over rates of GI-Adam's fraction of seeds trained over Adam's, T_wrm=1", ">=", 2 / 3),
            Check("eta_max(GI-Adam) / eta_max(Adam) at T_wrm=1 (eta_max: every seed trains)", ">", 1),
            Check("seeds per cell, fewest", ">=", 3),
        ),
    ),
    Claim(
        "catapult_saves",
        "Figure 5",
        "Starting the warmup from the catapult's eta_c saves warmup steps (T_save > 0)",
        ("fig5_catapult_warmup",),
        WRN_STANDIN.format(param="SP").replace("256 steps", "64 steps") + "; cross-entropy and MSE, 3 seeds",
        ev_catapult_saves,
        (Check("fraction of runs with T_save > 0", ">=", 0.9),),
    ),
    Claim(
        "eta_c",
        "Figure 5",
        "The catapult search's eta_c is the one-step stability limit along the gradient, 2/R(g0) with R(g0) = "
        "g0'H g0/|g0|^2 (close to 2/lambda0 for MSE, the paper's ~2/lambda0)",
        ("fig5_catapult_warmup",),
        WRN_STANDIN.format(param="SP").replace("256 steps", "64 steps") + "; cross-entropy and MSE, 3 seeds",
        ev_eta_c,
        (
            Check("eta_c / (2/R(g0)) as a factor from 1, worst over seeds and losses", "<=", 1.5),
            Check("eta_c / (2/lambda0) as a factor from 1, worst over MSE seeds", "<=", 1.5),
            Check("seeds (different theta0 and search batch) per loss, fewest", ">=", 3),
        ),
    ),
    Claim(
        "persistent",
        "Figure 7",
        "Persistent catapult warmup trains up to rates at least as large as linear warmup, with comparable accuracy",
        ("fig7_persistent_catapult",),
        WRN_STANDIN.format(param="SP") + "; cross-entropy, linear T_wrm = 64, 2 seeds",
        ev_persistent,
        (
            Check("eta_max persistent / eta_max linear, least over seeds", ">=", 1),
            Check("mean best-accuracy difference persistent - linear where both train", ">=", -0.02),
        ),
    ),
    Claim(
        "gi_adam_like_warmup",
        "Figure 4 and Ma & Yarats (2021)",
        "GI-Adam without warmup trains at the rates where Adam needs warmup, as far and as well as warmup does "
        "(linear warmup, and the untuned warmup of Ma & Yarats (2021): eta_trgt (1 - exp(-(1 - b2) t)) and linear "
        "over 2/(1 - b2) steps)",
        ("untuned_vs_linear_vs_gi",),
        "FCN-4-256 (SP) on mnist5k with MSE, 200 steps of B = 128, b2 = 0.98 (paper: 0.999), eta_trgt in "
        "{0.02, 0.04, 0.08, 0.16}, 1 seed; linear T_wrm in {10, 50}; for the paper's Transformer / WRN with Adam",
        ev_untuned_vs_gi,
        (
            Check("eta_max(GI-Adam, no warmup) / eta_max(Adam, no warmup)", ">", 1),
            Check("eta_max(GI-Adam, no warmup) / largest eta_max of the warmups", ">=", 1),
            Check("eta_max(untuned warmup) / eta_max(Adam, no warmup), least of the two forms", ">", 1),
            Check("best test accuracy over the rates, GI-Adam minus the best warmup", ">=", -0.02),
            Check(
                "best test accuracy, GI-Adam minus the best warmup at the same rate, least over the rates Adam needs "
                "warmup for",
                ">=",
                -0.02,
            ),
        ),
    ),
)
