"""The AMC-style agent on a hand-made problem whose optimum is known in closed form.

Four layers; pruning layer l to sparsity s saves C[l] * s LUTs (linear curves) from a dense
1000; the budget is 600, so the layers must save 400. The reward is 1 - sum W[l] * s_l**2.
By Lagrange (every s_l inside the bounds): s_l = k * C[l] / W[l] with k = 400 / sum(C**2 / W),
and the best reward is 1 - 400**2 / sum(C**2 / W) = 1 - 160000 / 695000 = 0.76978.
Uniform sparsity must be 0.4 to fit, for 1 - 0.16 * sum(W) = 0.408.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwprune.auto.problem import LayerInfo, Problem
from hwprune.auto.rl import search_rl
from hwprune.errors import HwpruneError

torch.set_num_threads(1)

NAMES = ("fc0", "fc1", "fc2", "fc3")
C = (400.0, 300.0, 200.0, 100.0)  # LUTs saved at sparsity 1
W = (1.0, 0.2, 0.5, 2.0)  # sensitivity of the reward
OPTIMUM = 1 - 160000 / 695000
UNIFORM = 1 - 0.4**2 * sum(W)


def _problem(lut_budget: float = 600.0) -> Problem:
    shapes = ((64, 32), (32, 32), (32, 16), (16, 10))
    layers = tuple(LayerInfo(n, fi, fo, 4) for n, (fi, fo) in zip(NAMES, shapes, strict=True))
    curves = {n: tuple((s, {"lut": -c * s}) for s in (0.0, 0.5, 0.95)) for n, c in zip(NAMES, C)}
    return Problem(layers, {"lut": 1000.0}, curves, {"lut": lut_budget})


def _reward(alloc: dict[str, float]) -> float:
    return 1.0 - sum(w * alloc[n] ** 2 for n, w in zip(NAMES, W, strict=True))


def _evaluate(allocs):
    return [_reward(a) for a in allocs]


def _grid_optimum(step: float = 0.005) -> float:
    """The best reward on a grid of the first three sparsities; the last takes the least
    sparsity that meets the budget (the reward falls with it)."""
    g = np.arange(0.0, 0.95 + 1e-9, step)
    s1, s2 = np.meshgrid(g, g, indexing="ij")
    best = -np.inf
    for s0 in g:
        s3 = np.maximum(0.0, (400.0 - C[0] * s0 - C[1] * s1 - C[2] * s2) / C[3])
        r = 1 - W[0] * s0**2 - W[1] * s1**2 - W[2] * s2**2 - W[3] * s3**2
        best = max(best, float(np.where(s3 <= 0.95, r, -np.inf).max()))
    return best


def test_closed_form_matches_grid():
    assert _grid_optimum() == pytest.approx(OPTIMUM, abs=1e-3)


def test_same_seed_same_history_other_seed_differs():
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    run = lambda seed: search_rl(  # noqa: E731
        _problem(), _evaluate, episodes=24, batch=8, warmup=8, seed=seed, progress=False
    )
    a, b, c = run(0), run(0), run(1)
    assert a.history == b.history
    assert a.best == b.best and a.best_reward == b.best_reward
    assert a.history != c.history
    # The agent's generators are private: the global RNG states are untouched.
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_every_episode_fits_and_stays_in_range():
    problem = _problem()
    res = search_rl(problem, _evaluate, episodes=64, batch=8, warmup=8, seed=2, progress=False)
    assert [h["episode"] for h in res.history] == list(range(64))
    for h in res.history:
        assert h["fits"] and problem.predict(h["allocation"])["lut"] <= 600.0
        assert h["predicted"] == problem.predict(h["allocation"])
        assert all(0.0 <= s <= problem.max_sparsity for s in h["allocation"].values())
        assert h["reward"] == _reward(h["allocation"])
    assert res.best_reward == max(h["reward"] for h in res.history)


def test_agent_learns_toward_the_optimum():
    res = search_rl(_problem(), _evaluate, episodes=320, batch=8, warmup=8, seed=1, progress=False)
    rewards = [h["reward"] for h in res.history]
    assert res.best_reward > UNIFORM + 0.25  # uniform 0.408
    assert res.best_reward > OPTIMUM - 0.06  # optimum 0.770
    # The policy itself improves: its last two batches beat the random warm-up clearly.
    assert np.mean(rewards[-16:]) > np.mean(rewards[:8]) + 0.3
    assert np.mean(rewards[-16:]) > UNIFORM


def test_impossible_budget_names_the_resource():
    # At the maximum sparsity 0.95 the design still needs 1000 - 950 = 50 LUTs.
    with pytest.raises(HwpruneError, match=r"lut by 40"):
        search_rl(_problem(lut_budget=10.0), _evaluate, episodes=8, progress=False)


def test_evaluate_must_score_every_allocation():
    with pytest.raises(HwpruneError, match="one reward per allocation"):
        search_rl(_problem(), lambda allocs: [0.0], episodes=8, batch=4, progress=False)


def test_projected_episodes_spend_the_budget_and_learn():
    """fill=True (what train --fit uses): every episode is projected onto the budget, so
    each one fits with at most a hair to spare, and the agent still beats uniform."""
    problem = _problem()
    res = search_rl(
        problem, _evaluate, episodes=96, batch=8, warmup=8, seed=0, progress=False, fill=True
    )
    for h in res.history:
        lut = problem.predict(h["allocation"])["lut"]
        assert h["fits"] and 600.0 - 1e-3 <= lut <= 600.0
        assert all(0.0 <= s <= problem.max_sparsity for s in h["allocation"].values())
    assert res.best_reward > UNIFORM + 0.25
