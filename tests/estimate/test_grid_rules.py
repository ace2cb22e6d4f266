"""The two measured rules of the estimator against yosys on layers outside their grids' seeds:
a Threshold row's compares (``Fabric.compare_set_luts``, benchmarks/threshold_grid.py) and an
adder cone alumacc merges into one $macc (``Fabric.cone_luts``, benchmarks/cone_grid.py).

Each case is a one-layer design emitted by hwprune and synthesised here with the family's
flow; the estimate compared is the raw one (no calibration factor), so the rule alone is
checked. The rules they replace are checked to miss by much more, so the test would fail
without them.
"""

from __future__ import annotations

import random

import pytest

from hwprune.boards import get_board
from hwprune.codegen.verilog import emit_verilog
from hwprune.estimate.costs import cone_shapes, layer_parts
from hwprune.estimate.fabric import raw_fabric
from hwprune.estimate.synth import synth_yosys
from hwprune.hw.layers import lower_layer
from hwprune.ir.graph import Dense, Graph, Input, IntRange, Row, Threshold
from tests.estimate.test_synth import needs_yosys


def _synth_luts(tmp_path, g: Graph, board: str) -> int:
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    for name, text in emit_verilog(g).items():
        if name != "hwprune_top_axis.v":
            (rtl / name).write_text(text)
    return synth_yosys(rtl, get_board(board), tmp_path / "synth", pnr=False)["lut"]


def _threshold_layer(bits: int, k: int, elements: int, seed: int) -> Graph:
    # Evenly spaced thresholds over part of a signed range, as a uniform quantizer after
    # BatchNorm folds to, with a different offset and step per element.
    rng = random.Random(seed)
    lo = -(1 << (bits - 1))
    ts = []
    for _ in range(elements):
        step = rng.randint((1 << bits) // (3 * (k + 1)), (1 << bits) // (k + 1) - 1)
        start = lo + rng.randint(1, (1 << bits) - step * (k + 1))
        ts.append(tuple(start + step * (i + 1) for i in range(k)))
    x = Input("x", (), elements, IntRange(lo, -lo - 1), 0)
    return Graph((x, Threshold("t", ("x",), tuple(ts), 0, 1, 0)), ("t",))


def test_lut4_compare_sets_are_shared_and_lut6_has_no_fit():
    ice = raw_fabric("ice40")
    # fifteen compares of a 14-bit value: well under fifteen 14-LUT comparators
    assert ice.compare_set_luts(14, 15) < 15 * ice.comparator_luts(14) // 2
    # LUT6 has no fit (its grid does not follow one power law): the compare rule, one by one
    assert raw_fabric("xc7").compare_set is None


@needs_yosys
@pytest.mark.parametrize(
    ("bits", "k"),
    [(14, 9), pytest.param(20, 31, marks=pytest.mark.slow)],
    ids=["14b-9t", "20b-31t"],
)
def test_threshold_rows_on_lut4_cost_what_yosys_builds(tmp_path, bits, k):
    g = _threshold_layer(bits, k, 4, seed=7 + k)
    measured = _synth_luts(tmp_path, g, "icebreaker")
    net = lower_layer(g, g.ops[1])
    est = layer_parts(net, None, raw_fabric("ice40"))["threshold"]
    assert abs(est - measured) <= 0.15 * measured, (est, measured)
    # one comparator (a LUT4 per bit) per threshold, the rule before the fit: half as much more
    assert 4 * k * bits > 1.5 * measured


def _cone_layer(k: int, bits: int, rows: int, seed: int) -> Graph:
    # Each row sums k +-1 terms of 2k inputs the rows share, as a Dense layer's rows do: one
    # cone per row (a pair two rows share is one operand of both).
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        cols = tuple(sorted(rng.sample(range(2 * k), k)))
        out.append(Row(0, cols, tuple(rng.choice((-1, 1)) for _ in cols)))
    x = Input("x", (), 2 * k, IntRange(-(1 << (bits - 1)), (1 << (bits - 1)) - 1), 0)
    return Graph((x, Dense("d", ("x",), 2 * k, tuple(out), 0)), ("d",))


@needs_yosys
@pytest.mark.parametrize(
    ("board", "family", "k", "bits"),
    [
        ("pynq-z2", "xc7", 16, 7),
        pytest.param("pynq-z2", "xc7", 5, 9, marks=pytest.mark.slow),
        pytest.param("icebreaker", "ice40", 12, 5, marks=pytest.mark.slow),
    ],
    ids=["xc7-16x7", "xc7-5x9", "ice40-12x5"],
)
def test_adder_cones_cost_what_yosys_builds(tmp_path, board, family, k, bits):
    g = _cone_layer(k, bits, 6, seed=k * bits)
    net = lower_layer(g, g.ops[1])
    assert len(cone_shapes(net)) == 6  # every row is one cone the rule costs
    measured = _synth_luts(tmp_path, g, board)
    parts = layer_parts(net, None, raw_fabric(family))
    est = sum(parts.values())
    assert abs(est - measured) <= 0.15 * measured, (parts, measured)
    if k >= 12:
        # the adder rule summed over the cone's adders says about (k - 1) * (bits + 2) a row
        assert 6 * (k - 1) * (bits + 2) < 0.8 * measured
