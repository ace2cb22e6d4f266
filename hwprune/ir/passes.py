"""Pure Graph -> Graph passes. Each docstring names the invariant the pass establishes.

``optimize`` is the default pipeline, and it is data: a tuple of passes run in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from hwprune.ir.graph import Dense, Graph, Input, Max, Op, Requant, Row, Threshold, shift_round


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

    Follows Dense rows without terms (value = bias) through elementwise Requants and
    Thresholds and through Max windows whose members are all constant. A Max or Threshold
    element whose exact range is one point is constant too: a Threshold whose thresholds all
    lie outside its input's range, or a Max window one constant member dominates.
    """
    consts: dict[str, dict[int, int]] = {}
    for op in g.ops:
        src = consts.get(op.inputs[0], {}) if op.inputs else {}
        if isinstance(op, Dense):
            consts[op.name] = {i: r.bias for i, r in enumerate(op.rows) if not r.cols}
        elif isinstance(op, Requant):
            consts[op.name] = {
                i: min(max(shift_round(v, op.shift, op.rounding), op.lo), op.hi)
                for i, v in src.items()
            }
        elif isinstance(op, Max):
            known = {
                i: max(src[j] for j in grp)
                for i, grp in enumerate(op.groups)
                if all(j in src for j in grp)
            }
            consts[op.name] = {**_point_elements(g, op.name), **known}
        elif isinstance(op, Threshold):
            known = {
                i: op.base + op.step * sum(1 for t in op.thresholds[i] if v >= t)
                for i, v in src.items()
            }
            consts[op.name] = {**_point_elements(g, op.name), **known}
        else:
            consts[op.name] = {}
    return consts


def _point_elements(g: Graph, name: str) -> dict[int, int]:
    """The elements of a value whose exact range holds a single integer."""
    return {i: r.lo for i, r in enumerate(g.values[name].ranges) if r.lo == r.hi}


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
            if op.window is not None:
                op = replace(op, window=op.window.with_consts(known))
        ops.append(op)
    return replace(g, ops=tuple(ops))


def _needed_elements(g: Graph) -> tuple[dict[str, set[int]], set[str]]:
    """Per op, the elements some graph output depends on, found backwards; and the ops
    nothing reads.

    A Dense reads the columns its needed rows' terms name, a Max the members of its needed
    windows, a Requant or Threshold (elementwise) the elements it must produce. An op
    nothing reads still keeps element 0 (the IR has no empty vectors), as a placeholder
    that reads as little as it can: a Dense row without terms, a Max window of one member,
    an elementwise op nothing beyond what its input keeps anyway.
    """
    needed: dict[str, set[int]] = {}
    unread: set[str] = set()
    for name in g.outputs:
        needed[name] = set(range(g.values[name].size))
    for op in reversed(g.ops):
        mine = needed.setdefault(op.name, set())
        if isinstance(op, Input):
            continue
        if not mine:
            mine.add(0)
            unread.add(op.name)
        src = needed.setdefault(op.inputs[0], set())
        if isinstance(op, Dense):
            if op.name not in unread:
                for i in mine:
                    src.update(op.rows[i].cols)
        elif isinstance(op, Max):
            if op.name in unread:
                src.add(op.groups[0][0])
            else:
                for i in mine:
                    src.update(op.groups[i])
        elif isinstance(op, (Requant, Threshold)):
            # An unread elementwise op keeps whatever its input keeps, which may then be a
            # placeholder too.
            if op.name not in unread:
                src.update(mine)
        else:
            raise TypeError(f"remove_dead_neurons: no rule for op kind {type(op).__name__}")
    return needed, unread


def remove_dead_neurons(g: Graph) -> Graph:
    """Invariant: every element of every non-input, non-output value is read by some term.

    Works backwards (``_needed_elements``). Unread Dense rows and Max windows are removed
    (an op nothing reads keeps a one-element placeholder that reads at most one element);
    the Requant and Threshold elements fed by removed elements go with them (elementwise ops
    keep exactly the elements their input keeps). Consumers' column, window-member and
    threshold indices are renumbered. Graph inputs keep their interface; the inputs nothing
    reads are reported by ``unread_inputs``.
    """
    needed, unread = _needed_elements(g)

    # Forward: shrink ops and renumber, keeping a map old index -> new index per value.
    remap: dict[str, dict[int, int]] = {}
    ops: list[Op] = []
    for op in g.ops:
        if isinstance(op, Input):
            remap[op.name] = {i: i for i in range(op.size)}
            ops.append(op)
            continue
        keep = sorted(needed[op.name])
        src_map = remap[op.inputs[0]]
        if isinstance(op, Dense) and op.name in unread:
            op = replace(op, n_in=len(src_map), rows=(Row(op.rows[0].bias, (), ()),), window=None)
        elif isinstance(op, Max) and op.name in unread:
            op = replace(op, groups=((src_map[op.groups[0][0]],),), window=None)
        elif isinstance(op, Dense):
            rows = tuple(
                Row(op.rows[i].bias, tuple(src_map[c] for c in op.rows[i].cols), op.rows[i].weights)
                for i in keep
            )
            op = replace(op, n_in=len(src_map), rows=rows)
        elif isinstance(op, Max):
            groups = tuple(tuple(src_map[j] for j in op.groups[i]) for i in keep)
            op = replace(op, groups=groups)
        elif isinstance(op, (Requant, Threshold)):
            # Elementwise: it keeps exactly the elements its input kept (src_map's keys, in
            # the order of their new indices, which is ascending).
            keep = sorted(src_map)
            if isinstance(op, Threshold):
                op = replace(op, thresholds=tuple(op.thresholds[i] for i in keep))
        remap[op.name] = {old: new for new, old in enumerate(keep)}
        if isinstance(op, (Dense, Max)) and op.window is not None:
            op = replace(op, window=op.window.renumbered(src_map, remap[op.name]))
        ops.append(op)
    return replace(g, ops=tuple(ops))


# Which input elements each op kind connects to, given the op: the emitted hardware reads
# exactly these (a Dense module only the columns of its terms, a Max module its windows'
# members, an elementwise Requant or Threshold module every element).
_READS: dict[type[Op], Callable[[Op, int], set[int]]] = {
    Dense: lambda op, n: {c for r in op.rows for c in r.cols},  # type: ignore[attr-defined]
    Max: lambda op, n: {j for grp in op.groups for j in grp},  # type: ignore[attr-defined]
    Requant: lambda op, n: set(range(n)),
    Threshold: lambda op, n: set(range(n)),
}


def unread_inputs(g: Graph) -> dict[str, list[int]]:
    """Per Input op, the elements no op reads (the hardware leaves them unconnected).

    A Dense reads the columns its terms name, a Max its windows' members, and an elementwise
    Requant or Threshold every element.
    """
    out = {}
    for inp in g.inputs:
        read: set[int] = set()
        for op in g.consumers(inp.name):
            read |= _READS[type(op)](op, inp.size)
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
