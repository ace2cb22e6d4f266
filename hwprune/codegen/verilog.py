"""The Verilog emitter: a fully pipelined, II = 1 datapath that follows ``hw.schedule`` exactly.

One module per layer (a Dense with its fused Requant, a lone Requant, a Max or a Threshold) and
a top that chains them, carries ``valid`` through a shift register and exposes every layer's
output register as ``<layer>_q`` so a testbench can say which layer went wrong first.

Arithmetic is done in signed wires whose widths come from the exact ranges the schedule uses,
so nothing can overflow; registers hold exactly ``range.bits`` bits (unsigned when the range
has no negative value) so that the flip-flop count is the schedule's ``sum(Stage.reg_bits)``.
Every product is one line: the input shifted and added by the canonical signed digits (CSD)
of its weight, with the weight repeated in a trailing comment,

    wire signed [13:0] p_<row>_<k> = -((x_<col> <<< 4) + x_<col>); // w=-17

one per nonzero weight and none for zero weights. The expression is the hardware; the comment
only lets ``count_product_terms`` (and a reader) see the weight, and a test corrupts the
expression to prove that the testbench fails. Shift-and-add is what the estimator costs
(``estimate.costs.const_mult_luts``); yosys maps it to LUTs and carry chains, where it made
``x * W`` an array multiplier, or by default a DSP for every weight but x1/x2/x4 (DESIGN.md,
"How yosys treats constant multiplies"), while the estimator counts no DSP.

A Max layer is a tree of signed compares, one line per node, ``m_<out>_<level>_<k> = (a > b)
? a : b``; a Threshold layer compares each element with every threshold its range does not
decide, ``c_<elem>_<k> = x_<elem> >= <t>; // t=<t>``, counts the bits with an adder tree and
registers ``base + step * count`` (both follow ``hw.schedule``). They have no product terms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from hwprune.errors import HwpruneError
from hwprune.hw.csd import csd_digits
from hwprune.hw.kernels import lower_dense
from hwprune.hw.schedule import (
    LayerSchedule,
    max_range,
    schedule,
    threshold_split,
)
from hwprune.ir.graph import (
    KIND_OF,
    Dense,
    Graph,
    Input,
    IntRange,
    Max,
    Op,
    Requant,
    Rounding,
    Threshold,
    Value,
    shift_round,
)
from hwprune.resources import banner

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Verilog-2005 keywords (IEEE 1364-2005, Annex B), plus the SystemVerilog ones a top name
# might hit: simulators such as cocotb's Icarus build parse the sources as SystemVerilog.
_KEYWORDS = frozenset(
    """always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config
    deassign default defparam design disable edge else end endcase endconfig endfunction
    endgenerate endmodule endprimitive endspecify endtable endtask event for force forever fork
    function generate genvar highz0 highz1 if ifnone incdir include initial inout input instance
    integer join large liblist library localparam macromodule medium module nand negedge nmos
    nor noshowcancelled not notif0 notif1 or output parameter pmos posedge primitive pull0 pull1
    pulldown pullup pulsestyle_ondetect pulsestyle_onevent rcmos real realtime reg release
    repeat rnmos rpmos rtran rtranif0 rtranif1 scalared showcancelled signed small specify
    specparam strong0 strong1 supply0 supply1 table task time tran tranif0 tranif1 tri tri0 tri1
    triand trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor xnor xor
    bit byte class do enum export final import int interface logic longint package program
    return shortint static string struct type typedef union var virtual void""".split()
)
# A product line: the wire, a shift-and-add of one input (negated or not), the weight in a
# trailing comment.
_TERM = r"(?:x_\d+|\(x_\d+ <<< \d+\))"
_SUM = rf"-?{_TERM}(?: [+-] {_TERM})*"
_PRODUCT = re.compile(
    rf"^\s*wire signed \[\d+:0\] p_\d+_\d+ = (?:x_\d+ <<< \d+|{_SUM}|-?\({_SUM}\));"
    r" // w=-?\d+$",
    re.MULTILINE,
)
_MARKER = re.compile(r"^\s*// hwprune layer (.*)$", re.MULTILINE)
_MODULE = re.compile(r"^module\b.*?^endmodule\b", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Layer:
    """One pipelined layer of the emitted design.

    ``value`` is the op whose output the layer's final register holds (the fused Requant when
    there is one); ``signal`` is the top-level wire exposing that register; ``end_cycle`` is
    the number of clock edges from a vector's capture at the top input to its value appearing
    in that register.
    """

    label: str
    dense: str | None
    requant: str | None
    input: str
    value: str
    module: str
    signal: str
    cycles: int
    end_cycle: int


def layers(g: Graph, top: str = "hwprune_top") -> tuple[Layer, ...]:
    """The layers of a chain graph in pipeline order, with module and probe names.

    Raises HwpruneError when the graph is not a single-input, single-output chain (the only
    shape whose latency ``schedule.latency_cycles`` describes).
    """
    _check_top(top)
    (inp,) = _chain_input(g)
    by_name = {op.name: op for op in g.ops}
    out: list[Layer] = []
    used_modules: set[str] = {top}
    used_signals: set[str] = set()
    prev, cycle = inp.name, 0
    for ls in schedule(g):
        op = by_name[ls.op]
        if op.inputs != (prev,):
            raise HwpruneError(
                f"op {op.name!r} reads {list(op.inputs)}, not the previous layer {prev!r}: "
                "the Verilog emitter handles chains only; linearise the graph first"
            )
        dense = op.name if isinstance(op, Dense) else None
        if dense is not None:
            requant = ls.fused
        else:
            requant = op.name if isinstance(op, Requant) else None
        value = requant if requant is not None else op.name
        label = f"{dense}+{requant}" if dense is not None and requant is not None else op.name
        stem = _sanitise(dense if dense is not None else op.name)
        module = _unique(f"{top}_{stem}", used_modules)
        signal = _unique(f"{stem}_q" if not stem[0].isdigit() else f"l{stem}_q", used_signals)
        cycle += ls.cycles
        out.append(Layer(label, dense, requant, prev, value, module, signal, ls.cycles, cycle))
        prev = value
    if not out:
        raise HwpruneError("the graph has no op besides its input: there is no hardware to emit")
    if g.outputs != (prev,):
        raise HwpruneError(
            f"graph outputs {list(g.outputs)} are not the end of the chain {prev!r}; "
            "remove dead ops (or give the graph one output) before emitting Verilog"
        )
    return tuple(out)


def emit_verilog(g: Graph, top: str = "hwprune_top") -> dict[str, str]:
    """Verilog-2005 for graph ``g``: ``{filename: text}``, one file per module, deterministic.

    The top ``{top}`` has ports clk, rst (synchronous, active high), in_valid, in_data,
    out_valid, out_data; element i of a bus sits at bits [i*W +: W] with W the value's
    ``range.bits`` (two's complement when the range is signed). Latency is exactly
    ``schedule.latency_cycles(g)`` and a new vector is accepted every cycle.
    """
    lays = layers(g, top)
    scheds = {ls.op: ls for ls in schedule(g)}
    files: dict[str, str] = {}
    for lay in lays:
        op = g.op(lay.dense if lay.dense is not None else lay.value)
        body = MODULE_EMITTERS[type(op)](g, lay, scheds[op.name])
        files[f"{lay.module}.v"] = _file(body)
    files[f"{top}.v"] = _file(_top_module(g, lays, top))
    return files


def count_product_terms(text: str) -> dict[str, int]:
    """Per Dense op name, the number of product-term lines in emitted Verilog ``text``.

    ``text`` may hold any number of modules (e.g. all emitted files joined). Layers are found
    through their ``// hwprune layer`` marker, so a Dense with no nonzero weight counts 0.
    """
    counts: dict[str, int] = {}
    for module in _MODULE.findall(text):
        marker = _MARKER.search(module)
        if marker is None:
            continue
        dense = json.loads(marker.group(1)).get("dense")
        if dense is not None:
            counts[dense] = counts.get(dense, 0) + len(_PRODUCT.findall(module))
    return counts


# --- names --------------------------------------------------------------------------------


def _check_top(top: str) -> None:
    if not _IDENT.fullmatch(top) or top in _KEYWORDS:
        raise HwpruneError(
            f"top module name {top!r} is not a Verilog identifier; use letters, digits and _ "
            "starting with a letter (e.g. hwprune_top)"
        )


def _chain_input(g: Graph) -> tuple[Input]:
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise HwpruneError(
            f"the Verilog emitter needs one input and one output; the graph has "
            f"{len(g.inputs)} inputs and {len(g.outputs)} outputs"
        )
    return (g.inputs[0],)


def _sanitise(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s or "_"


def _unique(name: str, used: set[str]) -> str:
    out, n = name, 2
    while out in used:
        out, n = f"{name}_{n}", n + 1
    used.add(out)
    return out


# --- arithmetic helpers -------------------------------------------------------------------


def _sbits(r: IntRange) -> int:
    """Width of a two's-complement wire holding r (one more than ``bits`` if r is unsigned)."""
    return r.bits if r.signed else r.bits + 1


def _lit(v: int) -> str:
    # Sized so that the magnitude is positive as a signed literal before the unary minus:
    # -8'sd128 would sign-extend 8'sd128 (= -128) in a wider context and negate it to +128.
    mag = abs(v)
    text = f"{mag.bit_length() + 1}'sd{mag}"
    return f"-{text}" if v < 0 else text


def _product_expr(x: str, w: int) -> str:
    """``x * w`` (w != 0) as shift-and-add over the CSD digits of |w|, most significant first,
    negated as a whole when w < 0: ``-((x <<< 4) + x)`` for -17.

    The expression is evaluated in the width of the wire it is assigned to (at least that of
    the product's exact range), so an intermediate sum may wrap around, yet the result is
    exact: two's-complement adds, subtracts and shifts are exact modulo 2**width, and the
    final product fits. The negation goes last because that measured cheapest: yosys can
    then merge it into the adder tree that reads the product (as the estimator assumes);
    leading with a positive digit (``x - (x <<< 3)`` for -7) or negating the first digit
    cost 4-8 % more LUTs (yosys 0.23 ``synth_xilinx -nodsp -flatten``, the flow of
    benchmarks/estimate_vs_yosys.py, on its 16-12-8-5 and 64-64-32-10 s0.95 graphs).
    """
    digits = sorted(csd_digits(abs(w)), reverse=True)

    def shifted(p: int) -> str:
        return x if p == 0 else f"({x} <<< {p})"

    if len(digits) == 1:
        ((p0, _),) = digits
        if w > 0:
            return x if p0 == 0 else f"{x} <<< {p0}"
        return f"-{shifted(p0)}"
    expr = shifted(digits[0][0])  # the most significant CSD digit of |w| is always +1
    for p, d in digits[1:]:
        expr += f" {'+' if d > 0 else '-'} {shifted(p)}"
    return expr if w > 0 else f"-({expr})"


def _sel(bus: str, i: int, width: int) -> str:
    return f"{bus}[{(i + 1) * width - 1}:{i * width}]"


def _as_signed(expr: str, signed: bool) -> str:
    """``expr`` read as a signed operand; unsigned values get a zero bit on top first."""
    return f"$signed({expr})" if signed else f"$signed({{1'b0, {expr}}})"


def _reg_decl(name: str, r: IntRange) -> str:
    sign = "signed " if r.signed else ""
    return f"    reg {sign}[{r.bits - 1}:0] {name};"


def _reg_read(name: str, r: IntRange) -> str:
    return name if r.signed else f"$signed({{1'b0, {name}}})"


def _extend(name: str, r: IntRange, width: int) -> str:
    """A register of r.bits bits widened to a bus element of ``width`` bits."""
    pad = width - r.bits
    if pad == 0:
        return name
    if pad < 0:
        # IntRange.bits gives a one-point range [-2^k, -2^k] a bit more than it needs (5 for
        # [-8, -8]), so its register can be wider than the bus element; the value fits the
        # bus's width, and its low bits are its two's complement there.
        return f"{name}[{width - 1}:0]"
    fill = f"{name}[{r.bits - 1}]" if r.signed else "1'b0"
    return f"{{{{{pad}{{{fill}}}}}, {name}}}"


def _requant(rq: Requant, src: str, r: IntRange, tag: str) -> tuple[list[str], str, IntRange]:
    """Lines computing clip(round(src * 2**-shift)) for a signed wire ``src`` in range r.

    Returns the lines, the name of the signed result wire and its exact range.
    """
    lines: list[str] = []
    w = _sbits(r)
    if rq.shift <= 0:
        k = -rq.shift
        r1 = IntRange(r.lo << k, r.hi << k)
        # The wider left-hand side sign-extends src before the shift, so no bit is lost.
        expr = src if k == 0 else f"{src} <<< {k}"
    else:
        s = rq.shift
        r1 = IntRange(shift_round(r.lo, s, rq.rounding), shift_round(r.hi, s, rq.rounding))
        if rq.rounding is Rounding.FLOOR:
            expr = f"{src} >>> {s}"
        else:
            # Round half to even: add 1 to the floor when the dropped bits exceed one half,
            # or equal it and the floor is odd (graph.shift_round).
            e = max(w, s + 1)
            fl = IntRange(r.lo >> s, r.hi >> s)
            half = 1 << (s - 1)
            lines += [
                f"    wire signed [{e - 1}:0] {tag}_e = {src};",
                f"    wire signed [{_sbits(fl) - 1}:0] {tag}_f = {tag}_e >>> {s};",
                f"    wire {tag}_up = ({tag}_e[{s - 1}:0] > {s}'d{half})"
                f" || ({tag}_e[{s - 1}:0] == {s}'d{half} && {tag}_f[0]);",
            ]
            expr = f"{tag}_f + $signed({{1'b0, {tag}_up}})"
    lines.append(f"    wire signed [{_sbits(r1) - 1}:0] {tag}_r = {expr};")
    v = f"{tag}_r"
    if r1.hi > rq.hi:
        v = f"({tag}_r > {_lit(rq.hi)}) ? {_lit(rq.hi)} : {v}"
    if r1.lo < rq.lo:
        v = f"({tag}_r < {_lit(rq.lo)}) ? {_lit(rq.lo)} : ({v})"
    out = IntRange(min(max(r1.lo, rq.lo), rq.hi), min(max(r1.hi, rq.lo), rq.hi))
    lines.append(f"    wire signed [{_sbits(out) - 1}:0] {tag}_c = {v};")
    return lines, f"{tag}_c", out


# --- modules ------------------------------------------------------------------------------


def _file(body: str) -> str:
    # default_nettype none catches typos in generated names; it is reset at the end so that
    # files compiled after ours (a simulator's own helpers) keep the standard default.
    return (
        banner("//")
        + "`timescale 1ns / 1ps\n`default_nettype none\n\n"
        + body
        + "\n`default_nettype wire\n"
    )


def _comment(text: str) -> str:
    # Op names come from user models: a line break in one must not end the comment.
    return "// " + " ".join(text.splitlines())


def _header(lay: Layer, in_width: int, out_width: int, kind: str | None = None) -> list[str]:
    fields: dict[str, str | None] = {"dense": lay.dense, "requant": lay.requant}
    if kind is not None:
        fields[kind] = lay.value
    marker = json.dumps(fields, sort_keys=True)
    return [
        _comment(f"Layer {lay.label}: {lay.input} -> {lay.value}, {lay.cycles} cycle(s)."),
        f"module {lay.module} (",
        "    input wire clk,",
        f"    input wire [{in_width - 1}:0] x,",
        f"    output wire [{out_width - 1}:0] y",
        ");",
        f"    // hwprune layer {marker}",
    ]


def _dense_module(g: Graph, lay: Layer, ls: LayerSchedule) -> str:
    """A Dense layer as its kernel lowered it (``hw.kernels.lower_dense``): one wire per
    product and adder node, one register per register node, the final bank after a fused
    Requant."""
    op = g.op(lay.dense)
    assert isinstance(op, Dense)
    net = lower_dense(g, op)
    assert net.depth == ls.depth, "netlist and schedule disagree"
    xv = g.values[op.inputs[0]]
    yv = g.values[lay.value]
    wi, wo = xv.range.bits, yv.range.bits
    rq = g.op(lay.requant) if lay.requant is not None else None
    lines = _header(lay, xv.size * wi, yv.size * wo)
    for c in net.cols:
        src = _as_signed(_sel("x", c, wi), xv.range.signed)
        lines.append(f"    wire signed [{_sbits(xv.range) - 1}:0] x_{c} = {src};")

    def read(name: str) -> str:
        n = net.by_name[name]
        if n.kind == "const":
            return _lit(n.value)
        return _reg_read(n.name, n.range) if n.kind == "reg" else n.name

    regs: list[str] = []
    assigns: list[str] = []
    for n in net.nodes:
        width = f"[{_sbits(n.range) - 1}:0]"
        if n.kind == "product":
            expr = _product_expr(f"x_{n.col}", n.value)
            lines.append(f"    wire signed {width} {n.name} = {expr}; // w={n.value}")
        elif n.kind == "add":
            lines.append(
                f"    wire signed {width} {n.name} = {read(n.args[0])} + {read(n.args[1])};"
            )
        elif n.kind == "reg":
            regs.append(_reg_decl(n.name, n.range))
            assigns.append(f"        {n.name} <= {read(n.args[0])};")
    for i, top in enumerate(net.tops):
        expr, r = read(top), net.by_name[top].range
        if rq is not None:
            assert isinstance(rq, Requant)
            rl, expr, r = _requant(rq, expr, r, f"rq_{i}")
            lines += rl
        if r != yv.ranges[i]:
            raise AssertionError(f"{lay.label} row {i}: range {r} != {yv.ranges[i]}")
        regs.append(_reg_decl(f"q_{i}", r))
        assigns.append(f"        q_{i} <= {expr};")
    return _finish_module(lines, regs, assigns, yv, wo)


# A tree operand: (signed expression, exact range). A node maker takes (element, level,
# index in level, operand a, operand b) and returns (wire line, wire name, range).
Operand = tuple[str, IntRange]
NodeMaker = Callable[[int, int, int, Operand, Operand], tuple[str, str, IntRange]]


def _adder(prefix: str) -> NodeMaker:
    def node(i: int, level: int, k: int, a: Operand, b: Operand) -> tuple[str, str, IntRange]:
        r = a[1] + b[1]
        name = f"{prefix}_{i}_{level}_{k}"
        return f"    wire signed [{_sbits(r) - 1}:0] {name} = {a[0]} + {b[0]};", name, r

    return node


def _max_node(i: int, level: int, k: int, a: Operand, b: Operand) -> tuple[str, str, IntRange]:
    # Both operands are signed, so the compare is signed and the mux sign-extends.
    r = max_range(a[1], b[1])
    name = f"m_{i}_{level}_{k}"
    line = f"    wire signed [{_sbits(r) - 1}:0] {name} = ({a[0]} > {b[0]}) ? {a[0]} : {b[0]};"
    return line, name, r


def _bank_levels(ls: LayerSchedule) -> tuple[int, ...]:
    return tuple(s.level for s in ls.stages)


def _pipelined_tree(
    lines: list[str],
    regs: list[str],
    assigns: list[str],
    cur: list[list[Operand]],
    banks: tuple[int, ...],
    node: NodeMaker,
) -> list[Operand]:
    """Reduce each element's level-0 operands ``cur[i]`` by a balanced tree of ``node``s,
    closing a register bank after every adder level of ``banks`` but the last (the layer
    schedule's ``Stage.level``s).

    Appends wires to ``lines`` and the intermediate banks to ``regs`` / ``assigns``; returns
    each element's top operand, which the caller registers (``hw.schedule`` pairs operands
    and places banks the same way).
    """
    level = 0
    for st, stop in enumerate(banks):
        while level < stop:
            level += 1
            for i, opnds in enumerate(cur):
                if len(opnds) == 1:
                    continue
                nxt = []
                for j in range(0, len(opnds) - 1, 2):
                    line, name, r = node(i, level, j // 2, opnds[j], opnds[j + 1])
                    lines.append(line)
                    nxt.append((name, r))
                if len(opnds) % 2:
                    nxt.append(opnds[-1])
                cur[i] = nxt
        if stop < banks[-1]:
            for i, opnds in enumerate(cur):
                banked = []
                for j, (expr, r) in enumerate(opnds):
                    name = f"r{st}_{i}_{j}"
                    regs.append(_reg_decl(name, r))
                    assigns.append(f"        {name} <= {expr};")
                    banked.append((_reg_read(name, r), r))
                cur[i] = banked
    return [opnds[0] for opnds in cur]


def _requant_module(g: Graph, lay: Layer, ls: LayerSchedule) -> str:
    rq = g.op(lay.value)
    assert isinstance(rq, Requant)
    xv, yv = g.values[lay.input], g.values[lay.value]
    wi, wo = xv.range.bits, yv.range.bits
    lines = _header(lay, xv.size * wi, yv.size * wo)
    regs: list[str] = []
    assigns: list[str] = []
    for i, r in enumerate(xv.ranges):
        src = _as_signed(_sel("x", i, wi), xv.range.signed)
        lines.append(f"    wire signed [{_sbits(r) - 1}:0] a_{i} = {src};")
        rl, expr, out = _requant(rq, f"a_{i}", r, f"rq_{i}")
        if out != yv.ranges[i]:
            raise AssertionError(f"{lay.label} element {i}: range {out} != {yv.ranges[i]}")
        lines += rl
        regs.append(_reg_decl(f"q_{i}", out))
        assigns.append(f"        q_{i} <= {expr};")
    return _finish_module(lines, regs, assigns, yv, wo)


def _input_wires(lines: list[str], xv: Value, wi: int, used: list[int]) -> None:
    """One signed wire ``x_<j>`` per used input element, as narrow as its own range."""
    for j in used:
        src = _as_signed(_sel("x", j, wi), xv.range.signed)
        lines.append(f"    wire signed [{_sbits(xv.ranges[j]) - 1}:0] x_{j} = {src};")


def _max_module(g: Graph, lay: Layer, ls: LayerSchedule) -> str:
    op = g.op(lay.value)
    assert isinstance(op, Max)
    xv, yv = g.values[lay.input], g.values[lay.value]
    wi, wo = xv.range.bits, yv.range.bits
    lines = _header(lay, xv.size * wi, yv.size * wo, KIND_OF[Max])
    _input_wires(lines, xv, wi, sorted({j for grp in op.groups for j in grp}))
    cur: list[list[Operand]] = [[(f"x_{j}", xv.ranges[j]) for j in grp] for grp in op.groups]
    regs: list[str] = []
    assigns: list[str] = []
    top = _pipelined_tree(lines, regs, assigns, cur, _bank_levels(ls), _max_node)
    for i, (expr, r) in enumerate(top):
        if r != yv.ranges[i]:
            raise AssertionError(f"{lay.label} output {i}: range {r} != {yv.ranges[i]}")
        regs.append(_reg_decl(f"q_{i}", r))
        assigns.append(f"        q_{i} <= {expr};")
    return _finish_module(lines, regs, assigns, yv, wo)


def _threshold_module(g: Graph, lay: Layer, ls: LayerSchedule) -> str:
    op = g.op(lay.value)
    assert isinstance(op, Threshold)
    xv, yv = g.values[lay.input], g.values[lay.value]
    wi, wo = xv.range.bits, yv.range.bits
    lines = _header(lay, xv.size * wi, yv.size * wo, KIND_OF[Threshold])
    splits = [threshold_split(ts, r) for ts, r in zip(op.thresholds, xv.ranges, strict=True)]
    _input_wires(lines, xv, wi, [i for i, (_, ts) in enumerate(splits) if ts])
    cur: list[list[Operand]] = []
    for i, (_, compared) in enumerate(splits):
        opnds: list[Operand] = []
        for k, t in enumerate(compared):
            # The threshold is repeated in a comment for readers (and for a test that
            # corrupts the constant); the expression is the hardware.
            lines.append(f"    wire c_{i}_{k} = x_{i} >= {_lit(t)}; // t={t}")
            opnds.append((f"$signed({{1'b0, c_{i}_{k}}})", IntRange(0, 1)))
        cur.append(opnds or [(_lit(0), IntRange(0, 0))])
    regs: list[str] = []
    assigns: list[str] = []
    top = _pipelined_tree(lines, regs, assigns, cur, _bank_levels(ls), _adder("n"))
    for i, ((expr, r), (always, _)) in enumerate(zip(top, splits, strict=True)):
        # y = base + step * (always + count) = offset + step * count
        offset = op.base + op.step * always
        y = IntRange(offset + op.step * r.lo, offset + op.step * r.hi)
        if r.lo == r.hi:
            value = _lit(y.lo)
        else:
            lines.append(f"    wire signed [{_sbits(r) - 1}:0] t_{i}_n = {expr};")
            prod = _product_expr(f"t_{i}_n", op.step)
            # Parenthesised: <<< binds looser than +.
            total = f"{_lit(offset)} + ({prod})" if offset != 0 else prod
            lines.append(f"    wire signed [{_sbits(y) - 1}:0] t_{i}_y = {total};")
            value = f"t_{i}_y"
        if y != yv.ranges[i]:
            raise AssertionError(f"{lay.label} element {i}: range {y} != {yv.ranges[i]}")
        regs.append(_reg_decl(f"q_{i}", y))
        assigns.append(f"        q_{i} <= {value};")
    return _finish_module(lines, regs, assigns, yv, wo)


def _finish_module(
    lines: list[str], regs: list[str], assigns: list[str], yv: Value, wo: int
) -> str:
    """Close a layer module: its output registers, the packed output bus, endmodule."""
    lines += _registers(regs, assigns)
    for i, r in enumerate(yv.ranges):
        lines.append(f"    assign {_sel('y', i, wo)} = {_extend(f'q_{i}', r, wo)};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _registers(regs: list[str], assigns: list[str]) -> list[str]:
    # Data registers have no reset: only ``valid`` needs one, and leaving them out keeps the
    # flip-flops plain (no reset mux) and the count equal to the schedule's.
    return [*regs, "    always @(posedge clk) begin", *assigns, "    end"]


# The table of layer-module emitters, keyed by the kind of the op a layer is named after (a
# Dense with its fused Requant is the Dense's). A test fails if an op kind of OP_KINDS other
# than Input lacks an entry.
MODULE_EMITTERS: dict[type[Op], Callable[[Graph, Layer, LayerSchedule], str]] = {
    Dense: _dense_module,
    Requant: _requant_module,
    Max: _max_module,
    Threshold: _threshold_module,
}


def _top_module(g: Graph, lays: tuple[Layer, ...], top: str) -> str:
    (inp,) = g.inputs
    xv, yv = g.values[inp.name], g.values[g.outputs[0]]
    n_in, n_out = xv.size * xv.range.bits, yv.size * yv.range.bits
    latency = sum(lay.cycles for lay in lays)
    lines = [
        f"// {top}: {len(lays)} layer(s), latency {latency} cycle(s), one vector per cycle.",
        f"module {top} (",
        "    input wire clk,",
        "    input wire rst,",
        "    input wire in_valid,",
        f"    input wire [{n_in - 1}:0] in_data,",
        "    output wire out_valid,",
        f"    output wire [{n_out - 1}:0] out_data",
        ");",
    ]
    prev = "in_data"
    for lay in lays:
        v = g.values[lay.value]
        lines += [
            f"    wire [{v.size * v.range.bits - 1}:0] {lay.signal};",
            f"    {lay.module} u_{lay.module} (.clk(clk), .x({prev}), .y({lay.signal}));",
        ]
        prev = lay.signal
    lines.append(f"    assign out_data = {prev};")
    shift = "in_valid" if latency == 1 else f"{{valid_pipe[{latency - 2}:0], in_valid}}"
    lines += [
        f"    reg [{latency - 1}:0] valid_pipe;",
        "    always @(posedge clk) begin",
        "        if (rst)",
        f"            valid_pipe <= {latency}'d0;",
        "        else",
        f"            valid_pipe <= {shift};",
        "    end",
        f"    assign out_valid = valid_pipe[{latency - 1}];",
    ]
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
