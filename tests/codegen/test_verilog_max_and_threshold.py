"""Max and Threshold layers in RTL: Icarus runs the emitted Verilog with its generated cocotb
testbench against the golden interpreter, and a corrupted compare must make it fail.

Expected values come from the golden interpreter through the vectors file.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hwprune.codegen.cocotb_tb import write_rtl, write_vectors
from hwprune.codegen.verilog import _lit, emit_verilog, layers
from hwprune.hw.schedule import latency_cycles, schedule
from hwprune.ir import golden
from hwprune.ir.graph import Graph, Max, Rounding, Threshold
from hwprune.ir.passes import optimize
from hwprune.sim.rtl import run_rtl
from tests.graphs import random_cnn
from tests.ir.test_max_and_threshold import max_after_input, threshold_output

pytestmark = pytest.mark.skipif(
    shutil.which("iverilog") is None, reason="iverilog not installed (apt-get install iverilog)"
)

N_RANDOM = 200

GRAPHS = {
    "cnn_bipolar": lambda: random_cnn(0, bipolar=True),
    "cnn_multi": lambda: random_cnn(1, bipolar=False, rounding=Rounding.HALF_EVEN),
    # Max after the input, two-bank Max and Threshold trees, step 3, constant elements,
    # a Max output.
    "max_after_input": max_after_input,
    # A Threshold output, and the optimized graph (constants folded, dead elements gone).
    "threshold_output_optimized": lambda: optimize(threshold_output()),
}


def _design(tmp_path: Path, g: Graph, seed: int = 7) -> tuple[Path, Path, np.ndarray]:
    write_rtl(g, tmp_path / "rtl")
    x = golden.stimulus_vectors(g, N_RANDOM, seed)
    write_vectors(tmp_path / "vectors.npz", g, x)
    return tmp_path / "rtl", tmp_path / "vectors.npz", x


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_icarus_bit_exact(tmp_path: Path, name: str) -> None:
    g = GRAPHS[name]()
    kinds = {type(g.op(lay.value)) for lay in layers(g)}
    assert {Max, Threshold} <= kinds or name == "threshold_output_optimized"
    rtl_dir, vectors, x = _design(tmp_path, g)
    res = run_rtl(rtl_dir, tmp_path / "work", vectors)
    assert res.passed, res.first_mismatch
    assert res.n_vectors == len(x) >= N_RANDOM


def test_shapes_are_exercised() -> None:
    # The runs above prove something only if these paths are in their graphs.
    by_op = {ls.op: ls for ls in schedule(max_after_input())}
    assert by_op["pool"].cycles == 2 and by_op["th"].cycles == 2
    assert latency_cycles(max_after_input()) == sum(ls.cycles for ls in by_op.values())
    g = GRAPHS["threshold_output_optimized"]()
    assert isinstance(g.op(g.outputs[0]), Threshold)
    assert any(isinstance(op, Max) for op in g.ops)


def _fails_at(tmp_path: Path, g: Graph, layer_op: str, corrupted: dict[str, str]) -> None:
    """Run the design with files replaced; it must fail first at the layer of ``layer_op``
    with the golden value of that layer as the expectation."""
    rtl_dir, vectors, x = _design(tmp_path, g)
    for name, text in corrupted.items():
        (rtl_dir / name).write_text(text)
    res = run_rtl(rtl_dir, tmp_path / "work", vectors)
    assert not res.passed
    bad = res.first_mismatch
    assert bad is not None and bad["reason"] == "value"
    (lay,) = [lay for lay in layers(g) if lay.value == layer_op]
    assert bad["layer"] == lay.label
    assert bad["input"] == x[bad["vector"]].tolist()
    assert bad["expected"] == golden.run(g, x)[lay.value][bad["vector"], bad["index"]]
    assert bad["got"] != bad["expected"]


_CMP = re.compile(r"^(\s*c_(\d+)_\d+ = x_\d+ >= )(-?\d+'sd\d+)(; // t=(-?\d+))$", re.MULTILINE)


@pytest.mark.parametrize("bipolar", [True, False])
def test_changed_threshold_constant_fails(tmp_path: Path, bipolar: bool) -> None:
    g = random_cnn(0, bipolar=bipolar)
    (th,) = [op for op in g.ops if isinstance(op, Threshold)]
    (lay,) = [lay for lay in layers(g) if lay.value == th.name]
    path = f"{lay.module}.v"
    text = emit_verilog(g)[path]
    m = _CMP.search(text)
    assert m is not None
    elem, t = int(m[2]), int(m[5])
    # Move the threshold to the first nearby value that changes the layer's golden output
    # on these vectors (the IR with the same change is the independent check of that).
    x = golden.stimulus_vectors(g, N_RANDOM, 7)
    want = golden.run(g, x)[th.name]
    for new in (t + 1, t - 1, t + 2, t - 2, t + 3, t - 3):
        ts = list(th.thresholds)
        ts[elem] = tuple(new if v == t else v for v in ts[elem])
        changed = replace(th, thresholds=tuple(ts))
        g2 = replace(g, ops=tuple(changed if op.name == th.name else op for op in g.ops))
        if not np.array_equal(golden.run(g2, x)[th.name], want):
            break
    else:
        pytest.fail(f"no nearby value of threshold {t} changes {th.name} on these vectors")
    line = m[0]
    # Sized to x, or wider if the new value needs it (Verilog then widens x: still exact).
    width = max(int(m[3].lstrip("-").split("'")[0]), abs(new).bit_length() + 1)
    new_line = f"{m[1]}{_lit(new, width)}{m[4]}"  # the comment still says t=<old>
    _fails_at(tmp_path, g, th.name, {path: text.replace(line, new_line, 1)})


def test_turned_max_compare_fails(tmp_path: Path) -> None:
    g = random_cnn(0, bipolar=True)
    (lay,) = [lay for lay in layers(g) if lay.value == "pool0"]
    path = f"{lay.module}.v"
    text = emit_verilog(g)[path]
    line = next(ln for ln in text.splitlines() if " > " in ln and "? " in ln)
    turned = line.replace(" > ", " < ", 1)  # max(a, b) becomes min(a, b)
    _fails_at(tmp_path, g, "pool0", {path: text.replace(line, turned, 1)})
