"""The Verilog emitter, the generated cocotb testbench and the RTL simulation runner.

Expected values come from the golden interpreter (through the vectors file) and from the IR's
schedule and nonzero-weight counts; yosys gives an independent count of multipliers and
flip-flops.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hwprune.codegen import verilog
from hwprune.codegen.cocotb_tb import emit_testbench, write_rtl, write_vectors
from hwprune.codegen.verilog import count_product_terms, emit_verilog, layers
from hwprune.errors import HwpruneError
from hwprune.hw.csd import csd_digits
from hwprune.hw.schedule import latency_cycles, schedule
from hwprune.ir import golden
from hwprune.ir.graph import Dense, Graph, Input, IntRange, Requant, Rounding, Row, verify
from hwprune.resources import banner
from hwprune.sim import rtl
from hwprune.sim.rtl import SIMULATORS, check_simulator, run_rtl
from tests.graphs import random_mlp

needs_icarus = pytest.mark.skipif(
    shutil.which("iverilog") is None, reason="iverilog not installed (apt-get install iverilog)"
)
needs_yosys = pytest.mark.skipif(
    shutil.which("yosys") is None, reason="yosys not installed (apt-get install yosys)"
)


def corner_graph() -> Graph:
    """Every emitter path: a lone Requant after the input with a left shift, an empty row,
    a bias-only row, one-term rows, weights of magnitude 1, HALF_EVEN ties, shift 0, a
    Requant after a Requant, a Dense feeding a Dense (no fusion) and a signed output."""
    ops = [
        Input("x", (), 6, IntRange(-128, 127), -7),
        Requant("pre", ("x",), -2, -300, 400),
        Dense(
            "d0",
            ("pre",),
            6,
            (
                Row(0, (), ()),
                Row(17, (), ()),
                Row(0, (2,), (5,)),
                Row(-3, (0, 1, 2, 3, 4, 5), (7, -9, 11, -13, 1, -1)),
                Row(5, (1, 4), (1, -1)),
            ),
            -4,
        ),
        Requant("a0", ("d0",), 3, -20, 50, Rounding.HALF_EVEN),
        Dense(
            "d1",
            ("a0",),
            5,
            (Row(-40, (2, 3, 4), (3, -2, 4)), Row(0, (3,), (-1,)), Row(9, (0, 3), (-6, 2))),
            -3,
        ),
        Requant("a1", ("d1",), 0, -100, 100),
        Requant("a2", ("a1",), 2, -7, 7, Rounding.HALF_EVEN),
        Dense("d2", ("a2",), 3, (Row(1, (0, 1, 2), (3, 5, -7)), Row(-2, (1,), (4,))), -3),
        Dense("d3", ("d2",), 2, (Row(0, (0, 1), (-3, 1)), Row(100, (), ())), -3),
    ]
    g = Graph(tuple(ops), ("d3",))
    verify(g)
    return g


def uneven_graph() -> Graph:
    """One layer whose rows hold 0, 1, 16, 17 and 260 terms: depth 9, so three register
    banks, the last one partial, with short rows passing through the extra banks."""
    rng = np.random.default_rng(4)
    rows = tuple(
        Row(bias, tuple(range(n)), tuple(int(w) for w in rng.choice([-3, -1, 1, 2, 5], n)))
        for n, bias in [(0, 0), (1, 0), (16, 3), (17, -1), (260, 9), (0, 4)]
    )
    g = Graph((Input("x", (), 270, IntRange(0, 15), 0), Dense("d", ("x",), 270, rows, 0)), ("d",))
    verify(g)
    return g


def every_weight_graph() -> Graph:
    """One single-term row per nonzero weight in [-40, 40], so each output is exactly w * x in
    a wire no wider than that product's range needs. On x in [0, 21] the leading shifted term
    of 14 of them (w = 3: 4 * 21 = 84 in a 7-bit wire) wraps around before the subtraction
    brings the value back into range."""
    rows = tuple(Row(0, (0,), (w,)) for w in range(-40, 41) if w != 0)
    g = Graph((Input("x", (), 1, IntRange(0, 21), 0), Dense("d", ("x",), 1, rows, 0)), ("d",))
    verify(g)
    return g


# name -> graph builder; the simulations below run each of them.
GRAPHS = {
    "default": lambda: random_mlp(0),
    "signed_half_even": lambda: random_mlp(
        1, sizes=(12, 10, 6), sparsity=0.5, in_signed=True, rounding=Rounding.HALF_EVEN
    ),
    "wide_two_stages": lambda: random_mlp(2, sizes=(64, 40, 10), sparsity=0.2),
    "narrow_weights": lambda: random_mlp(3, sizes=(10, 8, 8, 3), in_bits=4, w_bits=3, act_bits=4),
    "corners": corner_graph,
    "uneven_rows": uneven_graph,
    "every_weight": every_weight_graph,
}


def _design(tmp_path: Path, g: Graph, n_random: int = 300, seed: int = 0) -> tuple[Path, Path]:
    rtl_dir = tmp_path / "rtl"
    write_rtl(g, rtl_dir)
    vectors = tmp_path / "vectors.npz"
    write_vectors(vectors, g, golden.stimulus_vectors(g, n_random, seed))
    return rtl_dir, vectors


_LINE = re.compile(r"^\s*p_(\d+)_(\d+) = (.*); // w=(-?\d+)$", re.MULTILINE)


def _product_lines(text: str) -> list[str]:
    return [m.group(0) for m in _LINE.finditer(text)]


# The input of a product as the emitter writes it: x_c itself (Verilog's rules sign-extend it
# to the product's wire) or truncated to the wire ($signed(x_c[n:0])).
_X = r"(?:x_(?P<c>\d+)|\$signed\(x_(?P<e>\d+)\[\d+:0\]\))"


def _shift_add_terms(expr: str) -> list[tuple[int, int, int]]:
    """(sign, column, shift) of every term of a product expression, read from the text."""
    outer, body = 1, expr
    m = re.fullmatch(r"-\((.*)\)", expr)
    if m is not None and _balanced(m[1]):
        outer, body = -1, m[1]
    head, *rest = re.split(r" ([+-]) ", body)
    signs = ["-" if head.startswith("-") else "+", *rest[0::2]]
    terms = [head.removeprefix("-"), *rest[1::2]]
    out = []
    for sign, term in zip(signs, terms, strict=True):
        m = re.fullmatch(rf"(?P<open>\()?{_X}(?: <<< (?P<s>\d+))?(?(open)\))", term)
        assert m is not None, f"not a shifted input: {term!r} in {expr!r}"
        out.append((outer * (-1 if sign == "-" else 1), int(m["c"] or m["e"]), int(m["s"] or 0)))
    return out


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _corrupt(text: str, how: str) -> str:
    """``text`` with one product line changed: its leading sign, one shift, or its comment."""
    lines = _product_lines(text)
    if how == "shift":
        line = next(ln for ln in lines if "<<<" in ln)
        new = re.sub(r"<<< (\d+)", lambda m: f"<<< {int(m.group(1)) + 1}", line, count=1)
    elif how == "sign":
        line = lines[0]
        lhs, rhs = line.split(" = ", 1)
        new = f"{lhs} = {rhs[1:] if rhs.startswith('-') else '-' + rhs}"
    else:
        line = lines[0]
        new = re.sub(r"w=(-?\d+)$", lambda m: f"w={int(m.group(1)) + 1}", line)
    assert new != line
    return text.replace(line, new, 1)


# --- emitted text ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_product_terms_equal_nonzero_weights(name: str) -> None:
    g = GRAPHS[name]()
    text = "".join(emit_verilog(g).values())
    assert count_product_terms(text) == {d.name: d.n_terms for d in g.dense_ops()}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_products_are_csd_shift_and_add(name: str) -> None:
    # Each product line, read from its expression alone, multiplies the IR's column by the
    # IR's weight with one term per CSD digit (what the estimator costs), and nothing else.
    g = GRAPHS[name]()
    files = emit_verilog(g)
    for lay in layers(g):
        if lay.dense is None:
            continue
        text = files[f"{lay.module}.v"]
        assert " * " not in text
        found = {(int(m[1]), int(m[2])): (m[3], int(m[4])) for m in _LINE.finditer(text)}
        want = {}
        for i, row in enumerate(g.op(lay.dense).rows):
            for k, (c, w) in enumerate(zip(row.cols, row.weights, strict=True)):
                want[(i, k)] = (c, w)
        assert found.keys() == want.keys()
        for key, (expr, comment) in found.items():
            c, w = want[key]
            terms = _shift_add_terms(expr)
            assert {col for _, col, _ in terms} == {c}
            assert sum(sign << shift for sign, _, shift in terms) == w == comment
            assert len(terms) == len(csd_digits(abs(w)))


def test_product_expression_shapes() -> None:
    g = Graph(
        (
            Input("x", (), 4, IntRange(-8, 7), 0),
            Dense("d", ("x",), 4, (Row(0, (0, 1, 2, 3), (-17, 1, -1, 8)),), 0),
        ),
        ("d",),
    )
    tops = ("hwprune_top.v", "hwprune_top_axis.v")
    (text,) = [t for n, t in emit_verilog(g).items() if n not in tops]
    exprs = [(m[3], int(m[4])) for m in _LINE.finditer(text)]
    # x is 4 bits; each product's wire is as wide as its exact range: -17x in [-119, 136]
    # takes 9 bits, x in 4, -x in [-7, 8] 5 and 8x in [-64, 56] 7, so x is sign-extended.
    assert exprs == [
        ("-((x_0 <<< 4) + x_0)", -17),
        ("x_1", 1),
        ("-x_2", -1),
        ("x_3 <<< 3", 8),
    ]


def test_emit_is_deterministic_with_banner() -> None:
    g = corner_graph()
    files = emit_verilog(g, top="chip")
    assert files == emit_verilog(g, top="chip")
    assert "chip.v" in files
    for text in [*files.values(), *emit_testbench(g, "chip").values()]:
        assert text.splitlines()[0] in (banner("//").strip(), banner("#").strip())


def test_schedule_shapes_are_exercised() -> None:
    # The simulations below only prove something if these paths exist in their graphs.
    wide = schedule(GRAPHS["wide_two_stages"]())
    assert max(ls.cycles for ls in wide) >= 2
    (uneven,) = schedule(uneven_graph())
    assert uneven.depth == 9 and uneven.cycles == 3
    corner = {ls.op: ls for ls in schedule(corner_graph())}
    assert corner["d0"].fused == "a0" and corner["d1"].fused == "a1"
    assert corner["a2"].fused is None and corner["pre"].cycles == 1
    assert corner["d2"].fused is None
    signals = [lay.signal for lay in layers(corner_graph())]
    assert signals == ["pre_q", "d0_q", "d1_q", "a2_q", "d2_q", "d3_q"]


def test_non_chain_and_bad_top_are_rejected() -> None:
    g = random_mlp(0)
    with pytest.raises(HwpruneError, match="identifier"):
        emit_verilog(g, top="9top")
    two_out = Graph(g.ops, ("act0", g.outputs[0]))
    with pytest.raises(HwpruneError, match="one output"):
        emit_verilog(two_out)
    with pytest.raises(HwpruneError, match="no hardware"):
        emit_verilog(Graph(g.ops[:1], ("x",)))


# --- simulation -----------------------------------------------------------------------------


@needs_icarus
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_icarus_bit_exact(tmp_path: Path, name: str) -> None:
    g = GRAPHS[name]()
    rtl_dir, vectors = _design(tmp_path, g, seed=sorted(GRAPHS).index(name))
    res = run_rtl(rtl_dir, tmp_path / "work", vectors)
    assert res.first_mismatch is None
    assert res.passed and res.n_vectors >= 300 and res.simulator == "icarus"
    summary = json.loads((tmp_path / "work" / "results.json").read_text())
    assert summary["n_checked"] == summary["n_vectors"] == res.n_vectors
    assert summary["latency_cycles"] == latency_cycles(g)


@needs_icarus
@pytest.mark.parametrize("name", ["corners", "wide_two_stages"])
def test_icarus_bit_exact_in_always_star_blocks(tmp_path: Path, name: str, monkeypatch) -> None:
    # A layer of more than CLOCKED_MAX statements is written as always @* blocks of
    # STAGE_BLOCK statements instead of one clocked block: forced here on small layers,
    # with blocks cut inside every stage.
    monkeypatch.setattr(verilog, "CLOCKED_MAX", 0)
    monkeypatch.setattr(verilog, "STAGE_BLOCK", 5)
    g = GRAPHS[name]()
    rtl_dir, vectors = _design(tmp_path, g, seed=3)
    text = (rtl_dir / f"{layers(g)[0].module}.v").read_text()
    assert text.count("always @*") > 2 and text.count("always @(posedge clk)") == 1
    res = run_rtl(rtl_dir, tmp_path / "work", vectors)
    assert res.first_mismatch is None and res.passed and res.n_vectors >= 300


@needs_icarus
@pytest.mark.parametrize(("layer", "how"), [("dense0", "sign"), ("dense1", "shift")])
def test_corrupted_weight_fails(tmp_path: Path, layer: str, how: str) -> None:
    g = random_mlp(5, sizes=(12, 8, 6), sparsity=0.5)
    rtl_dir, vectors = _design(tmp_path, g)
    path = rtl_dir / f"hwprune_top_{layer}.v"
    corrupted = _corrupt(path.read_text(), how)
    path.write_text(corrupted)
    # The weight comments are untouched: only the hardware changed.
    assert count_product_terms(corrupted) == {layer: g.op(layer).n_terms}

    res = run_rtl(rtl_dir, tmp_path / "work", vectors)
    assert not res.passed
    bad = res.first_mismatch
    assert bad is not None and bad["reason"] == "value"
    (lay,) = [lay for lay in layers(g) if lay.dense == layer]
    assert bad["layer"] == lay.label
    # The reported expectation is the golden value of that layer for that vector.
    inputs = golden.stimulus_vectors(g, 300, 0)
    assert bad["input"] == inputs[bad["vector"]].tolist()
    assert bad["expected"] == golden.run(g, inputs)[lay.value][bad["vector"], bad["index"]]
    assert bad["got"] != bad["expected"]


@needs_icarus
def test_weight_comment_is_not_hardware(tmp_path: Path) -> None:
    g = random_mlp(5, sizes=(12, 8, 6), sparsity=0.5)
    rtl_dir, vectors = _design(tmp_path, g)
    path = rtl_dir / "hwprune_top_dense0.v"
    path.write_text(_corrupt(path.read_text(), "comment"))
    res = run_rtl(rtl_dir, tmp_path / "work", vectors)
    assert res.passed, res.first_mismatch


def test_unknown_simulator_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(HwpruneError) as err:
        run_rtl(tmp_path, tmp_path / "work", tmp_path / "v.npz", simulator="modelsim")
    for sim in SIMULATORS:
        assert sim in str(err.value)


def test_missing_simulator_names_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtl.shutil, "which", lambda name: None)
    with pytest.raises(HwpruneError, match="iverilog"):
        run_rtl(tmp_path, tmp_path / "work", tmp_path / "v.npz")


@pytest.mark.slow
def test_verilator_bit_exact(tmp_path: Path) -> None:
    try:
        check_simulator("verilator")
    except HwpruneError as e:
        pytest.skip(str(e))
    g = corner_graph()
    rtl_dir, vectors = _design(tmp_path, g)
    res = run_rtl(rtl_dir, tmp_path / "work", vectors, simulator="verilator")
    assert res.passed, res.first_mismatch


# --- yosys ----------------------------------------------------------------------------------


def _yosys_cells(tmp_path: Path, files: dict[str, str], script: str) -> dict[str, dict[str, int]]:
    """Per module, yosys' cell counts by type (``stat -width``: ``$dff_14`` etc.)."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    srcs = " ".join(str(tmp_path / n) for n in sorted(files))
    out = tmp_path / "stat.json"
    cmd = f"read_verilog {srcs}; {script}; tee -q -o {out} stat -width -json"
    subprocess.run(["yosys", "-q", "-p", cmd], check=True, capture_output=True, timeout=120)
    mods = json.loads(out.read_text())["modules"]
    return {m.lstrip("\\"): v["num_cells_by_type"] for m, v in mods.items()}


