"""Per-op cost functions of the analytical, sparsity-aware model, and their table.

Each function counts a layer's LUTs per category of its lowered netlist with the primitives
of a device family's fabric (``estimate.fabric``: LUT6 or LUT4, shift-register LUTs, the
DSP rule) and scales each category by the family's calibrated factor (calibration.toml,
fitted by benchmarks/estimate.py on its calibration designs; its results/estimate.md gives
the error on other designs and the real models). Logic synthesis removes is not costed:
dead rows (``live_elements``), registers with constant inputs, identical computations of
several rows beyond the first (``value_numbers``). The rules below were first measured on
7-series; the per-family factors carry them to iCE40 and ECP5.

The model targets LUT-mapped 7-series / UltraScale+ fabric, the structure ``hw.schedule``
prescribes and the Verilog emitter builds: per Dense row a balanced adder tree over the bias
and one constant product per NONZERO weight, register banks every ``LEVELS_PER_STAGE``
levels, a Requant (shift, optional rounding, clip) fused before a layer's last register.

Why DSP = 0 and BRAM18 = 0: every weight is a constant folded into fabric logic (a product
by a constant is wiring plus shift-and-add adders), and the fully unrolled, II = 1 pipeline
stores no arrays, so nothing is mapped to DSP slices or block RAM. The emitter writes each
product as CSD shift-and-add, so yosys' default ``synth_xilinx`` infers no DSP either
(tests/codegen/test_verilog.py checks it); written as ``x * W``, DESIGN.md measured about 0.53 DSP
per nonzero 8x4-bit product.

Primitive costs follow the fabric's structure (AMD UG474) and were checked with yosys 0.23
``synth_xilinx -family xc7 -nodsp`` on small registered modules; benchmarks/
estimate_vs_yosys.py measures whole networks against the emitted Verilog:

* Adder: a 7-series / UltraScale+ carry chain spends one LUT6 per sum bit (the propagate
  signal a_i XOR b_i feeds the CARRY4 / CARRY8, which does the rest: UG474 "CLB Slices:
  Carry Logic", UG574 for CARRY8). The top bit is the carry out (or repeats the top
  propagate of sign-extended operands), so an adder whose sum has n bits costs n - 1 LUT
  (measured: 12 + 12 -> 13 bits is 12 LUT, signed or unsigned). Bits below the lowest one
  where both operands can be nonzero are wires, not chain bits: x << 2 plus y starts its
  chain at bit 2. A constant operand (the bias) still occupies its chain bits (each LUT
  holds a_i XOR k_i); adding 0 is no adder.
  Measured subtlety: on an isolated constant add, or a chain bit with one variable operand,
  yosys places no LUT (it wires the net straight to the carry chain and counts no
  route-through LUT), but inside the emitted networks it merges such adds with their
  neighbours into compressors ($macc), which cost more. On whole emitted networks the
  estimate is 0.87-0.99 of yosys' LUTs (benchmarks/results/estimate_vs_yosys.md).
* Constant multiply: zero weights have no term at all (the IR stores nonzero terms only);
  x * +/-2^k is wiring (DESIGN.md: "x1/x2/x4 cost nothing"; the sign is absorbed by the
  adder tree, which subtracts instead of adding); any other weight is shift-and-add over the
  canonical signed digit (CSD) form of |w|: (nonzero digits - 1) adders, each costed by the
  adder rule at the width of its partial product. For 8-bit x and 4-bit weights that is
  7-8 LUT per product (16-18 for the 3-digit 6-bit weights), below DESIGN.md's "14-21
  LUTs plus 3 CARRY4" for yosys' own mapping of ``x * W`` (an array multiplier): the
  estimate is for CSD shift-and-add.
* Clip (Requant): measured on the emitted Requant modules, one LUT per output bit selects
  the value or a bound when both clip sides can trigger (8 LUT for an 8-bit [0, 255] or
  [-128, 127] clip of 10-17-bit values); a comparison against 0, 2^k - 1 or -2^k looks at
  the sign and the bits above k only (a small OR tree, often folded into the select LUTs);
  other constants need a carry-chain comparator, ceil(bits / 3) LUT (measured: 20-bit
  x > K is 7 LUT). With one side only and a bound of all zeros or all ones, the select is
  the output flip-flop's synchronous reset or set pin (UG474 "Storage Elements": SR), 0 LUT
  (measured: clip of [0, 500] to 255 is 0 LUT).
* Max: each ``max`` node of a layer's netlist (``hw.layers``) compares two variables and
  muxes one of them through. A two-variable comparator sets the carry chain's select and
  generate signals from both operands' bits, 2 LUT per 3 bits, twice the constant
  comparator: measured
  2 * ceil(bits / 3) exactly for registered signed a > b of 8, 10, 12, 16, 20 and 24 bits
  (within 1 LUT at 3-6 bits). The 2:1 mux is one LUT3 per output bit (measured: a registered
  8/12/16-bit max is 8+6, 12+8, 16+12 LUT: mux + comparator).
* Threshold: one constant comparator per threshold the input's range leaves undecided (the
  clip-compare rule: x >= t is x > t - 1, or not x < t), a popcount of the compare bits
  (``popcount_luts``), then base + step * count: a constant multiply and a constant add, by
  the rules above. An element whose input has at most 6 bits costs at most one LUT6 per
  output bit. Against yosys on emitted Threshold modules: 1.07-1.11x for 4-bit inputs,
  1.3-2.3x (an over-estimate) for 8-12-bit inputs with 3-15 thresholds, where ABC shares
  logic between the compares of one input (measured 1.5 LUT per compare of 8 bits when 7
  share the input, 2.5 alone). Max modules: 0.7-1.15x (6-16-bit members, windows of 2-9).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hwprune.estimate.fabric import XC7, Fabric
from hwprune.hw.csd import csd_digits, trailing_zeros
from hwprune.hw.kernels import kernel_of, lower_dense
from hwprune.hw.layers import lower_layer, requant_node
from hwprune.hw.netlist import DenseNetlist, LayerNetlist, Node
from hwprune.hw.reuse import SharedDense, is_shared, reuse_of, shared_layer
from hwprune.hw.schedule import LayerSchedule, schedule
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
)
from hwprune.ir.graph import shift_round as _shift_round


@dataclass(frozen=True)
class LayerCost:
    """The cost of one op: resources, pipeline cycles it adds, its II, its product terms.

    ``lut`` and ``ff`` are the fabric's calibrated figures (``fabric.Fabric.lut``) of the
    per-category counts ``lut_parts`` and ``ff_parts`` (``fabric.PARTS``, ``FF_PARTS``)."""

    name: str
    kind: str
    lut: int
    ff: int
    dsp: int
    bram18: int
    latency_cycles: int
    ii: int
    product_terms: int
    lut_parts: Mapping[str, int] = field(default_factory=dict, compare=False)
    ff_parts: Mapping[str, int] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict:
        """Plain JSON-able dict with the keys of estimate.json's per-layer entries."""
        return {
            "name": self.name,
            "kind": self.kind,
            "lut": self.lut,
            "ff": self.ff,
            "dsp": self.dsp,
            "bram18": self.bram18,
            "latency_cycles": self.latency_cycles,
            "ii": self.ii,
            "product_terms": self.product_terms,
        }


# --- primitives ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Word:
    """An adder operand as the carry chain sees it: its exact range and known-zero low bits."""

    range: IntRange
    tz: int = 0

    @property
    def const(self) -> bool:
        return self.range.lo == self.range.hi


class Operand(Protocol):
    """What the adder rule reads of an operand: a ``Word``, or a netlist ``Node``, which has
    the same two fields (a netlist is costed without a Word per node)."""

    @property
    def range(self) -> IntRange: ...

    @property
    def tz(self) -> int: ...


