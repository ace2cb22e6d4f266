"""What each device family's fabric offers the estimate: LUT inputs, shift-register LUTs, DSP
blocks and the rule that maps a multiply to one, and the calibrated constants.

One ``Fabric`` per family; a board picks its own (``fabric_of``). The cost functions of
``hwprune.estimate.costs`` count LUTs of a lowered netlist per category (``PARTS``) with the
fabric's primitives; each category's count is then scaled by the family's fitted constant
(``calibration.toml``, written by benchmarks/estimate.py from yosys runs on its
calibration designs, and listed there with the measurement it came from).

Primitive sources:

* xc7 / xcup: LUT6 with a CARRY4 (UltraScale+: CARRY8) per slice, SRL16E / SRLC32E shift
  registers in SLICEM LUTs (AMD UG474 "CLB Slices", UG574); a multiply goes to a DSP48E1/E2
  when yosys' ``synth_xilinx`` mul2dsp admits it: operands of 2 bits or more, a product of 9
  bits or more (DSP_Y_MINWIDTH=9 of ``help synth_xilinx``), A up to 25 x B up to 18 bits,
  signed only (an unsigned multiply takes a bit more per operand: ``costs._maps_to_dsp``).
* ice40: SB_LUT4 with one SB_CARRY per bit (iCE40 LP/HX and UltraPlus data sheets, "PLB");
  no shift-register LUTs (a delay line is flip-flops); SB_MAC16 on UltraPlus parts only, and
  only with ``synth_ice40 -dsp``: A and B of 2-16 bits, a product of 11 bits or more
  (``help synth_ice40``: mul2dsp -D DSP_A_MAXWIDTH=16 ... -D DSP_Y_MINWIDTH=11).
* ecp5: LUT4 slices, a CCU2C per two adder bits (counted as two LUT4s: ``synth.count_ecp5``);
  no shift-register LUTs in yosys' flow; MULT18X18D for operands of 2-18 bits
  (``help synth_ecp5``: DSP_A_MAXWIDTH=18, DSP_B_MAXWIDTH=18, no product minimum).

Two rules are fits of yosys runs on grids of one-layer designs, each written by its script
beside the measurement: a Threshold row's k compares of one value (``compare_set_luts``,
benchmarks/threshold_grid.py, threshold_fit.toml; LUT4 families only, where one power law
describes the grid) and an adder cone yosys builds as one $macc (``cone_luts``,
benchmarks/cone_grid.py, cone_fit.toml).

Families hwprune has no yosys flow for are costed with the fabric nearest them: Versal as
UltraScale+ (LUT6, DSP58 treated as DSP48E2), Intel ALMs (fracturable 6-input LUTs) as
7-series.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

# The categories LUTs are counted in (a lowered netlist's node kinds and a stream's parts):
# product (a constant multiply's CSD adders; product_deep: of three digits or more, a chain
# yosys' alumacc folds into the row's $macc), adder (adder-tree, accumulator and bias adders),
# adder_narrow (adders of operands of at most costs.NARROW_BITS bits; adder_bits2: of at
# most 2 bits, a binarised network's sums), macc (an adder cone yosys' alumacc merges into
# one $macc, of +-1 terms: costs.macc_cones), macc_wide (such a cone of wider plain words:
# Fabric.cone_luts), dsp_add (the first
# adder after a DSP-mapped product, which the DSP's post-adder may take),
# requant (shift, rounding, clip), max (compare and select), threshold (compares, popcount,
# scaling), a Dense shared over R cycles (shared_mux: phase muxes, shared_mult: weight
# tables and LUT multipliers, shared_add: adders, accumulators, its Requant), srl
# (shift-register LUTs of a stream window), control (counters, muxes and decodes).
PARTS: tuple[str, ...] = (
    "product",
    "product_deep",
    "adder",
    "adder_narrow",
    "adder_bits2",
    "macc",
    "macc_wide",
    "dsp_add",
    "requant",
    "max",
    "threshold",
    "shared_mux",
    "shared_mult",
    "shared_add",
    "srl",
    "control",
)
# The categories flip-flops are counted in: reg (pipeline and output registers), valid (the
# valid pipe), window (a stream's line buffer kept in flip-flops), control.
FF_PARTS: tuple[str, ...] = ("reg", "valid", "window", "control")

CALIBRATION = Path(__file__).with_name("calibration.toml")


@dataclass(frozen=True)
class DspRule:
    """When yosys maps a multiply to a DSP block (its mul2dsp parameters for the family)."""

    name: str  # the cell: DSP48E1, SB_MAC16, MULT18X18D
    a_max: int
    b_max: int
    min_width: int = 2
    y_min: int = 1
    signed_only: bool = False  # DSP_SIGNEDONLY: an unsigned multiply takes a bit more each

    def maps(self, a_bits: int, b_bits: int, y_bits: int | None = None) -> bool:
        """Whether an a_bits x b_bits multiply whose product needs y_bits (default: a + b)
        becomes one DSP block (wider ones are split by mul2dsp into several; the designs
        here never reach the maxima)."""
        y = a_bits + b_bits if y_bits is None else y_bits
        return min(a_bits, b_bits) >= self.min_width and y >= self.y_min


@dataclass(frozen=True, eq=False)
class Fabric:
    """A family's primitives and its calibrated constants (``PARTS`` -> factor). Compared
    and hashed by identity: ``fabric_of`` gives one object per family and part kind."""

    family: str  # the yosys flow's name: xc7, xcup, ice40, ecp5
    lut_inputs: int  # 6 or 4
    srl: bool  # shift-register LUTs
    dsp: DspRule | None  # None: multiplies are built in LUTs
    dsp_input_regs: bool = False  # yosys packs a register feeding only DSPs into them
    lut_scale: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    ff_scale: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    # (c, p, q) of compare_set_luts, fitted per family by benchmarks/threshold_grid.py
    compare_set: tuple[float, float, float] | None = None
    # (c, p, q) of cone_luts, fitted per family by benchmarks/cone_grid.py
    cone: tuple[float, float, float] | None = None

    def lut(self, parts: dict[str, float]) -> int:
        """The calibrated LUT count of a layer's per-category counts."""
        return round(sum(n * self.lut_scale.get(p, 1.0) for p, n in parts.items()))

    def ff(self, parts: dict[str, float]) -> int:
        """The calibrated flip-flop count of a layer's per-category counts."""
        return round(sum(n * self.ff_scale.get(p, 1.0) for p, n in parts.items()))

    def reduce_luts(self, n_inputs: int) -> int:
        """LUTs of a tree reducing n_inputs signals to one (each LUT takes k, gives back 1)."""
        k = self.lut_inputs
        return math.ceil((n_inputs - 1) / (k - 1)) if n_inputs > 1 else 0

    def comparator_luts(self, bits: int) -> int:
        """LUTs comparing a ``bits``-wide value with a constant on the carry chain: a LUT6
        decides 3 bits (measured, xc7: 20 bits -> 7), a LUT4 beside SB_CARRY / CCU2C one."""
        return math.ceil(bits / 3) if self.lut_inputs == 6 else bits

    def compare_set_luts(self, bits: int, k: int) -> int:
        """LUTs of k > 1 compares of one ``bits``-wide value with sorted constants (a
        Threshold row). yosys/ABC share their logic: measured on LUT4, one compare of a
        14-bit value is about 14 LUTs, fifteen about 85, not 210
        (benchmarks/results/threshold_grid.md). The fit c * k^p * bits^q of that grid
        (``THRESHOLD_FIT``, written by benchmarks/threshold_grid.py); ``compare_set`` is None
        without a fit, and then each compare is costed by the compare rule
        (``costs._layer_parts``)."""
        assert self.compare_set is not None
        c, p, q = self.compare_set
        return round(c * k**p * bits**q)

    def cone_luts(self, k: int, bits: float) -> int:
        """LUTs of an adder cone yosys builds as one $macc: k operands of ``bits`` bits on
        average (``costs.macc_cones``). The fit c * k^p * bits^q of
        benchmarks/results/cone_grid.md (``CONE_FIT``, written by benchmarks/cone_grid.py);
        ``cone`` is None without a fit, and then the adder rule costs the cone's adders."""
        assert self.cone is not None
        c, p, q = self.cone
        return round(c * k**p * bits**q)

    def mux_word_luts(self, n: int, bits: int) -> int:
        """LUTs of an n:1 mux of ``bits``-wide words on a shared select. On LUT6 fabric a 2:1
        mux bit merges with its neighbour or the logic it feeds (measured: the R = 2 shared
        Dense designs of benchmarks/estimate.py fit half a LUT per bit, R = 4 a whole one)."""
        if n == 2 and self.lut_inputs == 6:
            return math.ceil(bits / 2)
        return bits * self.mux_luts(n)

    def mux_luts(self, n: int) -> int:
        """LUTs per bit of an n:1 mux: a LUT6 is a 4:1 mux (MUXF7/F8 join them), a LUT4 a
        2:1 mux with a spare input (a tree of n - 1)."""
        if n <= 1:
            return 0
        return math.ceil(n / 4) if self.lut_inputs == 6 else n - 1


