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
from hwprune.hw.tree import depth_of, reduce_rows
from hwprune.ir.graph import Dense, IntRange, Value


def lower_mac_dsp(op: Dense, x: Value, per_stage: int) -> DenseNetlist:
    """``lower_mac`` with DSP multipliers for the weights that are not +-2^k."""
    return lower_mac(op, x, per_stage, dsp=True)


def lower_mac(op: Dense, x: Value, per_stage: int, dsp: bool = False) -> DenseNetlist:
    """The netlist of Dense ``op`` reading value ``x``: per row a balanced adder tree
    (``tree.reduce_rows``) over the bias and the products, a register bank every
    ``per_stage`` levels (0: only the last)."""
    from hwprune.hw.schedule import stage_levels

    nodes: list[Node] = []
    cur: list[list[Node]] = []
    # Per input element, weight -> (product range, known-zero bits), shared by the elements of
    # one range: a layer repeats a few (range, weight) pairs thousands of times.
    by_range: dict[IntRange, dict[int, tuple[IntRange, int]]] = {}
    col_products = [by_range.setdefault(r, {}) for r in x.ranges]
    for i, row in enumerate(op.rows):
        opnds: list[Node] = []
        if row.bias != 0:
            b = IntRange(row.bias, row.bias)
            c0 = Node(f"b_{i}", "const", b, trailing_zeros(row.bias), value=row.bias, row=i)
            nodes.append(c0)
            opnds.append(c0)
        for k, (c, w) in enumerate(zip(row.cols, row.weights, strict=True)):
            kind = "mult" if dsp and abs(w) & (abs(w) - 1) else "product"
            known = col_products[c]
            pk = known.get(w)
            if pk is None:
                pk = known[w] = (x.ranges[c].scaled(w), trailing_zeros(w))
            opnds.append(Node(f"p_{i}_{k}", kind, pk[0], pk[1], (), c, w, i))
        if not opnds:  # a row with no terms and zero bias is the constant 0
            opnds.append(Node(f"b_{i}", "const", IntRange(0, 0), row=i))
        nodes += opnds  # the row's nodes, in order
        cur.append(opnds)
    depth = max((depth_of(len(o)) for o in cur), default=0)
    banks = stage_levels(depth, per_stage)

    # The ranges of the sums, one object per distinct range: sums of the few (range, weight)
    # pairs repeat, and a shared range's width is worked out once (IntRange.bits is cached).
    sums: dict[tuple[int, int], IntRange] = {}
    sum_of = sums.get

    def add(i: int, level: int, k: int, a: Node, b: Node) -> Node:
        ra, rb = a.range, b.range
        lo, hi = ra.lo + rb.lo, ra.hi + rb.hi
        rng = sum_of((lo, hi))
        if rng is None:
            rng = sums[lo, hi] = IntRange(lo, hi)
        ta, tb = a.tz, b.tz
        # positional: Node's fields in order (name ... row)
        return Node(
            f"s_{i}_{level}_{k}", "add", rng, ta if ta < tb else tb, (a.name, b.name), -1, 0, i
        )

    tops = reduce_rows(nodes, cur, banks, add)
    return DenseNetlist(
        op.name,
        "mac-dsp" if dsp else "mac",
        tuple(sorted({c for row in op.rows for c in row.cols})),
        tuple(nodes),
        tuple(t.name for t in tops),
        depth,
        banks,
    )