def adder_luts(a: Operand, b: Operand, out: IntRange) -> int:
    """LUTs of a carry-chain adder or subtractor of a and b whose result lies in ``out``.

    One LUT6 per result bit on the chain, less the top bit (the carry out): the chain runs
    from the lowest bit where both operands can be nonzero (below it the result is a wire)
    to the top of ``out``. UG474 carry logic; measurements in the module docstring.
    """
    ra, rb = a.range, b.range
    a_const, b_const = ra.lo == ra.hi, rb.lo == rb.hi
    if (a_const and ra.lo == 0) or (b_const and rb.lo == 0):
        return 0
    tz_a = trailing_zeros(ra.lo) if a_const else a.tz
    tz_b = trailing_zeros(rb.lo) if b_const else b.tz
    return max(0, out.bits - 1 - max(tz_a, tz_b))


@functools.lru_cache(maxsize=1 << 12)
def _csd_length(w: int) -> int:
    """Nonzero CSD digits of |w|."""
    return len(csd_digits(abs(w)))


# A network repeats a few (input range, weight) pairs thousands of times (a 16-64-32-32-5
# MLP: 124 pairs in 4,184 products), so the figure is kept; ranges and weights are immutable.
@functools.lru_cache(maxsize=1 << 14)
def const_mult_luts(x: IntRange, w: int) -> int:
    """LUTs of x * w for a constant w != 0: shift-and-add over the CSD digits of |w|.

    Adders run from the most significant digit (always +1) down, each adding or subtracting
    x << position. The sign of w costs nothing: the adder tree subtracts the product instead
    of adding it (DESIGN.md: "x1/x2/x4 cost nothing").
    """
    if x.lo == x.hi:
        return 0
    digits = sorted(csd_digits(abs(w)), reverse=True)
    top = digits[0][0]
    acc = Word(x.scaled(1 << top), top)
    partial = 1 << top
    luts = 0
    for pos, d in digits[1:]:
        term = Word(x.scaled(1 << pos), pos)
        # Every partial sum is a multiple of x: its exact range is x scaled by it.
        partial += d << pos
        out = x.scaled(partial)
        luts += adder_luts(acc, term, out)
        acc = Word(out, pos)
    return luts


def comparator_luts(bits: int, fab: Fabric = XC7) -> int:
    """LUTs of comparing a ``bits``-wide value with a constant (measured: 20 bits -> 7)."""
    return fab.comparator_luts(bits)


def compare_luts(bits: int, fab: Fabric = XC7) -> int:
    """LUTs of comparing two ``bits``-wide variables (measured: 2 * ceil(bits / 3), module
    docstring): the carry chain needs a select and a generate signal per 3 bits."""
    return 2 * comparator_luts(bits, fab)


def mux_luts(bits: int) -> int:
    """LUTs of a 2:1 mux of ``bits``-wide words: one LUT3 per bit (measured)."""
    return bits


def reduce_luts(n_inputs: int, fab: Fabric = XC7) -> int:
    """LUTs of a tree reducing n_inputs signals to one (each LUT6 takes 6, gives back 1)."""
    return fab.reduce_luts(n_inputs)


# --- context and liveness -----------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What every cost function reads besides its op: the schedule, the fabric, and the live
    elements of each value (``live_elements``)."""

    scheds: Mapping[str, LayerSchedule]
    fab: Fabric = XC7
    live: Mapping[str, frozenset[int]] | None = None

    def rows(self, name: str) -> frozenset[int] | None:
        """The live output elements of op ``name`` (None: all)."""
        return None if self.live is None else self.live.get(name)


# The fabric-independent analysis of the last graphs costed (schedule, live elements): an
# estimate for every board costs one design on several fabrics. Keyed by the graph's id and
# its meta (kernel, pipeline and reuse choices live there and may change between calls); the
# graph is kept so that its id is not reused.
_ANALYSIS: dict[tuple, tuple[object, object]] = {}


def _memo(table: dict, key: tuple, keep: object, compute: Callable[[], object]) -> object:
    """``compute()`` memoised in ``table`` under ``key`` (which holds ``id(keep)``); ``keep``
    is stored beside the value so that its id cannot be reused by another object."""
    hit = table.get(key)
    if hit is not None and hit[0] is keep:
        return hit[1]
    if len(table) > 1024:
        table.clear()
    value = compute()
    table[key] = (keep, value)
    return value


def clear_caches() -> None:
    """Forget every memoised analysis (``context``, ``value_numbers``, ``layer_parts``): a
    benchmark of a cold estimate calls it."""
    for table in (_ANALYSIS, _VN, _PARTS, _LOGIC, _MACC_OPERANDS, _CONES):
        table.clear()


def context(g: Graph, fab: Fabric) -> Context:
    """The cost functions' Context of ``g`` on ``fab`` (schedule and liveness computed once per
    graph and meta)."""
    key = (id(g), repr(sorted(g.meta.items())))
    scheds, live = _memo(
        _ANALYSIS, key, g, lambda: ({ls.op: ls for ls in schedule(g)}, live_elements(g))
    )
    return Context(scheds, fab, live)


def live_elements(g: Graph) -> dict[str, frozenset[int]]:
    """For every op's value, the elements some output depends on (the rest is logic yosys
    removes: opt_clean drops cells whose outputs nothing reads). Every element of an output is
    live; a layer's live elements make live the input elements its lowered netlist reads from
    them (``live_nodes``: a Dense row its nonzero weights' columns, unless its kernel folded a
    constant input into the row's offset, as the adder-graph kernel does; a Max group its
    members; an elementwise op its own element). A Requant fused into its Dense passes its
    live elements to the Dense, whose netlist holds its nodes."""
    live: dict[str, set[int]] = {n: set(range(g.values[n].size)) for n in g.outputs}
    fused_into: dict[str, str] = {}
    for ls in schedule(g):
        if ls.fused is not None:
            fused_into[ls.fused] = ls.op
    for op in reversed(g.ops):
        if isinstance(op, Input) or not op.inputs:
            continue
        mine = live.get(op.name, set())
        if op.name in fused_into:  # its nodes are in the Dense's netlist
            live.setdefault(fused_into[op.name], set()).update(mine)
            continue
        src = live.setdefault(op.inputs[0], set())
        if isinstance(op, Dense) and kernel_of(g, op) != "adder-graph":
            # The mac kernels read every nonzero weight's column (shortcut of the walk below).
            for i in mine:
                src.update(op.rows[i].cols)
            continue
        net = lower_layer(g, op)
        nodes = live_nodes(net, frozenset(mine))
        assert nodes is not None
        word = net.by_name
        src.update(
            word[n].col
            for n in nodes
            if word[n].kind in ("input", "product", "mult") and word[n].col >= 0
        )
    # A value whose every element is live needs no filtering (None: all).
    return {n: frozenset(s) for n, s in live.items() if len(s) < g.values[n].size}


# --- Dense --------------------------------------------------------------------------------


def netlist_luts(
    net: DenseNetlist | LayerNetlist, x: Value | None = None, fab: Fabric = XC7
) -> int:
    """LUTs of a lowered layer: every node at its exact width (``node_luts``). A kernel's
    DenseNetlist reads its products' inputs from ``x``; a LayerNetlist knows its inputs.
    Registers, constants and inputs cost no LUT."""
    if isinstance(net, LayerNetlist):
        return sum(layer_parts(net, None, fab).values())
    assert x is not None
    word = net.by_name
    return sum(node_luts(n, word, x.ranges, fab) for n in net.nodes)


# An adder of operands this narrow is logic ABC re-maps whole (a sum of 1-2-bit activations
# is a compressor tree, not a carry chain): counted apart ("adder_narrow") with its own
# fitted factor; those of 1-2-bit operands (a binarised network's +-1 sums) apart again.
NARROW_BITS = 4


def _adder_part(bits: int) -> str:
    """The category of an adder's LUTs by its sum's width (operands of k bits give k + 1)."""
    if bits <= 3:
        return "adder_bits2"
    return "adder_narrow" if bits <= NARROW_BITS + 1 else "adder"


# The category (fabric.PARTS) of a node kind's LUTs.
NODE_PART: dict[str, str] = {
    "product": "product",
    "mult": "product",
    "add": "adder",
    "shiftadd": "adder",
    "max": "max",
    "cmp": "threshold",
    "count": "threshold",
    "scale": "threshold",
    "requant": "requant",
}


def node_luts(
    n: Node,
    word: Mapping[str, Operand],
    xr: Sequence[IntRange] | Mapping[int, IntRange],
    fab: Fabric = XC7,
) -> int:
    """LUTs of one netlist node; ``word`` gives its operands, ``xr[col]`` an input's range.

    product: CSD shift-and-add; mult: a DSP block when the fabric's rule maps it
    (``netlist_dsps``), no LUT, else a LUT array multiplier; add and shiftadd: the adder
    rule (a 0 - b negation on the carry chain); max: a compare (a constant comparator when an
    operand is constant) and a mux; cmp: the clip-compare rule; requant: ``requant_luts``. A
    ``count`` node is part of its row's popcount and a ``scale`` node carries it
    (``layer_parts``)."""
    if n.kind == "product":
        return const_mult_luts(xr[n.col], n.value)
    if n.kind == "mult":
        return 0 if _mult_in_dsp(xr[n.col], n.value, fab) else _lut_mult(xr[n.col], n.value)
    if n.kind == "add":
        return adder_luts(word[n.args[0]], word[n.args[1]], n.range)
    if n.kind == "shiftadd":
        a, b = (_shifted(word[name], k) for name, k in zip(n.args, n.shifts, strict=True))
        if n.sub and a.const and a.range.lo == 0:  # 0 - b: a negation on the carry chain
            return max(0, n.range.bits - 1 - b.tz)
        return adder_luts(a, b, n.range)
    if n.kind == "max":
        a, b = (word[name].range for name in n.args)
        both = a.union(b).bits
        const = a.lo == a.hi or b.lo == b.hi
        cmp = comparator_luts(both, fab) if const else compare_luts(both, fab)
        return cmp + mux_luts(n.range.bits)
    if n.kind == "cmp":
        # x >= t is x > t - 1 and also not x < t: whichever form the clip rule finds cheaper
        # (x >= 0 is the sign bit alone, x >= 2^k an OR of the bits from k up).
        r, t = word[n.args[0]].range, n.value
        return min(
            clip_compare_luts(r, t - 1, above=True, fab=fab),
            clip_compare_luts(r, t, above=False, fab=fab),
        )
    if n.kind == "requant":
        lo, hi = n.clip
        assert n.rounding is not None
        return requant_luts(n.shifts[0], n.rounding, lo, hi, word[n.args[0]].range, fab)
    return 0


def layer_luts(net: LayerNetlist, requant: bool = False, fab: Fabric = XC7) -> int:
    """LUTs of a lowered layer's ``requant`` nodes (``requant``), or of all its other nodes
    (``layer_parts``, summed)."""
    return sum(layer_parts(net, requant, fab).values())


def live_nodes(net: LayerNetlist | DenseNetlist, rows: frozenset[int] | None) -> set[str] | None:
    """The nodes the live output elements ``rows`` read, directly or through other nodes (an
    adder graph shares subexpressions between rows: node row -1), or None for all."""
    if rows is None:
        return None
    word = net.by_name
    if isinstance(net, LayerNetlist):
        stack = [net.outs[i] for i in rows]
    else:
        stack = [n.name for n in net.nodes if n.row in rows]
    live: set[str] = set()
    while stack:
        name = stack.pop()
        if name in live or name not in word:
            continue
        live.add(name)
        stack.extend(word[name].args)
    return live


# Node kinds whose identical copies (same operation on the same operands) synthesis merges.
SHARED_KINDS = frozenset({"product", "mult", "add", "shiftadd", "reg"})
_VN: dict[tuple, tuple[object, object]] = {}


def value_numbers(net: LayerNetlist | DenseNetlist) -> dict[str, int]:
    """A number per node, equal for nodes computing the same function of the same inputs
    (global value numbering; the row a node serves is not part of it; operands of an
    addition in either order), as yosys' opt_merge sees identical cells."""
    return _memo(_VN, (id(net),), net, lambda: _value_numbers(net))