# The fits of a Threshold row's compares (Fabric.compare_set_luts) and of an adder cone
# (Fabric.cone_luts) per yosys flow, each written by its benchmark script.
THRESHOLD_FIT = Path(__file__).with_name("threshold_fit.toml")
CONE_FIT = Path(__file__).with_name("cone_fit.toml")


def _fit(path: Path, flow: str) -> tuple[float, float, float] | None:
    table = tomllib.loads(path.read_text()) if path.exists() else {}
    fit = table.get(flow)
    return (fit["c"], fit["p"], fit["q"]) if fit else None


def _compare_fit(flow: str) -> tuple[float, float, float] | None:
    return _fit(THRESHOLD_FIT, flow)


def _cone_fit(flow: str) -> tuple[float, float, float] | None:
    return _fit(CONE_FIT, flow)


# yosys' xilinx_dsp packs the registers before and after a DSP48 into it (AREG/BREG, PREG).
_XC7 = Fabric(
    "xc7",
    6,
    True,
    DspRule("DSP48E1", 25, 18, 2, 9, True),
    True,
    compare_set=_compare_fit("xc7"),
    cone=_cone_fit("xc7"),
)
_XCUP = Fabric(
    "xcup",
    6,
    True,
    DspRule("DSP48E2", 27, 18, 2, 9, True),
    True,
    compare_set=_XC7.compare_set,
    cone=_XC7.cone,
)
_ICE40 = Fabric("ice40", 4, False, None, compare_set=_compare_fit("ice40"), cone=_cone_fit("ice40"))
# SB_MAC16: yosys' DSP_Y_MINWIDTH is 11 (`help synth_ice40`), on the $mul as mul2dsp sees it
# (costs._mult_in_dsp).
_ICE40_UP = Fabric(
    "ice40",
    4,
    False,
    DspRule("SB_MAC16", 16, 16, 2, 11),
    compare_set=_ICE40.compare_set,
    cone=_ICE40.cone,
)
_ECP5 = Fabric(
    "ecp5",
    4,
    False,
    DspRule("MULT18X18D", 18, 18, 2, 1),
    compare_set=_compare_fit("ecp5"),
    cone=_cone_fit("ecp5"),
)

