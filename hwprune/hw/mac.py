"""The ``mac`` kernel: per row, one constant product per nonzero weight (CSD shift-and-add;
a weight of +-2^k is wiring) and the bias, summed by a balanced adder tree with a register
bank every ``LEVELS_PER_STAGE`` levels.

``mac-dsp`` is the same tree with every product by a weight that is not +-2^k written as one
multiplier marked for a DSP slice (``mult`` nodes; Vivado's ``use_dsp`` attribute, and
yosys' synth_xilinx maps such a multiply to a DSP48E1 by default): one DSP per such weight,
no LUT for the product.

Zero removal, restated for this kernel: a product node exists exactly for each nonzero
weight of the IR (which stores nonzero terms only), so the layer's product terms equal its
nonzero weights and no zero weight contributes an operator.
"""

from __future__ import annotations

from hwprune.hw.csd import trailing_zeros
from hwprune.hw.netlist import DenseNetlist, Node
from hwprune.ir.graph import Dense, IntRange, Value


def _depth(n_operands: int) -> int:
    return max(0, (n_operands - 1).bit_length())


def lower_mac_dsp(op: Dense, x: Value, per_stage: int) -> DenseNetlist:
    """``lower_mac`` with DSP multipliers for the weights that are not +-2^k."""
    return lower_mac(op, x, per_stage, dsp=True)


def lower_mac(op: Dense, x: Value, per_stage: int, dsp: bool = False) -> DenseNetlist:
    """The netlist of Dense ``op`` reading value ``x``. Level k+1 of a row's tree adds
    operands 2i and 2i+1 of level k; an odd last operand passes through; a register bank
    closes every ``per_stage`` levels (0: only the last)."""
    from hwprune.hw.schedule import stage_levels

    nodes: list[Node] = []
    cur: list[list[Node]] = []
    for i, row in enumerate(op.rows):
        opnds: list[Node] = []
        if row.bias != 0:
            b = IntRange(row.bias, row.bias)
            c0 = Node(f"b_{i}", "const", b, trailing_zeros(row.bias), value=row.bias, row=i)
            nodes.append(c0)
            opnds.append(c0)
        for k, (c, w) in enumerate(zip(row.cols, row.weights, strict=True)):
            kind = "mult" if dsp and abs(w) & (abs(w) - 1) else "product"
            p = Node(f"p_{i}_{k}", kind, x.ranges[c].scaled(w), trailing_zeros(w), (), c, w, i)
            nodes.append(p)
            opnds.append(p)
        if not opnds:  # a row with no terms and zero bias is the constant 0
            zero = Node(f"b_{i}", "const", IntRange(0, 0), row=i)
            nodes.append(zero)
            opnds.append(zero)
        cur.append(opnds)
    depth = max((_depth(len(o)) for o in cur), default=0)
    banks = stage_levels(depth, per_stage)
    level = 0
    for st, stop in enumerate(banks):
        while level < stop:
            level += 1
            for i, opnds in enumerate(cur):
                if len(opnds) == 1:
                    continue
                nxt = []
                for j in range(0, len(opnds) - 1, 2):
                    a, b = opnds[j], opnds[j + 1]
                    s = Node(
                        f"s_{i}_{level}_{j // 2}",
                        "add",
                        a.range + b.range,
                        min(a.tz, b.tz),
                        (a.name, b.name),
                        row=i,
                    )
                    nodes.append(s)
                    nxt.append(s)
                if len(opnds) % 2:
                    nxt.append(opnds[-1])
                cur[i] = nxt
        if stop < depth:
            for i, opnds in enumerate(cur):
                banked = []
                for j, src in enumerate(opnds):
                    name = f"r{st}_{i}_{j}"
                    r = Node(name, "reg", src.range, src.tz, (src.name,), row=i, stage=st)
                    nodes.append(r)
                    banked.append(r)
                cur[i] = banked
    return DenseNetlist(
        op.name,
        "mac-dsp" if dsp else "mac",
        tuple(sorted({c for row in op.rows for c in row.cols})),
        tuple(nodes),
        tuple(opnds[0].name for opnds in cur),
        depth,
        banks,
    )
