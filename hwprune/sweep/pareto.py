"""The Pareto front of (value to maximise, cost to minimise): a pure function."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points of ``points`` = [(value, cost), ...] that no other point
    dominates, in order of increasing cost.

    A point dominates another when its value is at least as high and its cost at least as
    low, and it is strictly better in one of them. Points equal in both are kept together
    (neither dominates the other). O(n log n): sorted by cost, a point is on the front when
    its value beats every cheaper point's.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    front: list[int] = []
    best = float("-inf")
    k = 0
    while k < len(order):
        cost = points[order[k]][1]
        group = []  # the points of this cost, best value first
        while k < len(order) and points[order[k]][1] == cost:
            group.append(order[k])
            k += 1
        top = points[group[0]][0]
        if top > best:  # equal to best: a cheaper point has that value already
            front += [i for i in group if points[i][0] == top]
            best = top
    return front