def _ff_bits(cells: dict[str, int]) -> int:
    total = 0
    for cell, n in cells.items():
        if "DFF" in cell.upper():
            # Coarse cells carry their width as a suffix; fine cells are one bit each.
            m = re.fullmatch(r"\$\w*dff\w*_(\d+)", cell)
            total += n * (int(m.group(1)) if m else 1)
    return total


def _expected_ff(g: Graph) -> dict[str, int]:
    sched = {ls.op: ls.ff for ls in schedule(g)}
    out = {lay.module: sched[lay.dense or lay.value] for lay in layers(g)}
    out["hwprune_top"] = latency_cycles(g)  # the valid shift register
    return out


@needs_yosys
@pytest.mark.parametrize("name", ["corners", "signed_half_even"])
def test_yosys_registers_match_schedule_without_multipliers(
    tmp_path: Path, name: str, monkeypatch
) -> None:
    # Before optimisation: every register the schedule counts, and no multiplier at all
    # (products are shift-and-add). In the always @* form (verilog.CLOCKED_MAX) proc makes
    # flip-flops of the registers only; the clocked form, where it also gives each variable
    # of the block one that nothing reads, has the same registers (full synthesis below).
    monkeypatch.setattr(verilog, "CLOCKED_MAX", 0)
    g = GRAPHS[name]()
    cells = _yosys_cells(tmp_path, emit_verilog(g), "hierarchy -top hwprune_top; proc")
    assert {m: _ff_bits(c) for m, c in cells.items()} == _expected_ff(g)
    for mod in cells.values():
        assert not [c for c in mod if c.startswith("$mul")]


