"""Max and Threshold ops through every backend but HLS: golden interpreter, passes, schedule,
Verilog text and estimator.

Expected values are hand-worked, or come from a plain-Python reading of the ops' definitions
(``_reference``) independent of the vectorised golden code; pass results are compared with
the golden function of the graph before the pass.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hwprune.boards import get_board
from hwprune.codegen.cocotb_tb import emit_testbench
from hwprune.codegen.verilog import count_product_terms, emit_verilog, layers
from hwprune.estimate import estimate, layer_costs
from hwprune.estimate.costs import COST_FUNCTIONS, compare_luts, popcount_luts
from hwprune.hw.layers import LOWERINGS
from hwprune.hw.schedule import latency_cycles, schedule
from hwprune.ir import golden
from hwprune.ir.graph import (
    OP_KINDS,
    Dense,
    Graph,
    Input,
    IntRange,
    Max,
    Requant,
    Rounding,
    Row,
    Threshold,
    from_json,
    to_json,
    verify,
)
from hwprune.ir.passes import (
    fold_constant_inputs,
    optimize,
    remove_dead_neurons,
    unread_inputs,
)
from tests.graphs import random_cnn, random_mlp


def _graph(*ops, out: str | None = None) -> Graph:
    g = Graph(tuple(ops), (out or ops[-1].name,))
    verify(g)
    return g


def _reference(g: Graph, x: np.ndarray) -> dict[str, list[list[int]]]:
    """Every op's output by the ops' definitions, element by element in Python ints."""
    vals: dict[str, list[list[int]]] = {}
    for op in g.ops:
        if isinstance(op, Input):
            vals[op.name] = [[int(v) for v in row] for row in x]
            continue
        src = vals[op.inputs[0]]
        if isinstance(op, Max):
            vals[op.name] = [[max(row[j] for j in grp) for grp in op.groups] for row in src]
        elif isinstance(op, Threshold):
            vals[op.name] = [
                [op.base + op.step * sum(v >= t for t in ts) for v, ts in zip(row, op.thresholds)]
                for row in src
            ]
        elif isinstance(op, Dense):
            vals[op.name] = [
                [r.bias + sum(w * row[c] for c, w in zip(r.cols, r.weights)) for r in op.rows]
                for row in src
            ]
        else:
            assert isinstance(op, Requant) and op.shift >= 0
            out = []
            for row in src:
                y = []
                for v in row:
                    q = v >> op.shift
                    rem, half = v - (q << op.shift), (1 << op.shift) >> 1
                    if (
                        op.rounding is Rounding.HALF_EVEN
                        and op.shift
                        and (rem > half or (rem == half and q % 2))
                    ):
                        q += 1
                    y.append(min(max(q, op.lo), op.hi))
                out.append(y)
            vals[op.name] = out
    return vals


# --- graph variants -------------------------------------------------------------------------


def max_after_input() -> Graph:
    """Max reading the input directly (windows of 1 to 20 members, overlapping, unordered),
    then a Threshold with step 3 (some thresholds below or above the range, one element
    with none, one with 17 undecided ones), a Dense reading it, a Requant and a Max output."""
    rng = np.random.default_rng(5)
    groups = ((0,), (3, 1), (2, 0, 5), (7, 6, 5, 4), tuple(range(20)), (19, 2, 11, 4, 8))
    ts = (
        (-300, -2, 5, 400),  # -300 always passes, 400 never
        (),
        tuple(range(-40, 45, 5)),  # 17 undecided: a 5-level adder tree, two register banks
        (-129, -128),  # both always pass: a constant element
        (0,),
        (-3, -3, 9),  # a repeated threshold counts twice
    )
    rows = []
    for _ in range(7):
        w = rng.integers(-5, 5, size=6, endpoint=True)
        cols = tuple(int(c) for c in np.flatnonzero(w))
        rows.append(Row(int(rng.integers(-20, 20)), cols, tuple(int(w[c]) for c in cols)))
    return _graph(
        Input("x", (), 20, IntRange(-128, 127), -7),
        Max("pool", ("x",), groups),
        Threshold("th", ("pool",), ts, -4, 3, 0),
        Dense("fc", ("th",), 6, tuple(rows), -2),
        Requant("act", ("fc",), 1, -16, 15, Rounding.HALF_EVEN),
        Max("top", ("act",), ((0, 1, 2), (3, 4, 5, 6), (6,))),
    )


def threshold_output() -> Graph:
    """A Dense reading a Threshold of a Max, and a Threshold as the graph output (unsigned
    input, FINN-style 7 thresholds on an accumulator)."""
    g = random_cnn(4, channels=2, side=4, bipolar=False)
    d = g.values["dense1"]
    ts = tuple(tuple(sorted({int(v) for v in np.linspace(r.lo, r.hi, 9)[1:-1]})) for r in d.ranges)
    ops = (*g.ops, Threshold("out_th", ("dense1",), ts, 0, 1, 0))
    return _graph(*ops)


VARIANTS = {
    "cnn_bipolar": lambda: random_cnn(0, bipolar=True),
    "cnn_multi": lambda: random_cnn(1, bipolar=False, rounding=Rounding.HALF_EVEN),
    "max_after_input": max_after_input,
    "threshold_output": threshold_output,
}


# --- golden -----------------------------------------------------------------------------------


def test_every_op_kind_has_an_evaluator_and_an_emitter() -> None:
    for tag, cls in OP_KINDS.items():
        if cls is Input:
            continue
        assert cls in golden.EVALUATORS, f"op kind {tag!r} has no golden evaluator"
        assert cls in LOWERINGS, f"op kind {tag!r} has no lowering"
        assert cls in COST_FUNCTIONS, f"op kind {tag!r} has no cost function"


def test_golden_hand_worked() -> None:
    g = _graph(
        Input("x", (), 3, IntRange(-8, 7), 0),
        Max("m", ("x",), ((0, 1, 2), (1,), (2, 1))),
        Threshold("sign", ("x",), ((0,), (0,), (0,)), -1, 2, 0),
        out="m",
    )
    vals = golden.run(g, np.array([[3, -2, 7], [-1, 0, 5]]))
    assert vals["m"].tolist() == [[7, -2, 7], [5, 0, 5]]
    assert vals["sign"].tolist() == [[1, -1, 1], [-1, 1, 1]]
    assert vals["m"].dtype == vals["sign"].dtype == np.int64

    # Thresholds (-2, 1, 4), base 0, step 2: y = 2 * #{t <= x}.
    g = _graph(
        Input("x", (), 6, IntRange(-8, 9), 0),
        Threshold("mt", ("x",), ((-2, 1, 4),) * 6, 0, 2, 0),
    )
    assert golden.outputs(g, np.array([[-3, -2, 0, 1, 4, 9]])).tolist() == [[0, 2, 2, 4, 6, 6]]


def test_golden_thresholds_beyond_int64_and_empty_lists() -> None:
    # Thresholds that do not fit int64 still count exactly; an empty list always counts 0.
    big = 1 << 80
    g = _graph(
        Input("x", (), 3, IntRange(-5, 5), 0),
        Threshold("t", ("x",), ((-big, big), (), (-big, 0, 0, big)), 7, 5, 0),
    )
    y = golden.outputs(g, np.array([[5, 5, 0], [-5, -5, -1]]))
    assert y.tolist() == [[12, 7, 22], [12, 7, 12]]
    assert g.values["t"].ranges == (IntRange(12, 12), IntRange(7, 7), IntRange(12, 22))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_golden_matches_definitions_and_ranges(name: str) -> None:
    g = VARIANTS[name]()
    x = golden.stimulus_vectors(g, 60, 3)
    vals = golden.run(g, x)
    ref = _reference(g, x)
    for op in g.ops:
        assert vals[op.name].tolist() == ref[op.name], op.name
        lo = np.array([r.lo for r in g.values[op.name].ranges])
        hi = np.array([r.hi for r in g.values[op.name].ranges])
        assert (vals[op.name] >= lo).all() and (vals[op.name] <= hi).all(), op.name


# --- passes -----------------------------------------------------------------------------------


def _same_function(a: Graph, b: Graph, n: int = 300, seed: int = 0) -> None:
    x = golden.stimulus_vectors(a, n, seed)
    for out_a, out_b in zip(a.outputs, b.outputs, strict=True):
        np.testing.assert_array_equal(golden.run(a, x)[out_a], golden.run(b, x)[out_b])


def _check_optimized(g: Graph, h: Graph) -> None:
    verify(h)
    _same_function(g, h)
    assert optimize(h) == h  # a fixed point
    assert from_json(to_json(h)) == h
    # Every element of a value read only by Dense or Max ops is read by one of them.
    for op in h.ops:
        if isinstance(op, Input) or op.name in h.outputs:
            continue
        readers = h.consumers(op.name)
        if readers and all(isinstance(r, (Dense, Max)) for r in readers):
            read: set[int] = set()
            for r in readers:
                if isinstance(r, Dense):
                    read.update(c for row in r.rows for c in row.cols)
                else:
                    read.update(j for grp in r.groups for j in grp)
            if read:
                assert read == set(range(h.values[op.name].size)), op.name
            else:  # nothing reads it: the IR's one-element placeholder
                assert h.values[op.name].size == 1, op.name


def test_optimize_preserves_function_on_random_cnns() -> None:
    for seed in range(24):
        g = random_cnn(
            seed,
            channels=1 + seed % 3,
            side=4 + 2 * (seed % 2),
            n_out=2 + seed % 4,
            sparsity=(0.3, 0.7, 0.9, 0.97)[seed % 4],
            bipolar=seed % 2 == 0,
            rounding=(Rounding.FLOOR, Rounding.HALF_EVEN)[seed // 2 % 2],
        )
        h = optimize(g)
        _check_optimized(g, h)
        assert sum(d.n_terms for d in h.dense_ops()) <= sum(d.n_terms for d in g.dense_ops())


@pytest.mark.parametrize("name", ["max_after_input", "threshold_output"])
def test_optimize_preserves_function_on_variants(name: str) -> None:
    g = VARIANTS[name]()
    _check_optimized(g, optimize(g))


def test_constants_fold_through_max_and_threshold() -> None:
    # d0: rows 0, 1 are the constants 5 and -6; row 2 = x0, row 3 = x1 (x in [0, 3]).
    # m: [max(5, -6) = 5, max(row 2, row 3), max(5, row 2) = 5 (5 dominates [0, 3])].
    # t: thresholds (0,), (10,), (-1, 2): t[0] = 1 (5 >= 0), t[1] = 0 (max <= 3 < 10),
    # t[2] = 2 (5 passes both). d1 = 1 + 2*t0 + 3*t1 + 4*t2 = 1 + 2 + 0 + 8 = 11.
    g = _graph(
        Input("x", (), 2, IntRange(0, 3), 0),
        Dense("d0", ("x",), 2, (Row(5, (), ()), Row(-6, (), ()), Row(0, (0,), (1,)),
                                Row(0, (1,), (1,))), 0),
        Max("m", ("d0",), ((0, 1), (2, 3), (0, 2))),
        Threshold("t", ("m",), ((0,), (10,), (-1, 2)), 0, 1, 0),
        Dense("d1", ("t",), 3, (Row(1, (0, 1, 2), (2, 3, 4)),), 0),
    )  # fmt: skip
    h = fold_constant_inputs(g)
    assert h.op("d1").rows == (Row(11, (), ()),)
    _same_function(g, h)
    o = optimize(g)
    verify(o)
    _same_function(g, o)
    assert o.op("d1").rows == (Row(11, (), ()),)
    # Nothing reads t any more: t, m and d0 keep one placeholder element each (m's a window
    # of one member, d0's a row without terms).
    assert [o.values[n].size for n in ("d0", "m", "t")] == [1, 1, 1]
    assert o.op("m").groups == ((0,),) and o.op("d0").rows == (Row(5, (), ()),)


def test_dead_elements_reindex_max_groups_and_thresholds() -> None:
    # d0 has 4 rows; m = [max(d0[0], d0[1]), max(d0[2], d0[3])]; t thresholds per element;
    # d1 reads only t[1]. So d0 keeps rows 2, 3 (renumbered 0, 1), m keeps window 1 as
    # (0, 1), t keeps its element 1's thresholds, d1 reads column 0.
    rows = tuple(Row(i, (i % 2,), (i + 1,)) for i in range(4))
    g = _graph(
        Input("x", (), 2, IntRange(-4, 4), 0),
        Dense("d0", ("x",), 2, rows, 0),
        Max("m", ("d0",), ((0, 1), (2, 3))),
        Threshold("t", ("m",), ((1,), (-3, 0, 6)), -1, 2, 0),
        Dense("d1", ("t",), 2, (Row(0, (1,), (3,)),), 0),
    )
    h = remove_dead_neurons(g)
    verify(h)
    assert h.op("d0").rows == rows[2:]
    assert h.op("m").groups == ((0, 1),)
    assert h.op("t").thresholds == ((-3, 0, 6),)
    assert h.op("d1").rows == (Row(0, (0,), (3,)),)
    _same_function(g, h)


def test_dead_output_layer_keeps_placeholders_through_a_chain() -> None:
    # An output Dense with no terms leaves every layer before it unread; each keeps one
    # placeholder element reading at most one element (this used to fail with a KeyError
    # on Dense chains: the placeholder row read columns its source had dropped).
    for g in (random_mlp(3, sizes=(8, 6, 5, 3), sparsity=0.2), random_cnn(2)):
        last = g.op(g.outputs[0])
        dead = replace(last, rows=tuple(Row(r.bias, (), ()) for r in last.rows))
        g = replace(g, ops=(*g.ops[:-1], dead))
        h = remove_dead_neurons(g)
        verify(h)
        _same_function(g, h)
        assert all(h.values[op.name].size == 1 for op in h.ops[1:-1])


def test_unread_inputs_counts_max_and_elementwise_reads() -> None:
    g = _graph(
        Input("x", (), 5, IntRange(0, 3), 0),
        Max("m", ("x",), ((0, 2), (2,))),
    )
    assert unread_inputs(g) == {"x": [1, 3, 4]}
    g = _graph(
        Input("x", (), 3, IntRange(0, 3), 0),
        Threshold("t", ("x",), ((1,), (2,), (3,)), 0, 1, 0),
    )
    assert unread_inputs(g) == {"x": []}


# --- schedule -----------------------------------------------------------------------------------


def test_max_schedule_depth_and_registers() -> None:
    sizes = (1, 2, 3, 4, 5, 16, 17, 33)
    groups, start = [], 0
    for n in sizes:
        groups.append(tuple(range(start, start + n)))
        start += n
    g = _graph(Input("x", (), start, IntRange(-8, 7), 0), Max("m", ("x",), tuple(groups)))
    (ls,) = schedule(g)
    depth = max(math.ceil(math.log2(n)) for n in sizes)
    assert ls.depth == depth == 6
    assert ls.cycles == 2 == latency_cycles(g)  # banks after levels 4 and 6
    # Bank 1 (after level 4): each window's operands at level 4, 4 bits each: windows of
    # <= 16 members are reduced to 1, 17 to 2 (16 + a pass-through), 33 to 3.
    assert ls.stages[0].level == 4 and ls.stages[0].reg_bits == (4,) * (6 + 2 + 3)
    assert ls.stages[1].level == 6 and ls.stages[1].reg_bits == (4,) * len(sizes)


def test_threshold_schedule_counts_only_undecided_thresholds() -> None:
    # x in [0, 15]. Element 0: (-5, 0) always pass, 16 never: constant. Element 1: 5
    # undecided -> depth 3. Element 2: 20 undecided -> depth 5: two banks.
    ts = ((-5, 0, 16), (1, 2, 3, 4, 5), tuple(sorted([1 + k % 15 for k in range(20)])))
    g = _graph(Input("x", (), 3, IntRange(0, 15), 0), Threshold("t", ("x",), ts, 1, 3, 0))
    (ls,) = schedule(g)
    assert ls.depth == 5 and ls.cycles == 2
    # Bank 1 closes level 4: element 0's constant 0 (1 bit), element 1's count of 5 ([0, 5],
    # 3 bits), element 2's two partial counts ([0, 16] and [0, 4]: 5 and 3 bits).
    assert ls.stages[0].reg_bits == (1, 3, 5, 3)
    # Last bank: y = 1 + 3 * count: [7, 7], [1, 16], [1, 61], unsigned.
    assert g.values["t"].ranges == (IntRange(7, 7), IntRange(1, 16), IntRange(1, 61))
    assert ls.stages[1].reg_bits == (3, 5, 6)


def test_random_cnn_schedule_has_one_layer_per_new_op() -> None:
    g = random_cnn(0)
    by_op = {ls.op: ls for ls in schedule(g)}
    assert set(by_op) == {"conv0", "pool0", "sign0", "dense1"}
    assert by_op["conv0"].fused == "act0"
    assert by_op["pool0"].depth == 2 and by_op["pool0"].cycles == 1
    assert by_op["sign0"].depth == 0 and by_op["sign0"].cycles == 1
    assert latency_cycles(g) == sum(ls.cycles for ls in by_op.values())


# --- costs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_costs_of_new_ops_are_positive_and_follow_the_schedule(name: str) -> None:
    g = VARIANTS[name]()
    scheds = {ls.op: ls for ls in schedule(g)}
    costs = {c.name: c for c in layer_costs(g)}
    new = [op for op in g.ops if isinstance(op, (Max, Threshold))]
    assert new
    for op in new:
        c = costs[op.name]
        # The schedule's registers, less those of constant or unread elements (yosys
        # removes them: tests/estimate/test_costs.py::test_dead_and_constant_rows_cost_nothing)
        assert c.ff_parts["valid"] == scheds[op.name].cycles
        assert 0 < c.ff_parts["reg"] <= scheds[op.name].ff
        assert c.latency_cycles == scheds[op.name].cycles and c.ii == 1
        assert c.product_terms == 0 and c.dsp == 0 and c.bram18 == 0
        assert c.lut > 0 or all(t == (0,) for t in getattr(op, "thresholds", ()))
    e = estimate(g, get_board("pynq-z2"))
    assert e["totals"]["latency_cycles"] == latency_cycles(g)


def test_costs_hand_worked() -> None:
    # Max of two 8-bit signed variables: a two-variable compare (2 * ceil(8 / 3) = 6) and
    # an 8-bit mux (8): 14 LUT, what yosys made of the same registered module.
    assert compare_luts(8) == 6
    g = _graph(Input("x", (), 2, IntRange(-128, 127), 0), Max("m", ("x",), ((0, 1),)))
    (c,) = layer_costs(g)
    assert (c.kind, c.lut, c.ff, c.latency_cycles) == ("max", 14, 8 + 1, 1)
    # A sign on 8-bit values is the inverted sign bit and a constant low bit: 0 LUT.
    g = _graph(Input("x", (), 4, IntRange(-128, 127), 0),
               Threshold("s", ("x",), ((0,),) * 4, -1, 2, 0))  # fmt: skip
    (c,) = layer_costs(g)
    # Its register holds the sign bit only: the constant low bit is no flip-flop (yosys
    # keeps 25 FDRE for the 25 signs of benchmarks/estimate.py's cal-cnn-115).
    assert (c.kind, c.lut, c.ff) == ("threshold", 0, 4 * 1 + 1)
    # Counting bits: groups of 6 by LUT6 (one per count bit), then adders.
    assert [popcount_luts(n) for n in (0, 1, 3, 6, 15)] == [0, 0, 2, 3, 14]
    # More thresholds cost more.
    luts = []
    for n in (1, 3, 7, 15):
        ts = (tuple(range(-n, n, 2)),)
        g = _graph(Input("x", (), 1, IntRange(-512, 511), 0), Threshold("t", ("x",), ts, 0, 1, 0))
        luts.append(layer_costs(g)[0].lut)
    assert luts == sorted(luts) and luts[0] > 0 and len(set(luts)) == 4


# --- Verilog text -------------------------------------------------------------------------------

# Operands are sized to the compare's and to the node's width, so the mux arms need not repeat
# the compared text.
_MAX_LINE = re.compile(r"^\s*m_\d+_\d+_\d+ = \(.+ > .+\) \? .+ : .+;", re.MULTILINE)
_CMP_LINE = re.compile(r"c_(\d+)_(\d+) = x_\d+ >= (-?\d+'sd\d+); // t=(-?\d+)")


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_verilog_text_of_new_layers(name: str) -> None:
    g = VARIANTS[name]()
    files = emit_verilog(g)
    assert files == emit_verilog(g)
    text = "".join(files.values())
    # No product terms in Max / Threshold layers: the counts are the Dense ops' alone.
    assert count_product_terms(text) == {d.name: d.n_terms for d in g.dense_ops()}
    for lay in layers(g):
        op = g.op(lay.value)
        body = files[f"{lay.module}.v"]
        if isinstance(op, Max):
            assert lay.dense is None and lay.requant is None and lay.label == op.name
            assert len(_MAX_LINE.findall(body)) == sum(len(grp) - 1 for grp in op.groups)
        if isinstance(op, Threshold):
            x = g.values[op.inputs[0]]
            undecided = [
                t for r, ts in zip(x.ranges, op.thresholds) for t in ts if r.lo < t <= r.hi
            ]
            found = _CMP_LINE.findall(body)
            assert [int(t) for *_, t in found] == undecided
            assert " * " not in body
    tb = emit_testbench(g)["test_hwprune_top.py"]
    for lay in layers(g):
        assert f'"signal": "{lay.signal}"' in tb  # the testbench probes every layer


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_yosys_registers_of_new_layers_match_schedule(tmp_path: Path, monkeypatch) -> None:
    # In the always @* form (verilog.CLOCKED_MAX) proc makes flip-flops of the registers
    # only; the clocked form has the same registers (test_verilog's full-synthesis count).
    from hwprune.codegen import verilog

    monkeypatch.setattr(verilog, "CLOCKED_MAX", 0)
    g = max_after_input()
    files = emit_verilog(g)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    srcs = " ".join(str(tmp_path / n) for n in sorted(files))
    out = tmp_path / "stat.json"
    cmd = (
        f"read_verilog {srcs}; hierarchy -top hwprune_top; proc; tee -q -o {out} stat -width -json"
    )
    subprocess.run(["yosys", "-q", "-p", cmd], check=True, capture_output=True, timeout=120)
    mods = json.loads(out.read_text())["modules"]
    sched = {ls.op: ls.ff for ls in schedule(g)}
    for lay in layers(g):
        cells = mods[f"\\{lay.module}"]["num_cells_by_type"]
        ff = sum(n * int(c.rsplit("_", 1)[1]) for c, n in cells.items() if "dff" in c)
        assert ff == sched[lay.dense or lay.value], lay.label
