"""Costs of a streaming design (``hw.stream``, ``codegen.stream``): per stage its kernel (the
layer cost functions on the stage's kernel graph), its window and the control; the head as
any graph; and, next to each stage, what the same layers cost unrolled.

The window is a shift register of the padded map, read at the kernel's taps. yosys 0.23's
``synth_xilinx`` (its xilinx_srl pass, minimum length 3; measured on CNN stages) maps each
run of untapped positions together with the tap that ends it, when three or more long, to
shift-register LUTs (SRL16E, or SRLC32E above 16), one per 32 positions per bit lane, the
tap reading the SRL's output; shorter runs stay flip-flops (``srl_luts``): the digits CNN's
first stage, taps 0-2, 10-12 and 20-22 of 8 lanes, is 16 SRLs and 56 flip-flops, as yosys
counts; the Fashion-MNIST CNN's four stages 176 SRLs, yosys 173 (126 SRL16E, 47 SRLC32E). Nothing
goes to block RAM: a line buffer becomes BRAM only when it is read through an address, which
a shift register is not.
SRLs are LUTs of SLICEM slices, so they count against the board's LUTs (and are reported
apart as ``lutram``).

The control: the padded-grid counters (py, px: their width in FF, an incrementer and a wrap
compare in LUTs, ``counter_luts``), the padding mux in front of the window (a LUT per lane),
the valid pipe (a FF per kernel cycle). The collector is a register per element of the
head's input (FF) and a position decode per pixel (``ceil(bits / 5)`` LUT per pixel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hwprune.estimate.costs import LayerCost
from hwprune.estimate.fabric import XC7, Fabric
from hwprune.hw.reuse import shared_dense, shared_layer
from hwprune.hw.stream import Plan, Stage
from hwprune.ir.graph import Graph

SRL_DEPTH = 32  # positions one SLICEM LUT holds as a shift register (SRLC32E; SRL16E: 16)
SRL_MIN = 3  # the shortest untapped run yosys' xilinx_srl maps (its -minlen)


@dataclass(frozen=True)
class StageCost(LayerCost):
    """A stream stage's cost: the LayerCost fields (kernel, window and control together),
    and its parts and the unrolled layers' cost, for estimate.json."""

    parts: dict = field(default_factory=dict)
    unrolled: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {**super().as_dict(), "form": "stream", **self.parts, "unrolled": self.unrolled}


def window_bits(st: Stage) -> tuple[int, list[int]]:
    """Lanes of the window's shift register (channel bits and the flag bit) and the sorted
    positions the kernel reads (0: the newest pixel)."""
    b = st.kernel.inputs[0].range.bits
    lanes = len(st.in_map.channels) * b + (1 if st.flag else 0)
    return lanes, sorted(set(st.taps))


def srl_luts(lanes: int, taps: list[int], srl_ok: bool = True) -> tuple[int, int]:
    """(SRL LUTs, flip-flops) of a shift register read at ``taps`` (sorted, from 0): a run of
    untapped positions and the tap that ends it, SRL_MIN or more long, is one SRL LUT per
    SRL_DEPTH positions per lane, the tap reading the SRL's output; a shorter run is
    flip-flops, and so is the first tap. A fabric without shift-register LUTs (``srl_ok``
    false: iCE40, ECP5 in yosys) keeps every position in flip-flops."""
    srl, ff = 0, lanes
    for a, b in zip(taps, taps[1:]):
        run = b - a  # the untapped positions and the tap b
        if run >= SRL_MIN and srl_ok:
            srl += math.ceil(run / SRL_DEPTH) * lanes
        else:
            ff += run * lanes
    return srl, ff


def _multipliers(st: Stage) -> int:
    """Multipliers of a stage's shared kernel (0 for a pooling or at R = 1)."""
    dense = shared_dense(st.kernel)
    return 0 if dense is None else shared_layer(st.kernel, dense).multipliers


def counter_luts(bits: int) -> int:
    """An incrementer with a wrap compare: a LUT per bit for the sum, one compare."""
    return bits + math.ceil(bits / 3)