def _value_numbers(net: LayerNetlist | DenseNetlist) -> dict[str, int]:
    table: dict[tuple, int] = {}
    out: dict[str, int] = {}
    get = out.get
    nodes = (*net.inputs, *net.nodes) if isinstance(net, LayerNetlist) else net.nodes
    for n in nodes:
        kind = n.kind
        if kind == "add":  # most nodes: two operands, in either order
            a, b = n.args
            va, vb = get(a, -1), get(b, -1)
            key = ("add", va, vb) if va <= vb else ("add", vb, va)
            out[n.name] = table.setdefault(key, -2 - len(table))
            continue
        if kind == "product" and not n.args:
            # the other half of a mac layer's nodes: the general key below, built directly
            key = ("product", (), n.shifts, n.sub, n.value, n.col, n.stage)
            out[n.name] = table.setdefault(key, -2 - len(table))
            continue
        if kind not in SHARED_KINDS and kind not in ("input", "const"):
            out[n.name] = len(table) + len(out)  # never merged: a number no key takes
            continue
        args = tuple([get(a, -1) for a in n.args])
        shifts = n.shifts
        value = n.value
        if kind == "mult" and value:
            # opt_expr makes x * (w << k) a shift of x * w: one multiply for both.
            value >>= trailing_zeros(value)
        if len(args) == 2 and kind == "shiftadd" and not n.sub:
            # an addition's operands in either order (with their shifts)
            a, b = args
            ka, kb = shifts or (0, 0)
            if (b, kb) < (a, ka):
                args, shifts = (b, a), ((kb, ka) if shifts else shifts)
        key = (kind, args, shifts, n.sub, value, n.col, n.stage)
        out[n.name] = table.setdefault(key, -2 - len(table))  # -1: an operand from outside
    return out


# The widest operand of a cone costed as a $macc (``macc_cones``): +-1 terms are 2 bits,
# a shared sum of two of them 3.
MACC_BITS = 3


_MACC_OPERANDS: dict[tuple, tuple[object, object]] = {}


def _has_macc_operands(net: LayerNetlist) -> bool:
    """Whether any value of ``net`` could be an operand of a cone ``macc_cones`` costs."""
    half = 1 << (MACC_BITS - 1)  # signed, at most MACC_BITS bits: -half <= lo < 0, hi < half
    for n in (*net.inputs, *net.nodes):
        r = n.range
        if -half <= r.lo < 0 and r.lo != r.hi and r.hi < half:
            return True
    return False


# _cones per (netlist, live rows, DSP-mapped products): the same on every fabric that maps
# the same multiplies to DSPs.
_CONES: dict[tuple, tuple[object, object]] = {}


def _cones(
    net: LayerNetlist,
    rows: frozenset[int] | None,
    dsp_out: set[str] | frozenset[str] = frozenset(),
    live: set[str] | None = None,
) -> list:
    """``_cones_of`` for the output elements ``rows`` (their nodes: ``live``, found here when
    not given), memoised."""
    key = (id(net), rows, frozenset(dsp_out))

    def compute() -> list:
        nodes = live if live is not None or rows is None else live_nodes(net, rows)
        return _cones_of(net, nodes, dsp_out)

    return _memo(_CONES, key, net, compute)


# Node kinds that read only the layer's inputs (a constant multiply of one input column).
_NO_ADD_OPERANDS = frozenset({"input", "const", "product", "mult"})


