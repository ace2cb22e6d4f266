"""--pipeline: register banks every N adder levels or once per layer. The schedule, the
netlist and the emitted Verilog agree, the latency is what the schedule says, and Icarus
runs the design bit-exactly with the generated testbench measuring that latency."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from hwprune.api import parse_pipeline
from hwprune.codegen.cocotb_tb import write_rtl, write_vectors
from hwprune.errors import HwpruneError
from hwprune.hw.schedule import latency_cycles, schedule
from hwprune.ir import golden
from hwprune.ir.passes import optimize
from hwprune.sim.rtl import run_rtl
from tests.graphs import random_cnn, random_mlp


def with_pipeline(g, per_stage):
    return replace(g, meta={**g.meta, "pipeline": per_stage})


def test_latency_follows_the_pipeline():
    g = optimize(random_mlp(5, (64, 6), sparsity=0.0))  # 65 operands per row: depth 7
    assert latency_cycles(with_pipeline(g, 4)) == 2
    assert latency_cycles(with_pipeline(g, 1)) == 7
    assert latency_cycles(with_pipeline(g, 3)) == 3
    assert latency_cycles(with_pipeline(g, 0)) == 1  # one bank per layer
    # a shallower pipeline holds fewer registers
    ff = {n: sum(ls.ff for ls in schedule(with_pipeline(g, n))) for n in (0, 1, 4)}
    assert ff[0] < ff[4] < ff[1]


def test_parse_pipeline():
    assert parse_pipeline("layer") == 0 and parse_pipeline("3") == 3 and parse_pipeline(2) == 2
    for bad in ("-1", "deep", 1.5j):
        with pytest.raises(HwpruneError, match="'layer'"):
            parse_pipeline(bad)


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
@pytest.mark.parametrize(
    "kind, per_stage",
    [
        ("mlp", 0),
        ("cnn", 1),
        pytest.param("mlp", 1, marks=pytest.mark.slow),
        pytest.param("mlp", 2, marks=pytest.mark.slow),
        pytest.param("cnn", 0, marks=pytest.mark.slow),
        pytest.param("cnn", 2, marks=pytest.mark.slow),
    ],
)
def test_rtl_bit_exact_at_every_pipeline(tmp_path, kind, per_stage):
    g = random_mlp(5, (40, 9, 3), sparsity=0.2) if kind == "mlp" else random_cnn(4)
    g = with_pipeline(optimize(g), per_stage)
    write_rtl(g, tmp_path / "rtl")
    write_vectors(tmp_path / "vectors.npz", g, golden.stimulus_vectors(g, 60, seed=3))
    res = run_rtl(tmp_path / "rtl", tmp_path / "work", tmp_path / "vectors.npz", "icarus")
    # The generated testbench fails on any vector that leaves after another latency.
    assert res.passed, res.first_mismatch
