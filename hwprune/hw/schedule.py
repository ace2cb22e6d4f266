"""The pipeline schedule shared by the Verilog emitter and the estimator.

A Dense op is lowered by its kernel (``hw.kernels``) into a netlist whose adder levels and
register banks this schedule reads: a register bank closes every ``LEVELS_PER_STAGE`` levels
and the last level, so a layer's latency in cycles is ``ceil(depth / LEVELS_PER_STAGE)``
(at least 1); for the ``mac`` kernel depth = ceil(log2(operands)) of the deepest row. A
Requant that directly follows a Dense is applied after the last adder level, before that
layer's final register (it is a shift and a clip: wiring plus a comparator). A Requant
after anything else gets its own one-cycle stage.

Max and Threshold ops are layers of their own, built from the same balanced trees and
register banks. A Max output is a comparator tree over its window's members in window
order (each node a signed compare and a 2:1 mux; depth ceil(log2(window size))). A
Threshold element compares its input with each threshold the input's range does not decide
(those below or at the range's minimum always pass, those above its maximum never do), and
an adder tree counts the passing compare bits; ``base + step * count`` is applied after the
last level, before the layer's final register, as a fused Requant is.

Every layer's rows share the layer's stage count: shorter trees pass through the extra
registers. Register widths come from exact ranges, so the flip-flop count of the emitted RTL
is exactly ``sum(Stage.reg_bits)`` (DESIGN.md: "flip-flop counts are exactly the sum of
register widths" in yosys on pipelined designs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hwprune.ir.graph import Dense, Graph, Input, IntRange, Max, Op, Requant, Threshold, Value

# Four adder levels (up to 16 operands) per cycle: a 4-level tree of <=24-bit adders on
# 7-series carry chains stays well under a 10 ns period. The figure is a design choice.
LEVELS_PER_STAGE = 4


@dataclass(frozen=True)
class Operand:
    """One adder-tree operand: a product w * x[col], the bias, or a partial sum."""

    range: IntRange


@dataclass(frozen=True)
class RowTree:
    """The operand ranges of one row at each adder level (level 0 = products and bias)."""

    levels: tuple[tuple[IntRange, ...], ...]

    @property
    def depth(self) -> int:
        return len(self.levels) - 1


def balanced_tree(
    operands: Sequence[IntRange], combine: Callable[[IntRange, IntRange], IntRange]
) -> RowTree:
    """The balanced binary tree over ``operands``: level k+1 combines operands 2i and 2i+1
    of level k, an odd last operand passes through; ``combine`` gives a node's range."""
    level = tuple(operands)
    levels = [level]
    while len(level) > 1:
        nxt = [combine(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = tuple(nxt)
        levels.append(level)
    return RowTree(tuple(levels))


def max_range(a: IntRange, b: IntRange) -> IntRange:
    """The exact range of max(a, b) for a, b in independent ranges."""
    return IntRange(max(a.lo, b.lo), max(a.hi, b.hi))


def max_tree(op: Max, x: Value, index: int) -> RowTree:
    """The comparator tree of output ``index`` of a Max: its window's member ranges at
    level 0, in window order, and max(a, b) nodes above."""
    return balanced_tree([x.ranges[j] for j in op.groups[index]], max_range)


def threshold_split(thresholds: Sequence[int], r: IntRange) -> tuple[int, tuple[int, ...]]:
    """(how many thresholds every x in r passes, the thresholds that need a comparator).

    x >= t holds for all x in r when t <= r.lo and for none when t > r.hi; only the
    thresholds in (r.lo, r.hi] are compared in hardware.
    """
    always = sum(1 for t in thresholds if t <= r.lo)
    return always, tuple(t for t in thresholds if r.lo < t <= r.hi)


def threshold_tree(op: Threshold, x: Value, index: int) -> RowTree:
    """The adder tree counting element ``index``'s compare bits (one [0, 1] operand per
    threshold ``threshold_split`` leaves undecided; the constant 0 when there is none)."""
    _, compared = threshold_split(op.thresholds[index], x.ranges[index])
    bits = [IntRange(0, 1)] * len(compared) or [IntRange(0, 0)]
    return balanced_tree(bits, IntRange.__add__)


@dataclass(frozen=True)
class Stage:
    """One register bank: the adder level it closes and the width of every register in it."""

    level: int
    reg_bits: tuple[int, ...]


@dataclass(frozen=True)
class LayerSchedule:
    """How one op is pipelined. ``fused`` names a Requant folded into this Dense's last stage."""

    op: str
    depth: int
    stages: tuple[Stage, ...]
    fused: str | None = None

    @property
    def cycles(self) -> int:
        return len(self.stages)

    @property
    def ff(self) -> int:
        return sum(sum(s.reg_bits) for s in self.stages)


def levels_per_stage(g: Graph) -> int:
    """The graph's pipelining (``meta["pipeline"]``, compile's ``--pipeline``): the most adder
    levels between two register banks, or 0 for one bank per layer ("layer")."""
    return int(g.meta.get("pipeline", LEVELS_PER_STAGE))


def stage_levels(depth: int, per_stage: int = LEVELS_PER_STAGE) -> tuple[int, ...]:
    """The adder levels after which a register bank closes (the last one closes the layer);
    ``per_stage`` 0 closes only the last."""
    if per_stage <= 0:
        return (depth,)
    n = max(1, math.ceil(depth / per_stage))
    return tuple(min(depth, (k + 1) * per_stage) for k in range(n))


def _banked(
    name: str,
    trees: list[RowTree],
    final: Sequence[IntRange],
    fused: str | None,
    per_stage: int = LEVELS_PER_STAGE,
):
    """Register banks over per-element trees: every ``LEVELS_PER_STAGE`` levels each
    element's operands of that level, and in the last bank one value per element of range
    ``final[i]`` (what follows the tree, such as a fused Requant, is applied before it)."""
    depth = max(t.depth for t in trees)
    stages = []
    for lvl in stage_levels(depth, per_stage):
        bits: list[int] = []
        for i, t in enumerate(trees):
            if lvl == depth:
                bits.append(final[i].bits)
            else:
                bits.extend(r.bits for r in t.levels[min(lvl, t.depth)])
        stages.append(Stage(lvl, tuple(bits)))
    return LayerSchedule(name, depth, tuple(stages), fused)


def _dense_schedule(g: Graph, op: Dense, fused: Requant | None) -> LayerSchedule:
    """A Dense layer's banks from its netlist: the intermediate banks hold the registers the
    kernel placed; the last holds one value per row, the requantized one when a Requant is
    fused."""
    from hwprune.hw.kernels import lower_dense

    net = lower_dense(g, op)
    final = g.values[fused.name if fused is not None else op.name].ranges
    stages = tuple(
        Stage(lvl, tuple(r.bits for r in final) if lvl == net.depth else net.bank_bits(st))
        for st, lvl in enumerate(net.bank_levels)
    )
    return LayerSchedule(op.name, net.depth, stages, fused.name if fused is not None else None)


def schedule(g: Graph) -> tuple[LayerSchedule, ...]:
    """The pipeline of a graph in op order. Input ops are not registered (latency 0)."""
    out: list[LayerSchedule] = []
    fused_done: set[str] = set()
    per_stage = levels_per_stage(g)
    for op in g.ops:
        if isinstance(op, Input) or op.name in fused_done:
            continue
        if isinstance(op, Dense):
            nxt = _fusable_requant(g, op)
            out.append(_dense_schedule(g, op, nxt))
            if nxt is not None:
                fused_done.add(nxt.name)
        elif isinstance(op, Requant):
            bits = tuple(r.bits for r in g.values[op.name].ranges)
            out.append(LayerSchedule(op.name, 0, (Stage(0, bits),)))
        elif isinstance(op, Max):
            x = g.values[op.inputs[0]]
            trees = [max_tree(op, x, i) for i in range(len(op.groups))]
            out.append(_banked(op.name, trees, g.values[op.name].ranges, None, per_stage))
        elif isinstance(op, Threshold):
            x = g.values[op.inputs[0]]
            trees = [threshold_tree(op, x, i) for i in range(x.size)]
            out.append(_banked(op.name, trees, g.values[op.name].ranges, None, per_stage))
        else:
            raise TypeError(f"no schedule for op kind {type(op).__name__}")
    return tuple(out)


def _fusable_requant(g: Graph, op: Dense) -> Requant | None:
    """The Requant reading this Dense, if it is the Dense's only consumer and not an output."""
    consumers: tuple[Op, ...] = g.consumers(op.name)
    if len(consumers) == 1 and isinstance(consumers[0], Requant) and op.name not in g.outputs:
        return consumers[0]
    return None


def latency_cycles(g: Graph) -> int:
    """Cycles from in_valid to out_valid for a chain graph (sum of stage counts)."""
    return sum(s.cycles for s in schedule(g))