def _cones_of(net: LayerNetlist, live: set[str] | None, dsp_out: set[str]) -> list:
    """The adder cones yosys' alumacc merges into one ``$macc`` cell: (the root node, its
    other adds, its variable leaves) for each cone of at least 3 variable operands that
    reads no DSP-mapped product.

    alumacc merges an ``$add`` whose result only one other ``$add`` reads (after opt_merge
    has merged identical cells: a value number read by one other value number) into that
    adder's ``$macc``; a register bank, a Requant, a second reader or a non-add reader ends
    the cone."""
    vn = value_numbers(net)
    rep: dict[int, Node] = {}
    setrep = rep.setdefault
    for n in net.inputs:
        setrep(vn[n.name], n)
    # The one value number reading each add (-1: several), in the same pass over the nodes
    # as their representatives (a copy of a represented node reads the same numbers); the
    # adds in netlist (topological) order.
    user: dict[int, int] = {}
    adds_in_order: list[int] = []
    for n in net.nodes:
        kind = n.kind
        if live is not None and n.name not in live and kind != "const":
            continue
        v = vn[n.name]
        if v in rep:
            continue
        rep[v] = n
        if kind == "add":
            adds_in_order.append(v)
        elif kind in _NO_ADD_OPERANDS:
            continue  # reads inputs only: no add's reader
        for a in n.args:
            va = vn[a]
            u = user.get(va)
            if u is None:
                user[va] = v
            elif u != v:
                user[va] = -1
    # The cone each add belongs to: the root its sum flows into while it has one reader, an
    # add; a reader's root is known first.
    root: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    for v in reversed(adds_in_order):
        u = user.get(v, -1)
        r = root[u] if u != -1 and u in root else v
        root[v] = r
        if r in members:
            members[r].append(v)
        else:
            members[r] = [v]
    out = []
    for r, adds in members.items():
        if len(adds) < 2:
            continue  # one adder: at most 2 operands
        leaves = [rep[va] for u in adds for a in rep[u].args if root.get(va := vn[a]) != r]
        var = [m for m in leaves if m.range.lo != m.range.hi]
        if len(var) < 3 or any(m.name in dsp_out for m in var):
            continue
        out.append((rep[r], [rep[u] for u in adds if u != r], var))
    return out


def cone_shapes(net: LayerNetlist) -> list[tuple[int, float]]:
    """(operands K, their mean width in bits) of each cone ``macc_cones`` costs with the
    cone rule (``Fabric.cone_luts``): what benchmarks/cone_grid.py fits it on."""
    out = []
    for _, _, var in _cones(net, None):
        wbar = _cone_rule(var)
        if wbar is not None:
            out.append((len(var), wbar))
    return out


# The narrowest operands (mean bits) the cone rule's grid measured.
CONE_MIN_BITS = 3


def _cone_rule(var: Sequence[Node]) -> float | None:
    """The mean operand width of a cone the cone rule costs, or None: its operands must be
    plain words (registers, inputs, +-2^k products: a wire, a shift or a negation, and sums
    several cones read, which opt_merge builds once), as in the grid it was fitted on, and at
    least CONE_MIN_BITS wide on average. A product of more CSD digits is an adder chain of
    its own (the product categories)."""
    if _narrow_signed(var):
        return None
    for m in var:
        if m.kind == "product":
            if len(csd_digits(abs(m.value))) > 1:
                return None
        elif m.kind not in ("reg", "input", "add"):
            return None
    wbar = sum(m.range.bits for m in var) / len(var)
    return wbar if wbar >= CONE_MIN_BITS else None


def _narrow_signed(var: Sequence[Node]) -> bool:
    return all(m.range.lo < 0 and m.range.bits <= MACC_BITS for m in var)


def macc_cones(
    net: LayerNetlist,
    rows: frozenset[int] | None,
    dsp_out: set[str] | frozenset[str] = frozenset(),
    fab: Fabric = XC7,
    live: set[str] | None = None,
) -> tuple[set[str], dict[str, tuple[str, object]]]:
    """The adder cones yosys' alumacc merges into one ``$macc`` cell (``_cones``), and their
    LUTs: (the names of the adders inside a cone, {a cone's root: (category, its LUTs)}; a
    cone of the fitted rule, category ``macc_wide``, gives (operands, mean bits) instead).

    maccmap sign-extends every operand to the cone's output width W and reduces the K
    variable operands with rows of full adders ($fa) before one W-bit carry-chain adder.
    A full adder is logic ABC maps without the carry chain (two LUT outputs), so a cone costs
    more than the adder rule summed over its adders, and more so the more operands it has:
    measured, yosys 0.23 xc7, 16 six-bit operands are 141 LUTs where the adder rule says
    100, 4 of them 24 for 20 (benchmarks/results/cone_grid.md). A cone is costed by the
    family's fit of that grid (``Fabric.cone_luts``, category ``macc_wide``), except:

    * signed operands of at most 3 bits (a binarised layer's +-1 terms and their shared
      pair sums), category ``macc``: (bits - 2 * W) + W - 1 LUT-equivalents, where bits
      counts each operand's bits in the W columns (a signed operand fills every column above
      its known-zero low bits: K signed operands give (K - 2) * W) (measured, yosys 0.23
      xc7: a registered sum of 16 2-bit terms is 79 LUT as one cone, 41 with every adder
      registered, which is exactly the adder rule);
    * a fabric without a cone fit: only those narrow cones; the others keep the adder rule.

    Cones of fewer than 3 variable operands stay single adders (the adder rule); so do cones
    reading a DSP-mapped product (its post-adder, ``dsp_add``)."""
    if fab.cone is None and not _memo(
        _MACC_OPERANDS, (id(net),), net, lambda: _has_macc_operands(net)
    ):
        return set(), {}  # no operand a cone is costed for (fast)
    inner: set[str] = set()
    roots: dict[str, tuple[str, int]] = {}
    vn = value_numbers(net)
    for n, adds, var in _cones(net, rows, dsp_out, live):
        if _narrow_signed(var):
            # Each (signed) operand is sign-extended up to the top column, above its
            # known-zero low bits.
            top = n.range.bits
            total = sum(top - m.tz for m in var)
            w = max(1, top - n.tz)
            roots[n.name] = ("macc", max(0, total - 2 * w) + w - 1)
        elif fab.cone is not None and (wbar := _cone_rule(var)) is not None:
            # (operands, mean bits): its LUTs are the family's fit (layer_parts)
            roots[n.name] = ("macc_wide", (len(var), wbar))
        else:
            continue
        inner.update(m.name for m in adds)
    # every node of an inner value number (its copies in other rows) is inside a cone
    inner_vn = {vn[name] for name in inner}
    root_vn = {vn[name]: cost for name, cost in roots.items()}
    if inner_vn or root_vn:
        for n in net.of_kind("add"):  # only adds share an add's value number
            v = vn[n.name]
            if v in inner_vn:
                inner.add(n.name)
            elif v in root_vn:
                roots[n.name] = root_vn[v]
    return inner, roots


