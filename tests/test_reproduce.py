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
    (v,) = [v for c, v, _ in j.results if c.name.startswith(prefix)]
    return v


def test_checks_compare_with_their_threshold_and_nan_fails():
    c = Check("gain", ">=", 2)
    assert c.passes(2.0) and not c.passes(1.9) and not c.passes(math.nan) and c.rule == "gain >= 2"
    assert Check("x", "<", 1).passes(0.5) and not Check("x", "<", 1).passes(1.0)


def test_registry_is_well_formed():
    assert len({c.key for c in rp.CLAIMS}) == len(rp.CLAIMS)
    for c in rp.CLAIMS:
        assert c.checks and len({k.name for k in c.checks}) == len(c.checks) and c.standin
        assert set(c.presets) <= set(rp.FIGURES) and all(k.op in rp.OPS for k in c.checks)


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
    assert j.verdict == NOT_RUN and "fig3_wrn_mup_xent (0/? runs finished)" in j.measured and not j.results


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


def write_fig4(root, trained: dict[tuple[str, float], int], seeds: int = 3) -> None:
    """trained[(optimizer, lr)] = how many of the seeds train at T_wrm = 1; the others train, then collapse (best
    accuracy 0.9, final 0.1), as Adam does near its boundary."""
    for (opt, lr), n in trained.items():
        for s in range(seeds):
            final = 0.9 if s < n else 0.1
            write_run(root / f"{opt},{lr},{s}", lr, 1, "completed", final, s, best=0.9, **{"optimizer.name": opt})


def test_figure4_counts_seeds_on_final_accuracy(tmp_path):
    write_fig4(
        tmp_path / "fig4_transformer_adam", {("adam", 1): 3, ("adam", 2): 1, ("gi_adam", 1): 3, ("gi_adam", 2): 3}
    )
    j = judged(tmp_path, "gi_adam_no_warmup")
    # at lr 2 Adam trains in 1 seed of 3 (the others collapsed although their best accuracy was 0.9), GI-Adam in 3
    assert value(j, "largest lead") == pytest.approx(2 / 3) and value(j, "eta_max(GI-Adam)") == 2.0
    assert value(j, "seeds per cell") == 3 and j.verdict == REPRODUCED
    assert "adam T_wrm=1: 1/3 seeds trained (final acc 0.367, best 0.9)" in j.measured


def test_figure4_a_coin_toss_is_not_the_claim(tmp_path):
    write_fig4(
        tmp_path / "fig4_transformer_adam", {("adam", 1): 3, ("adam", 2): 2, ("gi_adam", 1): 3, ("gi_adam", 2): 3}
    )
    j = judged(tmp_path, "gi_adam_no_warmup")
    assert value(j, "largest lead") == pytest.approx(1 / 3) and j.verdict == PARTLY  # eta_max still differs


def write_fig5(root, per_seed: dict[tuple[str, int], tuple[float, float, float]], t_save=(5.0, -1.0)) -> None:
    """per_seed[(loss, seed)] = (lambda0, R(g0), eta_c); two searches a seed (two T_wrm), with the given T_save."""
    for (loss, seed), (lam, r, eta_c) in per_seed.items():
        for t, ts in zip((16, 64), t_save):
            extra = {"lambda0": lam, "rayleigh_g0": r, "eta_rayleigh": 2 / r, "eta_c": eta_c, "T_save": ts}
            extra |= {"T_reach": 0, "catapult_forward_passes": 12, "catapult_outcome": "bracketed"}
            write_run(root / f"{loss},{seed},{t}", 8, t, "completed", 0.9, seed, loss=loss, **extra)


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
    saves = judged(tmp_path, "catapult_saves")
    assert value(saves, "fraction") == 0.5 and saves.verdict == NOT and "6/12 runs" in saves.measured


def test_one_search_repeated_is_one_seed(tmp_path):
    write_fig5(tmp_path / "fig5_catapult_warmup", {("xent", 0): (40.0, 8.0, 0.25)}, t_save=(5.0, 3.0))
    j = judged(tmp_path, "eta_c")
    assert value(j, "seeds") == 1 and j.verdict == PARTLY  # only eta_c vs 2/R(g0) passes; no MSE seed: n/a fails
    assert value(j, "eta_c / (2/lambda0)") != value(j, "eta_c / (2/lambda0)")  # NaN


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
            keys = {"optimizer.name": opt, "schedule.name": sched, "optimizer.b2": 0.98}
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
    assert row.endswith(f"**{REPRODUCED}** |") and f"**{NOT_RUN}**" in text
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
    write_fig4(tmp_path / "search", {("adam", 1): 3, ("gi_adam", 1): 2})
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