@needs_yosys
def test_yosys_synth_flip_flops_exact(tmp_path: Path) -> None:
    # Full synthesis, hierarchy kept. yosys drops flip-flops whose input it can prove
    # constant (an LSB that only even weights and an even bias feed, the sign bit of a
    # range that is always negative, a constant row), so the exact equality holds for graphs
    # without such bits; this seed has none (measured: seed 2 loses 2 bits, the 64-40-10
    # graph 13 of 2,848 to such constants).
    g = random_mlp(3, sizes=(8, 6, 4), sparsity=0.3, in_signed=True)
    cells = _yosys_cells(tmp_path, emit_verilog(g), "synth -top hwprune_top")
    ff = {m: _ff_bits(c) for m, c in cells.items()}
    assert ff == _expected_ff(g)
    assert sum(ff.values()) == sum(ls.ff for ls in schedule(g)) + latency_cycles(g)


def _as_multiplies(text: str) -> str:
    """``text`` with every product line written back as ``x_c * W`` (W from its comment)."""

    def sub(m: re.Match) -> str:
        (col,) = {c for _, c, _ in _shift_add_terms(m[3])}
        w = int(m[4])
        lit = f"{'-' if w < 0 else ''}{abs(w).bit_length() + 1}'sd{abs(w)}"
        return m[0].replace(f"= {m[3]};", f"= x_{col} * {lit};")

    return _LINE.sub(sub, text)