def _layer_parts(
    net: LayerNetlist,
    requant: bool | None = False,
    fab: Fabric = XC7,
    rows: frozenset[int] | None = None,
) -> tuple[dict[str, int], tuple[tuple[int, float], ...]]:
    """LUTs of a lowered layer per category (``NODE_PART``): of its ``requant`` nodes
    (``requant`` True), of all its other nodes (False) or of all (None); only the nodes of
    the output elements ``rows`` (None: all; the rest is dead logic). Also the shapes of its
    adder cones of the fitted rule (``macc_cones``), whose LUTs ``layer_parts`` takes from
    the fabric's fit, so that families share everything else.

    A Threshold row (the nodes of a ``scale``'s row) is its compares, a popcount of their
    bits (``popcount_luts``, not the adder rule on the emitted pairwise tree, which yosys
    re-maps) and offset + step * count: a constant multiply and a constant add. A row whose
    input has at most as many bits as a LUT has inputs costs at most one LUT per output bit
    (measured: 4-bit inputs with 3 thresholds cost 2.4-2.8 LUT per element, where the
    comparator-and-adder rule says 7-8).
    """
    word = net.by_name
    xr = {n.col: n.range for n in net.inputs}
    scaled = {n.row: n for n in net.of_kind("scale")}
    row_luts: dict[int, int] = {}
    cmp_luts: dict[int, list[int]] = {}  # a Threshold row's compares, by the compare rule
    cmps: dict[int, list[Node]] = {}
    parts: dict[str, int] = {}
    wide: list[tuple[int, float]] = []  # the macc_wide cones: (operands, mean bits)
    live = live_nodes(net, rows)
    dsp_out = {
        n.name
        for n in net.of_kind("mult")
        if xr[n.col].lo != xr[n.col].hi and _mult_in_dsp(xr[n.col], n.value, fab)
    }
    post_added: set[str] = set()
    vn = value_numbers(net)
    built: set[int] = set()
    post_adders = fab.dsp is not None and bool(dsp_out)
    # requant nodes alone (requant True) hold no adder of a cone
    inner, roots = (set(), {}) if requant else macc_cones(net, rows, dsp_out, fab, live)
    # Adds and products of a layer without Threshold rows or DSP post-adders take the fast
    # paths below (most of a Dense layer's nodes): the same rules as the general path.
    plain = not scaled and not post_adders
    # const_mult_luts per (input range, weight), keyed by plain ints: the lru_cache's key
    # hashes the IntRange in Python, and a layer has thousands of distinct products.
    mult_luts: dict[tuple[int, int, int], int] = {}
    # requant nodes alone: only those (the loop below skips the others)
    for n in net.of_kind("requant") if requant else net.nodes:
        kind = n.kind
        if kind == "requant" and requant is False:
            continue
        name = n.name
        if live is not None and name not in live:
            continue
        if inner and name in inner:
            continue  # part of the $macc of the cone it feeds (charged at its root)
        if roots and name in roots:
            if vn[name] not in built:
                built.add(vn[name])
                part, luts = roots[name]
                if part == "macc_wide":
                    wide.append(luts)
                else:
                    parts[part] = parts.get(part, 0) + luts
            continue
        if plain and kind == "add":
            number = vn[name]
            if number in built:
                continue
            built.add(number)
            wa, wb = word[n.args[0]], word[n.args[1]]
            ra, rb = wa.range, wb.range
            bits = n.range.bits
            if ra.lo != ra.hi and rb.lo != rb.hi:  # adder_luts of two variables, inline
                luts = bits - 1 - (wa.tz if wa.tz > wb.tz else wb.tz)
            else:
                luts = adder_luts(wa, wb, n.range)
            if luts > 0:
                part = _adder_part(bits)
                parts[part] = parts.get(part, 0) + luts
            continue
        if plain and kind == "product":
            number = vn[name]
            if number in built:
                continue
            built.add(number)
            r, w = xr[n.col], n.value
            key = (r.lo, r.hi, w)
            luts = mult_luts.get(key)
            if luts is None:
                luts = mult_luts[key] = const_mult_luts(r, w)
            if luts:
                # two adders or more: a chain alumacc folds into the row's $macc
                part = "product_deep" if _csd_length(w) > 2 else "product"
                parts[part] = parts.get(part, 0) + luts
            continue
        if kind in SHARED_KINDS:
            # yosys' opt_merge builds one cell for identical computations of several rows (a
            # binarised layer's rows pair the same inputs with the same signs).
            number = vn[n.name]
            if number in built:
                continue
            built.add(number)
        if kind == "add":  # most nodes: the adder rule without node_luts' dispatch
            a, b = n.args
            luts = adder_luts(word[a], word[b], n.range)
        else:
            luts = node_luts(n, word, xr, fab)
        if post_adders and kind in ("add", "shiftadd"):
            # A DSP's post-adder (P = A * B + C) takes the first adder reading its product.
            # yosys packs some of them (counted apart: "dsp_add", a fitted share).
            free = [a for a in n.args if a in dsp_out and a not in post_added]
            if free:
                post_added.add(free[0])
                parts["dsp_add"] = parts.get("dsp_add", 0) + luts
                continue
        if kind == "cmp":
            cmps.setdefault(n.row, []).append(n)
            if n.row in scaled:
                if luts:  # a free compare (the sign bit) is a wire in any form
                    cmp_luts.setdefault(n.row, []).append(luts)
                continue
        elif kind == "scale":
            luts = _scale_luts(n, word, len(cmps.get(n.row, ())), fab)
        if scaled and n.row in scaled:
            row_luts[n.row] = row_luts.get(n.row, 0) + luts
        elif luts:
            part = NODE_PART[kind]
            if kind == "product" and _csd_length(n.value) > 2:
                # two adders or more: a chain alumacc folds into the row's $macc
                part = "product_deep"
            elif part == "adder":
                part = _adder_part(n.range.bits)
            parts[part] = parts.get(part, 0) + luts
    for row in row_luts.keys() | cmp_luts.keys():
        luts = row_luts.get(row, 0)
        bits = [word[c.args[0]].range.bits for c in cmps.get(row, ())]
        each = cmp_luts.get(row, ())
        # The row's compares read one value, and yosys maps them together: one by the compare
        # rule, more by the measured fit of sets of compares (Fabric.compare_set_luts) where
        # the family has one, else each by the compare rule.
        if len(each) > 1 and fab.compare_set is not None:
            luts += fab.compare_set_luts(bits[0], len(each))
        else:
            luts += sum(each)
        if bits and bits[0] <= fab.lut_inputs:
            luts = min(luts, scaled[row].range.bits)
        parts["threshold"] = parts.get("threshold", 0) + luts
    return parts, tuple(wide)


# layer_parts per (netlist, which nodes, live rows, the fabric's LUT inputs and DSP rule):
# a design costed for every board reaches each netlist once per fabric, and fabrics that
# agree on these (7-series and UltraScale+ without DSPs) share the result.
_PARTS: dict[tuple, tuple[object, object]] = {}


def layer_parts(
    net: LayerNetlist,
    requant: bool | None = False,
    fab: Fabric = XC7,
    rows: frozenset[int] | None = None,
) -> dict[str, int]:
    """LUTs of a lowered layer per category (``_layer_parts``), memoised; the LUTs of its
    fitted adder cones (``macc_wide``) are the fabric's fit of their shapes."""
    kinds = frozenset(net.by_kind)
    if requant is False:
        kinds = kinds - {"requant"}
    elif requant:
        kinds = kinds & {"requant"}
    dsp = fab.dsp if "mult" in kinds else None
    # Carry-chain adders and constant multiplies cost the same on every fabric: a layer of
    # only those is costed once for all of them.
    lut = (fab.lut_inputs, fab.compare_set) if kinds & FABRIC_KINDS else None
    # whether adder cones are costed by a fit (Fabric.cone_luts, applied below)
    cone = fab.cone is not None and requant is not True and "add" in kinds
    key = (id(net), requant, rows, lut, dsp, cone)
    parts, wide = _memo(_PARTS, key, net, lambda: _layer_parts(net, requant, fab, rows))
    parts = dict(parts)
    if wide:
        parts["macc_wide"] = sum(fab.cone_luts(k, bits) for k, bits in wide)
    return parts


# Node kinds whose LUTs depend on the fabric's LUT inputs (comparators, muxes, popcounts).
FABRIC_KINDS = frozenset({"max", "cmp", "count", "scale", "requant"})


def _scale_luts(n: Node, word: Mapping[str, Operand], n_compares: int, fab: Fabric) -> int:
    """The popcount of a Threshold row's ``n_compares`` bits and offset + step * count."""
    if not n_compares:
        return 0  # the row is a constant
    count = word[n.args[0]].range
    offset = IntRange(n.offset, n.offset)
    prod = count.scaled(n.value)
    luts = popcount_luts(n_compares, fab) + const_mult_luts(count, n.value)
    return luts + adder_luts(Word(offset), Word(prod, trailing_zeros(n.value)), n.range)