def stage_cost(
    st: Stage, cycles: int, unrolled: list[LayerCost], reuse: int = 1, fab: Fabric = XC7
) -> StageCost:
    """The cost of one stream stage (kernel, window, control), beside ``unrolled``, the costs
    of the graph's layers unrolled (its own are picked out). At reuse factor R > 1 the stage
    takes a position per R cycles (a phase counter more) and its Dense is shared."""
    from hwprune.estimate.report import layer_costs

    kernel = layer_costs(st.kernel, fab)  # (a shared Dense: costs.shared_cost, its counter)
    hp, wp = st.grid
    lanes, taps = window_bits(st)
    srl, win_ff = srl_luts(lanes, taps, fab.srl)
    yb, xb = max(1, (hp - 1).bit_length()), max(1, (wp - 1).bit_length())
    # The stage's busy counter, counted with the kernel when it shares a Dense.
    pb = max(1, (reuse - 1).bit_length()) if reuse > 1 else 0
    ctrl_pb = 0 if shared_dense(st.kernel) is not None else pb
    ctrl_lut = counter_luts(yb) + counter_luts(xb) + counter_luts(ctrl_pb) * (pb > 0) + lanes + 4
    ctrl_ff = yb + xb + ctrl_pb + 1 + cycles
    k_lut = sum(c.lut for c in kernel)
    k_ff = sum(c.ff for c in kernel) - sum(c.latency_cycles for c in kernel)  # valid: vp
    unrolled = [c for c in unrolled if c.name in st.ops]
    lut_parts = _sum_parts(c.lut_parts for c in kernel)
    lut_parts["srl"] = lut_parts.get("srl", 0) + srl
    lut_parts["control"] = lut_parts.get("control", 0) + ctrl_lut
    ff_parts = _sum_parts(c.ff_parts for c in kernel)
    ff_parts["valid"] = ff_parts.get("valid", 0) - sum(c.latency_cycles for c in kernel)
    ff_parts["window"] = win_ff
    ff_parts["control"] = ff_parts.get("control", 0) + ctrl_ff
    return StageCost(
        name="+".join(st.ops),
        kind="stream",
        lut=k_lut + fab.lut({"srl": srl, "control": ctrl_lut}),
        ff=k_ff + fab.ff({"window": win_ff, "control": ctrl_ff}),
        dsp=sum(c.dsp for c in kernel),
        bram18=0,
        latency_cycles=cycles + 1,  # window register and kernel; the design's: Plan.latency
        ii=reuse,
        product_terms=sum(c.product_terms for c in kernel),
        lut_parts=lut_parts,
        ff_parts=ff_parts,
        parts={
            "kernel": {
                "lut": k_lut,
                "ff": k_ff,
                "cycles": cycles,
                **({"reuse_factor": reuse, "multipliers": _multipliers(st)} if pb else {}),
            },
            "line_buffer": {"lutram": srl, "ff": win_ff, "bram18": 0, "lanes": lanes},
            "control": {"lut": ctrl_lut, "ff": ctrl_ff},
            "grid": [hp, wp],
        },
        unrolled={
            "lut": sum(c.lut for c in unrolled),
            "ff": sum(c.ff for c in unrolled),
            "latency_cycles": sum(c.latency_cycles for c in unrolled),
            "product_terms": sum(c.product_terms for c in unrolled),
        },
    )


def _sum_parts(parts) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in parts:
        for k, v in p.items():
            out[k] = out.get(k, 0) + v
    return out


def stream_costs(g: Graph, plan: Plan, fab: Fabric = XC7) -> list[LayerCost]:
    """Every stage's cost, the collector's, then the head's layers, on fabric ``fab``."""
    from hwprune.estimate.report import layer_costs

    unrolled = layer_costs(g, fab)
    out: list[LayerCost] = [
        stage_cost(st, c, unrolled, plan.reuse, fab)
        for st, c in zip(plan.stages, plan.kernel_cycles)
    ]
    last = plan.stages[-1]
    _, oh, ow = last.out_map.shape
    npix = oh * ow
    pb = max(1, (npix - 1).bit_length())
    hin = plan.head.inputs[0]
    decode = math.ceil(pb / (fab.lut_inputs - 1))
    lp = {"control": npix * decode + counter_luts(pb)}
    fp = {"reg": hin.size * hin.range.bits, "control": pb + 1}
    out.append(LayerCost("collector", "collector", fab.lut(lp), fab.ff(fp), 0, 0, 0, 1, 0, lp, fp))
    if len(plan.head.ops) > 1:
        out += layer_costs(plan.head, fab)
    return out
