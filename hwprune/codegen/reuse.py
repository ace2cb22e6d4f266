"""Verilog of a stream stage's Dense shared over R cycles (``hw.reuse``): one module with
the ports of a layer module with a clock enable, plus ``phase`` (0 .. R-1, the stage's
count of the cycles it has spent on the current window).

Per row and slot: the element read is a mux on the phase (``xs_<row>_<slot>``), the weight a
constant table on it (``ws_<row>_<slot>``; its nonzero entries are the layer's product terms,
which ``codegen.verilog.count_product_terms`` counts), their product one multiplier
(synthesis maps it to a DSP slice or to LUTs by its width); the slots' products summed
(``s_<row>``), plus the accumulator from phase 1 on (``a_<row>``), the accumulator loaded
with it while the phase is not the last; in the last phase the sum plus the bias, through
the fused Requant, loads the output register ``q_<row>``. The stage holds the window for
the R phases, and ``q`` keeps its value until the next window's last phase.
"""

from __future__ import annotations

from hwprune.codegen.verilog import (
    Layer,
    _Body,
    _comment,
    _finish_module,
    _lit,
    _requant,
    _sbits,
)
from hwprune.hw.layers import requant_node
from hwprune.hw.netlist import Node
from hwprune.hw.reuse import SharedDense
from hwprune.ir.graph import Graph, IntRange


def phase_bits(reuse: int) -> int:
    return max(1, (reuse - 1).bit_length())


def _table(phase: str, pb: int, entries: list[str], default: str) -> str:
    """``entries[p]`` when ``phase`` is p, as a chain of conditionals (the last phase last)."""
    expr = entries[-1] if entries else default
    for p in reversed(range(len(entries) - 1)):
        expr = f"({phase} == {_lit(p, pb, False)}) ? {entries[p]} : {expr}"
    return expr


def shared_module(g: Graph, lay: Layer, sd: SharedDense, ce: bool = True) -> str:
    """The module of layer ``lay`` of ``g`` with its Dense shared as ``sd``; ``ce``: with a
    clock enable (a stream stage's kernel)."""
    import json

    xv, yv = g.values[lay.input], g.values[lay.value]
    dv = g.values[sd.op]
    wi, wo = xv.range.bits, yv.range.bits
    r, pb = sd.reuse, phase_bits(sd.reuse)
    marker = json.dumps({"dense": lay.dense, "requant": lay.requant}, sort_keys=True)
    m = _Body(
        [
            _comment(
                f"Layer {lay.label}: {lay.input} -> {lay.value}, shared over {r} cycles "
                f"({sd.multipliers} multipliers for {sd.n_terms} terms)."
            ),
            f"module {lay.module} (",
            "    input wire clk,",
            *(["    input wire ce,  // clock enable: the registers hold while it is low"] * ce),
            f"    input wire [{pb - 1}:0] phase,  // the cycle of the window: 0 .. {r - 1}",
            f"    input wire [{xv.size * wi - 1}:0] x,",
            f"    output wire [{yv.size * wo - 1}:0] y",
            ");",
            f"    // hwprune layer {marker}",
        ]
    )
    m.declare("x", xv.size * wi, signed=False)
    m.declare("phase", pb, signed=False)
    xw = _sbits(xv.range)
    cols = sorted({t[0] for row in sd.rows for s in row.slots for t in s if t is not None})
    xs = {c: m.wire(f"x_{c}", xw, m.element(xv, c, xw)) for c in cols}
    first = f"(phase == {_lit(0, pb, False)})"
    last = f"(phase == {_lit(r - 1, pb, False)})"
    m.use("phase", 0, pb - 1)
    for i, row in enumerate(sd.rows):
        if row.total != dv.ranges[i]:
            raise AssertionError(f"{sd.op} row {i}: range {row.total} != {dv.ranges[i]}")
        width = _sbits(row.acc)
        prods = []
        for j, slot in enumerate(row.slots):
            ww = max(_sbits(IntRange(t[1], t[1])) for t in slot if t is not None)
            xe = [m.fit(xs[t[0]], xw) if t is not None else _lit(0, xw) for t in slot]
            we = [_lit(t[1], ww) if t is not None else _lit(0, ww) for t in slot]
            xsel = m.wire(f"xs_{i}_{j}", xw, _table("phase", pb, xe, _lit(0, xw)))
            wsel = m.wire(f"ws_{i}_{j}", ww, _table("phase", pb, we, _lit(0, ww)))
            p = m.wire(f"p_{i}_{j}", xw + ww, f"{m.fit(xsel, xw)} * {m.fit(wsel, ww)}")
            prods.append(m.fit(p, width))
        s = m.wire(f"s_{i}", width, " + ".join(prods) if prods else _lit(0, width))
        acc = m.declare(f"acc_{i}", width)
        m.regs.append(f"    reg signed [{width - 1}:0] acc_{i};")
        a = m.wire(
            f"a_{i}", width, f"({first} ? {_lit(0, width)} : {m.fit(acc, width)}) + {s.name}"
        )
        m.assigns.append(f"        if (!{last}) acc_{i} <= {a.name};")
        tw = _sbits(row.total)
        tot = m.wire(f"t_{i}", tw, f"{m.fit(a, tw)} + {_lit(row.bias, tw)}")
        res = tot
        out_range = row.total
        if sd.fused is not None:
            node = requant_node(f"rq_{i}", Node(f"t_{i}", "add", row.total), sd.fused, i)
            res = _requant(m, node, tot, row.total)
            out_range = node.range
        if out_range != yv.ranges[i]:
            raise AssertionError(f"{lay.label} output {i}: range {out_range} != {yv.ranges[i]}")
        sign = "signed " if out_range.signed else ""
        m.regs.append(f"    reg {sign}[{out_range.bits - 1}:0] q_{i};")
        m.assigns.append(
            f"        if ({last}) q_{i} <= {m.fit(res, out_range.bits, out_range.signed)};"
        )
        m.declare(f"q_{i}", out_range.bits, out_range.signed)
    return _finish_module(m, yv, wo, ce=ce)
