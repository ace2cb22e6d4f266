"""The pipeline schedule shared by the Verilog emitter and the estimator.

A Dense op is lowered by its kernel (``hw.kernels``) into a netlist whose adder levels and
register banks this schedule reads: a register bank closes every ``LEVELS_PER_STAGE`` levels
and the last level, so a layer's latency in cycles is ``ceil(depth / LEVELS_PER_STAGE)``
(at least 1); for the ``mac`` kernel depth = ceil(log2(operands)) of the deepest row. A
Requant that directly follows a Dense is applied after the last adder level, before that
layer's final register (it is a shift and a clip: wiring plus a comparator). A Requant
after anything else gets its own one-cycle stage.

Max and Threshold ops are layers of their own, built from the same balanced trees and
register banks (``hw.layers`` lowers them: comparator trees, and compare bits counted by an
adder tree with ``base + step * count`` applied before the final register).

Every layer's rows share the layer's stage count: shorter trees pass through the extra
registers. Register widths come from exact ranges, so the flip-flop count of the emitted RTL
is exactly ``sum(Stage.reg_bits)`` (DESIGN.md: "flip-flop counts are exactly the sum of
register widths" in yosys on pipelined designs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwprune.ir.graph import Dense, Graph, Input, Op, Requant

# Four adder levels (up to 16 operands) per cycle: a 4-level tree of <=24-bit adders on
# 7-series carry chains stays well under a 10 ns period. The figure is a design choice.
LEVELS_PER_STAGE = 4


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


def schedule(g: Graph) -> tuple[LayerSchedule, ...]:
    """The pipeline of a graph in op order, read from each layer's netlist
    (``hw.layers.lower_layer``): the intermediate banks hold the registers the lowering
    placed, the last one value per output element (the requantized one when a Requant is
    fused). Input ops are not registered (latency 0)."""
    from hwprune.hw.layers import lower_layer

    out: list[LayerSchedule] = []
    fused_done: set[str] = set()
    for op in g.ops:
        if isinstance(op, Input) or op.name in fused_done:
            continue
        net = lower_layer(g, op)
        final = g.values[net.fused or op.name].ranges
        stages = tuple(
            Stage(lvl, tuple(r.bits for r in final) if lvl == net.depth else net.bank_bits(st))
            for st, lvl in enumerate(net.bank_levels)
        )
        out.append(LayerSchedule(op.name, net.depth, stages, net.fused))
        if net.fused is not None:
            fused_done.add(net.fused)
    return tuple(out)


def fusable_requant(g: Graph, op: Dense) -> Requant | None:
    """The Requant reading this Dense, if it is the Dense's only consumer and not an output."""
    consumers: tuple[Op, ...] = g.consumers(op.name)
    if len(consumers) == 1 and isinstance(consumers[0], Requant) and op.name not in g.outputs:
        return consumers[0]
    return None


def latency_cycles(g: Graph) -> int:
    """Cycles from in_valid to out_valid for a chain graph: the sum of its layers' stage
    counts; at reuse factor R > 1 (``hw.reuse``) the input register and R per shared Dense."""
    from hwprune.hw.reuse import input_hold, kernel_cycles

    return input_hold(g) + kernel_cycles(g)