# hwprune board family -> fabric (boards.FAMILIES); iCE40 UltraPlus parts get SB_MAC16.
_OF_FAMILY: dict[str, Fabric] = {
    "xc7": _XC7,
    "zynq-ultrascale-plus": _XCUP,
    "virtex-ultrascale-plus": _XCUP,
    "versal": _XCUP,
    "ice40": _ICE40,
    "ecp5": _ECP5,
    "cyclone-v": _XC7,
    "arria-10": _XC7,
    "agilex-7": _XC7,
}
XC7 = _XC7


# A family without constants of its own -> the family whose constants it takes.
CALIBRATED_AS: dict[str, str] = {"xcup": "xc7"}


@functools.cache
def _calibration() -> dict:
    return tomllib.loads(CALIBRATION.read_text()) if CALIBRATION.exists() else {}


@functools.cache
def calibrated(fab: Fabric) -> Fabric:
    """``fab`` with its family's constants from calibration.toml (none: factors of 1)."""
    # UltraScale+ has 7-series' LUT6 and carry-per-bit structure (UG574): until it has its
    # own measurements, it takes 7-series' constants.
    table = _calibration()
    cal = table.get(fab.family) or table.get(CALIBRATED_AS.get(fab.family, ""), {})
    return Fabric(
        fab.family,
        fab.lut_inputs,
        fab.srl,
        fab.dsp,
        fab.dsp_input_regs,
        MappingProxyType(dict(cal.get("lut", {}))),
        MappingProxyType(dict(cal.get("ff", {}))),
        fab.compare_set,
        fab.cone,
    )


def fabric_of_family(family: str, part: str = "") -> Fabric:
    """The calibrated fabric of a board family (and part: iCE40 UltraPlus has DSPs), one
    object per fabric."""
    return calibrated(raw_fabric(family, part))


def fabric_of(board) -> Fabric:
    """The calibrated fabric of ``board`` (a ``boards.Board``)."""
    return fabric_of_family(board.family, board.part)


def raw_fabric(family: str, part: str = "") -> Fabric:
    """The fabric without calibration (every factor 1): what the fit measures against."""
    fab = _OF_FAMILY.get(family, _XC7)
    if fab is _ICE40 and part.lower().startswith("ice40up"):
        fab = _ICE40_UP
    return fab
