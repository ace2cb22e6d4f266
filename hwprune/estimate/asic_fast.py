"""A fast ASIC estimate: cell area and critical path of a compiled design on a standard-cell
library, from its lowered netlist, without synthesis (``asic_estimate(g, lib)``).

It costs the netlist the FPGA estimator costs (``estimate.report.design_costs``: every
node's products, adders of exact widths, registers, compares, requant) and turns the counts
into library figures:

* sequential area = flip-flop bits x the area of the library's D flip-flop cell, read from
  its Liberty file (``dff_area``: the smallest cell named DFF*, DFFPOSX1 = 96 µm² on osu018;
  yosys' ``dfflibmap`` maps every emitted register to it, the synchronous reset being
  logic). The bits are the estimator's live register widths (``LayerCost.ff_parts``), a
  stream's line buffer included (``ASIC_FABRIC`` has no shift-register LUTs). No constant is
  fitted here: where the mapped netlist keeps fewer (2-bit networks, whose logic abc
  proves partly constant), the estimate is high;
* combinational area = sum over ``AREA_TERMS`` of the layer's count x a fitted µm² per unit:
  the estimator's per-category LUT counts (``fabric.PARTS``) on ``ASIC_FABRIC`` (the
  7-series primitive rules of ``choices.CHOICE_FABRIC``, uncalibrated, without DSP blocks:
  on an ASIC every multiply is logic) summed into groups (``GROUPS``), plus the flip-flop
  bits again (each register's reset / enable logic);
* a layer's critical path = t0 + sum over ``DELAY_TERMS`` of k x term (ns): ``levels``, the
  most logic levels between two registers of its netlist (``netlist_path``; a product by a
  constant of d CSD digits counts ceil(log2 d) levels, a multiplier 1 + log2 of its weight's
  bits, a sum, compare, requant or max one), ``width``, the widest adder / compare in bits,
  ``path_bits``, the most bits summed over the levels of one path, ``fanout``, the loads of
  a shared or streamed layer's select / enable net (its mux LUTs, plus its register bits
  when they are enabled) and ``fanout2`` = fanout² / 1000: abc -liberty inserts no buffers,
  so that net's delay and the slew it hands on grow with its load. The design's critical
  path is its worst layer's (OpenSTA times register to register and port to register with
  zero port delays).

Every constant but the flip-flop cell's area is fitted per library by benchmarks/asic.py on its
calibration designs (yosys 0.23 ``synth -flatten; dfflibmap; abc -liberty`` and OpenSTA
2.0.17 through ``estimate.asic.synth_asic``) and kept in asic_fit.toml beside this file;
benchmarks/results/asic.md gives the error on its validation designs.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import replace
from pathlib import Path

from hwprune.errors import HwpruneError
from hwprune.estimate.choices import CHOICE_FABRIC
from hwprune.estimate.fabric import PARTS
from hwprune.libraries import Library

FIT_FILE = Path(__file__).with_name("asic_fit.toml")

# The estimator's rules on 7-series primitives without its two grid fits (CHOICE_FABRIC)
# and without DSP blocks: a multiply the FPGA would give a DSP is counted in LUTs.
# A stream's line buffer is flip-flops (no shift-register LUTs: ``window`` bits).
ASIC_FABRIC = replace(CHOICE_FABRIC, dsp=None, srl=False)

# fabric.PARTS category -> the term of the area fit it is counted in.
GROUPS: dict[str, str] = {
    "product": "product",
    "product_deep": "product_deep",
    "shared_mult": "mult",
    "adder": "adder",
    "adder_narrow": "adder_narrow",
    "adder_bits2": "adder_narrow",
    "macc": "adder_narrow",
    "macc_wide": "adder",
    "dsp_add": "adder",
    "shared_add": "adder",
    "requant": "compare",
    "max": "compare",
    "threshold": "compare",
    "shared_mux": "shared_mux",
    "srl": "mux",
    "control": "mux",
}
assert set(GROUPS) == set(PARTS), "every estimator category needs an area term"
# µm² per LUT of each group: product (by a constant, CSD shift-and-add, of two digits),
# product_deep (of three or more), mult (a multiplier: the products of a layer lowered with
# multiply nodes, ``mac-dsp``, and a shared layer's), adder, adder_narrow (operands of at
# most 4 bits, +-1 cones), adder_in2 (adders of a layer whose input has at most 2 bits:
# abc reduces a 2-bit network's sums far more than the LUT rule says), compare, mux
# (control, stream shifts); shared_mux: µm² per phase-mux LUT x (R - 1), the 2:1
# multiplexers an R-input select takes per bit (one LUT6 holds a 4:1 select); ff: µm² of
# logic per flip-flop bit (its reset / enable gating). Tried and dropped (no better on the
# calibration designs): a per-layer intercept, the sign-extension bits of a row's $macc,
# full / half adder bits counted from the netlist in place of LUTs, a fitted share of the
# flip-flop bits.
AREA_TERMS: tuple[str, ...] = (
    "product",
    "product_deep",
    "mult",
    "adder",
    "adder_narrow",
    "adder_in2",
    "compare",
    "mux",
    "shared_mux",
    "ff",
)
DELAY_TERMS: tuple[str, ...] = ("levels", "width", "path_bits", "fanout", "fanout2")
# Node kinds of a lowered netlist that are one level of logic between registers.
_LEVEL_KINDS = frozenset({"add", "shiftadd", "count", "max", "cmp", "requant", "scale", "mult"})


def layer_delay_terms() -> tuple[str, ...]:
    return DELAY_TERMS


@functools.lru_cache(maxsize=8)
def dff_area(lib: Library) -> float:
    """Area (µm²) of the library's plain D flip-flop: the smallest sequential cell whose name
    starts with DFF (Liberty ``area``)."""
    from hwprune.estimate.asic import liberty_cells

    cells = liberty_cells(lib.liberty)
    dffs = [c.area for n, c in cells.items() if c.sequential and n.upper().startswith("DFF")]
    if not dffs:
        dffs = [c.area for c in cells.values() if c.sequential and c.area > 0]
    if not dffs:
        raise HwpruneError(f"{lib.liberty} defines no flip-flop cell")
    return min(dffs)


@functools.lru_cache(maxsize=1)
def _fits() -> dict:
    if not FIT_FILE.is_file():
        return {}
    return tomllib.loads(FIT_FILE.read_text())


def fitted_libraries() -> tuple[str, ...]:
    """The libraries asic_fit.toml has constants for (by name)."""
    return tuple(_fits())


def lib_constants(lib: Library) -> dict:
    """The fitted constants of ``lib`` (asic_fit.toml, written by benchmarks/asic.py)."""
    c = _fits().get(lib.name)
    if c is None:
        raise HwpruneError(
            f"{lib.target}: no fitted constants for the fast ASIC estimate in {FIT_FILE}; "
            "run 'benchmarks/asic.py --measure --fit' with the library installed"
        )
    return c


def netlist_path(net) -> tuple[int, int, int]:
    """(levels, width, path_bits) of a lowered layer: the most logic levels on a path
    between two registers (or from the layer's input), the widest adder / compare in bits,
    and the most bits summed over the levels of one such path (a ripple of every level)."""
    from hwprune.hw.csd import csd_digits

    arrival: dict[str, tuple[int, int]] = {}
    worst = width = path = 0
    for n in net.nodes:
        a = max((arrival.get(x, (0, 0))[0] for x in n.args), default=0)
        b = max((arrival.get(x, (0, 0))[1] for x in n.args), default=0)
        if n.kind in _LEVEL_KINDS:
            # a multiplier (mult) is an adder tree over its weight's bits
            a += 1 if n.kind != "mult" else 1 + (abs(n.value).bit_length() - 1).bit_length()
            w = max([n.range.bits, *(net.by_name[x].range.bits for x in n.args)])
            b += w
            width = max(width, w)
        elif n.kind == "product":
            d = len(csd_digits(abs(n.value)))
            if d > 1:
                a += math.ceil(math.log2(d))
                b += n.range.bits
                width = max(width, n.range.bits)
        worst, path = max(worst, a), max(path, b)
        arrival[n.name] = (0, 0) if n.kind == "reg" else (a, b)
    return worst, width, path


_SUM_KINDS = frozenset({"add", "shiftadd", "count"})


def _delay_terms(g, names: list[str], fused: set[str]) -> tuple[dict[str, float], bool]:
    """DELAY_TERMS of the layer made of ops ``names`` (a stream stage joins several by '+'),
    and whether its netlist multiplies with multiplier nodes (``mult``)."""
    from hwprune.hw.layers import lower_layer

    levels = width = path = 0
    mult = False
    for name in names:
        if name not in g.values or name in fused:
            continue
        try:
            net = lower_layer(g, g.op(name))
        except (TypeError, KeyError, HwpruneError):
            # no lowering (a stream's window or pooling stage): one level of its output width
            w = max(r.bits for r in g.values[name].ranges)
            levels, width, path = max(levels, 1), max(width, w), max(path, w)
            continue
        lv, w, p = netlist_path(net)
        levels, width, path = max(levels, lv), max(width, w), max(path, p)
        mult = mult or bool(net.of_kind("mult"))
    terms = {"levels": float(levels), "width": float(width), "path_bits": float(path)}
    return terms, mult


def _input_bits(g, name: str) -> int:
    """Bits of the input of op ``name`` (a large number when it is no single op's)."""
    if name not in g.values:
        return 1 << 10
    ins = g.op(name).inputs
    return g.values[ins[0]].range.bits if ins else 1 << 10


def design_features(g) -> list[dict]:
    """Per layer of the compiled design ``g`` (``design_costs`` order): name, kind, the
    counts of AREA_TERMS (``area_terms``), flip-flop bits (``ff_bits``) and DELAY_TERMS
    (``delay_terms``)."""
    from hwprune.estimate.report import design_costs
    from hwprune.hw.reuse import reuse_of
    from hwprune.hw.schedule import schedule

    costs, _ = design_costs(g, ASIC_FABRIC)
    reuse = reuse_of(g)
    try:
        fused = {ls.fused for ls in schedule(g) if ls.fused}
    except Exception:  # a stream graph's ops are scheduled by hw.stream
        fused = set()
    out = []
    for c in costs:
        delay, mult = _delay_terms(g, c.name.split("+"), fused)
        terms = dict.fromkeys(AREA_TERMS, 0.0)
        for part, n in c.lut_parts.items():
            group = GROUPS[part]
            if group == "adder" and _input_bits(g, c.name) <= 2:
                group = "adder_in2"
            terms["mult" if mult and group == "product" else group] += n
        terms["shared_mux"] *= max(1, reuse - 1)
        ff = sum(c.ff_parts.values())
        terms["ff"] = float(ff)
        # One select or enable net drives every phase mux and every enabled register of a
        # shared (R > 1) or streamed layer, unbuffered after abc: its delay grows with them.
        gated = c.ff_parts.get("control", 0) or c.ff_parts.get("window", 0)
        delay["fanout"] = terms["mux"] + c.lut_parts.get("shared_mux", 0) + (ff if gated else 0)
        delay["fanout2"] = delay["fanout"] ** 2 / 1000.0
        out.append(
            {
                "name": c.name,
                "kind": c.kind,
                "area_terms": terms,
                "ff_bits": ff,
                "delay_terms": delay,
            }
        )
    return out


def asic_estimate(g, lib: Library) -> dict:
    """Cell area and critical path of the design compiled from ``g`` on ``lib``, without
    synthesis (module docstring). Returns JSON-able data: library, area_um2 {combinational,
    sequential, total}, critical_path_ns, fmax_mhz, ff_bits, latency_cycles and ii (the
    schedule the boards' estimate reports), and per layer (``layers``) the same figures with
    its name and kind.

    Sources of the constants: the flip-flop area from ``lib``'s Liberty file; the µm² per
    area term and the delay constants from asic_fit.toml (benchmarks/asic.py's fit on its
    calibration designs, yosys 0.23 + OpenSTA 2.0.17)."""
    consts = lib_constants(lib)
    area_k, delay_k = consts["area"], consts["delay"]
    dff = dff_area(lib)
    layers = []
    for f in design_features(g):
        comb = sum(area_k.get(t, 0.0) * n for t, n in f["area_terms"].items())
        seq = f["ff_bits"] * dff
        dt = f["delay_terms"]
        logic = any(v > 0 for v in dt.values())
        delay = delay_k["t0"] + sum(delay_k.get(t, 0.0) * v for t, v in dt.items())
        layers.append(
            {
                "name": f["name"],
                "kind": f["kind"],
                "area_um2": {
                    "combinational": round(comb, 1),
                    "sequential": round(seq, 1),
                    "total": round(comb + seq, 1),
                },
                "ff_bits": f["ff_bits"],
                "critical_path_ns": round(delay, 3) if logic else None,
            }
        )
    from hwprune.estimate.report import design_costs

    _, (latency, ii) = design_costs(g, ASIC_FABRIC)  # the schedule, as the boards' estimate
    comb = sum(x["area_um2"]["combinational"] for x in layers)
    seq = sum(x["area_um2"]["sequential"] for x in layers)
    paths = [x["critical_path_ns"] for x in layers if x["critical_path_ns"] is not None]
    crit = max(paths, default=delay_k["t0"])
    return {
        "library": lib.target,
        "method": "fast (netlist costing, asic_fit.toml)",
        "area_um2": {
            "combinational": round(comb, 1),
            "sequential": round(seq, 1),
            "total": round(comb + seq, 1),
        },
        "critical_path_ns": round(crit, 3),
        "fmax_mhz": round(1000.0 / crit, 2) if crit > 0 else None,
        "ff_bits": sum(x["ff_bits"] for x in layers),
        "latency_cycles": latency,
        "ii": ii,
        "layers": layers,
    }
