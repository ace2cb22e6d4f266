"""The Verilog emitter: a fully pipelined, II = 1 datapath that follows ``hw.schedule`` exactly.

One module per layer (a Dense with its fused Requant, a lone Requant, a Max or a Threshold) and
a top that chains them, carries ``valid`` through a shift register and exposes every layer's
output register as ``<layer>_q`` so a testbench can say which layer went wrong first.

Arithmetic is done in signed wires whose widths come from the exact ranges the schedule uses,
so nothing can overflow; registers hold exactly ``range.bits`` bits (unsigned when the range
has no negative value) so that the flip-flop count is the schedule's ``sum(Stage.reg_bits)``.
Every product is one statement: the input shifted and added by the canonical signed digits
(CSD) of its weight, with the weight repeated in a trailing comment,

    p_<row>_<k> = -((x_<col> <<< 4) + x_<col>); // w=-17

in its layer's clocked block (``p_<row>_<k>`` is declared ``reg signed [13:0]``: a variable
written before it is read, so combinational logic; the block holds every stage, which
simulators evaluate once per clock edge). The input ``x_<col>``, say 9 bits signed, is
sign-extended to the 14 bits of the variable by Verilog's rules (every operand is signed; see
the arithmetic helpers), one line per nonzero weight and none for zero weights. The expression
is the hardware; the comment only lets ``count_product_terms`` (and a reader) see the weight,
and a test corrupts the expression to prove that the testbench fails. Shift-and-add is what
the estimator costs (``estimate.costs.const_mult_luts``); yosys maps it to LUTs and carry
chains, where it made ``x * W`` an array multiplier, or by default a DSP for every weight but
x1/x2/x4 (DESIGN.md, "How yosys treats constant multiplies"), while the estimator counts no
DSP.

A Max layer is a tree of signed compares, one line per node, ``m_<out>_<level>_<k> = (a > b)
? a : b``; a Threshold layer compares each element with every threshold its range does not
decide, ``c_<elem>_<k> = x_<elem> >= <t>; // t=<t>``, counts the bits with an adder tree and
registers ``base + step * count`` (both follow ``hw.schedule``). They have no product terms.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from hwprune.codegen.axis import axis_top_name, emit_axis_top
from hwprune.errors import HwpruneError
from hwprune.hw.csd import csd_digits
from hwprune.hw.layers import lower_layer
from hwprune.hw.netlist import LayerNetlist, Node
from hwprune.hw.reuse import input_hold, is_shared, layer_cycles, reuse_of, shared_layer
from hwprune.hw.schedule import LayerSchedule, schedule
from hwprune.ir.graph import (
    Dense,
    Graph,
    Input,
    IntRange,
    Requant,
    Rounding,
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
# trailing comment. The input as is (extended by Verilog's rules) or truncated.
_X = r"(?:x_\d+|\$signed\(x_\d+\[\d+:0\]\))"
_TERM = rf"(?:{_X}|\({_X} <<< \d+\))"
_SUM = rf"-?{_TERM}(?: [+-] {_TERM})*"
_MULT = rf"{_X} \* -?\d+'sd\d+"
_PRODUCT = re.compile(
    rf"^\s*p_\d+_\d+ = (?:{_X} <<< \d+|{_SUM}|-?\({_SUM}\)|{_MULT});"
    r" // w=-?\d+$",
    re.MULTILINE,
)
# A Dense shared over R cycles (codegen.reuse): a weight table per multiplier slot, whose
# nonzero entries are its terms.
_TABLE = re.compile(r"^\s*ws_\d+_\d+ = (.*);$", re.MULTILINE)
_ENTRY = re.compile(r"(?<![\w'])\d+'sd(\d+)")
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


def top_layers(g: Graph, top: str = "hwprune_top") -> tuple[Layer, ...]:
    """``layers`` of the plain top: after its input register when it has one (``hw.reuse``)."""
    return layers(g, top, input_hold(g))


def layers(g: Graph, top: str = "hwprune_top", start: int = 0) -> tuple[Layer, ...]:
    """The layers of a chain graph in pipeline order, with module and probe names; the
    first layer's input is valid ``start`` cycles after the chain's input.

    Raises HwpruneError when the graph is not a single-input, single-output chain (the only
    shape whose latency ``schedule.latency_cycles`` describes).
    """
    _check_top(top)
    (inp,) = _chain_input(g)
    by_name = {op.name: op for op in g.ops}
    out: list[Layer] = []
    used_modules: set[str] = {top}
    used_signals: set[str] = set()
    prev, cycle = inp.name, start
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
        cycles = layer_cycles(g, ls.op, ls.cycles)
        cycle += cycles
        out.append(Layer(label, dense, requant, prev, value, module, signal, cycles, cycle))
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
    ``schedule.latency_cycles(g)`` and a new vector is accepted every cycle. ``{top}_axis``
    wraps it in AXI4-Stream ports with back-pressure (``codegen.axis``).
    """
    lays = top_layers(g, top)
    files = {f"{lay.module}.v": text for lay, text in layer_modules(g, lays)}
    files[f"{top}.v"] = _file(_top_module(g, lays, top))
    latency = lays[-1].end_cycle
    files[f"{axis_top_name(top)}.v"] = _file(emit_axis_top(g, top, latency))
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
            shared = sum(
                1 for table in _TABLE.findall(module) for v in _ENTRY.findall(table) if int(v) != 0
            )
            counts[dense] = counts.get(dense, 0) + len(_PRODUCT.findall(module)) + shared
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
#
# Every operand is a signed expression no wider than its context, and Verilog's rules do the
# rest: in an expression whose operands are all signed, each is sign-extended to the width of
# the context (the assigned variable), so a narrower signed name is written as is; an unsigned
# one gets a zero bit on top, ``$signed({1'b0, x})``; a wider one is truncated by a part select,
# ``$signed(x[w-1:0])`` (exact: sums, differences, left shifts and negations are exact modulo
# 2**w, and every variable is as wide as its exact range); a literal is written signed at the
# context's width. One unsigned operand would make the whole expression unsigned and its
# narrower operands zero-extended, which is why every one is marked signed. Writing the
# extension out, ``$signed({{k{x[msb]}}, x})``, is lint-clean but costs a simulator a
# replication and a concatenation per operand per cycle (Icarus 30 % slower on the default
# job), so Verilator's WIDTHEXPAND is waived in layer modules (LINT_WAIVED); every other width
# warning stays on. Bits no expression reads are collected per module into one wire matching
# Verilator's default unused-signal pattern (``*unused*``, the documented idiom
# ``wire _unused_ok = &{1'b0, x, 1'b0};``), so UNUSEDSIGNAL stays quiet without a pragma.


