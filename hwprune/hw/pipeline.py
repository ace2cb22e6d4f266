"""Register banks for a netlist given as a graph of nodes with adder levels.

A node at adder level L (inputs and constants at 0, a shift-add one above its deepest
operand, a shift at its operand's level) belongs to stage s, the first register bank whose
level is at least L (``schedule.stage_levels``). An operand made in an earlier stage than its
reader reaches it through one register per bank in between (shared by all its readers), and
every row's result reaches the last bank the same way.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import replace

from hwprune.hw.netlist import DenseNetlist, Node

_WIRES = ("const",)  # read as literals anywhere; never registered


def pipeline(
    op: str,
    kernel: str,
    cols: tuple[int, ...],
    nodes: list[Node],
    tops: list[Node],
    level: dict[str, int],
    per_stage: int,
    solve: str = "",
) -> DenseNetlist:
    from hwprune.hw.schedule import stage_levels

    depth = max((level[t.name] for t in tops), default=0)
    banks = stage_levels(depth, per_stage)
    by_name = {n.name: n for n in nodes}

    def stage(name: str) -> int:
        return bisect_left(banks, level[name])

    regs: dict[tuple[str, int], Node] = {}
    out: list[Node] = []  # in topological order: a register right before its first reader

    def delayed(name: str, upto: int) -> str:
        """``name`` as read in stage ``upto``: through registers of banks stage(name)..upto-1."""
        src = by_name[name]
        if src.kind in _WIRES:
            return name
        cur = name
        for k in range(stage(name), upto):
            key = (name, k)
            if key not in regs:
                r = Node(f"r{k}_{name}", "reg", src.range, src.tz, (cur,), row=src.row, stage=k)
                regs[key] = r
                out.append(r)
            cur = regs[key].name
        return cur

    for n in nodes:
        if n.kind in ("shiftadd", "shift", "add"):
            s = stage(n.name)
            n = replace(n, args=tuple(delayed(a, s) for a in n.args))
        out.append(n)
        by_name[n.name] = n
    top_names = tuple(delayed(t.name, len(banks) - 1) for t in tops)
    return DenseNetlist(op, kernel, cols, tuple(out), top_names, depth, banks, solve)
