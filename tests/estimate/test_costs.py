"""The analytical estimator: hand-worked costs, sparsity monotonicity, fit verdicts, table."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from hwprune.boards import get_board, list_boards
from hwprune.errors import HwpruneError
from hwprune.estimate import (
    COST_FUNCTIONS,
    estimate,
    estimate_boards,
    format_table,
    layer_costs,
)
from hwprune.estimate.costs import (
    NOT_COSTED,
    const_mult_luts,
    csd_digits,
    live_elements,
    requant_luts,
)
from hwprune.estimate.fabric import fabric_of
from hwprune.estimate.report import overflow, overflow_text
from hwprune.ir.graph import (
    OP_KINDS,
    Dense,
    Graph,
    Input,
    IntRange,
    Op,
    Requant,
    Rounding,
    Row,
    Value,
    verify,
)
from tests.graphs import random_mlp

MODELS = Path(__file__).resolve().parents[1] / "models"


def test_every_op_kind_has_a_cost_function():
    # Nothing may silently cost 0: every op kind but the graph's ports is in the table.
    for tag, cls in OP_KINDS.items():
        if cls is Input:
            continue
        assert cls in COST_FUNCTIONS, f"op kind {tag!r} ({cls.__name__}) has no cost function"
    assert NOT_COSTED == {Input}


@dataclass(frozen=True)
class _Mystery(Op):
    def infer(self, args: tuple[Value, ...]) -> Value:
        return args[0]


def test_an_op_kind_without_cost_function_is_an_error():
    g = Graph((Input("x", (), 2, IntRange(0, 3), 0), _Mystery("m", ("x",))), ("m",))
    with pytest.raises(HwpruneError, match="_Mystery, which has no cost function"):
        layer_costs(g)


def test_csd_is_the_non_adjacent_form():
    assert csd_digits(1) == ((0, 1),)
    assert csd_digits(3) == ((0, -1), (2, 1))  # 4 - 1
    assert csd_digits(7) == ((0, -1), (3, 1))  # 8 - 1
    assert csd_digits(6) == ((1, -1), (3, 1))  # 8 - 2
    assert csd_digits(11) == ((0, -1), (2, -1), (4, 1))  # 16 - 4 - 1
    for n in range(1, 2000):
        d = csd_digits(n)
        assert sum(s << p for p, s in d) == n
        pos = [p for p, _ in d]
        assert all(b - a >= 2 for a, b in zip(pos, pos[1:])), n  # no adjacent nonzero digits
        assert len(d) <= bin(n).count("1")


def test_plus_minus_one_and_powers_of_two_cost_no_lut():
    for x in (IntRange(0, 255), IntRange(-128, 127), IntRange(3, 9)):
        for k in range(8):
            assert const_mult_luts(x, 1 << k) == 0
            assert const_mult_luts(x, -(1 << k)) == 0
        assert const_mult_luts(x, 3) > 0 and const_mult_luts(x, -5) > 0


def test_power_of_two_weights_leave_only_adders():
    # x0, x1 in [0, 15]. y = x0 - 2*x1: the product -2*x1 is wiring; one adder remains.
    # Its result lies in [-30, 15] (6 bits); bit 0 is x0's bit 0 (-2*x1 has a zero there),
    # so the carry chain covers bits 1..5, the top one being the carry out: 4 LUT.
    x = Input("x", (), 2, IntRange(0, 15), 0)
    d = Dense("d", ("x",), 2, (Row(0, (0, 1), (1, -2)),), 0)
    g = Graph((x, d), ("d",))
    verify(g)
    (c,) = layer_costs(g)
    assert c.lut == 4


def _hand_graph(requant: Requant | None = None) -> Graph:
    x = Input("x", (), 3, IntRange(0, 15), 0)
    d = Dense(
        "d",
        ("x",),
        3,
        (Row(0, (0, 1, 2), (3, -4, 7)), Row(5, (0, 2), (1, -6))),
        0,
    )
    ops = (x, d) if requant is None else (x, d, requant)
    g = Graph(ops, (ops[-1].name,))
    verify(g)
    return g


def test_hand_worked_two_row_dense():
    # x: 3 elements in [0, 15] (4 bits unsigned). An adder whose result has n bits costs
    # n - 1 LUT (one per carry-chain bit, the top bit is the carry out, UG474), less the low
    # bits where one operand is known to be 0 (wires).
    #
    # Row 0: 3*x0 - 4*x1 + 7*x2, bias 0.
    #   3*x0 = (x0 << 2) - x0 (CSD 4 - 1): result [0, 45], 6 bits; bits 0-1 are wires
    #     (x0 << 2 is 0 there): 6 - 1 - 2 = 3 LUT.
    #   -4*x1: a power of two -> 0 LUT.
    #   7*x2 = (x2 << 3) - x2: result [0, 105], 7 bits, bits 0-2 wires: 7 - 1 - 3 = 3 LUT.
    #   Level 1: 3x0 + (-4x1): [0, 45] + [-60, 0] = [-60, 45], 7 bits; -4x1 has bits 0-1
    #     zero: 7 - 1 - 2 = 4 LUT.
    #   Level 2: [-60, 45] + 7x2 in [0, 105] = [-60, 150], 9 bits: 8 LUT.
    #   Row 0: 3 + 3 + 4 + 8 = 18 LUT.
    # Row 1: 5 + x0 - 6*x2.
    #   6*x2 = (x2 << 3) - (x2 << 1): result [0, 90], 7 bits; both have bit 0 zero and
    #     x2 << 3 bits 0-2: 7 - 1 - 3 = 3 LUT. The sign is absorbed by the tree.
    #   Level 1: 5 + x0 = [5, 20], 5 bits: 4 LUT (the constant still takes chain bits).
    #   Level 2: [5, 20] + [-90, 0] = [-85, 20], 8 bits; -6x2 has bit 0 zero: 8 - 1 - 1 = 6.
    #   Row 1: 3 + 4 + 6 = 13 LUT.
    # Total 31 LUT. Depth 2 <= 4 levels: one register bank of 9 + 8 = 17 bits, + 1 valid FF.
    g = _hand_graph()
    (c,) = layer_costs(g)
    assert (c.lut, c.ff, c.dsp, c.bram18, c.latency_cycles, c.ii) == (31, 18, 0, 0, 1, 1)
    assert c.product_terms == 5


def test_hand_worked_fused_requant():
    # The Dense above feeds clip(v >> 2, 0, 15) (FLOOR), fused before its last register.
    # Row 0: v in [-60, 150] -> [-15, 37], 7 bits signed; both clip sides can trigger.
    #   x < 0 is the sign bit: 0 LUT. x > 15 = 2^4 - 1 looks at bits 4..6 (3 signals): one
    #   LUT6. Both sides: a select LUT per output bit, [0, 15] -> 4. Row 0: 5 LUT.
    # Row 1: v in [-85, 20] -> [-22, 5], 6 bits: only x < 0 can trigger (the sign bit), and
    #   a clip to 0 alone is the output register's synchronous reset: 0 LUT.
    # Requant: 5 LUT, no register and no cycle of its own. The Dense keeps 31 LUT; its last
    # bank now holds 4 + 3 bits ([0, 15], [0, 5]), + 1 valid FF = 8.
    g = _hand_graph(Requant("r", ("d",), 2, 0, 15, Rounding.FLOOR))
    d, r = layer_costs(g)
    assert (d.lut, d.ff, d.latency_cycles) == (31, 8, 1)
    assert (r.lut, r.ff, r.latency_cycles, r.kind) == (5, 0, 0, "requant")
    # The estimate scales each LUT category by the family's calibrated factor
    # (estimate.fabric, calibration.toml); the raw counts above are what it scales.
    board = get_board("pynq-z2")
    e = estimate(g, board)
    fab = fabric_of(board)
    assert e["totals"] == {
        "lut": fab.lut(d.lut_parts) + fab.lut(r.lut_parts),
        "ff": 8,
        "dsp": 0,
        "bram18": 0,
        "uram": 0,
        "latency_cycles": 1,
        "ii": 1,
    }


def test_hand_worked_half_even_rounding():
    # As above with round-half-even. Each element adds a tie test over the 2 dropped bits
    # and the LSB (3 inputs: one LUT6) and an incrementer floor + up on the carry chain:
    # row 0: [-15, 37] + [0, 1] = [-15, 38], 7 bits: 6 LUT; row 1: [-22, 5] + [0, 1] =
    # [-22, 6], 6 bits: 5 LUT. The rounded ranges [-15, 38] and [-21, 5] need the same clip
    # logic as with FLOOR (5 LUT): 5 + (1 + 6) + (1 + 5) = 18.
    g = _hand_graph(Requant("r", ("d",), 2, 0, 15, Rounding.HALF_EVEN))
    _, r = layer_costs(g)
    assert r.lut == 18


def test_clip_costs():
    # 8-bit ReLU clip [0, 255] of x in [-3000, 9000] >> 5 = [-94, 281] (10 bits signed):
    # sign bit (0) + OR of bits 8..9 (2 signals: 1 LUT) + 8 select LUTs = 9.
    assert requant_luts(5, Rounding.FLOOR, 0, 255, IntRange(-3000, 9000)) == 9
    # [0, 500] clipped to 255 only from above, by bit 8 alone, into a flip-flop set: 0.
    assert requant_luts(0, Rounding.FLOOR, 0, 255, IntRange(0, 500)) == 0
    # Signed saturation [-128, 127] of [-1250, 1250] (12 bits): each side looks at bits
    # 7..11 (5 signals: 1 LUT), + 8 select LUTs = 10.
    assert requant_luts(4, Rounding.FLOOR, -128, 127, IntRange(-20000, 20000)) == 10
    # General bounds [13, 201] of [-391, 390] (10 bits): two carry-chain comparators of
    # ceil(10 / 3) = 4 LUT and 8 select LUTs = 16.
    assert requant_luts(8, Rounding.FLOOR, 13, 201, IntRange(-100000, 100000)) == 16
    # Nothing can clip: the shift is wiring.
    assert requant_luts(4, Rounding.FLOOR, 0, 15, IntRange(0, 255)) == 0


def test_standalone_requant_has_its_own_stage():
    # A Requant reading an Input is not fused: one register bank of its output (3 x 4 bits)
    # and one valid FF; x in [0, 255] >> 4 is [0, 15]: no clip side triggers, so 0 LUT.
    x = Input("x", (), 3, IntRange(0, 255), 0)
    g = Graph((x, Requant("r", ("x",), 4, 0, 15)), ("r",))
    (r,) = layer_costs(g)
    assert (r.lut, r.ff, r.latency_cycles) == (0, 13, 1)


def _luts(g: Graph) -> int:
    return sum(c.lut for c in layer_costs(g))


@pytest.mark.parametrize("seed", range(4))
def test_more_zeros_fewer_luts(seed):
    # random_mlp draws the same weights for every sparsity and zeroes those whose uniform
    # draw is below it, so a higher sparsity keeps a subset of the terms.
    luts = [_luts(random_mlp(seed, (24, 16, 8), sparsity=s)) for s in (0.0, 0.3, 0.6, 0.9)]
    assert luts == sorted(luts, reverse=True) and len(set(luts)) == 4, luts


def test_dropping_a_term_never_costs_more():
    g = random_mlp(5, (12, 6), sparsity=0.3)
    (d,) = g.dense_ops()
    base = _luts(g)
    for i, row in enumerate(d.rows):
        for k in range(len(row.cols)):
            r = Row(
                row.bias, row.cols[:k] + row.cols[k + 1 :], row.weights[:k] + row.weights[k + 1 :]
            )
            rows = d.rows[:i] + (r,) + d.rows[i + 1 :]
            h = Graph((g.ops[0], replace(d, rows=rows)), g.outputs)
            assert _luts(h) < base


def _big() -> Graph:
    # About 8,000 nonzero terms of 6-bit weights: several times an Artix-7 35T.
    return random_mlp(7, (64, 128, 64, 10), sparsity=0.5)


def test_too_big_for_arty_fits_zcu104():
    g = _big()
    est = estimate_boards(g, [get_board("arty-a7-35t"), get_board("zcu104")])
    arty, zcu = est["arty-a7-35t"], est["zcu104"]
    assert not arty["fits"] and arty["utilization_pct"]["lut"] > 200
    assert zcu["fits"] and zcu["utilization_pct"]["lut"] < 100
    table = format_table(est)
    assert any(ln.startswith("arty-a7-35t") and ln.endswith("NO") for ln in table.splitlines())
    assert any(ln.startswith("zcu104") and ln.endswith("yes") for ln in table.splitlines())


def test_fits_is_every_resource_at_most_available():
    g = random_mlp(0)
    board = get_board("pynq-z2")
    t = estimate(g, board)["totals"]
    exact = replace(board, lut=t["lut"], ff=t["ff"])
    assert estimate(g, exact)["fits"] and estimate(g, exact)["overflow"] == {}
    short = estimate(g, replace(exact, lut=t["lut"] - 1))
    assert not short["fits"]
    assert short["overflow"] == {"lut": {"used": t["lut"], "available": t["lut"] - 1, "over": 1}}
    assert not estimate(g, replace(exact, ff=t["ff"] - 1))["fits"]


def test_overflow_hand_worked():
    # The PYNQ-Z2's 53,200 LUT and 220 DSP (boards-reference.md) against a design of
    # 63,210 LUT and 230 DSP: 10,010 and 10 too many, 63,210 / 53,200 = 118.8 % and
    # 230 / 220 = 104.5 %.
    used = {"lut": 63210, "ff": 1000, "dsp": 230, "bram18": 0, "uram": 0}
    over = overflow(used, get_board("pynq-z2").available)
    assert over == {
        "lut": {"used": 63210, "available": 53200, "over": 10010},
        "dsp": {"used": 230, "available": 220, "over": 10},
    }
    assert (
        overflow_text(over) == "lut 63,210 of 53,200 (+10,010, 119 %); dsp 230 of 220 (+10, 105 %)"
    )
    # A resource the board has none of: no finite share.
    none = overflow({**used, "lut": 0, "dsp": 0, "uram": 4}, get_board("pynq-z2").available)
    assert overflow_text(none) == "uram 4 of 0 (+4)"
    assert overflow(used, get_board("zcu104").available) == {}


def test_a_design_that_does_not_fit_says_what_overflows_and_by_how_much():
    # tfc_2w2a (the FINN test network) needs more LUTs than an Artix-7 35T (20,800) and more
    # LUTs and flip-flops than an iCE40 UP5K (5,280 logic cells), and fits a ZCU104.
    from hwprune.frontend.qonnx import import_qonnx
    from hwprune.ir.passes import optimize

    g = optimize(import_qonnx(MODELS / "tfc_2w2a.onnx"))
    names = ("arty-a7-35t", "icebreaker", "zcu104")
    est = estimate_boards(g, [get_board(n) for n in names])
    t = est["arty-a7-35t"]["totals"]
    assert 20800 < t["lut"] and 5280 < t["ff"] < 41600
    arty, ice, zcu = (est[n] for n in names)
    assert arty["overflow"] == {
        "lut": {"used": t["lut"], "available": 20800, "over": t["lut"] - 20800}
    }
    # The iCE40 is costed on its own fabric (LUT4: estimate.fabric), so its figures differ.
    ti = ice["totals"]
    assert ice["overflow"] == {
        "lut": {"used": ti["lut"], "available": 5280, "over": ti["lut"] - 5280},
        "ff": {"used": ti["ff"], "available": 5280, "over": ti["ff"] - 5280},
    }
    assert zcu["overflow"] == {} and zcu["fits"]
    # Every key estimate.json had before "overflow" is still there.
    assert set(arty) == {
        "board",
        "part",
        "clock_mhz",
        "usable_after_shell",
        "totals",
        "available",
        "utilization_pct",
        "fits",
        "overflow",
        "layers",
    }
    lines = format_table(est).splitlines()
    verdict = lines[lines.index("does not fit (resource used of available, +excess, share):") :]
    pct = round(100 * t["lut"] / 20800)
    assert (
        verdict[1] == f"  arty-a7-35t  lut {t['lut']:,} of 20,800 (+{t['lut'] - 20800:,}, {pct} %)"
    )
    assert verdict[2].startswith(
        f"  icebreaker   lut {ti['lut']:,} of 5,280 (+{ti['lut'] - 5280:,}, "
    )
    assert verdict[2].endswith(
        f"; ff {ti['ff']:,} of 5,280 (+{ti['ff'] - 5280:,}, {round(100 * ti['ff'] / 5280)} %)"
    )
    assert len(verdict) == 3


def test_estimate_is_plain_json_with_the_documented_keys():
    g = random_mlp(1, (16, 12, 8, 5), sparsity=0.6)
    e = estimate(g, get_board("zcu104"))
    assert json.loads(json.dumps(e)) == e
    assert set(e) >= {
        "board",
        "part",
        "clock_mhz",
        "totals",
        "available",
        "utilization_pct",
        "fits",
        "layers",
    }
    assert set(e["totals"]) == {"lut", "ff", "dsp", "bram18", "uram", "latency_cycles", "ii"}
    assert [lay["name"] for lay in e["layers"]] == [op.name for op in g.ops[1:]]
    for lay in e["layers"]:
        assert set(lay) == {
            "name",
            "kind",
            "lut",
            "ff",
            "dsp",
            "bram18",
            "latency_cycles",
            "ii",
            "product_terms",
        }
    dense = [lay for lay in e["layers"] if lay["kind"] == "dense"]
    assert [lay["product_terms"] for lay in dense] == [op.n_terms for op in g.dense_ops()]
    assert e["totals"]["lut"] == sum(lay["lut"] for lay in e["layers"])
    assert e["totals"]["dsp"] == 0 and e["totals"]["bram18"] == 0


def test_table_lists_every_board_with_latency_in_ns():
    g = random_mlp(2)
    est = estimate_boards(g, list_boards())
    assert list(est) == [b.name for b in list_boards()]
    table = format_table(est)
    cycles = est["pynq-z2"]["totals"]["latency_cycles"]
    (line,) = [ln for ln in table.splitlines() if ln.startswith("pynq-z2 ")]
    # 100 MHz: 10 ns per cycle.
    assert line.split()[-4:] == [str(cycles), f"{cycles * 10:.1f}", "1", "yes"]
    for b in list_boards():
        assert any(ln.split()[0].rstrip("*") == b.name for ln in table.splitlines()[2:])
    assert "shell" in table.splitlines()[-1]


def test_dead_and_constant_rows_cost_nothing():
    # The hand graph's Dense "d" feeds a second Dense that reads only d's row 0 (weight 2)
    # and a row of d with no terms (a constant the emitter writes as a literal). d's row 1 is
    # read by nothing: synthesis removes its adder tree and register (yosys opt_clean), and
    # the constant's register has a constant input (opt_dff removes it). So d costs what a
    # Dense of row 0 alone costs, and its flip-flops are row 0's register + valid.
    x = Input("x", (), 3, IntRange(0, 15), 0)
    row0 = Row(0, (0, 1, 2), (3, -4, 7))
    d = Dense("d", ("x",), 3, (row0, Row(5, (0, 2), (1, -6)), Row(9, (), ())), 0)
    e = Dense("e", ("d",), 3, (Row(1, (0, 2), (2, 3)),), 0)
    g = Graph((x, d, e), ("e",))
    verify(g)
    # Values all of whose elements are live (e, x) are left out: no filtering needed.
    assert live_elements(g) == {"d": {0, 2}}
    alone = Graph((x, Dense("d", ("x",), 3, (row0,), 0)), ("d",))
    cd, _ = layer_costs(g)
    (ca,) = layer_costs(alone)
    assert cd.lut == ca.lut > 0
    assert cd.ff == g.values["d"].ranges[0].bits + 1 == ca.ff


def test_each_family_is_costed_on_its_own_fabric():
    # iCE40 and ECP5 have LUT4s and no shift-register LUTs in yosys' flows; 7-series LUT6s
    # and SRLs (estimate.fabric). A 13-input OR tree: ceil(12 / 5) = 3 LUT6 or ceil(12 / 3)
    # = 4 LUT4; a 16:1 mux bit: 4 LUT6 (4:1 each, MUXF7/F8) or 15 LUT4.
    from hwprune.estimate.fabric import fabric_of, raw_fabric

    x7, ice = raw_fabric("xc7"), raw_fabric("ice40", "iCE40UP5K-SG48")
    assert (x7.reduce_luts(13), ice.reduce_luts(13)) == (3, 4)
    assert (x7.mux_luts(16), ice.mux_luts(16)) == (4, 15)
    assert x7.srl and not ice.srl and not raw_fabric("ecp5").srl
    # DSP rules as yosys' mul2dsp parameters: SB_MAC16 only on UltraPlus parts.
    assert raw_fabric("ice40", "iCE40HX8K-CT256").dsp is None
    assert ice.dsp.name == "SB_MAC16" and raw_fabric("ecp5").dsp.name == "MULT18X18D"
    # Each board gets its family's calibrated constants (calibration.toml), and one object
    # per family, so estimate_boards costs a design once per family.
    assert fabric_of(get_board("pynq-z2")) is fabric_of(get_board("arty-a7-35t"))
    assert fabric_of(get_board("icebreaker")).lut_scale["adder"] != 1.0
    g = _hand_graph()
    est = estimate_boards(g, [get_board("pynq-z2"), get_board("icebreaker")])
    assert est["pynq-z2"]["totals"]["lut"] != est["icebreaker"]["totals"]["lut"]


def test_identical_computations_of_two_rows_are_built_once():
    # yosys' opt_merge builds one cell for identical cells: two rows computing the same sum
    # of the same inputs (a binarised layer's rows pair inputs with the same signs) cost the
    # LUTs of one; the other row reuses its adders (costs.value_numbers).
    x = Input("x", (), 3, IntRange(0, 15), 0)
    row = Row(0, (0, 1, 2), (3, -4, 7))
    one = Graph((x, Dense("d", ("x",), 3, (row,), 0)), ("d",))
    two = Graph((x, Dense("d", ("x",), 3, (row, row), 0)), ("d",))
    (c1,) = layer_costs(one)
    (c2,) = layer_costs(two)
    assert c2.lut == c1.lut > 0
    # A different weight makes a different row: more LUTs.
    other = Graph((x, Dense("d", ("x",), 3, (row, Row(0, (0, 1, 2), (3, -4, 5))), 0)), ("d",))
    assert layer_costs(other)[0].lut > c1.lut


def test_a_binarised_row_is_costed_as_one_macc():
    # yosys' alumacc merges a register-to-register adder tree whose inner sums have one
    # reader into one $macc, and maccmap sign-extends every operand to the sum's width W:
    # K signed operands cost (K - 2) * W full-adder LUTs and a (W - 1)-LUT final adder
    # (costs.macc_cones). Hand-worked: 8 terms of +-1 (2-bit signed), one cone of 3 adder
    # levels, the sum in [-8, 8] (W = 5): (8 - 2) * 5 + 4 = 34 LUTs, what yosys 0.23
    # synth_xilinx builds for this row (34; 18 with every adder level registered, the
    # adder rule's count).
    from hwprune.estimate.costs import layer_parts
    from hwprune.estimate.fabric import raw_fabric
    from hwprune.hw.layers import lower_layer

    x = Input("x", (), 8, IntRange(-1, 1), 0)
    d = Dense("d", ("x",), 8, (Row(0, tuple(range(8)), (1,) * 8),), 0)
    g = Graph((x, d), ("d",))
    net = lower_layer(g, d)
    assert layer_parts(net, None, raw_fabric("xc7")) == {"macc": 34}
    # Unsigned operands keep the adder rule (no sign extension to pay).
    u = Input("x", (), 8, IntRange(0, 1), 0)
    gu = Graph((u, d), ("d",))
    assert "macc" not in layer_parts(lower_layer(gu, d), None, raw_fabric("xc7"))