def _mult_in_dsp(x: IntRange, w: int, fab: Fabric) -> bool:
    """Whether yosys maps x * w (a ``mult`` node) to a DSP. opt_expr moves the constant's
    trailing zeros to a shift of the product (x * 14 is (x * 7) << 1, one bit narrower; x * 6
    is x * 3 and stays in LUTs on iCE40 where x * 10 does not); then ``_maps_to_dsp``."""
    tz = trailing_zeros(w)
    if fab.dsp is None or abs(w) == 1 << tz:  # x * +-2^k is a shift (or a negation)
        return False
    r = x.scaled(w)
    return _maps_to_dsp(x, (w >> tz,), r.bits + (not r.signed) - tz, fab)


def _maps_to_dsp(x: IntRange, weights: Sequence[int], declared: int | None, fab: Fabric) -> bool:
    """Whether yosys maps the multiply of x by a weight from ``weights`` (a constant, or a
    shared slot's phase table), its product declared ``declared`` bits wide, to a DSP, by the
    widths the $mul has when mul2dsp sees it (its parameters: ``fabric.DspRule``). The emitter
    declares both operands signed (an unsigned x gains a zero sign bit); wreduce trims the
    weight to its shortest form and, when neither operand can be negative, makes the multiply
    unsigned, which a signed-only DSP (DSP48) takes one bit wider again (measured, yosys 0.23,
    {0, x} of 8-bit x, 11-bit products: on iCE40 x * 3 stays in LUTs, x * -3 takes an
    SB_MAC16; on 7-series a phase table of 0 and 1 takes a DSP48E1)."""
    assert fab.dsp is not None
    unsigned = x.lo >= 0 and min(weights) >= 0
    if unsigned:
        a, b = x.bits, max(w.bit_length() for w in weights)
    else:
        a = x.bits + (x.lo >= 0)
        b = max(IntRange(w, w).bits + (w > 0) for w in weights)
    y = a + b if declared is None else min(declared, a + b)
    if unsigned and fab.dsp.signed_only:
        a, b = a + 1, b + 1
    return fab.dsp.maps(a, b, y)


def _lut_mult(x: IntRange, w: int) -> int:
    """LUTs of x * w built in fabric by yosys (an array multiplier): a LUT per operand-bit
    pair, about what yosys maps (DESIGN.md: 14-21 LUTs for 8 x 4 bits)."""
    return x.bits * (IntRange(w, w).bits)


def netlist_dsps(
    net: DenseNetlist | LayerNetlist, fab: Fabric = XC7, rows: frozenset[int] | None = None
) -> int:
    """DSP blocks of a lowered Dense layer: one per ``mult`` node the fabric's rule maps
    (``fabric.DspRule``; the products here are far narrower than a DSP48E1's 25 x 18 bits).
    yosys 0.23 synth_xilinx maps each such multiply to a DSP48E1 and may pack the adder after
    it into the slice's post-adder (measured: three 8-bit x constant products summed and
    registered became 3 DSP48E1 and no LUT), so the adder tree's LUTs are an upper bound for
    this kernel. Multiplies of dead rows (``rows``: the live ones) and of constant inputs
    are removed by synthesis and count nothing."""
    mults = net.of_kind("mult")
    if not mults:
        return 0
    xr = {n.col: n.range for n in net.inputs} if isinstance(net, LayerNetlist) else None
    if xr is None:
        return len(mults) if fab.dsp is not None else 0
    live = live_nodes(net, rows)
    # Identical multiplies (the same input times the same weight in several rows) are one
    # cell after opt_merge, so one DSP (measured: cal-mac-dsp-111's dense layers alone, 127
    # distinct of 132 multiplies, yosys 120 DSP48E1).
    vn = value_numbers(net)
    return len(
        {
            vn[n.name]
            for n in mults
            if (live is None or n.name in live)
            and xr[n.col].lo != xr[n.col].hi
            and _mult_in_dsp(xr[n.col], n.value, fab)
        }
    )


def dsp_input_register_bits(net: LayerNetlist, fab: Fabric, rows: frozenset[int] | None) -> int:
    """Bits of the previous layer's output registers that only DSP-mapped multiplies of this
    layer read: yosys' xilinx_dsp packs such a register into each DSP48's input register
    (AREG / BREG), so it is no fabric flip-flop (measured on benchmarks/estimate.py's mac-dsp
    designs: 87 of 87 and 96 of 88 flip-flops)."""
    if fab.dsp is None or not net.of_kind("mult"):
        return 0
    live = live_nodes(net, rows)
    xr = {n.col: n.range for n in net.inputs}
    readers: dict[int, int] = {}
    in_dsp: dict[int, int] = {}
    for n in net.nodes:
        if n.kind not in ("product", "mult") or (live is not None and n.name not in live):
            continue
        readers[n.col] = readers.get(n.col, 0) + 1
        r = xr[n.col]
        if n.kind == "mult" and r.lo != r.hi and _mult_in_dsp(r, n.value, fab):
            in_dsp[n.col] = in_dsp.get(n.col, 0) + 1
    return sum(xr[c].bits for c, k in in_dsp.items() if readers[c] == k)


def table_luts(table: Sequence[int], bits: int, fab: Fabric = XC7) -> int:
    """LUTs of a constant table indexed by the phase (``table[p]``, ``bits`` wide, two's
    complement): per bit, none if the bit is constant, a phase bit or its inverse (a wire or
    an inverter folded into the DSP's input), else a LUT over the phase bits."""
    n = len(table)
    pbits = max(1, (n - 1).bit_length())
    wires = [tuple((p >> k) & 1 for p in range(n)) for k in range(pbits)]
    luts = 0
    for b in range(bits):
        col = tuple((w >> b) & 1 for w in table)
        if len(set(col)) == 1 or col in wires or tuple(1 - v for v in col) in wires:
            continue
        luts += fab.reduce_luts(pbits) or 1
    return luts


