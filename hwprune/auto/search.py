"""Searches that allocate per-layer sparsity under a budget (``train --fit --search``).

Each takes a ``SearchInput`` (the problem with its resource model, the sensitivity curves, an
``evaluate`` that scores a batch of allocations by trials, a seed) and returns the allocation
with what it learnt on the way:

- ``greedy``: from the sensitivity curves, repeatedly move the layer whose next step up its
  ladder loses the least validation accuracy per unit of overflowing resource saved, until
  the prediction fits; the last move is then bisected to the least sparsity that fits.
- ``rl``: an actor-critic agent in the manner of AMC (He et al. 2018; ``hwprune.auto.rl``),
  rewarded by trial validation accuracy, every episode clipped to the budget.
- ``uniform``: the least equal sparsity of every layer that fits (the baseline).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hwprune.auto.problem import Allocation, Problem
from hwprune.errors import HwpruneError

BISECT_STEPS = 30


@dataclass(frozen=True)
class SearchInput:
    problem: Problem
    accuracy: dict[str, list[tuple[float, float]]]  # layer -> (sparsity, val accuracy), from 0
    evaluate: Callable[[list[Allocation]], list[float]]
    seed: int = 0
    episodes: int = 64
    batch: int = 8
    progress: bool = True


def _least_fitting(problem: Problem, make: Callable[[float], Allocation], lo: float, hi: float):
    """The least s in [lo, hi] whose allocation ``make(s)`` fits (``make(hi)`` must fit)."""
    if problem.fits(make(lo)):
        return lo
    for _ in range(BISECT_STEPS):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if problem.fits(make(mid)) else (mid, hi)
    return hi


def _max_check(problem: Problem) -> None:
    top = problem.uniform(problem.max_sparsity)
    if not problem.fits(top):
        over = ", ".join(f"{r} by {v:,.0f}" for r, v in problem.overflow(top).items())
        raise HwpruneError(
            f"no allocation fits: at {problem.max_sparsity:.0%} sparsity in every layer the "
            f"design is still over budget ({over})"
        )


def project(problem: Problem, alloc: Allocation) -> Allocation:
    """``alloc`` moved onto the budget: every layer's sparsity shifted by the same amount in
    logit space, to the least sparse allocation that fits (``rl._Env.project``, with the
    problem's own predictor). ``train --fit`` uses it when a final design came out over or
    under the budget and the RL agent's allocation must follow without a new search."""
    import math

    top = problem.max_sparsity

    def shifted(t: float) -> Allocation:
        out = {}
        for n, s in alloc.items():
            x = min(max(s / top, 1e-3), 1 - 1e-3)
            out[n] = top / (1.0 + math.exp(-(math.log(x / (1 - x)) - t)))
        return out

    lo, hi = -14.0, 14.0  # most sparse .. least sparse
    if problem.fits(shifted(hi)):
        return shifted(hi)
    for _ in range(BISECT_STEPS // 2):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if problem.fits(shifted(mid)) else (lo, mid)
    return shifted(lo)


def uniform(inp: SearchInput) -> tuple[Allocation, dict]:
    p = inp.problem
    _max_check(p)
    s = _least_fitting(p, p.uniform, 0.0, p.max_sparsity)
    return p.uniform(s), {"sparsity": s}


def greedy(inp: SearchInput) -> tuple[Allocation, dict]:
    p = inp.problem
    _max_check(p)
    levels = inp.accuracy
    at = dict.fromkeys(p.names, 0)  # each layer's index on its curve
    alloc = p.uniform(0.0)
    moves = []
    while not p.fits(alloc):
        over = p.overflow(alloc)
        now = p.predict(alloc)
        best = None
        for n in p.names:
            i = at[n]
            for j in range(i + 1, len(levels[n])):
                cand = {**alloc, n: levels[n][j][0]}
                pred = p.predict(cand)
                saved = sum((now[r] - pred[r]) / p.budget[r] for r in over if p.budget[r])
                if saved <= 0:
                    continue
                ratio = (levels[n][i][1] - levels[n][j][1]) / saved
                if best is None or ratio < best[0]:
                    best = (ratio, n, j)
        if best is None:  # cannot happen after _max_check; a guard against a flat model
            raise HwpruneError("greedy search: no layer's next sparsity saves the resource over")
        ratio, n, j = best
        prev = alloc[n]
        at[n] = j
        alloc = {**alloc, n: levels[n][j][0]}
        moves.append({"layer": n, "sparsity": alloc[n], "loss_per_saved": ratio})
        if p.fits(alloc):  # the last move: only as far as the budget needs
            fixed = dict(alloc)
            alloc[n] = _least_fitting(p, lambda s, a=fixed, n=n: {**a, n: s}, prev, alloc[n])
            moves[-1]["sparsity"] = alloc[n]
    return alloc, {"moves": moves}


class _Calibrated:
    """A surrogate times, per figure, the median ratio predictor / surrogate over the last
    CALIBRATION_WINDOW allocations it was corrected with (1 before any)."""

    def __init__(self, predictor, sur):
        self.predictor, self.sur = predictor, sur
        self.ratios: list[dict[str, float]] = []

    def update(self, allocs) -> None:
        for a in allocs:
            real, est = self.predictor(a), self.sur(a)
            self.ratios.append({k: real[k] / est[k] for k in real if est[k] > 0 and real[k] > 0})
        self.ratios = self.ratios[-CALIBRATION_WINDOW:]

    def __call__(self, alloc) -> dict[str, float]:
        import numpy as np

        est = self.sur(alloc)
        out = {}
        for k, v in est.items():
            rs = [r[k] for r in self.ratios if k in r]
            out[k] = v * (float(np.median(rs)) if rs else 1.0)
        return out


CALIBRATION_WINDOW = 32


def rl(inp: SearchInput) -> tuple[Allocation, dict]:
    from dataclasses import replace

    from hwprune.auto.predict import Surrogate
    from hwprune.auto.rl import search_rl

    p = inp.problem
    _max_check(p)
    info: dict = {}
    evaluate = inp.evaluate
    if p.predictor is not None:
        # The agent's clip and fill weigh thousands of allocations: a surrogate fitted to the
        # predictor stands in for it there, its scale corrected after every batch by the
        # predictor's own figures for the batch's episodes (``evaluate`` in fit.py checks
        # each episode by the predictor and penalises one that is over).
        cal = _Calibrated(
            p.predictor, Surrogate(p.predictor, p.layers, p.max_sparsity, seed=inp.seed)
        )
        info["surrogate"] = {"samples": cal.sur.samples, "max_lut_error": cal.sur.error}

        def evaluate(allocs, inner=inp.evaluate):
            cal.update(allocs)
            return inner(allocs)

        p = replace(p, predictor=cal)
    # AMC walks the layers in network order. Here the largest goes first: the budget clip
    # then acts on the layer that holds most of the resource, and the small layers (among
    # them the output layer, the most sensitive) are chosen last, with what is left.
    p = replace(p, layers=tuple(sorted(p.layers, key=lambda ly: -ly.params)))
    info["order"] = [ly.name for ly in p.layers]
    res = search_rl(
        p,
        evaluate,
        episodes=inp.episodes,
        batch=inp.batch,
        seed=inp.seed,
        progress=inp.progress,
        fill=True,
    )
    return dict(res.best), {
        **info,
        "best_reward": res.best_reward,
        "episodes": list(res.history),
        "seconds": res.seconds,
    }


# By name (hwprune.names.SEARCHES lists the same names, the baseline after them).
SEARCHES: dict[str, Callable[[SearchInput], tuple[Allocation, dict]]] = {
    "greedy": greedy,
    "rl": rl,
    "uniform": uniform,
}
