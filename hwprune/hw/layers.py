"""Every layer lowered to one netlist (``LayerNetlist``): the Verilog emitter writes it as a
module, the schedule reads its register banks and the estimator costs its nodes; none of
them walks the IR's arithmetic again.

    Dense      its kernel's netlist (``hw.kernels``), then a ``requant`` node per row when a
               Requant is fused into its last stage
    Requant    (standing alone) an ``input`` and a ``requant`` node per element, one stage
    Max        per output a balanced tree of ``max`` nodes over its window's members, in
               window order (depth ceil(log2(window size)))
    Threshold  per element a ``cmp`` node for each threshold its input's range leaves
               undecided (``threshold_split``), a balanced tree of ``count`` nodes over the
               compare bits, and ``scale``: base + step * (always-passed + count)

Trees share ``tree.reduce_rows``: register banks every ``levels_per_stage`` levels, every
row of a layer through the same number of banks. A new layer kind is one lowering here and
one entry in ``LOWERINGS``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from hwprune.hw.kernels import kernel_of, lower_kernel
from hwprune.hw.netlist import LayerNetlist, Node
from hwprune.hw.schedule import fusable_requant, levels_per_stage, stage_levels
from hwprune.hw.tree import Combine, depth_of, reduce_rows
from hwprune.ir.graph import (
    KIND_OF,
    Dense,
    Graph,
    IntRange,
    Max,
    Op,
    Requant,
    Threshold,
    Value,
    shift_round,
)


def max_range(a: IntRange, b: IntRange) -> IntRange:
    """The exact range of max(a, b) for a, b in independent ranges."""
    return IntRange(max(a.lo, b.lo), max(a.hi, b.hi))


def threshold_split(thresholds: Sequence[int], r: IntRange) -> tuple[int, tuple[int, ...]]:
    """(how many thresholds every x in r passes, the thresholds that need a comparator).

    x >= t holds for all x in r when t <= r.lo and for none when t > r.hi; only the
    thresholds in (r.lo, r.hi] are compared in hardware.
    """
    always = sum(1 for t in thresholds if t <= r.lo)
    return always, tuple(t for t in thresholds if r.lo < t <= r.hi)


def requant_node(name: str, src: Node, rq: Requant, row: int) -> Node:
    """clip(round(src * 2**-shift)) of ``rq`` as a node with its exact range."""

    def q(v: int) -> int:
        return min(max(shift_round(v, rq.shift, rq.rounding), rq.lo), rq.hi)

    return Node(
        name,
        "requant",
        IntRange(q(src.range.lo), q(src.range.hi)),
        args=(src.name,),
        row=row,
        shifts=(rq.shift,),
        clip=(rq.lo, rq.hi),
        rounding=rq.rounding,
    )


def lower_layer(g: Graph, op: Op) -> LayerNetlist:
    """The netlist of the layer that starts with ``op`` (a Dense takes its fusable Requant)."""
    if type(op) not in LOWERINGS:
        raise TypeError(f"no lowering for op kind {type(op).__name__}")
    return LOWERINGS[type(op)](g, op)


def _lower_dense(g: Graph, op: Dense) -> LayerNetlist:
    x = g.values[op.inputs[0]]
    return _dense(op, x, kernel_of(g, op), levels_per_stage(g), fusable_requant(g, op))


@functools.lru_cache(maxsize=256)
def _dense(op: Dense, x: Value, kernel: str, per_stage: int, fused: Requant | None):
    net = lower_kernel(kernel, op, x, per_stage)
    nodes, outs = list(net.nodes), list(net.tops)
    if fused is not None:
        for i, top in enumerate(net.tops):
            q = requant_node(f"rq_{i}", net.by_name[top], fused, i)
            nodes.append(q)
            outs[i] = q.name
    inputs = tuple(Node(f"x_{c}", "input", x.ranges[c], col=c) for c in net.cols)
    return LayerNetlist(
        op.name,
        KIND_OF[Dense],
        net.kernel,
        fused.name if fused is not None else None,
        inputs,
        x.range,
        tuple(nodes),
        tuple(outs),
        net.depth,
        net.bank_levels,
    )


@functools.lru_cache(maxsize=256)
def _requant(op: Requant, x: Value, per_stage: int) -> LayerNetlist:
    nodes = []
    for i, r in enumerate(x.ranges):
        a = Node(f"a_{i}", "input", r, col=i)
        nodes += [a, requant_node(f"rq_{i}", a, op, i)]
    outs = tuple(n.name for n in nodes if n.kind == "requant")
    return LayerNetlist(op.name, KIND_OF[Requant], "", None, (), None, tuple(nodes), outs, 0, (0,))


def _trees(
    per_stage: int, nodes: list[Node], rows: list[list[Node]], combine: Combine
) -> tuple[int, tuple[int, ...], list[Node]]:
    """(depth, bank levels, each row's top) of balanced trees over ``rows``."""
    depth = max((depth_of(len(r)) for r in rows), default=0)
    banks = stage_levels(depth, per_stage)
    return depth, banks, reduce_rows(nodes, rows, banks, combine)


def _input_nodes(x: Value, cols: Sequence[int]) -> dict[int, Node]:
    return {c: Node(f"x_{c}", "input", x.ranges[c], col=c) for c in cols}


@functools.lru_cache(maxsize=256)
def _max(op: Max, x: Value, per_stage: int) -> LayerNetlist:
    inputs = _input_nodes(x, sorted({j for grp in op.groups for j in grp}))
    rows = [[inputs[j] for j in grp] for grp in op.groups]

    def node(i: int, level: int, k: int, a: Node, b: Node) -> Node:
        r = max_range(a.range, b.range)
        return Node(f"m_{i}_{level}_{k}", "max", r, args=(a.name, b.name), row=i)

    nodes: list[Node] = []
    depth, banks, tops = _trees(per_stage, nodes, rows, node)
    outs = tuple(t.name for t in tops)
    ins = tuple(inputs.values())
    return LayerNetlist(
        op.name, KIND_OF[Max], "", None, ins, None, tuple(nodes), outs, depth, banks
    )


@functools.lru_cache(maxsize=256)
def _threshold(op: Threshold, x: Value, per_stage: int) -> LayerNetlist:
    splits = [threshold_split(ts, r) for ts, r in zip(op.thresholds, x.ranges, strict=True)]
    inputs = _input_nodes(x, [i for i, (_, ts) in enumerate(splits) if ts])
    nodes: list[Node] = []
    rows: list[list[Node]] = []
    for i, (_, compared) in enumerate(splits):
        bits = [
            Node(f"c_{i}_{k}", "cmp", IntRange(0, 1), args=(f"x_{i}",), value=t, row=i)
            for k, t in enumerate(compared)
        ]
        if not bits:  # every threshold decided by the range: the count is the constant 0
            bits = [Node(f"z_{i}", "const", IntRange(0, 0), row=i)]
        nodes += bits
        rows.append(bits)

    def count(i: int, level: int, k: int, a: Node, b: Node) -> Node:
        r = a.range + b.range
        return Node(f"n_{i}_{level}_{k}", "count", r, args=(a.name, b.name), row=i)

    depth, banks, tops = _trees(per_stage, nodes, rows, count)
    outs = []
    for i, (top, (always, _)) in enumerate(zip(tops, splits, strict=True)):
        # y = base + step * (always + count) = offset + step * count
        offset = op.base + op.step * always
        r = top.range
        y = IntRange(offset + op.step * r.lo, offset + op.step * r.hi)
        s = Node(f"t_{i}", "scale", y, args=(top.name,), value=op.step, row=i, offset=offset)
        nodes.append(s)
        outs.append(s.name)
    ins = tuple(inputs.values())
    kind = KIND_OF[Threshold]
    return LayerNetlist(op.name, kind, "", None, ins, None, tuple(nodes), tuple(outs), depth, banks)


Lowering = Callable[[Graph, Op], LayerNetlist]


def _on_input(lower: Callable[[Op, Value, int], LayerNetlist]) -> Lowering:
    """A lowering of the op alone, from its input value and the graph's pipelining."""

    def f(g: Graph, op: Op) -> LayerNetlist:
        return lower(op, g.values[op.inputs[0]], levels_per_stage(g))

    return f


# The lowering of each op kind that starts a layer. A test fails if an op kind of OP_KINDS
# other than Input lacks one.
LOWERINGS: dict[type[Op], Lowering] = {
    Dense: _lower_dense,
    Requant: _on_input(_requant),
    Max: _on_input(_max),
    Threshold: _on_input(_threshold),
}