def shared_cost(
    sd: SharedDense, x: Value, fab: Fabric = XC7, live: frozenset[int] | None = None
) -> tuple[dict[str, int], int, int]:
    """(LUT parts, FF, DSP) of a Dense shared over R cycles (``codegen.reuse``): per slot the
    phase mux of its inputs, and a multiplier, a DSP block when yosys maps it to one
    (``fabric.DspRule``; the weight table then a LUT per weight bit), else ``x.bits *
    w.bits`` LUTs with the table folded in; per row the adder tree over its slots, the
    accumulator's adder, the bias, the Requant, and accumulator and output registers. LUT
    parts: shared_mux (the phase muxes), shared_mult (weight tables and LUT multipliers),
    shared_add (adder trees, accumulators, bias, Requant). Rows outside ``live`` (None: all)
    are dead logic synthesis removes."""
    mux = mult = lut = ff = dsp = 0
    built: set[tuple] = set()
    for i, row in enumerate(sd.rows):
        if live is not None and i not in live:
            continue
        width = row.acc.bits
        prods: list[tuple[IntRange, bool]] = []  # each slot's product: range, in a DSP
        for slot in row.slots:
            terms = [t for t in slot if t is not None]
            # Two slots (of any rows) multiplying the same inputs by the same weights in every
            # phase are one cell after opt_merge (measured: val-mac-r2-213's DSP48E1 count).
            twin = tuple(slot) in built
            built.add(tuple(slot))
            # The mux reads the window at the bus's width, as a signed operand (an unsigned
            # bus gains a zero sign bit, which yosys mostly keeps: measured on the digits CNN).
            xb = x.range.bits + (0 if x.range.signed else 1)
            wb = max(IntRange(w, w).bits + (w >= 0) for _, w in terms)  # the table, signed
            choices = len({c for c, _ in terms}) + (1 if len(terms) < len(slot) else 0)
            if not twin:
                mux += fab.mux_word_luts(choices, xb)
            ranges = [x.ranges[c].scaled(w) for c, w in terms]
            if len(terms) < len(slot):
                ranges.append(IntRange(0, 0))  # a phase without a term multiplies by 0
            r = ranges[0]
            for other in ranges[1:]:
                r = r.union(other)
            table = [0 if t is None else t[1] for t in slot]
            const = table[0] if len(set(table)) == 1 else None  # one weight in every phase
            if const is not None:  # a constant multiply: a shift when w = +-2^k
                in_dsp = const != 0 and _mult_in_dsp(x.range, const, fab)
            else:
                in_dsp = fab.dsp is not None and _maps_to_dsp(x.range, table, None, fab)
            prods.append((r, in_dsp))
            if twin:
                continue
            if in_dsp:
                dsp += 1
                mult += table_luts(table, wb, fab)
            elif const is not None:
                mult += const_mult_luts(x.range, const) if const else 0
            else:
                mult += xb * wb
        # The slots' adder tree; an adder reading a DSP's product is its post-adder.
        while len(prods) > 1:
            nxt = []
            for (a, da), (b, db) in zip(prods[::2], prods[1::2]):
                lut += 0 if da or db else adder_luts(Word(a), Word(b), a + b)
                nxt.append((a + b, False))
            prods = nxt + ([prods[-1]] if len(prods) % 2 else [])
        lut += width - 1 + (row.total.bits - 1 if row.bias else 0)  # accumulate, bias
        out = row.total
        if sd.fused is not None:
            q = sd.fused
            lut += requant_luts(q.shift, q.rounding, q.lo, q.hi, row.total, fab)
            out = requant_node("q", Node("t", "add", row.total), q, 0).range
        ff += width + out.bits
    return {"shared_mux": mux, "shared_mult": mult, "shared_add": lut}, ff, dsp


def _shifted(w: Operand, k: int) -> Word:
    """``w`` shifted left by k: its range scaled, k more known-zero low bits."""
    return Word(w.range.scaled(1 << k), w.tz + k)


def _cost(
    name: str,
    kind: str,
    ctx: Context,
    lut_parts: dict[str, int],
    ff_parts: dict[str, int],
    dsp: int,
    cycles: int,
    ii: int,
    terms: int,
) -> LayerCost:
    fab = ctx.fab
    return LayerCost(
        name,
        kind,
        fab.lut(lut_parts),
        fab.ff(ff_parts),
        dsp,
        0,
        cycles,
        ii,
        terms,
        lut_parts,
        ff_parts,
    )


_LOGIC: dict[tuple, tuple[object, object]] = {}


def _logic_rows(net: LayerNetlist) -> frozenset[int]:
    """The rows of ``net`` computed by logic. A row the emitter assigns a literal (no logic
    node, or a Requant of a constant) is a flip-flop with a constant input, which yosys
    removes; a row whose range is constant but which is computed from inputs stays (yosys
    does not know the range)."""
    word = net.by_name
    return frozenset(
        n.row
        for kind, nodes in net.by_kind.items()
        if kind not in ("const", "input")
        for n in nodes
        if not (kind == "requant" and word[n.args[0]].kind == "const")
    )


def register_bits(
    ls: LayerSchedule, ctx: Context, net: LayerNetlist, final: Value, same_low: int = 0
) -> int:
    """Flip-flops of a layer's register banks, live and non-constant bits only.

    "flip-flop counts are exactly the sum of register widths" (DESIGN.md) for registers
    something reads: synthesis removes a register whose value is constant (a row with no
    terms) or that no output depends on (``live_elements``). The last bank holds one value per
    output element (``final``); the others hold the netlist's ``reg`` nodes. ``same_low``:
    low bits every value of ``final`` shares (constant flip-flops, removed too)."""
    rows = ctx.rows(ls.op if ls.fused is None else ls.fused)
    logic = _memo(_LOGIC, (id(net),), net, lambda: _logic_rows(net))
    bits = 0
    for i, r in enumerate(final.ranges):
        if i in logic and (rows is None or i in rows):
            bits += max(1, r.bits - same_low)
    live = live_nodes(net, rows)
    vn = value_numbers(net)
    kept: set[int] = set()
    for n in net.of_kind("reg"):
        if (live is None or n.name in live) and vn[n.name] not in kept:
            kept.add(vn[n.name])  # identical registers are merged (opt_merge)
            bits += n.range.bits
    return bits


def cost_dense(op: Dense, g: Graph, ctx: Context) -> LayerCost:
    """A Dense layer: the LUTs of its netlist (``layer_parts``), its live rows only; FF = the
    schedule's live registers (``register_bits``) + valid.

    The valid shift register adds 1 FF per cycle of latency. Synthesis also removes low bits
    a fused FLOOR shift drops from a pass-through register of a multi-stage layer, which the
    calibration of the ``reg`` category absorbs (results/estimate.md).
    """
    ls = ctx.scheds[op.name]
    if is_shared(g, op):  # at reuse factor R > 1 (hw.reuse); the busy counter and valid FFs
        r = reuse_of(g)
        rows = ctx.rows(op.name if ls.fused is None else ls.fused)
        x = g.values[op.inputs[0]]
        parts, ff, dsp = shared_cost(shared_layer(g, op), x, ctx.fab, rows)
        pb = max(1, (r - 1).bit_length())
        parts = {**parts, "control": pb}
        return _cost(
            op.name,
            KIND_OF[Dense],
            ctx,
            parts,
            {"reg": ff, "control": pb, "valid": r},
            dsp,
            r,
            r,
            op.n_terms,
        )
    net = lower_layer(g, op)
    rows = ctx.rows(op.name if ls.fused is None else ls.fused)
    parts = layer_parts(net, False, ctx.fab, rows)
    final = g.values[ls.fused or op.name]
    ff = {"reg": register_bits(ls, ctx, net, final), "valid": ls.cycles}
    if ctx.fab.dsp_input_regs and not isinstance(g.op(op.inputs[0]), Input):
        ff["reg"] -= dsp_input_register_bits(net, ctx.fab, rows)
    return _cost(
        op.name,
        KIND_OF[Dense],
        ctx,
        parts,
        ff,
        netlist_dsps(net, ctx.fab, rows),
        ls.cycles,
        1,
        op.n_terms,
    )


# --- Requant ------------------------------------------------------------------------------


def clip_compare_luts(x: IntRange, bound: int, above: bool, fab: Fabric = XC7) -> int:
    """LUTs deciding x > bound (``above``) or x < bound, for x held in x.bits bits.

    x > 2^k - 1 is an OR of the n - k bits from k up (with the sign for signed x), x < -2^k
    the sign and a NAND of the same bits, x < 0 the sign alone: a LUT tree over n - k
    signals (none for one signal). Any other constant: a carry-chain comparator.
    """
    n = x.bits
    if above and bound >= 0 and (bound + 1) & bound == 0:
        return reduce_luts(n - (bound + 1).bit_length() + 1, fab)
    if not above and bound == 0:
        return 0
    if not above and bound < 0 and (-bound) & (-bound - 1) == 0:
        return reduce_luts(n - (-bound).bit_length() + 1, fab)
    return comparator_luts(n, fab)


