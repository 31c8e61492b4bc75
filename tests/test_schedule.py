"""The schedule against the closed form of docs/paper.md section 1."""

import math

import pytest

from bench.optim.schedule import Schedule


def closed_form(s, lr, T, lr_init=0.0, T_wrm=1, k=1.0, p=0.0):
    if s <= T_wrm:
        return min(lr_init + (lr - lr_init) * (s / T_wrm) ** k, lr)
    lr_min = lr / 10
    u, t_cos = s - T_wrm + 1, T - T_wrm + 1
    return lr_min + (lr - lr_min) * (0.5 * (1 + math.cos(math.pi * u / t_cos))) ** p


@pytest.mark.parametrize("k,p", [(1.0, 0.0), (2.0, 0.0), (1.0, 1.0), (2.0, 1.0)])
@pytest.mark.parametrize("lr_init", [0.0, 0.01])
def test_matches_closed_form_at_key_steps(k, p, lr_init):
    lr, T, T_wrm = 0.4, 1000, 128
    sched = Schedule(lr=lr, total_steps=T, lr_init=lr_init, warmup_steps=T_wrm, k=k, p=p)
    for s in (1, T_wrm // 2, T_wrm, T_wrm + 1, T):
        assert sched(s) == pytest.approx(closed_form(s, lr, T, lr_init, T_wrm, k, p), rel=1e-12)


def test_linear_values_by_hand():
    sched = Schedule(lr=1.0, total_steps=100, warmup_steps=10)
    assert sched(1) == pytest.approx(0.1)
    assert sched(5) == pytest.approx(0.5)
    assert sched(10) == 1.0
    assert sched(11) == 1.0 and sched(100) == 1.0


def test_quadratic_warmup_by_hand():
    sched = Schedule(lr=1.0, total_steps=100, warmup_steps=10, k=2.0)
    assert sched(5) == pytest.approx(0.25)


def test_cosine_decays_to_a_tenth():
    sched = Schedule(lr=1.0, total_steps=100, warmup_steps=10, p=1.0)
    assert sched(10) == 1.0
    assert sched(100) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 91 / 91)))
    assert sched(100) == pytest.approx(0.1)


def test_authors_logged_value():
    """Adam, eta_trgt = 0.00512, T_wrm = 1024, T = 1e5, cosine: the authors' table logs 0.001955 at step 391."""
    sched = Schedule(lr=0.00512, total_steps=100_000, warmup_steps=1024, p=1.0)
    assert round(sched(391), 6) == 0.001955


@pytest.mark.parametrize("T_wrm", [0, 1])
def test_no_warmup_means_full_rate_from_step_one(T_wrm):
    sched = Schedule(lr=0.3, total_steps=50, warmup_steps=T_wrm, lr_init=0.01)
    assert [sched(s) for s in range(1, 51)] == [0.3] * 50


def test_zero_and_one_are_the_same_schedule_with_decay():
    a = Schedule(lr=0.3, total_steps=50, warmup_steps=0, p=1.0)
    b = Schedule(lr=0.3, total_steps=50, warmup_steps=1, p=1.0)
    assert [a(s) for s in range(1, 51)] == [b(s) for s in range(1, 51)]


def test_warmup_longer_than_training_never_reaches_target():
    sched = Schedule(lr=1.0, total_steps=10, warmup_steps=100)
    assert sched(10) == pytest.approx(0.1)


def test_steps_count_from_one():
    with pytest.raises(ValueError):
        Schedule(lr=1.0, total_steps=10)(0)


def test_cosine_with_quadratic_warmup_by_hand():
    """k = 2, p = 1, T_wrm = 10, T = 100: values at s = 1, T_wrm/2, T_wrm, T_wrm + 1 and T written out."""
    sched = Schedule(lr=1.0, total_steps=100, warmup_steps=10, k=2.0, p=1.0)
    assert sched(1) == pytest.approx(0.01, rel=1e-12)
    assert sched(5) == pytest.approx(0.25, rel=1e-12)
    assert sched(10) == 1.0
    assert sched(11) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(2 * math.pi / 91)), rel=1e-12)
    assert sched(100) == pytest.approx(0.1, rel=1e-12)


def test_catapult_ramp_adds_the_whole_target():
    """docs/paper.md section 3: eta_c + eta_trgt s / T_wrm, capped, reaching eta_trgt after T_wrm (1 - eta_c/eta_trgt)
    steps."""
    sched = Schedule(lr=1.0, total_steps=100, lr_init=0.25, warmup_steps=8, full_ramp=True)
    assert [sched(s) for s in (1, 4, 6, 7, 8, 9)] == pytest.approx([0.375, 0.75, 1.0, 1.0, 1.0, 1.0], rel=1e-12)
    assert Schedule(lr=1.0, total_steps=100, lr_init=0.25, warmup_steps=8)(4) == pytest.approx(0.625)


def test_a_restored_schedule_is_a_new_frozen_one():
    """A checkpoint's schedule replaces the method's (Schedule stays frozen: nothing mutates it)."""
    import dataclasses
    from argparse import Namespace

    from bench.optim.schedule import ClosedForm

    method = ClosedForm(Namespace(schedule=Namespace(lr_init=0.0, warmup_steps=4, k=1.0, p=1.0), steps=20), 1.0)
    before = method.schedule
    state = Schedule(lr=2.0, total_steps=20, lr_init=0.5, warmup_steps=8, p=1.0).state_dict()
    method.load_state_dict(state)
    assert method.schedule is not before and method.state_dict() == state and method.lr(4) == pytest.approx(1.25)
    assert before.lr == 1.0, "the old schedule is unchanged"
    with pytest.raises(dataclasses.FrozenInstanceError):
        method.schedule.lr = 3.0


@pytest.mark.parametrize("lr_init", [0.0, 0.1])
def test_cosine_shaped_warmup_by_hand(lr_init):
    """schedule=cosine_warmup: eta(s) = eta_init + (eta_trgt - eta_init) (1 - cos(pi s / T_wrm)) / 2, then p's decay."""
    from bench.config import validate
    from bench.optim.warmup import build_warmup
    from tests.conftest import compose_cfg

    keys = ["schedule=cosine_warmup", "schedule.warmup_steps=8", "schedule.p=1", f"schedule.lr_init={lr_init}"]
    lr = build_warmup(validate(compose_cfg(*keys, "steps=100", "device=cpu")), 1.0)
    rise = 1.0 - lr_init
    half = 2**-0.5  # cos(pi / 4)
    by_hand = {2: lr_init + rise * (1 - half) / 2, 4: lr_init + rise / 2, 6: lr_init + rise * (1 + half) / 2, 8: 1.0}
    assert {s: lr(s) for s in by_hand} == pytest.approx(by_hand, rel=1e-12)
    assert lr(100) == pytest.approx(0.1)  # then the cosine decay to eta_trgt / 10, as schedule=cosine
    assert lr(9) == pytest.approx(Schedule(lr=1.0, total_steps=100, warmup_steps=8, p=1.0)(9), rel=1e-12)
