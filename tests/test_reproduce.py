"""analysis/reproduce/: the claim registry judged on synthetic sweeps with known answers (boundaries, seed
fractions, eta_c against 2/R(g0)), and the report printing each check's rule and number beside its verdict."""

from __future__ import annotations

import json
import math
import re
import runpy
import sys

import pandas as pd
import pytest
import yaml

from analysis import reproduce as rp
from analysis.reproduce import NOT, NOT_RUN, PARTLY, REPRODUCED, Check, judge, load_sweeps, write_report
from tests.conftest import ROOT

CLAIMS = {c.key: c for c in rp.CLAIMS}


def write_run(folder, lr: float, t_wrm: int, status: str, acc: float, seed: int = 0, best=None, **extra) -> None:
    """One run folder; `extra` keys with a dot go to config.yaml (optimizer.name=...), the others to result.json."""
    folder.mkdir(parents=True)
    config = {"optimizer": {"lr": lr, "lr_unit": "inverse_sharpness"}, "schedule": {"warmup_steps": t_wrm}}
    config.update(seed=seed, loss=extra.pop("loss", "mse"))
    for key in [k for k in extra if "." in k]:
        group, name = key.split(".")
        config.setdefault(group, {})[name] = extra.pop(key)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    best = acc if best is None else best
    result = {"status": status, "final_test_acc": acc, "best_test_acc": best, "num_classes": 10, **extra}
    (folder / "metrics.csv").write_text(f"step,lr,test_acc\n1,{lr},{acc}\n")
    (folder / "result.json").write_text(json.dumps(result))


def write_sweep(root, boundary: dict[int, float], lrs=(1, 2, 4, 8, 16), seed: int = 0) -> None:
    """Runs that train up to boundary[T_wrm] (accuracy rising with eta_trgt, flat in T_wrm) and diverge above."""
    for t, top in boundary.items():
        for lr in lrs:
            ok = lr <= top
            acc = 0.5 + 0.02 * lr if ok else 0
            write_run(root / f"lr={lr},T={t},s={seed}", lr, t, "completed" if ok else "diverged", acc, seed)


def judged(tmp_path, key):
    sweeps, progress = load_sweeps(tmp_path, rp.FIGURES)
    return judge(CLAIMS[key], sweeps, tmp_path, progress)


def value(j, prefix: str) -> float:
    (v,) = [v for c, v, _ in (*j.gates, *j.results) if c.name.startswith(prefix)]
    return v


def test_checks_compare_with_their_threshold_and_nan_fails():
    c = Check("gain", ">=", 2)
    assert c.passes(2.0) and not c.passes(1.9) and not c.passes(math.nan) and c.rule == "gain >= 2"
    assert Check("x", "<", 1).passes(0.5) and not Check("x", "<", 1).passes(1.0)


def test_registry_is_well_formed():
    assert len({c.key for c in rp.CLAIMS}) == len(rp.CLAIMS)
    for c in rp.CLAIMS:
        assert c.checks and len({k.name for k in c.checks}) == len(c.checks) and c.standin
        assert set(c.presets) <= set(rp.FIGURES) and all(k.op in rp.OPS for k in (*c.checks, *c.gates))
        assert c.could_fail and c.rule in (None, "test", "authors") and bool(c.rule) == bool(c.rule_why)


def test_boundary_growth_is_judged_on_the_seed_that_gains_least(tmp_path):
    write_sweep(tmp_path / "fig3_wrn_sp_mse", {1: 2, 16: 8, 64: 16}, seed=0)
    write_sweep(tmp_path / "fig3_wrn_sp_mse", {1: 2, 16: 4, 64: 4}, seed=1)  # gain 2: still passes >= 2
    j = judged(tmp_path, "sp_mse_growth")
    assert value(j, "warmup gain") == 2.0 and j.verdict == REPRODUCED
    assert "T_wrm=1: 2 / 2" in j.measured and ">= 16 / 4" in j.measured  # 16 is the top of the grid: a lower bound
    assert (tmp_path / "fig3_wrn_sp_mse.png").stat().st_size > 1000