def requant_luts(
    shift: int, rounding: Rounding, lo: int, hi: int, r: IntRange, fab: Fabric = XC7
) -> int:
    """LUTs of clip(round(x * 2**-shift), lo, hi) for one element x in range r.

    The shift is wiring and FLOOR rounding is free (truncation). HALF_EVEN adds a tie test
    (a LUT tree over the dropped bits and the LSB) and an incrementer on the carry chain
    (the adder rule; yosys maps a lone one with 1 LUT, no route-through counted). Only clip
    sides the range shows can trigger cost anything (measurements in the module docstring).
    """
    if r.lo == r.hi:
        return 0
    luts = 0
    shifted = IntRange(_shift_round(r.lo, shift, rounding), _shift_round(r.hi, shift, rounding))
    if shift > 0 and rounding is Rounding.HALF_EVEN:
        floor = IntRange(r.lo >> shift, r.hi >> shift)
        up = IntRange(0, 1)
        luts += reduce_luts(shift + 1, fab) + adder_luts(Word(floor), Word(up), floor + up)
    over, under = shifted.hi > hi, shifted.lo < lo
    if over:
        luts += clip_compare_luts(shifted, hi, above=True, fab=fab)
    if under:
        luts += clip_compare_luts(shifted, lo, above=False, fab=fab)
    out = IntRange(min(max(shifted.lo, lo), hi), min(max(shifted.hi, lo), hi))
    bound = hi if over else lo
    if over and under:
        luts += out.bits
    elif (over or under) and bound not in (0, -1, (1 << out.bits) - 1):
        # A bound that is neither all zeros nor all ones needs a select LUT per bit.
        luts += out.bits
    return luts


def cost_requant(op: Requant, g: Graph, ctx: Context) -> LayerCost:
    """A Requant: the clip logic of its ``requant`` nodes in LUTs (live elements only). Fused
    into the preceding Dense's last stage (its nodes are in that layer's netlist) it adds no
    register and no cycle; standing alone it has its own one-cycle stage (+1 valid FF).
    """
    ls = ctx.scheds.get(op.name)
    first = op if ls is not None else g.op(op.inputs[0])
    if is_shared(g, first):  # fused into a shared Dense: costed there (shared_cost)
        return _cost(op.name, KIND_OF[Requant], ctx, {}, {}, 0, 0, reuse_of(g), 0)
    net = lower_layer(g, first)
    parts = layer_parts(net, True, ctx.fab, ctx.rows(op.name))
    ff: dict[str, int] = {}
    if ls is not None:
        ff = {"reg": register_bits(ls, ctx, net, g.values[op.name]), "valid": ls.cycles}
    cycles = ls.cycles if ls is not None else 0
    return _cost(op.name, KIND_OF[Requant], ctx, parts, ff, 0, cycles, 1, 0)


def _elementwise_cost(op: Max | Threshold, g: Graph, ctx: Context) -> LayerCost:
    ls = ctx.scheds[op.name]
    net = lower_layer(g, op)
    parts = layer_parts(net, False, ctx.fab, ctx.rows(op.name))
    # A Threshold's outputs base + step * count share their low trailing_zeros(step) bits (a
    # sign, -1 or +1, is ...1 either way).
    same = trailing_zeros(op.step) if isinstance(op, Threshold) and op.step else 0
    ff = {"reg": register_bits(ls, ctx, net, g.values[op.name], same), "valid": ls.cycles}
    return _cost(op.name, KIND_OF[type(op)], ctx, parts, ff, 0, ls.cycles, 1, 0)


def cost_max(op: Max, g: Graph, ctx: Context) -> LayerCost:
    """A Max layer: its comparator trees (``max`` nodes) in LUTs; FF = the schedule's live
    registers + valid."""
    return _elementwise_cost(op, g, ctx)


def popcount_luts(n: int, fab: Fabric = XC7) -> int:
    """LUTs of counting n one-bit signals: groups of up to k bits (a LUT's inputs), each
    counted by one LUT per bit of its count (a function of at most k inputs; a lone bit is a
    wire), then a balanced adder tree over the group counts (the adder rule).

    yosys maps a registered sum of n bits so: measured 2, 4, 4, 14 LUT for 3, 6, 7, 15 bits
    (this rule, LUT6: 2, 3, 5, 14), where the adder rule on a tree of pairwise adds (the
    emitted structure, which yosys re-maps) would say 22 for 15 bits.
    """
    k = fab.lut_inputs
    sizes = [min(k, n - j) for j in range(0, n, k)]
    luts = sum(IntRange(0, m).bits for m in sizes if m > 1)
    level = [IntRange(0, m) for m in sizes]
    while len(level) > 1:
        nxt = []
        for a, b in zip(level[::2], level[1::2], strict=False):
            luts += adder_luts(Word(a), Word(b), a + b)
            nxt.append(a + b)
        level = nxt + level[len(nxt) * 2 :]
    return luts


def cost_threshold(op: Threshold, g: Graph, ctx: Context) -> LayerCost:
    """A Threshold layer: comparators, popcounts and the output scaling in LUTs
    (``layer_parts``); FF = the schedule's live registers + valid."""
    return _elementwise_cost(op, g, ctx)


# The table of cost functions, one per op kind; Input ops cost nothing (they are the
# graph's ports). A test fails if an op kind of OP_KINDS other than Input lacks an entry.
CostFn = Callable[[Op, Graph, Context], LayerCost]
COST_FUNCTIONS: dict[type[Op], CostFn] = {
    Dense: cost_dense,
    Requant: cost_requant,
    Max: cost_max,
    Threshold: cost_threshold,
}
NOT_COSTED: frozenset[type[Op]] = frozenset({Input})


def choose_kernels(g: Graph, dsp_budget: int | None = None) -> dict[str, dict]:
    """``auto``: per Dense layer, a kernel by the estimate, within a DSP budget (default: the
    DSP slices of the graph's board, ``meta["board"]``; none without a board).

    Each layer starts with the kernel of fewest LUTs among those using no DSP (FF break a
    tie). Then layers move to a DSP kernel where it saves LUTs, the most LUTs saved per DSP
    first, while the whole design's DSPs stay within the budget. Returns {layer: {"kernel":
    chosen, "lut": {kernel: LUTs}, "ff": {...}, "dsp": {...}, "why": text}}: what the manifest
    says and why.
    """
    from hwprune.hw.kernels import KERNELS

    if dsp_budget is None:
        dsp_budget = 0
        if g.meta.get("board"):
            from hwprune.boards import get_board

            dsp_budget = get_board(g.meta["board"]).dsp
    out = {}
    for op in g.dense_ops():
        x = g.values[op.inputs[0]]
        lut, ff, dsp = {}, {}, {}
        for k in KERNELS:
            net = lower_dense(g, op, k)
            lut[k] = netlist_luts(net, x)
            ff[k] = sum(n.range.bits for n in net.nodes if n.kind == "reg")
            dsp[k] = netlist_dsps(net)
        best = min((k for k in KERNELS if dsp[k] == 0), key=lambda k: (lut[k], ff[k]))
        why = "fewest LUTs without DSP"
        out[op.name] = {"kernel": best, "lut": lut, "ff": ff, "dsp": dsp, "why": why}
    # Moves to a DSP kernel: (LUTs saved per DSP, layer, kernel), best first.
    moves = []
    for name, c in out.items():
        for k, d in c["dsp"].items():
            saved = c["lut"][c["kernel"]] - c["lut"][k]
            if d > 0 and saved > 0:
                moves.append((saved / d, name, k))
    used = 0
    for _, name, k in sorted(moves, key=lambda m: (-m[0], m[1], m[2])):
        c = out[name]
        if c["dsp"][c["kernel"]] > 0:
            continue  # this layer already moved
        if used + c["dsp"][k] <= dsp_budget:
            used += c["dsp"][k]
            c["kernel"] = k
            c["why"] = (
                f"{c['lut'][c['kernel']]:,} LUT + {c['dsp'][k]} DSP instead of the LUT-only "
                f"{min(c['lut'][j] for j in c['lut'] if c['dsp'][j] == 0):,} LUT; "
                f"{used} of {dsp_budget} DSP used"
            )
        else:
            c["why"] = (
                f"fewest LUTs without DSP; a DSP kernel would need {c['dsp'][k]} DSP, "
                f"{dsp_budget - used} of {dsp_budget} left"
            )
    return out
