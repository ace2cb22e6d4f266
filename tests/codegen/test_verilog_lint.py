"""The emitted Verilog is warning-free under ``verilator --lint-only -Wall`` and synthesizes in
yosys, for a small design of every op kind (the emitter sizes every operand, and sinks
intentionally unread bits into Verilator's ``*unused*`` idiom; no -Wno). Layer modules waive
two warnings by pragma, ``verilog.LINT_WAIVED`` (blocking assignments in the clocked block,
implicit sign extension); with the pragmas taken out, those are the only warnings there are."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from hwprune.codegen.verilog import LINT_WAIVED, emit_verilog
from hwprune.errors import HwpruneError
from hwprune.hw.schedule import schedule
from hwprune.ir.graph import Dense, Graph, Input, IntRange, Requant, Rounding, Row, verify
from hwprune.sim.rtl import _verilator_executable
from tests.graphs import random_cnn, random_mlp


def _no_bias_standalone_requant() -> Graph:
    # A Requant straight after the input (its own stage) that shifts left and clips both
    # ends, then a Dense without bias: weights +-1 and +-2^k (wiring), a row with no term,
    # an input column no weight reads, a product narrower than its input (-x of [0, 8]).
    g = Graph(
        (
            Input("x", (), 4, IntRange(-20, 20), 0),
            Requant("pre", ("x",), -1, -5, 8, Rounding.FLOOR),
            Dense(
                "d",
                ("pre",),
                4,
                (
                    Row(0, (0, 1, 2), (1, -1, 4)),
                    Row(0, (), ()),
                    Row(0, (0, 2), (-8, 3)),
                ),
                0,
            ),
        ),
        ("d",),
    )
    verify(g)
    return g


def _narrow_unsigned_dense() -> Graph:
    # The product -x of an element in [0, 8] is narrower than x's 5-bit wire: truncated.
    g = Graph(
        (
            Input("x", (), 3, IntRange(0, 8), 0),
            Dense("d", ("x",), 3, (Row(5, (0, 1), (-1, -2)), Row(-3, (2,), (1,))), 0),
        ),
        ("d",),
    )
    verify(g)
    return g


DESIGNS: dict[str, Callable[[], Graph]] = {
    "dense_bias_floor_unsigned": lambda: random_mlp(4, sizes=(8, 6, 4), sparsity=0.4),
    "dense_half_even_signed": lambda: random_mlp(
        5, sizes=(8, 6, 3), sparsity=0.4, in_signed=True, rounding=Rounding.HALF_EVEN
    ),
    "dense_no_bias_standalone_requant": _no_bias_standalone_requant,
    "dense_narrow_unsigned": _narrow_unsigned_dense,
    "max_threshold_bipolar": lambda: random_cnn(0, channels=2, side=4, n_out=3),
    "max_multithreshold_half_even": lambda: random_cnn(
        1, channels=2, side=4, n_out=3, bipolar=False, rounding=Rounding.HALF_EVEN
    ),
    "wide_two_banks": lambda: random_mlp(6, sizes=(24, 4), sparsity=0.0),
    # the adder-graph kernel: shift-adds, right shifts, negated outputs, delay registers
    "adder_graph_signed": lambda: _kernel(
        random_mlp(5, sizes=(8, 6, 3), sparsity=0.2, in_signed=True), "adder-graph", 1
    ),
    "adder_graph_cnn": lambda: _kernel(random_cnn(0, channels=2, side=4, n_out=3), "adder-graph"),
    # mac-dsp: one multiplier per weight that is not +-2^k, marked use_dsp
    "mac_dsp_signed": lambda: _kernel(
        random_mlp(5, sizes=(8, 6, 3), sparsity=0.2, in_signed=True), "mac-dsp"
    ),
}


def _kernel(g: Graph, kernel: str, pipeline: int = 4) -> Graph:
    return replace(g, meta={**g.meta, "kernel": kernel, "pipeline": pipeline})


def _verilator() -> Path:
    try:
        return _verilator_executable()
    except HwpruneError as e:
        pytest.skip(str(e))


_PRAGMA = re.compile(r"^\s*/\* verilator lint_(?:off|on) (\w+) \*/\n", re.MULTILINE)


def _write(tmp_path: Path, g: Graph, waivers: bool = True) -> list[str]:
    files = emit_verilog(g)
    for name, text in files.items():
        (tmp_path / name).write_text(text if waivers else _PRAGMA.sub("", text))
    return sorted(files)


def test_designs_cover_every_shape() -> None:
    # The lint below proves something only if these shapes exist in its designs.
    wide = {ls.op: ls for ls in schedule(DESIGNS["wide_two_banks"]())}
    assert wide["dense0"].cycles >= 2
    std = {ls.op: ls for ls in schedule(DESIGNS["dense_no_bias_standalone_requant"]())}
    assert std["pre"].fused is None and std["d"].fused is None
    fused = {ls.op: ls for ls in schedule(DESIGNS["dense_half_even_signed"]())}
    assert fused["dense0"].fused == "act0"


def _shared(g: Graph) -> Graph:
    """``g`` at reuse factor 3: every Dense shared (hw.reuse), the top with in_ready."""
    return replace(g, meta={**g.meta, "reuse_factor": 3})


# At reuse factor 3 the AXI-Stream top only: it holds the plain top and every layer.
@pytest.mark.parametrize(
    ("top", "reuse"), [("hwprune_top", 1), ("hwprune_top_axis", 1), ("hwprune_top_axis", 3)]
)
@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_verilator_lint_wall_is_clean(tmp_path: Path, name: str, top: str, reuse: int) -> None:
    exe = _verilator()
    design = (lambda: _shared(DESIGNS[name]())) if reuse > 1 else DESIGNS[name]
    files = _write(tmp_path, design())
    cmd = [str(exe), "--lint-only", "-Wall", "--top-module", top, *files]
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "%Warning" not in res.stderr, res.stderr
    assert res.returncode == 0, res.stderr
    # The pragmas are the waivers and nothing else, in layer modules only.
    pragmas = {n: _PRAGMA.findall((tmp_path / n).read_text()) for n in files}
    assert {tuple(p) for p in pragmas.values()} <= {(), (*LINT_WAIVED, *LINT_WAIVED[::-1])}
    assert pragmas["hwprune_top.v"] == [] and pragmas["hwprune_top_axis.v"] == []
    # Without them, Verilator warns of the waived kinds only: they hide nothing else.
    _write(tmp_path, design(), waivers=False)
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    kinds = set(re.findall(r"%Warning-(\w+)", res.stderr))
    assert kinds <= set(LINT_WAIVED), res.stderr


@pytest.mark.parametrize("name", ["dense_half_even_signed", "adder_graph_signed"])
def test_verilator_lint_wall_is_clean_in_always_star_blocks(
    tmp_path: Path, name: str, monkeypatch
) -> None:
    # The form of a layer over verilog.CLOCKED_MAX statements, forced on a small one.
    from hwprune.codegen import verilog

    monkeypatch.setattr(verilog, "CLOCKED_MAX", 0)
    monkeypatch.setattr(verilog, "STAGE_BLOCK", 5)
    test_verilator_lint_wall_is_clean(tmp_path, name, "hwprune_top", 1)
    assert "always @*" in (tmp_path / "hwprune_top_dense0.v").read_text()


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
@pytest.mark.parametrize("top", ["hwprune_top", "hwprune_top_axis"])
@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_yosys_synthesizes(tmp_path: Path, name: str, top: str) -> None:
    files = _write(tmp_path, DESIGNS[name]())
    script = f"read_verilog {' '.join(files)}; synth -top {top}"
    res = subprocess.run(
        ["yosys", "-q", "-p", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr + res.stdout
