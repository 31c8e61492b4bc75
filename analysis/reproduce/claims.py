"""The claim registry (CLAIMS): one entry per claim of the paper (docs/paper.md section 7) with its figure, text,
CPU presets, stand-in, evidence function and named checks; `judge` turns a claim's evidence into its verdict."""

from __future__ import annotations

import math
import operator
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.reproduce.evidence import (
    ADAM_NEEDS_WARMUP,
    CATAPULT_ACC,
    GI_ACC,
    GI_GAP,
    GI_REDUCTION,
    MUP_REGIME,
    MUP_STANDIN,
    PAPER_T_WRM,
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
NOT_TESTABLE = "not testable at CPU scale"  # a gate failed: the paper's effect is absent from the stand-in
OTHER_RULE = {"test": "authors", "authors": "test"}


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

    def margin(self, value: float) -> str:
        """How far `value` is from the threshold and on which side: a factor when both are positive, else a
        difference."""
        if value is None or not math.isfinite(value):
            return "not measurable"
        if value == self.threshold:
            return "at the threshold"
        side = "above" if value > self.threshold else "below"
        if value > 0 and self.threshold > 0:
            return f"x{fmt(max(value, self.threshold) / min(value, self.threshold))} {side} the threshold"
        return f"{fmt(abs(value - self.threshold))} {side} the threshold"


@dataclass(frozen=True)
class Claim:
    key: str
    figure: str
    text: str
    presets: tuple[str, ...]
    standin: str  # what the CPU presets use in place of the paper's setting
    evidence: Callable[..., Evidence]  # (sweeps, rep[, rule=]) -> Evidence; takes `rule` when the claim has one
    checks: tuple[Check, ...]
    could_fail: str = ""  # the outcome that would have failed the checks (stated, not computed)
    rule: str | None = None  # the failure rule (trainable(rule=...)) its evidence uses; None: no run is judged trained
    rule_why: str = ""
    gates: tuple[Check, ...] = ()  # is the paper's effect there in the stand-in? a gate that fails: NOT_TESTABLE


@dataclass
class Judged:
    claim: Claim
    verdict: str
    measured: str
    results: list[tuple[Check, float, bool]]
    details: list[str]
    gates: list[tuple[Check, float, bool]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # per check or gate name: what its margin must add
    other_rule: list[str] = field(default_factory=list)  # where the other failure rule gives other numbers
    verdict_note: str = ""


def verdict(*passed: bool) -> str:
    n = sum(bool(p) for p in passed)
    return REPRODUCED if n == len(passed) else (PARTLY if n else NOT)


class RegistryError(KeyError):
    """A value without a check, or a check without a value: a bug of the registry, not of the runs."""


def evidence_of(claim: Claim, sweeps: dict[str, pd.DataFrame], rep: Path, rule: str | None) -> Evidence:
    ev = claim.evidence(sweeps, rep, rule=rule) if rule else claim.evidence(sweeps, rep)
    names = {c.name for c in (*claim.checks, *claim.gates)}
    if set(ev.values) != names:  # a value without a check, or a check without a value: a bug of the registry
        raise RegistryError(f"{claim.key}: values {sorted(set(ev.values) ^ names)} do not match the checks")
    return ev


def scored(checks: tuple[Check, ...], values: dict[str, float]) -> list[tuple[Check, float, bool]]:
    return [(c, values[c.name], c.passes(values[c.name])) for c in checks]


def other_rule_lines(claim: Claim, sweeps: dict[str, pd.DataFrame], ev: Evidence) -> list[str]:
    """The checks and gates whose number differs under the other failure rule (figures drawn aside, then dropped)."""
    other = OTHER_RULE[claim.rule]
    with tempfile.TemporaryDirectory() as tmp:
        alt = evidence_of(claim, sweeps, Path(tmp), other)
    lines = []
    for c in (*claim.gates, *claim.checks):
        a, b = ev.values[c.name], alt.values[c.name]
        if not (a == b or (a != a and b != b)):  # NaN equals NaN here
            lines.append(f"`{c.name}`: {fmt(a)} under {claim.rule}, {fmt(b)} under {other}")
    if alt.measured != ev.measured and not lines:
        lines.append(f"the measured numbers differ under {other} (not the checks): {alt.measured}")
    return lines


def judge(claim: Claim, sweeps: dict[str, pd.DataFrame], rep: Path, progress: dict[str, str] | None = None) -> Judged:
    """The claim's evidence from its presets' runs and its checks; `not run` when a preset has no (complete) runs,
    `not testable at CPU scale` when a gate fails (the paper's effect is absent from the stand-in)."""
    missing = [p for p in claim.presets if sweeps.get(p) is None or sweeps[p].empty]
    if missing:
        runs = ", ".join(f"{p} ({(progress or {}).get(p, '0')} runs finished)" for p in missing)
        return Judged(claim, NOT_RUN, "not (completely) run: " + runs, [], [])
    try:
        ev = evidence_of(claim, sweeps, rep, claim.rule)
        other = other_rule_lines(claim, sweeps, ev) if claim.rule else []
    except RegistryError:
        raise
    except Exception as e:  # one claim's broken evidence is shown as such; the other claims are still judged
        return Judged(claim, ERROR, f"evidence failed: {type(e).__name__}: {e}", [], [])
    results, gates = scored(claim.checks, ev.values), scored(claim.gates, ev.values)
    v = NOT_TESTABLE if not all(ok for *_, ok in gates) else verdict(*[ok for *_, ok in results])
    return Judged(claim, v, ev.measured, results, ev.details, gates, ev.notes, other, ev.verdict_note)


# --- the registry: one entry per claim of the paper (docs/paper.md section 7) -----------------------------------------

WRN_STANDIN = (
    "FCN-4-256 ({param}) on mnist5k (5,000 images, no augmentation), 256 steps of B = 128, lambda0 from 1 minibatch, "
    "for WRN-16-4 on augmented CIFAR-10, 1e5 steps"
)
FCN_STANDIN = (
    "FCN-4-128 on 1,000 mnist5k images, full batch, T_wrm + 128 steps, for FCN-4-512 on 5,000 CIFAR-10 images, 2048 "
    "steps"
)
MUP_MSE_STANDIN = (
    "muP: FCN-4-128 with MSE (cpu/fig3_wrn_mup_mse; the paper's muP panel: cross-entropy, where no CPU setting "
    "found trains near the authors' muP without warmup)"
)
FIG3 = ("fig3_wrn_sp_mse", MUP_STANDIN, "fig3_wrn_sp_xent")
# the failure rule per claim (trainable(rule=...)): SGD claims use `test`, because the authors' SGD rule (NaN/inf
# only) counts a completed run at chance accuracy as trained, which at CPU scale (the 1e5 x initial-loss cap stops
# most blow-ups first) would move eta_max to "did not blow up"; the Adam-family claims use `authors`, the rule the
# authors judged Adam by (last training minibatch's accuracy), so that their Figure 4 statement is tested as stated
SGD_RULE = "SGD: the authors' rule counts any completed SGD run (even at chance accuracy) as trained"
ADAM_RULE = "Adam family: the authors judged Adam runs by the last training minibatch's accuracy"
MUP_GATE = Check(MUP_REGIME, "<=", 4)  # within 4x of the authors' WRN muP value (issue 22)
CLAIMS = (
    Claim(
        "sp_mse_growth",
        "Figure 3 (left)",
        "SP + MSE: the largest trainable eta_trgt grows strongly with T_wrm",
        ("fig3_wrn_sp_mse",),
        WRN_STANDIN.format(param="SP") + "; T_wrm in {1, 16, 64} (paper: up to 1e4); 3 seeds",
        ev_sp_mse_growth,
        (
            Check("warmup gain eta_max(longest T_wrm)/eta_max(T_wrm=1), least over seeds", ">=", 2),
            Check("eta_max non-decreasing in T_wrm in every seed (1 = yes)", ">=", 1),
        ),
        "a seed whose eta_max at the longest T_wrm is less than twice its eta_max at T_wrm = 1, or falls as T_wrm "
        "grows",
        "test",
        SGD_RULE,
    ),
    Claim(
        "mup_flatter",
        "Figures 1 and 3",
        "The muP model starts far flatter than SP and gains less from warmup",
        ("fig1_fcn_mechanisms", "fig3_wrn_sp_mse", MUP_STANDIN),
        "lambda0: " + FCN_STANDIN + "; warmup gains: the Figure 3 stand-ins on mnist5k, 3 seeds, SP: FCN-4-256 with "
        "MSE, " + MUP_MSE_STANDIN,
        ev_mup_flatter,
        (
            Check("lambda0(SP) / lambda0(muP)", ">=", 10),
            Check("warmup gain SP+MSE / warmup gain muP+MSE (least over seeds)", ">", 1),
        ),
        "lambda0 in SP less than 10x muP's, or a muP seed gaining as much from warmup as the SP+MSE seed that gains "
        "least; not testable when the muP stand-in trains without warmup more than 4x away from the authors' WRN muP "
        "eta_max x lambda0 (2^5)",
        "test",
        SGD_RULE,
        (MUP_GATE,),
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
        "a run without warmup whose loss never rises above its initial value, or whose sharpness ends at or above "
        "where it started",
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
        "a loss peak at the longest warmup as large as without warmup, or a sharpness more than 10% above 2/eta_t at "
        "the end of a warmup",
    ),
    Claim(
        "flat_accuracy",
        "Figure 3",
        "Away from the boundary, test accuracy depends mainly on eta_trgt, hardly on T_wrm",
        FIG3,
        WRN_STANDIN.format(param="SP") + "; " + MUP_MSE_STANDIN + "; 3 seeds averaged",
        ev_flat_accuracy,
        (Check("spread over T_wrm / spread over eta_trgt, largest over the three sweeps", "<", 1),),
        "a sweep where best test accuracy varies as much across T_wrm as across eta_trgt; not testable when the muP "
        "stand-in is more than 4x from the authors' muP regime (as claim 2)",
        "test",
        SGD_RULE,
        (MUP_GATE,),
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
        "Adam starting below 38/eta_trgt, no loss spike without warmup, or lambda^{P^-1 H} more than 2x above "
        "38/eta_t at the end of a warmup",
    ),
    Claim(
        "gi_adam_flatter",
        "Figure 6",
        "GI-Adam lowers the initial lambda^{P^-1 H} by about 1/sqrt(1 - b2)",
        ("fig6_gi_adam_mechanisms",),
        FCN_STANDIN.replace("T_wrm + 128", "128").replace("full batch", "full-batch Adam and GI-Adam, no warmup"),
        ev_gi_adam_flatter,
        # v0 = g0^2 divides each coordinate's step by 1/sqrt(1 - b2) at t = 0 where |g_i| >> eps (exactly, with the
        # same full-batch gradient) and by less where eps dominates; a factor 2 either way is one step of the paper's
        # 2^x rate grid, the resolution at which the lower sharpness shows as a larger trainable rate (38/lambda)
        (Check(GI_REDUCTION, "<=", 2),),
        "a reduction below 1/sqrt(1 - b2)/2 (e.g. 15.8 for b2 = 0.999) or above twice it",
    ),
    Claim(
        "gi_adam_no_warmup",
        "Figure 4",
        "GI-Adam without warmup trains as far as Adam with a long warmup (the authors' tables: Adam 0.02048 without "
        "warmup, 0.08192 with T_wrm = 1024; GI-Adam 0.08192 without), and as well",
        ("fig4_transformer_adam",),
        "FCN-4-256 (SP) on mnist5k with MSE, 256 steps of B = 128, 3 seeds a cell, T_wrm in {1, 64}, for a Pre-LN "
        "Transformer LM-4-128 on WikiText-2 (not on this machine), 1e4 steps",
        ev_gi_adam_no_warmup,
        (
            # one step of the preset's grid (2^0.5): the resolution of the boundary on either side
            Check(GI_GAP, "<=", 1),
            # 0.02: the tolerance of 'as well' in claims 11 and 12
            Check(GI_ACC, ">=", -0.02),
            Check("eta_max(GI-Adam) / eta_max(Adam) at T_wrm=1 (eta_max: every seed trains)", ">", 1),
            Check("seeds per cell, fewest", ">=", 3),
        ),
        "GI-Adam's eta_max without warmup two or more grid steps (2^0.5 each) below Adam's with the longest warmup, "
        "or Adam's at the grid's top (censored), or its final accuracy there more than 0.02 below Adam's; the "
        "neighbour check fails if GI-Adam does not train further than Adam without warmup",
        "authors",
        ADAM_RULE,
    ),
    Claim(
        "catapult_saves",
        "Figure 5",
        "Starting the warmup from the catapult's eta_c saves warmup steps (T_save > 0) and trains as linear warmup "
        "from 0 does",
        ("fig5_catapult_warmup",),
        "FCN-4-256 (SP) on mnist5k (no augmentation), 320 steps of B = 128, lambda0 from 1 minibatch, T_wrm in "
        "{64, 256} (the paper's smallest two), catapult and linear warmup, cross-entropy and MSE, 3 seeds, for "
        "WRN-16-4 on augmented CIFAR-10, 1e5 steps",
        ev_catapult_saves,
        (
            Check(f"fraction of catapult runs at T_wrm >= {PAPER_T_WRM} with T_save > 0", ">=", 0.9),
            # 0.02: the tolerance of 'as well' in claims 8, 11 and 12
            Check(CATAPULT_ACC, ">=", -0.02),
        ),
        "more than 1 in 10 catapult runs at T_wrm >= 64 with T_save <= 0, or a cell where catapult warmup ends more "
        "than 0.02 below linear warmup in final test accuracy (or fails to train where linear warmup trains); not "
        "testable without runs at T_wrm >= 64",
        "test",
        SGD_RULE,
        (Check(f"catapult runs at T_wrm >= {PAPER_T_WRM} (the paper's smallest)", ">=", 1),),
    ),
    Claim(
        "eta_c",
        "Figure 5",
        "The catapult search's eta_c is the one-step stability limit along the gradient, 2/R(g0) with R(g0) = "
        "g0'H g0/|g0|^2 (close to 2/lambda0 for MSE, the paper's ~2/lambda0)",
        ("fig5_catapult_warmup",),
        "FCN-4-256 (SP) on mnist5k (no augmentation), lambda0 and the search from 1 minibatch, for WRN-16-4 on "
        "augmented CIFAR-10; cross-entropy and MSE, 3 seeds",
        ev_eta_c,
        (
            Check("eta_c / (2/R(g0)) as a factor from 1, worst over seeds and losses", "<=", 1.5),
            Check("eta_c / (2/lambda0) as a factor from 1, worst over MSE seeds", "<=", 1.5),
            Check("seeds (different theta0 and search batch) per loss, fewest", ">=", 3),
        ),
        "a seed whose eta_c is more than 1.5x from 2/R(g0) (either loss) or, for MSE, from 2/lambda0; fewer than 3 "
        "seeds per loss",
    ),
    Claim(
        "persistent",
        "Figure 7",
        "Persistent catapult warmup trains up to rates at least as large as linear warmup, with comparable accuracy",
        ("fig7_persistent_catapult", "fig3_wrn_sp_mse"),
        WRN_STANDIN.format(param="SP")
        + "; MSE (where warmup matters at CPU scale; the paper: cross-entropy), eta_trgt 32-1024/lambda0 (above "
        "eta_c ~ 3/lambda0), linear T_wrm = 64 against no warmup from cpu/fig3_wrn_sp_mse, 3 seeds",
        ev_persistent,
        (
            Check("eta_max persistent (runs that reached eta_trgt) / eta_max linear, least over seeds", ">=", 1),
            Check("mean best-accuracy difference persistent - linear where both train", ">=", -0.02),
            Check("fraction of trained persistent runs with T_reach > 0 (warmup happened)", ">", 0.5),
        ),
        "a seed where persistent warmup reaches and trains at a lower eta_max than linear warmup, accuracy more than "
        "0.02 below linear's, or most persistent runs reaching eta_trgt at step 0 (no warmup happened); not testable "
        "when linear warmup does not raise eta_max over no warmup",
        "test",
        SGD_RULE,
        (Check("eta_max(linear T_wrm=64) / eta_max(T_wrm=1, cpu/fig3_wrn_sp_mse), least over seeds", ">", 1),),
    ),
    Claim(
        "gi_adam_like_warmup",
        "Figure 4 and Ma & Yarats (2021)",
        "GI-Adam without warmup trains at the rates where Adam needs warmup, as far and as well as warmup does "
        "(linear warmup, and the untuned warmup of Ma & Yarats (2021): eta_trgt (1 - exp(-(1 - b2) t)) and linear "
        "over 2/(1 - b2) steps)",
        ("untuned_vs_linear_vs_gi",),
        "FCN-4-256 (SP) on mnist5k with MSE, 200 steps of B = 128, b2 = 0.98 (paper: 0.999), eta_trgt in "
        "{0.02, 0.04, 0.08, 0.16}, 3 seeds; linear T_wrm in {10, 50}; for the paper's Transformer / WRN with Adam",
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
        "GI-Adam training no further than Adam without warmup or less far than a warmup, an untuned form no further "
        "than Adam, or GI-Adam's accuracy more than 0.02 below the best warmup's (overall or at a rate Adam needs "
        "warmup for); not testable when no warmup trains Adam further than no warmup does",
        "authors",
        ADAM_RULE,
        (Check(ADAM_NEEDS_WARMUP, ">", 1),),
    ),
)