@needs_yosys
def test_yosys_xilinx_infers_no_dsp(tmp_path: Path) -> None:
    # synth_xilinx without -nodsp maps every constant multiply other than x0/x1/x2/x4 to a
    # DSP48E1 (DESIGN.md); the estimator reports dsp 0, which shift-and-add makes true. The
    # same design with its products written as ``x * W`` is the control: it does get DSPs.
    g = random_mlp(3, sizes=(6, 4), sparsity=0.3, in_signed=True)
    script = "synth_xilinx -family xc7 -top hwprune_top"
    files = emit_verilog(g)
    dsp = {}
    for variant, fs in [("csd", files), ("mul", {n: _as_multiplies(t) for n, t in files.items()})]:
        (tmp_path / variant).mkdir()
        cells = [c for mod in _yosys_cells(tmp_path / variant, fs, script).values() for c in mod]
        dsp[variant] = [c for c in cells if c.startswith("DSP") or "mul" in c.lower()]
    assert dsp["csd"] == []
    assert "DSP48E1" in dsp["mul"]


def test_vectors_file_holds_every_layer(tmp_path: Path) -> None:
    g = corner_graph()
    x = golden.stimulus_vectors(g, 5, 1)
    write_vectors(tmp_path / "v.npz", g, x)
    doc = np.load(tmp_path / "v.npz")
    vals = golden.run(g, x)
    assert int(doc["format"]) == 2
    np.testing.assert_array_equal(doc["inputs"], x)
    expected = {k.split("/", 1)[1] for k in doc.files if k.startswith("expected/")}
    assert expected == {lay.value for lay in layers(g)}
    for name in expected:
        np.testing.assert_array_equal(doc["expected/" + name], vals[name])
