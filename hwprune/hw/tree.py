"""Balanced trees over each row's operands, with register banks: the one tree builder of the
``mac`` kernels, Max and Threshold layers.

Level k+1 of a row's tree combines operands 2i and 2i+1 of level k; an odd last operand
passes through. After each level of ``banks`` but the last, every row's operands of that
level are registered in bank s (nodes ``r<s>_<row>_<j>``); the caller registers each row's
top in the final bank.
"""

from __future__ import annotations

from collections.abc import Callable

from hwprune.hw.netlist import Node

# (row, level, index in level, a, b) -> the node combining a and b
Combine = Callable[[int, int, int, Node, Node], Node]


def depth_of(n_operands: int) -> int:
    """Adder levels of a balanced tree over ``n_operands`` (0 for one)."""
    return max(0, (n_operands - 1).bit_length())


def reduce_rows(
    nodes: list[Node], rows: list[list[Node]], banks: tuple[int, ...], combine: Combine
) -> list[Node]:
    """Reduce each row's level-0 operands ``rows[i]`` to one node, appending every node made
    (combinations and registers) to ``nodes`` in emission order; returns each row's top."""
    cur = [list(r) for r in rows]
    level = 0
    for st, stop in enumerate(banks):
        while level < stop:
            level += 1
            for i, opnds in enumerate(cur):
                if len(opnds) == 1:
                    continue
                # operands 2k and 2k + 1 (zip drops an odd last one)
                pairs = zip(opnds[::2], opnds[1::2])
                nxt = [combine(i, level, k, a, b) for k, (a, b) in enumerate(pairs)]
                nodes += nxt
                if len(opnds) % 2:
                    nxt.append(opnds[-1])
                cur[i] = nxt
        if stop < banks[-1]:
            for i, opnds in enumerate(cur):
                banked = [
                    Node(f"r{st}_{i}_{j}", "reg", src.range, src.tz, (src.name,), row=i, stage=st)
                    for j, src in enumerate(opnds)
                ]
                nodes += banked
                cur[i] = banked
    return [opnds[0] for opnds in cur]
