"""Measured ASIC figures: the emitted Verilog mapped to a standard-cell library with yosys,
timed and powered with OpenSTA (``hwprune estimate DIR --target asic:osu018 --synth yosys``).

``map_to_library(rtl_dir, lib)`` runs, on every ``.v`` file of ``rtl_dir``::

    synth -flatten -top hwprune_top          generic synthesis, flattened as on the FPGAs
    dfflibmap -liberty LIB                   flip-flops to the library's flip-flop cells
    abc -liberty LIB                         logic to its combinational cells
    opt_clean -purge; setundef -zero; splitnets -ports; opt_clean
    write_verilog -noattr -noexpr -nohex -nodec mapped.v

(yosys' ASIC recipe, ``yosys -p "help abc"`` and ``help dfflibmap``; ``-noexpr`` and split
ports because OpenSTA's Verilog reader takes only a structural netlist). Its cell counts come
from ``stat -json``; the area is the sum of each cell's Liberty ``area`` (µm² for the OSU
libraries), split by kind: a cell with an ``ff`` or ``latch`` group is sequential, every other
cell combinational. yosys' own ``stat -liberty`` figure ("Chip area") is kept beside it as a
check (``yosys_area``).

``sta_report(mapped, lib, top, clock_mhz)`` runs OpenSTA (Debian's ``opensta``, command
``sta``) on the mapped netlist with one clock on ``clk`` at ``clock_mhz`` and zero input and
output delays, so the worst path is register to register or a port to a register: the
critical path (its delay and end points), the worst slack at that clock, Fmax = 1 / (period -
worst slack), and ``report_power``'s internal, switching and leakage power (W) at OpenSTA's
default switching activity (0.1 per input per cycle, propagated) and the library's corner.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hwprune.errors import HwpruneError
from hwprune.estimate.synth import _find, _find_yosys, _first_error, _run
from hwprune.libraries import Library

STA_EXECUTABLES: tuple[str, ...] = ("sta",)
STA_INSTALL = "'sudo apt-get install opensta' (Debian/Ubuntu), or run 'make deps' in a checkout"
MAPPED_V = "mapped.v"
_LOG = "yosys.log"
_STA_LOG = "sta.log"
_STAT = "stat.json"
_CHIP_AREA = re.compile(r"Chip area for (?:top )?module '\\?([^']+)':\s*([0-9.eE+-]+)")
_SLACK = re.compile(r"^\s*(-?[0-9.]+)\s+slack \((MET|VIOLATED)\)", re.M)
_ARRIVAL = re.compile(r"^\s*(-?[0-9.]+)\s+data arrival time", re.M)
_STARTPOINT = re.compile(r"^Startpoint: (\S+)", re.M)
_ENDPOINT = re.compile(r"^Endpoint: (\S+)", re.M)
_POWER_TOTAL = re.compile(
    r"^Total\s+([0-9.eE+-]+)\s+([0-9.eE+-]+)\s+([0-9.eE+-]+)\s+([0-9.eE+-]+)", re.M
)


@dataclass(frozen=True)
class Cell:
    """One Liberty cell: its area, whether it holds state, its leakage (library units)."""

    area: float
    sequential: bool
    leakage: float


@functools.lru_cache(maxsize=8)
def liberty_cells(liberty: Path) -> dict[str, Cell]:
    """Every cell of a Liberty file (read with the liberty-parser package)."""
    from liberty.parser import parse_liberty

    try:
        lib = parse_liberty(Path(liberty).read_text(errors="replace"))
    except OSError as e:
        raise HwpruneError(f"cannot read the Liberty file {liberty} ({e.strerror})") from e
    out = {}
    for c in lib.get_groups("cell"):
        name = str(c.args[0]).strip('"')
        out[name] = Cell(
            area=float(c.get("area", 0) or 0),
            sequential=bool(c.get_groups("ff") or c.get_groups("latch")),
            leakage=float(c.get("cell_leakage_power", 0) or 0),
        )
    return out


def cell_area(cells: dict[str, int], lib: Library) -> dict[str, float]:
    """{"combinational", "sequential", "total"}: the cells' Liberty areas summed by kind."""
    table = liberty_cells(lib.liberty)
    comb = seq = 0.0
    for name, n in cells.items():
        if name not in table:
            raise HwpruneError(
                f"the mapped netlist holds cell {name!r}, which {lib.liberty} does not define; "
                "the mapping did not finish (see yosys.log)"
            )
        if table[name].sequential:
            seq += n * table[name].area
        else:
            comb += n * table[name].area
    return {
        "combinational": round(comb, 2),
        "sequential": round(seq, 2),
        "total": round(comb + seq, 2),
    }


