"""pytest launcher: emit RTL and its cocotb testbench for random graphs, simulate, compare.

The in-simulator test is the generated ``test_hwprune_top.py``; expected values come from the
golden interpreter through the vectors file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hwprune.codegen.cocotb_tb import write_rtl, write_vectors
from hwprune.errors import HwpruneError
from hwprune.ir import golden
from hwprune.ir.graph import Rounding
from hwprune.sim.rtl import check_simulator, run_rtl
from tests.graphs import random_mlp

CASES = {
    "unsigned_floor": dict(seed=11, sizes=(20, 16, 10, 4), sparsity=0.6),
    "signed_half_even": dict(
        seed=12, sizes=(24, 12, 6), sparsity=0.4, in_signed=True, rounding=Rounding.HALF_EVEN
    ),
}


def _simulate(tmp_path: Path, case: str, simulator: str) -> None:
    g = random_mlp(**CASES[case])
    write_rtl(g, tmp_path / "rtl")
    write_vectors(tmp_path / "vectors.npz", g, golden.stimulus_vectors(g, 200, seed=7))
    res = run_rtl(tmp_path / "rtl", tmp_path / "work", tmp_path / "vectors.npz", simulator)
    assert res.passed, res.first_mismatch


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
@pytest.mark.parametrize("case", sorted(CASES))
def test_icarus(tmp_path: Path, case: str) -> None:
    _simulate(tmp_path, case, "icarus")


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_verilator(tmp_path: Path, case: str) -> None:
    try:
        check_simulator("verilator")
    except HwpruneError as e:
        pytest.skip(str(e))
    _simulate(tmp_path, case, "verilator")
