"""A per-layer sparsity allocation problem: the layers, the budget and a resource model.

The resource model is the estimator's own figures, measured per layer by the sensitivity
analysis (hwprune.auto.sensitivity): each layer pruned alone at a ladder of sparsities, every
other layer dense. A layer's effect on a resource is the change of the design's total from the
dense design's, linear between ladder points; an allocation's prediction is the dense total
plus every layer's change. The estimator sizes each layer from its own nonzero weights, so the
changes add up nearly exactly; ``hwprune train --fit`` checks the final design with the
estimator itself all the same, and tightens the allocation when the prediction was short.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

# The figures a budget may limit: the estimate's totals, and latency in ns at the board clock.
RESOURCE_KEYS = ("lut", "ff", "dsp", "bram18", "latency_ns")
MAX_SPARSITY = 0.95  # the highest sparsity a search gives a layer


@dataclass(frozen=True)
class LayerInfo:
    """A prunable layer as a search sees it (AMC's layer embedding draws on these)."""

    name: str
    fan_in: int  # weights per output unit (in features, or in channels x kernel area)
    fan_out: int  # output units (features or channels)
    weight_bits: int

    @property
    def params(self) -> int:
        return self.fan_in * self.fan_out


Allocation = dict[str, float]  # layer name -> sparsity


@dataclass(frozen=True)
class Problem:
    """``curves[name]``: ascending ``(sparsity, {resource: change of the total})`` points of
    that layer pruned alone, starting at ``(0.0, zeros)``; ``base``: the dense design's totals;
    ``budget``: the limit on each budgeted resource."""

    layers: tuple[LayerInfo, ...]
    base: dict[str, float]
    curves: dict[str, tuple[tuple[float, dict[str, float]], ...]]
    budget: dict[str, float]
    max_sparsity: float = MAX_SPARSITY
    # When given, predictions come from it (hwprune.auto.predict.Predictor: the estimator on
    # the masked dense export) instead of the per-layer curves.
    predictor: Callable[[dict[str, float]], dict[str, float]] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(ly.name for ly in self.layers)

    def change(self, name: str, sparsity: float, resource: str) -> float:
        """Layer ``name``'s change of ``resource`` at ``sparsity`` (linear between points)."""
        pts = self.curves[name]
        xs = [s for s, _ in pts]
        s = min(max(sparsity, xs[0]), xs[-1])
        i = bisect.bisect_right(xs, s) - 1
        if i >= len(pts) - 1:
            return pts[-1][1].get(resource, 0.0)
        (s0, d0), (s1, d1) = pts[i], pts[i + 1]
        f = (s - s0) / (s1 - s0)
        return d0.get(resource, 0.0) + f * (d1.get(resource, 0.0) - d0.get(resource, 0.0))

    def predict(self, alloc: Allocation) -> dict[str, float]:
        """The predicted totals of the design pruned to ``alloc`` (missing layers: dense)."""
        if self.predictor is not None:
            return self.predictor(alloc)
        return {
            r: self.base.get(r, 0.0) + sum(self.change(n, alloc.get(n, 0.0), r) for n in self.names)
            for r in RESOURCE_KEYS
        }

    def overflow(self, alloc: Allocation) -> dict[str, float]:
        """Budgeted resources the prediction exceeds, with the amount over."""
        pred = self.predict(alloc)
        return {r: pred[r] - lim for r, lim in self.budget.items() if pred[r] > lim}

    def fits(self, alloc: Allocation) -> bool:
        return not self.overflow(alloc)

    def uniform(self, sparsity: float) -> Allocation:
        return dict.fromkeys(self.names, sparsity)