def test_a_seed_without_growth_fails_the_claim(tmp_path):
    write_sweep(tmp_path / "fig3_wrn_sp_mse", {1: 2, 16: 8, 64: 16}, seed=0)
    write_sweep(tmp_path / "fig3_wrn_sp_mse", {1: 8, 16: 8, 64: 4}, seed=1)
    j = judged(tmp_path, "sp_mse_growth")
    assert value(j, "warmup gain") == 0.5 and j.verdict == NOT


def test_missing_preset_is_not_run(tmp_path):
    write_sweep(tmp_path / "fig3_wrn_sp_mse", {1: 2, 16: 8})
    j = judged(tmp_path, "flat_accuracy")  # needs all three Figure 3 sweeps
    assert j.verdict == NOT_RUN and "fig3_wrn_mup_mse (0/? runs finished)" in j.measured and not j.results


def test_a_sweep_still_running_is_not_judged(tmp_path):
    """Its multirun.yaml plans 3 x 2 points; 4 have finished: a partial grid can move a boundary, so not run."""
    root = tmp_path / "fig3_wrn_sp_mse"
    write_sweep(root, {1: 2, 16: 8}, lrs=(1, 2))
    params = {"optimizer.lr": "1,2,4", "schedule.warmup_steps": "1,16"}
    (root / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": {"params": params}}}))
    j = judged(tmp_path, "sp_mse_growth")
    assert j.verdict == NOT_RUN and "fig3_wrn_sp_mse (4/6 runs finished)" in j.measured


def test_a_value_without_a_check_is_an_error(tmp_path):
    write_sweep(tmp_path / "fig3_wrn_sp_mse", {1: 2, 16: 8})
    bad = rp.Claim("x", "F", "t", ("fig3_wrn_sp_mse",), "s", lambda s, r: rp.Evidence({"typo": 1.0}, ""), ())
    with pytest.raises(KeyError, match="typo"):
        judge(bad, load_sweeps(tmp_path, rp.FIGURES)[0], tmp_path)


def test_a_failing_evidence_function_is_shown_not_hidden(tmp_path):
    write_sweep(tmp_path / "fig3_wrn_sp_mse", {1: 2, 16: 8})

    def broken(sweeps, rep):
        raise ValueError("no column eta_c")

    claim = rp.Claim("x", "F", "t", ("fig3_wrn_sp_mse",), "s", broken, (Check("a", ">", 0),))
    j = judge(claim, load_sweeps(tmp_path, rp.FIGURES)[0], tmp_path)
    assert j.verdict == rp.ERROR and j.measured == "evidence failed: ValueError: no column eta_c"


def write_mup(root, mup_top: float) -> None:
    """Claim 2's sweeps: lambda0 36 (SP) vs 0.2 (muP) in Figure 1; Figure 3 SP+MSE gains 8x from warmup, the muP
    stand-in (muP+MSE) trains up to mup_top (x 1/lambda0) at every T_wrm (no gain), on a grid reaching 64."""
    for param, lam in (("sp", 36.0), ("mup", 0.2)):
        write_run(root / "fig1_fcn_mechanisms" / param, 8, 1, "completed", 0.9, lambda0=lam, **{"model.param": param})
    lrs = (0.5, 1, 2, 4, 8, 16, 32, 64)
    write_sweep(root / "fig3_wrn_sp_mse", {1: 2, 16: 8, 64: 16}, lrs=lrs)
    write_sweep(root / "fig3_wrn_mup_mse", {1: mup_top, 16: mup_top, 64: mup_top}, lrs=lrs)


def test_mup_far_from_the_authors_regime_is_not_testable(tmp_path):
    """The authors' WRN muP trains up to 2^5/lambda0 without warmup (their tables); a stand-in at 0.5 is 64x away."""
    write_mup(tmp_path, 0.5)
    j = judged(tmp_path, "mup_flatter")
    assert value(j, "muP stand-in's eta_max") == 64 and j.verdict == rp.NOT_TESTABLE
    assert value(j, "lambda0(SP)") == 180 and value(j, "warmup gain") == 8  # the checks alone would pass
    assert "vs the authors' WRN muP 32" in j.measured


def test_mup_within_4x_of_the_authors_regime_is_judged(tmp_path):
    write_mup(tmp_path, 16)
    j = judged(tmp_path, "mup_flatter")
    assert value(j, "muP stand-in's eta_max") == 2 and j.verdict == REPRODUCED


def test_mup_standin_on_the_gates_threshold_says_how_it_was_chosen(tmp_path):
    """8 = 32/4 passes the gate; the note beside the verdict counts the search's runs from reports/mup_search.md and
    says that muP + cross-entropy reached no such setting. The muP + xent sweep is not needed to judge."""
    write_mup(tmp_path, 8)
    (tmp_path / "mup_search.md").write_text((ROOT / "reports" / "mup_search.md").read_text())
    j = judged(tmp_path, "mup_flatter")
    assert value(j, "muP stand-in's eta_max") == 4 and j.verdict == REPRODUCED
    assert "chosen by a search (reports/mup_search.md: 15 settings and confirmations, 197 runs" in j.verdict_note
    assert "exactly on the gate's threshold (8 = 32/4)" in j.verdict_note and "best 1/lambda0" in j.verdict_note
    assert all("cpu/fig3_wrn_mup_mse" in CLAIMS[k].standin for k in ("mup_flatter", "flat_accuracy"))
    write_sweep(tmp_path / "fig3_wrn_sp_xent", {1: 4, 16: 8, 64: 8}, lrs=(0.5, 1, 2, 4, 8, 16, 32, 64))
    j = judged(tmp_path, "flat_accuracy")  # the same gate and note, on the muP + MSE sweep
    assert j.verdict == REPRODUCED and "muP, MSE: spread over T_wrm 0 vs over eta_trgt" in j.measured
    assert "exactly on the gate's threshold" in j.verdict_note
    write_sweep(tmp_path / "fig3_wrn_mup_xent", {1: 1, 16: 1, 64: 1}, lrs=(0.5, 1, 2))
    shown = "\n".join(judged(tmp_path, "sp_mse_growth").details)  # the Figure 3 section: both muP losses
    assert "Figure 3 (muP, MSE): eta_max" in shown and "Figure 3 (muP, cross-entropy) (the paper's loss" in shown


def test_gi_adam_reduction_is_judged_against_one_over_sqrt_one_minus_b2():
    """Within a factor 2 of 1/sqrt(1 - b2) = 31.6 (b2 = 0.999): 17 passes (x1.86 short), 15 fails, 70 fails."""
    (check,) = CLAIMS["gi_adam_flatter"].checks
    target = 1 / math.sqrt(1 - 0.999)
    assert check.passes(target / 17) and not check.passes(target / 15) and not check.passes(70 / target)
    assert check.margin(target / 17) == "x1.08 below the threshold"


def test_margins_say_how_far_and_which_side():
    assert Check("gain", ">=", 2).margin(3.2) == "x1.6 above the threshold"
    assert Check("diff", ">=", -0.02).margin(-0.05) == "0.03 below the threshold"
    assert Check("x", "<=", 1).margin(1.0) == "at the threshold" and Check("x", ">", 1).margin(math.nan) == (
        "not measurable"
    )


def write_fig4(root, top: dict[tuple[str, int], float], lrs=(1, 2, 4, 8, 16), seeds: int = 3, **odd) -> None:
    """Adam-family runs (optimizer.b1) that train in every seed up to top[(optimizer, T_wrm)] and collapse above
    (best accuracy 0.9, final and last-minibatch 0.1), as Adam does near its boundary. odd[(optimizer, T_wrm, lr,
    seed)] = (final test accuracy, last minibatch accuracy) overrides one run."""
    for (opt, t), last_lr in top.items():
        for lr in lrs:
            for s in range(seeds):
                final = 0.9 if lr <= last_lr else 0.1
                final, last = odd.get("runs", {}).get((opt, t, lr, s), (final, final))
                keys = {"optimizer.name": opt, "optimizer.b1": 0.9, "last_train_acc": last}
                write_run(root / f"{opt},{t},{lr},{s}", lr, t, "completed", final, s, best=0.9, **keys)


def test_figure4_gi_adam_within_one_grid_step_of_the_longest_warmup(tmp_path):
    write_fig4(tmp_path / "fig4_transformer_adam", {("adam", 1): 1, ("adam", 64): 4, ("gi_adam", 1): 2})
    j = judged(tmp_path, "gi_adam_no_warmup")
    assert value(j, "grid steps") == 1 and value(j, "final test accuracy at those two rates") == pytest.approx(0)
    assert value(j, "eta_max(GI-Adam)") == 2.0 and value(j, "seeds per cell") == 3 and j.verdict == REPRODUCED
    assert j.claim.rule == "authors" and "search for the widest Adam/GI-Adam gap" in j.verdict_note


def test_figure4_gi_adam_two_grid_steps_below_fails(tmp_path):
    write_fig4(tmp_path / "fig4_transformer_adam", {("adam", 1): 1, ("adam", 64): 8, ("gi_adam", 1): 2})
    j = judged(tmp_path, "gi_adam_no_warmup")
    assert value(j, "grid steps") == 2 and j.verdict == PARTLY  # GI-Adam still beats Adam without warmup
    (gap,) = [(c, v) for c, v, ok in j.results if not ok]
    assert gap[0].margin(gap[1]) == "x2 above the threshold"


def test_figure4_a_censored_adam_boundary_cannot_pass(tmp_path):
    """Adam with warmup trains at the grid's top: its eta_max is a lower bound, the gap may be larger."""
    write_fig4(tmp_path / "fig4_transformer_adam", {("adam", 1): 1, ("adam", 64): 16, ("gi_adam", 1): 8})
    j = judged(tmp_path, "gi_adam_no_warmup")
    assert math.isnan(value(j, "grid steps")) and j.verdict == PARTLY
    note = j.notes[rp.evidence.GI_GAP]
    assert "(a lower bound): the gap is at least 1 steps and may be larger, so this check cannot pass" in note
    assert j.results[0][0].margin(math.nan) == "not measurable" and "Adam T_wrm=64 >= 16" in j.measured


def test_figure4_the_two_failure_rules_disagree_on_a_run(tmp_path):
    """Adam with warmup at lr 4, seed 0: final test accuracy 0.9 but last minibatch accuracy 0.05, so it fails under
    the authors' rule (the claim's) and trains under the test rule; the report says where they differ."""
    odd = {("adam", 64, 4, 0): (0.9, 0.05)}
    write_fig4(tmp_path / "fig4_transformer_adam", {("adam", 1): 1, ("adam", 64): 4, ("gi_adam", 1): 2}, runs=odd)
    j = judged(tmp_path, "gi_adam_no_warmup")
    assert value(j, "grid steps") == 0 and j.verdict == REPRODUCED  # Adam's eta_max at T_wrm 64: 2 (authors)
    (line,) = [x for x in j.other_rule if "grid steps" in x]
    assert "0 under authors, 1 under test" in line


def write_fig5(root, per_seed, t_save=(-1.0, 5.0), t_wrm=(16, 64), acc=None) -> None:
    """per_seed[(loss, seed)] = (lambda0, R(g0), eta_c); a catapult search a T_wrm (t_wrm) with its T_save, and a
    linear warmup from 0 beside each; acc[schedule]: final test accuracy (0.9; 0.05: did not train)."""
    acc = {"catapult": 0.9, "linear": 0.9} | (acc or {})
    for (loss, seed), (lam, r, eta_c) in per_seed.items():
        for t, ts in zip(t_wrm, t_save):
            extra = {"lambda0": lam, "rayleigh_g0": r, "eta_rayleigh": 2 / r, "eta_c": eta_c, "T_save": ts}
            extra |= {"T_reach": 0, "catapult_forward_passes": 12, "catapult_outcome": "bracketed"}
            extra |= {"schedule.name": "catapult"}
            write_run(root / f"{loss},{seed},{t}", 8, t, "completed", acc["catapult"], seed, loss=loss, **extra)
            linear = {"lambda0": lam, "schedule.name": "linear", "loss": loss}
            write_run(root / f"{loss},{seed},{t},linear", 8, t, "completed", acc["linear"], seed, **linear)


def test_eta_c_against_two_over_the_rayleigh_quotient(tmp_path):
    write_fig5(
        tmp_path / "fig5_catapult_warmup",
        {("xent", s): (40.0, 8.0, 0.25 * f) for s, f in enumerate((1.0, 1.2, 0.9))}
        | {("mse", s): (40.0, 38.0, 0.05 * f) for s, f in enumerate((1.0, 1.1, 1.4))},
    )
    j = judged(tmp_path, "eta_c")
    assert value(j, "eta_c / (2/R(g0))") == pytest.approx(1.4 * 0.05 * 38 / 2)  # the worst seed, mse seed 2
    assert value(j, "eta_c / (2/lambda0)") == pytest.approx(1.4) and value(j, "seeds") == 3
    assert j.verdict == REPRODUCED and "xent: eta_c x lambda0 10, 12, 9" in j.measured
    saves = judged(tmp_path, "catapult_saves")  # T_wrm = 16 (T_save -1 in every run) is below the paper's 64
    assert value(saves, "fraction") == 1 and value(saves, "final test accuracy") == 0 and saves.verdict == REPRODUCED
    assert "T_save > 0 in 6/6 catapult runs" in saves.measured and "6 catapult runs at T_wrm < 64 not judged" in (
        saves.measured
    )


def test_catapult_warmup_that_does_not_train_fails(tmp_path):
    """Linear warmup trains (0.9), catapult warmup ends at 0.05 (< 1.5/10: did not train, counted 0)."""
    write_fig5(tmp_path / "fig5_catapult_warmup", {("mse", 0): (40.0, 38.0, 0.05)}, acc={"catapult": 0.05})
    j = judged(tmp_path, "catapult_saves")
    assert value(j, "final test accuracy") == pytest.approx(-0.9) and j.verdict == PARTLY
    assert "| mse | 8 | 64 | 0 | 0 | 0.9 |" in j.details[1]


def test_catapult_saves_below_the_papers_warmups_is_not_judged(tmp_path):
    write_fig5(tmp_path / "fig5_catapult_warmup", {("xent", 0): (40.0, 8.0, 0.25)}, t_save=(5.0,), t_wrm=(16,))
    j = judged(tmp_path, "catapult_saves")
    assert value(j, "catapult runs at T_wrm >= 64") == 0 and j.verdict == rp.NOT_TESTABLE


def test_one_search_repeated_is_one_seed(tmp_path):
    write_fig5(tmp_path / "fig5_catapult_warmup", {("xent", 0): (40.0, 8.0, 0.25)}, t_save=(5.0, 3.0))
    j = judged(tmp_path, "eta_c")
    assert value(j, "seeds") == 1 and j.verdict == PARTLY  # only eta_c vs 2/R(g0) passes; no MSE seed: n/a fails
    assert value(j, "eta_c / (2/lambda0)") != value(j, "eta_c / (2/lambda0)")  # NaN


def write_fig7(root, top: dict[str, float], t_reach: float = 5, reached_top: bool = True, loss="mse") -> None:
    """Linear warmup (T_wrm 64) and persistent catapult warmup, each training up to top[schedule] and diverging
    above; persistent runs reach eta_trgt at step t_reach (at the grid's top only if reached_top)."""
    lrs = (2, 4, 8, 16)
    for sched, last in top.items():
        for lr in lrs:
            for s in (0, 1):
                ok = lr <= last
                extra = {"schedule.name": sched, "loss": loss}
                if sched == "persistent_catapult":
                    extra["T_reach"] = t_reach if (lr < max(lrs) or reached_top) and ok else None
                acc = 0.8 if ok else 0
                write_run(root / f"{sched},{lr},{s}", lr, 64, "completed" if ok else "diverged", acc, s, **extra)


def test_persistent_catapult_where_warmup_matters(tmp_path):
    for s in (0, 1):
        write_sweep(tmp_path / "fig3_wrn_sp_mse", {1: 2, 16: 4, 64: 8}, seed=s)
    write_fig7(tmp_path / "fig7_persistent_catapult", {"linear": 8, "persistent_catapult": 8})
    j = judged(tmp_path, "persistent")
    assert value(j, "eta_max(linear T_wrm=64) / eta_max(T_wrm=1") == 4 and value(j, "eta_max persistent") == 1
    assert value(j, "fraction of trained persistent runs with T_reach > 0") == 1 and j.verdict == REPRODUCED
    assert "persistent T_reach over 6 trained runs: median 5, range 5-5 steps" in j.measured


def test_persistent_catapult_without_warmup_fails(tmp_path):
    """T_reach = 0 in every run: the first search already returned eta_c >= eta_trgt, no warmup happened."""
    for s in (0, 1):
        write_sweep(tmp_path / "fig3_wrn_sp_mse", {1: 2, 16: 4, 64: 8}, seed=s)
    write_fig7(tmp_path / "fig7_persistent_catapult", {"linear": 8, "persistent_catapult": 8}, t_reach=0)
    j = judged(tmp_path, "persistent")
    assert value(j, "fraction of trained persistent runs with T_reach > 0") == 0 and j.verdict == PARTLY


def test_persistent_catapult_where_warmup_does_not_matter_is_not_testable(tmp_path):
    for s in (0, 1):
        write_sweep(tmp_path / "fig3_wrn_sp_mse", {1: 8, 16: 8, 64: 8}, seed=s)
    write_fig7(tmp_path / "fig7_persistent_catapult", {"linear": 8, "persistent_catapult": 16}, reached_top=False)
    j = judged(tmp_path, "persistent")
    assert value(j, "eta_max(linear T_wrm=64) / eta_max(T_wrm=1") == 1 and j.verdict == rp.NOT_TESTABLE
    assert value(j, "eta_max persistent") == 1  # trained at 16 but never reached it: not counted there


def test_persistent_catapult_needs_a_no_warmup_control_in_the_same_setting(tmp_path):
    for s in (0, 1):
        write_sweep(tmp_path / "fig3_wrn_sp_mse", {1: 2, 16: 4, 64: 8}, seed=s)  # MSE
    write_fig7(tmp_path / "fig7_persistent_catapult", {"linear": 8, "persistent_catapult": 8}, loss="xent")
    j = judged(tmp_path, "persistent")
    assert j.verdict == rp.NOT_TESTABLE and "cpu/fig3_wrn_sp_mse differs in loss" in j.measured


METHODS = {  # conf/experiment/cpu/method/: (optimizer, schedule, form, T_wrm)
    "adam": ("adam", "linear", None, 1),
    "linear10": ("adam", "linear", None, 10),
    "untuned_exponential": ("adam", "untuned", "exponential", 1),
    "untuned_linear": ("adam", "untuned", "linear", 1),
    "gi_adam": ("gi_adam", "linear", None, 1),
}


def write_methods(root, top: dict[str, float], lrs=(1, 2, 4, 8)) -> None:
    """One seed per method and rate: trains (best accuracy 0.9 - 0.01 lr) up to top[method], diverges above; GI-Adam
    at lr 4 completes without training (final accuracy 0.1)."""
    for method, (opt, sched, form, t) in METHODS.items():
        for lr in lrs:
            ok = lr <= top[method]
            failed = method == "gi_adam" and lr == 4
            acc = 0.1 if failed else (0.9 - 0.01 * lr if ok else 0)
            keys = {"optimizer.name": opt, "schedule.name": sched, "optimizer.b1": 0.9, "optimizer.b2": 0.98}
            keys |= {"last_train_acc": acc}  # the authors' rule (the claim's) reads the last minibatch
            keys |= {"schedule.form": form} if form else {}
            write_run(root / f"{method},{lr}", lr, t, "completed" if ok else "diverged", acc, best=acc, **keys)


def test_gi_adam_against_untuned_and_linear_warmup(tmp_path):
    top = {"adam": 1, "linear10": 4, "untuned_exponential": 4, "untuned_linear": 2, "gi_adam": 8}
    write_methods(tmp_path / "untuned_vs_linear_vs_gi", top)
    j = judged(tmp_path, "gi_adam_like_warmup")
    # GI-Adam fails at 4 (final accuracy 0.1 < 0.15) though it trains at 8: eta_max is the largest rate that trains
    assert value(j, "eta_max(GI-Adam, no warmup) / eta_max(Adam") == 8
    assert value(j, "eta_max(GI-Adam, no warmup) / largest") == 2
    assert value(j, "eta_max(untuned warmup)") == 2  # the linear form's 2 over Adam's 1
    assert value(j, "best test accuracy over the rates") == pytest.approx(0.0)  # 0.89 at lr 1
    # where Adam fails without warmup (2, 4, 8) and a warmup trains (2, 4): at 4 GI-Adam does not train (0)
    assert value(j, "best test accuracy, GI-Adam minus the best warmup at") == pytest.approx(0 - 0.86)
    assert j.verdict == PARTLY and "eta_trgt=2: 0, eta_trgt=4: -0.86" in j.measured
    assert "Adam, untuned exponential 4" in j.measured and "GI-Adam, no warmup 8" in j.measured
    tab = j.details[0]
    assert "| GI-Adam, no warmup | >= 8 | 0.89 | 0.88 | failed (0.1) | 0.82 |" in tab
    assert "| Adam, no warmup | 1 | 0.89 | diverged | diverged | diverged |" in tab
    assert (tmp_path / "untuned_vs_linear_vs_gi.png").stat().st_size > 1000


def test_gi_adam_where_adam_needs_no_warmup_is_not_testable(tmp_path):
    top = {"adam": 4, "linear10": 4, "untuned_exponential": 4, "untuned_linear": 2, "gi_adam": 8}
    write_methods(tmp_path / "untuned_vs_linear_vs_gi", top)
    j = judged(tmp_path, "gi_adam_like_warmup")
    assert value(j, "largest eta_max of the warmups / eta_max(Adam") == 1 and j.verdict == rp.NOT_TESTABLE


def test_gi_adam_below_warmup_is_not_hidden(tmp_path):
    top = {"adam": 1, "linear10": 8, "untuned_exponential": 8, "untuned_linear": 8, "gi_adam": 2}
    write_methods(tmp_path / "untuned_vs_linear_vs_gi", top)
    j = judged(tmp_path, "gi_adam_like_warmup")
    assert value(j, "eta_max(GI-Adam, no warmup) / largest") == 0.25 and j.verdict == PARTLY


def test_report_prints_rules_numbers_and_stand_ins(tmp_path):
    for s, top in ((0, 16), (1, 8)):
        write_sweep(tmp_path / "out" / "fig3_wrn_sp_mse", {1: 2, 16: 8, 64: top}, seed=s)
    path = write_report(tmp_path / "out", tmp_path / "reports", {}, None)
    text = path.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    assert "FCN-4-256 (SP) on mnist5k" in row and "for WRN-16-4 on augmented CIFAR-10" in row
    assert "`warmup gain eta_max(longest T_wrm)/eta_max(T_wrm=1), least over seeds >= 2`: **4** pass" in row
    assert row.endswith(f"| test | **{REPRODUCED}** |") and f"**{NOT_RUN}**" in text
    assert "least over seeds >= 2`: **4** pass (x2 above the threshold)" in row
    assert text.count("**Could this check fail?** Yes, on ") == len(rp.CLAIMS)
    assert "**Failure rule:** test (SGD: the authors' rule counts any completed SGD run" in text
    assert "Under the other rule (authors): the same numbers." in text
    assert text.count("| **not run** |") == len(rp.CLAIMS) - 1  # every other claim lacks a preset's runs
    (registry,) = re.findall(r"the claim registry `(.+?):CLAIMS`", text)  # the file it names defines CLAIMS
    assert "\nCLAIMS = (" in (ROOT / registry).read_text()


def test_the_command_line_reports_on_the_sweeps_on_disk(tmp_path, monkeypatch, capsys):
    """`python -m analysis.reproduce --report-only` (in this process): the report from the sweeps on disk, its claims
    table printed; `--fig4-search` writes the search's report only, and a folder that is not a sweep of the search
    is one line, nothing written."""
    write_sweep(tmp_path / "out" / "fig3_wrn_sp_mse", {1: 2, 16: 8, 64: 16})
    argv = ["reproduce", "--report-only", "--out", str(tmp_path / "out"), "--reports", str(tmp_path / "reports")]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_module("analysis.reproduce", run_name="__main__")
    printed = capsys.readouterr().out
    assert f"[reproduce] report: {tmp_path / 'reports' / 'reproduction.md'}" in printed
    assert "| 1 | Figure 3 (left) |" in printed and printed.count("| **not run** |") == len(rp.CLAIMS) - 1
    odd = {("gi_adam", 1, 1, 2): (0.1, 0.1)}  # one seed of GI-Adam collapses
    write_fig4(tmp_path / "search", {("adam", 1): 1, ("gi_adam", 1): 1}, lrs=(1,), runs=odd)
    argv = ["reproduce", "--fig4-search", str(tmp_path / "search"), "--reports", str(tmp_path / "search_reports")]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_module("analysis.reproduce", run_name="__main__")
    (search,) = (tmp_path / "search_reports").iterdir()
    assert (
        search.name == "fig4_search.md" and "| mse | 1 | 1 | 3/3 (0.9, 0.9) | 2/3 (0.63, 0.9) |" in search.read_text()
    )
    sweep = tmp_path / "out" / "fig3_wrn_sp_mse"  # no optimizer.name: not a sweep of the search, one line
    monkeypatch.setattr(sys, "argv", ["reproduce", "--fig4-search", str(sweep), "--reports", str(tmp_path / "bad")])
    with pytest.raises(SystemExit, match=f"^error: {re.escape(str(sweep))}: no finished runs with an optimizer.name"):
        runpy.run_module("analysis.reproduce", run_name="__main__")
    assert not (tmp_path / "bad").exists()


def test_sweeps_go_through_the_projects_launcher(tmp_path):
    cmd = rp.sweep_command("fig3_wrn_sp_mse", tmp_path, 2)
    assert cmd[1].endswith("launch.py") and "experiment=cpu/fig3_wrn_sp_mse" in cmd
    assert "hydra/launcher=local" in cmd and "hydra.launcher.max_parallel=2" in cmd and "threads=1" in cmd
    assert not hasattr(rp, "ThreadPoolExecutor")


def test_verdict_rule():
    assert rp.verdict(True, True) == REPRODUCED and rp.verdict(True, False) == PARTLY and rp.verdict(False) == NOT
    assert rp.gain(pd.Series({1: 4.0, 64: 16.0})) == 4.0
