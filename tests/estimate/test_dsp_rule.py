"""The DSP count of the estimate against yosys on hand-picked multiplies (hwprune.estimate.costs
``_mult_in_dsp``, ``netlist_dsps``, ``shared_cost``).

Each case is a one-layer mac-dsp design whose multiplies sit on either side of a rule yosys
0.23 applies before mul2dsp: a constant's trailing zeros become a shift (x * 6 is x * 3, one
bit narrower; x * 14 is x * 7, the same multiply as a row's x * 7), an all-nonnegative
multiply becomes unsigned (x * 3 stays in LUTs on iCE40, x * -3 does not), identical
multiplies are one cell. The expected counts are yosys' own, synthesised here.
"""

from __future__ import annotations

import pytest

from hwprune.boards import get_board
from hwprune.codegen.verilog import emit_verilog
from hwprune.estimate import estimate
from hwprune.estimate.synth import synth_yosys
from hwprune.ir.graph import Dense, Graph, Input, IntRange, Row
from hwprune.ir.passes import optimize
from tests.estimate.test_synth import needs_yosys
from tests.estimate.test_synth_lattice import UP5K

# (weights of row 0, weights of row 1) on inputs (0, 1, 2): 8-bit unsigned x.
CASES = {
    "odd": ((3, -3, 5), (7, -7, 9)),
    "even": ((6, 10, -12), (14, 7, 2)),
    "twins": ((7, 14, -5), (7, 14, -5)),
}


def _graph(rows: tuple[tuple[int, ...], ...], reuse: int = 1) -> Graph:
    x = Input("x", (), 3, IntRange(0, 255), 0)
    d = Dense("d", ("x",), 3, tuple(Row(0, (0, 1, 2), ws) for ws in rows), 0)
    g = optimize(Graph((x, d), ("d",)))
    g.meta["kernel"] = "mac-dsp"
    if reuse > 1:
        g.meta["reuse_factor"] = reuse
    return g


# CI runs the cases the old rules got wrong on each family; the rest are marked slow.
FAST = {
    ("pynq-z2", "twins", 1),
    ("pynq-z2", "twins", 3),
    ("up5k", "odd", 1),
    ("up5k", "even", 1),
    ("ulx3s-85f", "twins", 3),
}
PARAMS = [
    pytest.param(b, c, r, id=f"{b}-{c}-R{r}", marks=() if (b, c, r) in FAST else pytest.mark.slow)
    for b in ("pynq-z2", "up5k", "ulx3s-85f")
    for c in sorted(CASES)
    for r in (1, 3)
]


@needs_yosys
@pytest.mark.parametrize(("board", "case", "reuse"), PARAMS)
def test_dsp_count_is_yosys(tmp_path, board, case, reuse):
    b = UP5K if board == "up5k" else get_board(board)
    g = _graph(CASES[case], reuse)
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    for name, text in emit_verilog(g).items():
        (rtl / name).write_text(text)
    measured = synth_yosys(rtl, b, tmp_path / "synth", pnr=False)["dsp"]
    assert estimate(g, b)["totals"]["dsp"] == measured
