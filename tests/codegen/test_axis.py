"""The AXI-Stream top (hwprune.codegen.axis) under cocotbext-axi: bit-exact with the golden
interpreter under random bubbles and back-pressure, frame boundaries (TLAST) kept, and the
test fails when the wrapper is wrong."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hwprune.codegen.axis import byte_width, emit_axis_top
from hwprune.codegen.cocotb_tb import write_rtl, write_vectors
from hwprune.hw.schedule import latency_cycles
from hwprune.ir import golden
from hwprune.sim.rtl import run_rtl
from tests.graphs import random_cnn, random_mlp

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")

GRAPHS = {
    "mlp": lambda: random_mlp(4, sizes=(8, 6, 4), sparsity=0.4),
    "cnn": lambda: random_cnn(0, channels=2, side=4, n_out=3),
    "one_cycle": lambda: random_mlp(2, sizes=(3, 2), sparsity=0.0),
}


def _build(tmp_path: Path, name: str, n: int = 120) -> Path:
    g = GRAPHS[name]()
    write_rtl(g, tmp_path / "rtl")
    write_vectors(tmp_path / "vectors.npz", g, golden.stimulus_vectors(g, n, seed=3))
    return tmp_path


def _run(d: Path):
    return run_rtl(d / "rtl", d / "work", d / "vectors.npz", "icarus", "hwprune_top_axis")


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_bit_exact_under_back_pressure(tmp_path, name):
    assert latency_cycles(GRAPHS["one_cycle"]()) == 1  # the shortest tlast delay line
    r = _run(_build(tmp_path, name))
    assert r.passed, r.first_mismatch
    assert r.n_vectors >= 120


def test_a_wrong_tlast_fails(tmp_path):
    d = _build(tmp_path, "mlp")
    v = d / "rtl" / "hwprune_top_axis.v"
    text, n = re.subn(r"\{last_pipe\[\d+\], out_data\}", "{1'b1, out_data}", v.read_text())
    assert n == 1
    v.write_text(text)
    r = _run(d)
    assert not r.passed and r.first_mismatch["reason"] == "tlast"


def test_a_wrong_value_fails(tmp_path):
    d = _build(tmp_path, "mlp")
    v = d / "rtl" / "hwprune_top_axis.v"
    text, n = re.subn(
        r"\.in_data\(s_axis_tdata\[(\d+):0\]\)", r".in_data(~s_axis_tdata[\1:0])", v.read_text()
    )
    assert n == 1
    v.write_text(text)
    r = _run(d)
    assert not r.passed and r.first_mismatch["reason"] == "value"


def test_ports_are_whole_bytes():
    g = GRAPHS["mlp"]()
    text = emit_axis_top(g, "hwprune_top", latency_cycles(g))
    n_in = g.values["x"].size * g.values["x"].range.bits
    assert f"input wire [{byte_width(n_in) - 1}:0] s_axis_tdata" in text
    assert byte_width(1) == 8 and byte_width(8) == 8 and byte_width(9) == 16