def _sbits(r: IntRange) -> int:
    """Width of a two's-complement wire holding r (one more than ``bits`` if r is unsigned)."""
    return r.bits if r.signed else r.bits + 1


def _lit(v: int, width: int, signed: bool = True) -> str:
    """Integer ``v`` as a literal of exactly ``width`` bits (modulo 2**width).

    A signed negative value is written as the negation of a positive literal, ``-8'sd5``;
    the negation is done at the literal's own width, so the result is the two's complement.
    """
    u = v % (1 << width)
    if not signed:
        return f"{width}'d{u}"
    s = u - (1 << width) if u >> (width - 1) else u
    return f"{width}'sd{s}" if s >= 0 else f"-{width}'sd{-s}"


@dataclass(frozen=True)
class _Sig:
    """An operand: a named signal of ``width`` bits (two's complement when ``signed``), or
    the constant ``value`` when ``name`` is None."""

    name: str | None
    width: int
    signed: bool
    value: int = 0


def _const(v: int) -> _Sig:
    return _Sig(None, _sbits(IntRange(v, v)), True, v)


class _Body:
    """The lines of one module being emitted, and which bits of its signals are read."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.comb: list[str] = []  # declarations of the combinational variables
        self.stages: dict[int, list[str]] = {}  # pipeline stage -> its blocking statements
        self.stage = 0
        self.regs: list[str] = []
        self.assigns: list[str] = []
        self._read: dict[str, list[bool]] = {}

    def declare(self, name: str, width: int, signed: bool = True) -> _Sig:
        self._read[name] = [False] * width
        return _Sig(name, width, signed)

    def wire(
        self,
        name: str,
        width: int,
        expr: str,
        comment: str = "",
        signed: bool = True,
        attr: str = "",
    ) -> _Sig:
        """A combinational value ``name = expr`` in the logic of the current pipeline stage
        (``self.stage``), declared as a variable of ``width`` bits (``attr``: a synthesis
        attribute before it)."""
        tail = f" // {comment}" if comment else ""
        kind = f"reg signed [{width - 1}:0]" if signed else f"reg [{width - 1}:0]"
        self.comb.append(f"    {attr}{kind if width > 1 or signed else 'reg'} {name};")
        self.stages.setdefault(self.stage, []).append(f"        {name} = {expr};{tail}")
        return self.declare(name, width, signed)

    def reg(self, name: str, r: IntRange, src: _Sig) -> _Sig:
        """A register of exactly r.bits bits (unsigned when r is), loaded with ``src``."""
        sign = "signed " if r.signed else ""
        self.regs.append(f"    reg {sign}[{r.bits - 1}:0] {name};")
        self.assigns.append(f"        {name} <= {self.fit(src, r.bits, r.signed)};")
        return self.declare(name, r.bits, r.signed)

    def use(self, name: str, lo: int, hi: int) -> None:
        for b in range(lo, hi + 1):
            self._read[name][b] = True

    def fit(self, s: _Sig, width: int, signed: bool = True, plain: bool = False) -> str:
        """``s`` as a signed operand of a ``width``-bit context (see the section comment).

        ``plain``: a sign extension is written out as an unsigned concatenation of exactly
        ``width`` bits. For the operands of the adder-graph's shift-adds that measured 6 %
        fewer LUTs (yosys 0.23 synth_xilinx, tfc_2w2a's 64x64 layer: 4,107 against 4,389):
        yosys then keeps each shift-add its own carry chain instead of merging chains of them
        into compressor trees ($macc).
        """
        if s.name is None:
            return _lit(s.value, width, signed)
        if s.width >= width:
            self.use(s.name, 0, width - 1)
            if s.width == width:
                return s.name if s.signed or plain else f"$signed({s.name})"
            part = f"{s.name}[{width - 1}:0]"
            return part if plain else f"$signed({part})"
        self.use(s.name, 0, s.width - 1)
        if not s.signed:
            if plain:
                return f"{{{{{width - s.width}{{1'b0}}}}, {s.name}}}"
            return f"$signed({{1'b0, {s.name}}})"
        if plain:
            return f"{{{{{width - s.width}{{{s.name}[{s.width - 1}]}}}}, {s.name}}}"
        return s.name

    def sfit(self, s: _Sig, width: int) -> str:
        """``fit`` for compares and ``>>>``, where the operand's value must survive as signed."""
        # An unsigned value needs a zero bit on top to keep its value as a signed operand.
        assert s.signed or s.name is None or width > s.width, (s, width)
        return self.fit(s, width)

    def element(self, xv: Value, i: int, width: int) -> str:
        """Element i of the input bus ``x`` as a signed expression of ``width`` bits; only
        the bits its value can occupy (``width``, less the zero sign bit of an unsigned bus)
        are read."""
        wi = xv.range.bits
        lo = i * wi
        n = min(wi, width if xv.range.signed else width - 1)
        self.use("x", lo, lo + n - 1)
        bits = f"x[{lo + n - 1}:{lo}]"
        pad = width - n
        if pad == 0:
            return f"$signed({bits})"
        fill = f"x[{lo + wi - 1}]" if xv.range.signed else "1'b0"
        ext = fill if pad == 1 else f"{{{pad}{{{fill}}}}}"
        return f"$signed({{{ext}, {bits}}})"

    def unused_sink(self) -> list[str]:
        """The wire reading every bit that nothing else reads (none when all are read)."""
        parts = []
        for name, read in self._read.items():
            b = 0
            while b < len(read):
                if read[b]:
                    b += 1
                    continue
                e = b
                while e + 1 < len(read) and not read[e + 1]:
                    e += 1
                parts.append(f"{name}[{e}:{b}]" if e > b else f"{name}[{b}]")
                b = e + 1
        if not parts:
            return []
        # Their values follow from the exact ranges (the zero sign bit of a non-negative
        # value, high bits a truncation drops, bus elements no weight reads).
        # Only Verilator's lint reads it: other tools skip it (Icarus would evaluate it whenever
        # one of those bits changes, 5 % of the default job's time).
        rows = [", ".join(parts[k : k + 8]) for k in range(0, len(parts), 8)]
        return [
            "`ifdef VERILATOR",
            "    wire _unused_ok = &{",
            "        1'b0,",
            *(f"        {row}," for row in rows),
            "        1'b0",
            "    };",
            "`endif",
        ]


def _product_expr(x: str, w: int) -> str:
    """``x * w`` (w != 0) as shift-and-add over the CSD digits of |w|, most significant first,
    negated as a whole when w < 0: ``-((x <<< 4) + x)`` for -17.

    ``x`` is already sized to the width of the wire the product is assigned to (at least
    that of the product's exact range), so an intermediate sum may wrap around, yet the result
    is exact: two's-complement adds, subtracts and shifts are exact modulo 2**width, and the
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


def _requant(m: _Body, n: Node, src: _Sig, r: IntRange) -> _Sig:
    """Wires computing clip(round(src * 2**-shift)) of requant node ``n`` for ``src`` in
    range r: ``<n>_r`` the rounded value, ``<n>_c`` the clipped result (signed)."""
    shift, (lo, hi), rounding, tag = n.shifts[0], n.clip, n.rounding, n.name
    e = _sbits(r)
    if shift <= 0:
        k = -shift
        r1 = IntRange(r.lo << k, r.hi << k)
        # src is sized to the result first, so no bit is lost by the shift.
        x = m.fit(src, _sbits(r1))
        res = m.wire(f"{tag}_r", _sbits(r1), x if k == 0 else f"{x} <<< {k}")
    else:
        s = shift
        r1 = IntRange(shift_round(r.lo, s, rounding), shift_round(r.hi, s, rounding))
        if rounding is Rounding.FLOOR:
            # The shift is done at full width, then the result's own bits are kept.
            sh = m.wire(f"{tag}_s", e, f"{m.sfit(src, e)} >>> {s}")
            res = m.wire(f"{tag}_r", _sbits(r1), m.fit(sh, _sbits(r1)))
        else:
            # Round half to even: add 1 to the floor when the dropped bits exceed one half,
            # or equal it and the floor is odd (graph.shift_round).
            e = max(e, s + 1)
            fl = IntRange(r.lo >> s, r.hi >> s)
            half = 1 << (s - 1)
            ext = m.wire(f"{tag}_e", e, m.fit(src, e))
            sh = m.wire(f"{tag}_s", e, f"{m.sfit(ext, e)} >>> {s}")
            f = m.wire(f"{tag}_f", _sbits(fl), m.fit(sh, _sbits(fl)))
            m.use(f"{tag}_f", 0, 0)
            low, h = f"{tag}_e[{s - 1}:0]", f"{s}'d{half}"
            up = m.wire(
                f"{tag}_up", 1, f"({low} > {h}) || ({low} == {h} && {tag}_f[0])", signed=False
            )
            w1 = _sbits(r1)
            res = m.wire(f"{tag}_r", w1, f"{m.fit(f, w1)} + {m.fit(up, w1)}")
    out = IntRange(min(max(r1.lo, lo), hi), min(max(r1.hi, lo), hi))
    if out != n.range:
        raise AssertionError(f"{tag}: range {out} != the netlist's {n.range}")
    wo = _sbits(out)
    v = m.fit(res, wo)
    if r1.hi > hi:
        c = max(res.width, _sbits(IntRange(hi, hi)))
        v = f"({m.sfit(res, c)} > {_lit(hi, c)}) ? {_lit(hi, wo)} : {v}"
    if r1.lo < lo:
        c = max(res.width, _sbits(IntRange(lo, lo)))
        v = f"({m.sfit(res, c)} < {_lit(lo, c)}) ? {_lit(lo, wo)} : ({v})"
    return m.wire(f"{tag}_c", wo, v)


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


def _header(
    lay: Layer, in_width: int, out_width: int, kind: str | None = None, ce: bool = False
) -> list[str]:
    fields: dict[str, str | None] = {"dense": lay.dense, "requant": lay.requant}
    if kind is not None:
        fields[kind] = lay.value
    marker = json.dumps(fields, sort_keys=True)
    return [
        _comment(f"Layer {lay.label}: {lay.input} -> {lay.value}, {lay.cycles} cycle(s)."),
        f"module {lay.module} (",
        "    input wire clk,",
        *(
            ["    input wire ce,  // clock enable: the registers hold while it is low"]
            if ce
            else []
        ),
        f"    input wire [{in_width - 1}:0] x,",
        f"    output wire [{out_width - 1}:0] y",
        ");",
        f"    // hwprune layer {marker}",
    ]


def _layer_module(g: Graph, lay: Layer, ls: LayerSchedule, ce: bool = False) -> str:
    """A layer as ``hw.layers.lower_layer`` lowered it: the input elements it reads as
    wires, one wire per netlist node, one register per register node, and the final bank
    (``q_<i>``) taking each output node. ``ce``: the module has a clock enable (a stream
    stage's kernel, which holds while the stream stalls)."""
    net = lower_layer(g, g.op(lay.dense if lay.dense is not None else lay.value))
    assert net.depth == ls.depth, "netlist and schedule disagree"
    xv, yv = g.values[lay.input], g.values[lay.value]
    wi, wo = xv.range.bits, yv.range.bits
    kind = net.kind if lay.dense is None and lay.requant is None else None
    m = _Body(_header(lay, xv.size * wi, yv.size * wo, kind, ce))
    m.declare("x", xv.size * wi, signed=False)
    xs, sigs = {}, {}
    for n in net.inputs:
        w = _sbits(net.input_range or n.range)
        xs[n.col] = sigs[n.name] = m.wire(n.name, w, m.element(xv, n.col, w))
    # The stage a node's logic belongs to: after the register banks its operands come from.
    stage: dict[str, int] = {n.name: 0 for n in net.inputs}
    for n in net.nodes:
        after = max((stage[a] for a in n.args), default=0)
        stage[n.name] = n.stage + 1 if n.kind == "reg" else after
        m.stage = after
        sigs[n.name] = _node(m, n, sigs, xs, xv, net)
    for i, out in enumerate(net.outs):
        r = net.by_name[out].range
        if r != yv.ranges[i]:
            raise AssertionError(f"{lay.label} output {i}: range {r} != {yv.ranges[i]}")
        m.reg(f"q_{i}", r, sigs[out])
    return _finish_module(m, yv, wo, ce)


def _node(
    m: _Body, n: Node, sigs: dict[str, _Sig], xs: dict[int, _Sig], xv: Value, net: LayerNetlist
) -> _Sig:
    """The Verilog of netlist node ``n`` (its operands already in ``sigs``); its signal."""
    w = _sbits(n.range)
    if n.kind == "const":
        return _const(n.value)
    if n.kind == "input":
        if n.col in xs:
            return xs[n.col]
        return m.wire(n.name, w, m.element(xv, n.col, w))
    if n.kind == "product":
        expr = _product_expr(m.fit(xs[n.col], w), n.value)
        return m.wire(n.name, w, expr, f"w={n.value}")
    if n.kind == "mult":
        # One multiplier for a DSP slice; both operands at the product's width (exact
        # modulo 2**w, and the product fits), the constant as a literal.
        expr = f"{m.fit(xs[n.col], w)} * {_lit(n.value, w)}"
        return m.wire(n.name, w, expr, f"w={n.value}", attr='(* use_dsp = "yes" *) ')
    if n.kind in ("add", "count"):
        a, b = (m.fit(sigs[arg], w) for arg in n.args)
        return m.wire(n.name, w, f"{a} + {b}")
    if n.kind == "reg":
        return m.reg(n.name, n.range, sigs[n.args[0]])
    if n.kind == "shiftadd":
        a, b = (m.fit(sigs[arg], w, plain=True) for arg in n.args)
        ta, tb = (s if k == 0 else f"({s} <<< {k})" for s, k in zip((a, b), n.shifts))
        return m.wire(n.name, w, f"{ta} {'-' if n.sub else '+'} {tb}")
    if n.kind == "shift":
        return _shift(m, n.name, sigs[n.args[0]], n.shifts[0], w)
    if n.kind == "max":
        # Both operands are compared as signed values of a common width; the mux picks them
        # sized to the node's own width.
        a, b = (sigs[arg] for arg in n.args)
        c = _cmp_width(a, b)
        cond = f"{m.sfit(a, c)} > {m.sfit(b, c)}"
        return m.wire(n.name, w, f"({cond}) ? {m.fit(a, w)} : {m.fit(b, w)}")
    if n.kind == "cmp":
        # The threshold is repeated in a comment for readers (and for a test that corrupts
        # the constant); the expression is the hardware. t is in the range of the input
        # (threshold_split keeps only those), so it fits the input's width.
        x = sigs[n.args[0]]
        cmp = f"{m.sfit(x, x.width)} >= {_lit(n.value, x.width)}"
        return m.wire(n.name, 1, cmp, f"t={n.value}", signed=False)
    if n.kind == "requant":
        return _requant(m, n, sigs[n.args[0]], net.by_name[n.args[0]].range)
    if n.kind == "scale":
        r = net.by_name[n.args[0]].range
        if r.lo == r.hi:
            return _const(n.range.lo)
        cnt = m.wire(f"{n.name}_n", _sbits(r), m.fit(sigs[n.args[0]], _sbits(r)))
        prod = _product_expr(m.fit(cnt, w), n.value)
        # Parenthesised: <<< binds looser than +.
        total = f"{_lit(n.offset, w)} + ({prod})" if n.offset != 0 else prod
        return m.wire(f"{n.name}_y", w, total)
    raise AssertionError(f"no Verilog for netlist node kind {n.kind!r}")


def _shift(m: _Body, name: str, src: _Sig, k: int, width: int) -> _Sig:
    """``src * 2**k`` as a wire of ``width`` bits; k < 0 shifts right arithmetically through a
    full-width wire (the netlist guarantees the dropped bits are zero)."""
    if k >= 0:
        return m.wire(name, width, f"{m.fit(src, width)} <<< {k}" if k else m.fit(src, width))
    full = src.width if src.signed else src.width + 1
    wide = m.wire(f"{name}_s", full, f"{m.sfit(src, full)} >>> {-k}")
    return m.wire(name, width, m.fit(wide, width))


def _cmp_width(a: _Sig, b: _Sig) -> int:
    """The width at which a signed compare of a and b is exact (an unsigned one gets a bit)."""
    return max(s.width + (0 if s.signed else 1) for s in (a, b))


# Verilator lint waivers of a layer module, and only there (see _finish_module and the section
# comment of the arithmetic helpers): the stage logic is blocking assignments in the clocked
# block (BLKSEQ, a style warning), and a signed operand narrower than its context is extended
# by Verilog's rules rather than by a written-out replication (WIDTHEXPAND).
LINT_WAIVED = ("BLKSEQ", "WIDTHEXPAND")
# A layer of at most CLOCKED_MAX statements of logic is one clocked block; a larger one is
# ``always @*`` blocks of STAGE_BLOCK statements (see _finish_module).
CLOCKED_MAX = 8192
STAGE_BLOCK = 256


def _finish_module(m: _Body, yv: Value, wo: int, ce: bool = False) -> str:
    """Close a layer module: its logic and registers, the packed output bus, endmodule."""
    # Data registers have no reset: only ``valid`` needs one, and leaving them out keeps the
    # flip-flops plain (no reset mux) and the count equal to the schedule's.
    # Two forms of the same logic. Up to CLOCKED_MAX statements the whole layer is one
    # clocked process: each stage's logic is blocking assignments to variables (in stage
    # order, so each is written before it is read), then the registers load them with
    # nonblocking ones; a register read by the next stage's logic is still its value before
    # the edge, so the hardware is one combinational block per stage (synthesis keeps no
    # flip-flop for a variable the process writes before reading). Simulators evaluate it once
    # per clock edge: Icarus ran the default job 1.5 times as fast as with ``always @*``
    # blocks, which it re-evaluates on every change of their inputs. Verilator's passes over
    # one process grow faster than its length, though (V3Gate's dedupe and V3Split's graph:
    # tfc_2w2a's 6,128-statement layer verilates in 2.6 s, its 31,994-statement one in 141 s),
    # so a larger layer's stages are ``always @*`` blocks of STAGE_BLOCK statements each
    # (Verilator's latch check of one such block grows with the square of its length: a
    # 110k-statement stage of a 256x256 layer took 687 s in V3Active, 1.5 s once cut). The
    # LUT, FF and CARRY4 counts of the two forms are within 1.5 % in yosys 0.23 (the FFs equal).
    lines = [*m.lines]
    lines += [f"    /* verilator lint_off {w} */" for w in LINT_WAIVED]
    lines += [*m.comb, *m.regs]
    clocked = "    always @(posedge clk) if (ce) begin" if ce else "    always @(posedge clk) begin"
    if sum(len(body) for body in m.stages.values()) <= CLOCKED_MAX:
        lines.append(clocked)
        for st in sorted(m.stages):
            lines += m.stages[st]
    else:
        for st in sorted(m.stages):
            body = m.stages[st]
            for k in range(0, len(body), STAGE_BLOCK):
                lines += ["    always @* begin", *body[k : k + STAGE_BLOCK], "    end"]
        lines.append(clocked)
    lines += [*m.assigns, "    end"]
    for i, r in enumerate(yv.ranges):
        # q_<i> (declared signed when its range is) is extended to the element's width.
        m.use(f"q_{i}", 0, r.bits - 1)
        lines.append(f"    assign {_sel('y', i, wo)} = q_{i};")
    lines += m.unused_sink()
    lines += [f"    /* verilator lint_on {w} */" for w in reversed(LINT_WAIVED)]
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def layer_modules(g: Graph, lays: tuple[Layer, ...], ce: bool = False) -> list[tuple[Layer, str]]:
    """Each layer's module file text: a shared Dense (``hw.reuse``) by ``codegen.reuse``, any
    other layer as ``_layer_module`` writes it. ``ce``: with a clock enable."""
    from hwprune.codegen.reuse import shared_module

    scheds = {ls.op: ls for ls in schedule(g)}
    out = []
    for lay in lays:
        first = lay.dense if lay.dense is not None else lay.value
        if lay.dense is not None and is_shared(g, g.op(lay.dense)):
            body = shared_module(g, lay, shared_layer(g, g.op(lay.dense)), ce)
        else:
            body = _layer_module(g, lay, scheds[first], ce)
        out.append((lay, _file(body)))
    return out


def chain_lines(
    g: Graph, lays: tuple[Layer, ...], src: str, valid_at, ce: str | None = None
) -> tuple[list[str], str]:
    """The instances of ``lays`` reading bus ``src``, in a module with ``clk`` and ``rst``,
    and the signal of the last one's output. ``valid_at(j)`` names a signal high j cycles
    after a vector is valid on ``src`` (j >= -1): a shared layer's phase counter starts on it
    (0 the cycle its input is valid, R - 1 and holding from R - 1 cycles later). ``ce``: the
    clock enable the layers get."""
    r = reuse_of(g)
    pb = max(1, (r - 1).bit_length())
    start = lays[0].end_cycle - lays[0].cycles
    lines, prev = [], src
    for lay in lays:
        v = g.values[lay.value]
        lines.append(f"    wire [{v.size * v.range.bits - 1}:0] {lay.signal};")
        ports = "" if ce is None else f".ce({ce}), "
        if lay.dense is not None and is_shared(g, g.op(lay.dense)):
            c = lay.end_cycle - lay.cycles - start  # its input is valid c cycles after src's
            busy = f"{lay.signal}_busy"
            lines += [
                f"    reg [{pb - 1}:0] {busy};  // cycles left of its R = {r}",
                "    always @(posedge clk)",
                "        if (rst)",
                f"            {busy} <= {pb}'d0;",
                "        else" if ce is None else f"        else if ({ce})",
                f"            {busy} <= {valid_at(c - 1)} ? {pb}'d{r - 1} : "
                f"({busy} != {pb}'d0 ? {busy} - {pb}'d1 : {busy});",
                f"    wire [{pb - 1}:0] {lay.signal}_phase = {pb}'d{r - 1} - {busy};",
            ]
            ports += f".phase({lay.signal}_phase), "
        lines.append(
            f"    {lay.module} u_{lay.module} (.clk(clk), {ports}.x({prev}), .y({lay.signal}));"
        )
        prev = lay.signal
    return lines, prev


def _top_module(g: Graph, lays: tuple[Layer, ...], top: str) -> str:
    (inp,) = g.inputs
    xv, yv = g.values[inp.name], g.values[g.outputs[0]]
    n_in, n_out = xv.size * xv.range.bits, yv.size * yv.range.bits
    latency = lays[-1].end_cycle
    r = reuse_of(g)
    lines = [
        f"// {top}: {len(lays)} layer(s), latency {latency} cycle(s), one vector per "
        + ("cycle." if r == 1 else f"{r} cycles (in_ready)."),
        f"module {top} (",
        "    input wire clk,",
        "    input wire rst,",
        "    input wire in_valid,",
        *(["    output wire in_ready,  // a vector is taken when in_valid && in_ready"] * (r > 1)),
        f"    input wire [{n_in - 1}:0] in_data,",
        "    output wire out_valid,",
        f"    output wire [{n_out - 1}:0] out_data",
        ");",
    ]
    src, accept = "in_data", "in_valid"
    if r > 1:
        # Shared layers read their input for R cycles: it is registered when taken, and the
        # next one is taken R cycles later at the earliest.
        pb = max(1, (r - 1).bit_length())
        src, accept = "in_hold", "accept"
        lines += [
            f"    reg [{pb - 1}:0] in_busy;",
            f"    assign in_ready = in_busy == {pb}'d0;",
            "    wire accept = in_valid && in_ready;",
            f"    reg [{n_in - 1}:0] in_hold;",
            "    always @(posedge clk) begin",
            "        if (rst)",
            f"            in_busy <= {pb}'d0;",
            "        else",
            f"            in_busy <= accept ? {pb}'d{r - 1} : "
            f"(in_ready ? in_busy : in_busy - {pb}'d1);",
            "        if (accept)",
            "            in_hold <= in_data;",
            "    end",
        ]
    body, prev = chain_lines(g, lays, src, lambda j: accept if j < 0 else f"valid_pipe[{j}]")
    lines += body
    lines.append(f"    assign out_data = {prev};")
    shift = accept if latency == 1 else f"{{valid_pipe[{latency - 2}:0], {accept}}}"
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
