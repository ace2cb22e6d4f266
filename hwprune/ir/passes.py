"""Pure Graph -> Graph passes. Each docstring names the invariant the pass establishes.

``optimize`` is the default pipeline, and it is data: a tuple of passes run in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from hwprune.ir.graph import Dense, Graph, Input, Op, Requant, Row, shift_round


def drop_zero_terms(g: Graph) -> Graph:
    """Invariant: no Dense row stores a zero weight."""
    ops = []
    for op in g.ops:
        if isinstance(op, Dense):
            rows = tuple(
                Row(r.bias, *_unzip([(c, w) for c, w in zip(r.cols, r.weights) if w != 0]))
                for r in op.rows
            )
            op = replace(op, rows=rows)
        ops.append(op)
    return replace(g, ops=tuple(ops))


def _unzip(terms: list[tuple[int, int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return tuple(c for c, _ in terms), tuple(w for _, w in terms)


def _constant_elements(g: Graph) -> dict[str, dict[int, int]]:
    """Per op, the elements whose value is the same for every input (index -> value).

    Follows Dense rows without terms (value = bias) through elementwise Requants.
    """
    consts: dict[str, dict[int, int]] = {}
    for op in g.ops:
        if isinstance(op, Dense):
            consts[op.name] = {i: r.bias for i, r in enumerate(op.rows) if not r.cols}
        elif isinstance(op, Requant):
            src = consts.get(op.inputs[0], {})
            consts[op.name] = {
                i: min(max(shift_round(v, op.shift, op.rounding), op.lo), op.hi)
                for i, v in src.items()
            }
        else:
            consts[op.name] = {}
    return consts


def fold_constant_inputs(g: Graph) -> Graph:
    """Invariant: no Dense term reads an element that is constant for all inputs.

    A neuron whose row has no terms outputs its bias whatever the input; after its Requant it
    is still a constant c. A consumer's term w * c then moves into the consumer's bias, exactly.
    """
    consts = _constant_elements(g)
    ops: list[Op] = []
    for op in g.ops:
        if isinstance(op, Dense) and consts.get(op.inputs[0]):
            known = consts[op.inputs[0]]
            rows = []
            for r in op.rows:
                bias = r.bias + sum(w * known[c] for c, w in zip(r.cols, r.weights) if c in known)
                kept = [(c, w) for c, w in zip(r.cols, r.weights) if c not in known]
                rows.append(Row(bias, *_unzip(kept)))
            op = replace(op, rows=tuple(rows))
        ops.append(op)
    return replace(g, ops=tuple(ops))


def remove_dead_neurons(g: Graph) -> Graph:
    """Invariant: every element of every non-input, non-output value is read by some term.

    Works backwards: a Dense reads the columns its rows' terms name; a Requant reads the same
    elements it must produce. Unread Dense rows (and the Requant elements fed by them) are
    removed and consumers' column indices renumbered. Graph inputs keep their interface; the
    inputs no term reads are reported by ``unread_inputs``.
    """
    needed: dict[str, set[int]] = {}
    for name in g.outputs:
        needed[name] = set(range(g.values[name].size))
    for op in reversed(g.ops):
        mine = needed.setdefault(op.name, set())
        if isinstance(op, Dense):
            src = needed.setdefault(op.inputs[0], set())
            for i in mine:
                src.update(op.rows[i].cols)
        elif isinstance(op, Requant):
            needed.setdefault(op.inputs[0], set()).update(mine)

    # Forward: shrink ops and renumber, keeping a map old index -> new index per value.
    remap: dict[str, dict[int, int]] = {}
    ops: list[Op] = []
    for op in g.ops:
        if isinstance(op, Input):
            remap[op.name] = {i: i for i in range(op.size)}
            ops.append(op)
            continue
        # A value no one reads keeps one element: the IR has no empty vectors.
        keep = sorted(needed[op.name]) or [0]
        src_map = remap[op.inputs[0]]
        if isinstance(op, Dense):
            rows = tuple(
                Row(op.rows[i].bias, tuple(src_map[c] for c in op.rows[i].cols), op.rows[i].weights)
                for i in keep
            )
            op = replace(op, n_in=len(src_map), rows=rows)
        elif isinstance(op, Requant):
            # Elementwise: it keeps exactly the elements its input kept.
            keep = sorted(src_map)
        remap[op.name] = {old: new for new, old in enumerate(keep)}
        ops.append(op)
    return replace(g, ops=tuple(ops))


def unread_inputs(g: Graph) -> dict[str, list[int]]:
    """Per Input op, the elements no Dense term reads (the hardware leaves them unconnected)."""
    out = {}
    for inp in g.inputs:
        read: set[int] = set()
        for op in g.consumers(inp.name):
            if isinstance(op, Dense):
                for r in op.rows:
                    read.update(r.cols)
        out[inp.name] = [i for i in range(inp.size) if i not in read]
    return out


DEFAULT_PASSES: tuple[Callable[[Graph], Graph], ...] = (
    drop_zero_terms,
    fold_constant_inputs,
    remove_dead_neurons,
)


def optimize(g: Graph, passes: tuple[Callable[[Graph], Graph], ...] = DEFAULT_PASSES) -> Graph:
    """Run passes in order until the graph stops changing (folding can create dead neurons,
    removing neurons can expose new constants)."""
    while True:
        before = g
        for p in passes:
            g = p(g)
        if g == before:
            return g
