"""Schedule sparsity curves against hand-computed values."""

import pytest

from hwprune.config import PRUNE_SCHEDULES, PruneConfig
from hwprune.errors import HwpruneError
from hwprune.prune.schedules import SCHEDULES, agp_sparsity, check_steps


def test_names_match_config():
    assert tuple(SCHEDULES) == PRUNE_SCHEDULES


def test_agp_cubic_values():
    # s_t = 0.9 + (0 - 0.9) * (1 - k/4)^3 at k = 0..4: 0, 0.9 * 37/64, 0.9 * 7/8, 0.9 * 63/64, 0.9
    p = PruneConfig(schedule="agp", sparsity=0.9, begin_step=100, end_step=500, frequency=100)
    plan = SCHEDULES["agp"](p, 1000)
    want = [(100, 0.0), (200, 0.5203125), (300, 0.7875), (400, 0.8859375), (500, 0.9)]
    assert [t for t, _ in plan.updates] == [t for t, _ in want]
    for (_, got), (_, exp) in zip(plan.updates, want):
        assert got == pytest.approx(exp, abs=1e-12)
    assert plan.target_at(50) == 0.0 and plan.target_at(250) == pytest.approx(0.5203125)
    assert plan.target_at(999) == pytest.approx(0.9)
    assert plan.guard_steps == ()


def test_agp_initial_sparsity_and_end_step_off_the_grid():
    p = PruneConfig(sparsity=0.9, initial_sparsity=0.2, begin_step=0, end_step=250, frequency=100)
    plan = SCHEDULES["agp"](p, 300)
    assert [t for t, _ in plan.updates] == [0, 100, 200, 250]
    assert plan.updates[0][1] == pytest.approx(0.2)
    # (1 - 100/250)^3 = 0.216: 0.9 - 0.7 * 0.216
    assert plan.updates[1][1] == pytest.approx(0.7488)
    assert plan.updates[-1][1] == pytest.approx(0.9)
    assert agp_sparsity(p, 10_000) == pytest.approx(0.9)


def test_constant_reapplies_the_target():
    p = PruneConfig(sparsity=0.75, begin_step=10, end_step=70, frequency=20)
    plan = SCHEDULES["constant"](p, 100)
    assert plan.updates == ((10, 0.75), (30, 0.75), (50, 0.75), (70, 0.75))
    assert plan.target_at(5) == 0.0 and plan.update_at(30) == 0.75 and plan.update_at(31) is None


def test_one_shot():
    plan = SCHEDULES["one-shot"](PruneConfig(sparsity=0.6), 100)
    assert plan.updates == ((0, 0.6),) and plan.guard_steps == ()


def test_iterative_equal_steps_and_guards_at_round_ends():
    plan = SCHEDULES["iterative"](PruneConfig(sparsity=0.8, iterations=4), 100)
    assert plan.updates == ((0, 0.2), (25, 0.4), (50, pytest.approx(0.6)), (75, 0.8))
    assert plan.guard_steps == (25, 50, 75, 100)
    uneven = SCHEDULES["iterative"](PruneConfig(sparsity=0.9, iterations=3), 10)
    assert [t for t, _ in uneven.updates] == [0, 3, 7] and uneven.guard_steps == (3, 7, 10)


def test_end_step_beyond_fine_tuning_is_an_error():
    p = PruneConfig(schedule="agp", end_step=500)
    check_steps(p, 500, True)
    check_steps(p, 10, False)  # one-shot / iterative do not count steps
    with pytest.raises(HwpruneError, match=r"prune.end_step = 500 .* 420 optimizer steps"):
        check_steps(p, 420, True)