def yosys_script(lib: Library, top: str = "hwprune_top") -> str:
    """The mapping script (module docstring); paths quoted for yosys."""
    lb = f'"{lib.liberty}"'
    return "; ".join(
        [
            f"synth -flatten -top {top}",
            f"dfflibmap -liberty {lb}",
            f"abc -liberty {lb}",
            "opt_clean -purge",
            "setundef -zero",
            "splitnets -ports",
            "opt_clean",
            f"tee -q -o {_STAT} stat -json",
            f"stat -liberty {lb}",
            f"write_verilog -noattr -noexpr -nohex -nodec {MAPPED_V}",
        ]
    )


def map_to_library(
    rtl_dir: Path,
    lib: Library,
    work_dir: Path,
    top: str = "hwprune_top",
    timeout_s: float = 1800,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Map every ``.v`` of ``rtl_dir`` to ``lib``'s cells; ``work_dir/mapped.v`` is the
    gate-level netlist. Returns JSON-able data: tool, command, library, cells (by type),
    cell_count, area_um2 (combinational, sequential, total), yosys_area, seconds."""
    lib.check_installed()
    rtl_dir, work = Path(rtl_dir), Path(work_dir)
    sources = sorted(p.resolve() for p in rtl_dir.glob("*.v"))
    if not sources:
        raise HwpruneError(f"{rtl_dir}: no .v files to map; run 'hwprune compile' to write the RTL")
    exe = _find_yosys()
    work.mkdir(parents=True, exist_ok=True)
    for stale in (MAPPED_V, _STAT):
        (work / stale).unlink(missing_ok=True)
    script = yosys_script(lib, top)
    log = work / _LOG
    t0 = time.monotonic()
    code, stderr, timed_out = _run(
        [exe, "-l", str(log), "-p", script, *map(str, sources)], work, timeout_s, progress
    )
    seconds = round(time.monotonic() - t0, 2)
    if timed_out:
        raise HwpruneError(
            f"yosys did not map {rtl_dir} to {lib.target} within {timeout_s:g} s (log: {log}); "
            "raise the timeout or map a smaller network"
        )
    if code != 0 or not (work / MAPPED_V).is_file():
        raise HwpruneError(
            f"yosys failed mapping {rtl_dir} to {lib.target}: {_first_error(log, stderr)} "
            f"(full log: {log})"
        )
    stat = json.loads((work / _STAT).read_text())
    by_type: dict[str, int] = {}
    for mod in stat.get("modules", {}).values():
        for c, n in mod.get("num_cells_by_type", {}).items():
            by_type[c.removeprefix("\\")] = by_type.get(c.removeprefix("\\"), 0) + int(n)
    areas = [float(m.group(2)) for m in _CHIP_AREA.finditer(log.read_text(errors="replace"))]
    return {
        "tool": stat.get("creator", "yosys"),
        "command": script.replace(f'"{lib.liberty}"', "LIB"),
        "library": lib.target,
        "top": top,
        "cells": dict(sorted(by_type.items())),
        "cell_count": sum(by_type.values()),
        "area_um2": cell_area(by_type, lib),
        "yosys_area": areas[-1] if areas else None,
        "seconds": seconds,
    }


def find_sta() -> str:
    exe = _find(STA_EXECUTABLES)
    if exe is None:
        raise HwpruneError(
            f"OpenSTA is not installed (no 'sta' on PATH); install it with {STA_INSTALL}"
        )
    return exe


def sta_script(mapped: Path, lib: Library, top: str, clock_mhz: float) -> str:
    period = 1000.0 / clock_mhz
    return "\n".join(
        [
            f"read_liberty {{{lib.liberty}}}",
            f"read_verilog {{{mapped}}}",
            f"link_design {top}",
            f"create_clock -name clk -period {period:.6f} [get_ports clk]",
            "set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]",
            "set_output_delay 0 -clock clk [all_outputs]",
            "report_checks -path_delay max -digits 4",
            "report_power -digits 6",
            "exit",
            "",
        ]
    )


def sta_report(
    mapped: Path,
    lib: Library,
    work_dir: Path,
    top: str = "hwprune_top",
    clock_mhz: float | None = None,
    timeout_s: float = 1800,
) -> dict:
    """OpenSTA on a mapped netlist (module docstring): clock_mhz, critical_path_ns,
    startpoint, endpoint, slack_ns, fmax_mhz, power_w (internal, switching, leakage, total),
    seconds."""
    exe = find_sta()
    clock = clock_mhz or lib.clock_mhz
    work = Path(work_dir)
    script = work / "sta.tcl"
    script.write_text(sta_script(Path(mapped).resolve(), lib, top, clock))
    log = work / _STA_LOG
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            [exe, "-no_init", "-exit", str(script)],
            cwd=work,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as e:
        raise HwpruneError(
            f"OpenSTA did not finish within {timeout_s:g} s on {mapped}; raise the timeout"
        ) from e
    seconds = round(time.monotonic() - t0, 2)
    text = r.stdout + r.stderr
    log.write_text(text)
    if r.returncode != 0 or re.search(r"^Error", text, re.M):
        first = next((ln for ln in text.splitlines() if ln.startswith("Error")), "no Error line")
        raise HwpruneError(f"OpenSTA failed on {mapped}: {first.strip()} (full log: {log})")
    slack = _SLACK.search(text)
    arrival = _ARRIVAL.search(text)
    power = _POWER_TOTAL.search(text)
    if slack is None or arrival is None or power is None:
        raise HwpruneError(f"OpenSTA reported no timed path or power for {mapped}; see {log}")
    period = 1000.0 / clock
    worst = float(slack.group(1))
    need = period - worst  # the shortest period that path meets (its setup included)
    internal, switching, leakage, total = (float(power.group(i)) for i in range(1, 5))
    start, end = _STARTPOINT.search(text), _ENDPOINT.search(text)
    return {
        "tool": "OpenSTA",
        "clock_mhz": clock,
        "critical_path_ns": round(need, 4),
        "arrival_ns": float(arrival.group(1)),
        "startpoint": start.group(1) if start else None,
        "endpoint": end.group(1) if end else None,
        "slack_ns": worst,
        "fmax_mhz": round(1000.0 / need, 2) if need > 0 else None,
        "power_w": {
            "internal": internal,
            "switching": switching,
            "leakage": leakage,
            "total": total,
        },
        "seconds": seconds,
    }


def synth_asic(
    rtl_dir: Path,
    lib: Library,
    work_dir: Path | None = None,
    top: str = "hwprune_top",
    clock_mhz: float | None = None,
    timeout_s: float = 1800,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """``map_to_library`` then ``sta_report``: the measured ASIC figures of ``rtl_dir`` on
    ``lib`` (JSON-able; "sta" holds the timing and power). Without ``work_dir`` a temporary
    folder is used, removed on success."""
    own = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="hwprune-asic-")) if own else Path(work_dir)
    mapped = map_to_library(rtl_dir, lib, work, top, timeout_s, progress)
    mapped["sta"] = sta_report(work / MAPPED_V, lib, work, top, clock_mhz, timeout_s)
    if own:
        shutil.rmtree(work, ignore_errors=True)
    return mapped
