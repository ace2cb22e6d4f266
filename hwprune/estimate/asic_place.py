"""Placement and routing on a standard-cell library with qflow (issue 15, ``--place``):
graywolf places, qrouter routes, vesta times the routed netlist.

``place_asic(rtl_dir, lib, work_dir)`` first maps the RTL with ``map_to_library`` (the same
gate netlist the ASIC estimate reports) and refuses, before any placement starts, a design
whose cell count is above ``max_cells`` (default ``MAX_CELLS``, measured below). It then
builds a qflow project in ``work_dir/qflow``::

    source/hwprune_top.v      the mapped netlist (work_dir/map/mapped.v)
    synthesis/ layout/ log/   qflow's working folders
    tech/<name> -> the library's folder (qflow looks there first, so it uses the very
                                 Liberty/LEF files the Library names)
    project_vars.sh           set initial_density = <utilisation>; set graywolf_options = -n

and runs, one stage at a time (each timed; all four share ``timeout_s``; the process group is
killed on timeout)::

    qflow synthesize -T <name> hwprune_top   yosys reads the netlist with the library cells as
                                             black boxes (nothing is re-mapped), adds output
                                             buffers (iopadmap) and fan-out buffers and
                                             resizes (blifFanout)
    qflow place -T <name> hwprune_top        blif2cel, decongest (pads the cells with fill to
                                             the initial density, i.e. the core area is the
                                             cell area / utilisation), graywolf, place2def,
                                             addspacers (power stripes), arrangepins
    qflow route -T <name> hwprune_top        qrouter (qrouter::standard_route)
    qflow backanno -T <name> hwprune_top     rc2dly + vesta on the routed RC (optional)

Why the mapped netlist and not the RTL: qflow's own synthesis script (no flattening before
``synth``, a different ABC script) gives a different and, on the test network, more than twice
as large netlist (349 cells against 155), so the placed design would not be the one whose area
and timing ``hwprune estimate --synth yosys`` reports. Fed the mapped netlist, qflow's yosys
keeps every cell and only adds the buffers a real layout needs.

Figures read back (JSON-able): tool versions; the core (the placed rows: bounding box of every
placed component, fill and spacers included, µm) and the die (DEF ``DIEAREA``, core plus the
pin ring); the placed cells (fill excluded) and their Liberty area; the achieved utilisation
(cell area / core area) beside the requested one; routing (qrouter's ``Final:`` line: failed
nets, 0 when complete), the number of nets and the routed wire length (µm, the sum of every
routed segment of the DEF ``NETS`` section); post-route timing from vesta (worst path delay,
maximum clock frequency, hold check) when the backanno stage ran; seconds per stage; logs.

``MAX_CELLS``: measured on the development machine (2 cores, qflow 1.3.17, osu018,
utilisation 0.5; random_mlp networks at 50 % sparsity, 4-bit inputs, 3-bit weights and
activations), seconds for the four qflow stages (mapping excluded, it took 2-23 s)::

    mapped cells   placed cells   place   route   total   (shape)
         155            201         5.7     1.3     8.6   (8, 6, 4)
         961           1030        10.9    10.3    22.7   (16, 12, 6)
        3465           3638        73.6   179.4   256.1   (16, 32, 10)
        5986           6285       317.5    >390  >720     (16, 48, 10), stopped by its
                                                          720 s timeout while routing

Between the last two placement grows as cells^2.7 and, between 961 and 3465 cells, routing
as cells^2.2; on that fit a 5000-cell design takes about 600 s (place ~200 s, route ~400 s)
and a 6000-cell one over 800 s, so ``MAX_CELLS`` = 5000 is the count the flow places and
routes in about ten minutes here.
The default ``timeout_s`` (900 s) leaves room for a slower machine or a congested design.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from hwprune.errors import HwpruneError
from hwprune.estimate.asic import MAPPED_V, liberty_cells, map_to_library
from hwprune.libraries import Library

QFLOW_INSTALL = (
    "'sudo apt-get install qflow' (Debian/Ubuntu; it brings graywolf, qrouter, magic and netgen)"
)
QFLOW_BIN = Path("/usr/lib/qflow/bin")  # where qflow's scripts look for graywolf and qrouter
STAGES: tuple[str, ...] = ("synthesize", "place", "route", "backanno")
# Measured here (mapped cells -> seconds for the four qflow stages at utilisation 0.5; the
# module docstring has the table and the extrapolation that sets MAX_CELLS):
SCALING: dict[int, float] = {155: 8.6, 961: 22.7, 3465: 256.1, 5986: 720.0}  # last: timed out
MAX_CELLS = 5000
_LIMIT_MINUTES = 10

_UNITS = re.compile(r"^UNITS DISTANCE MICRONS (\d+)", re.M)
_DIEAREA = re.compile(r"^DIEAREA \( (-?\d+) (-?\d+) \) \( (-?\d+) (-?\d+) \)", re.M)
_COMPONENT = re.compile(r"^- (\S+) (\S+) \+ (?:PLACED|FIXED) \( (-?\d+) (-?\d+) \) (\S+)", re.M)
_MACRO = re.compile(r"^MACRO (\S+)(.*?)^END \1", re.M | re.S)
_SIZE = re.compile(r"^\s*SIZE\s+([0-9.]+)\s+BY\s+([0-9.]+)", re.M)
_FINAL = re.compile(r"^Final: (?:No failed routes!|Failed net routes: (\d+))", re.M)
_POINT = re.compile(r"\(\s*(\S+)\s+(\S+)(?:\s+\S+)?\s*\)")
_FMAX = re.compile(r"Computed maximum clock frequency \(zero margin\) = ([0-9.eE+-]+) MHz")
_PATH = re.compile(r"^Path (\S+) to (\S+) delay ([0-9.eE+-]+) ps", re.M)
_TECH_SET = re.compile(r"^\s*set\s+(\w+)\s*=\s*(\S*)", re.M)


def find_qflow() -> str:
    """The qflow executable; HwpruneError with the install command when qflow, graywolf or
    qrouter is missing."""
    qflow = shutil.which("qflow")
    missing = [] if qflow else ["qflow"]
    for tool in ("graywolf", "qrouter"):
        if not (QFLOW_BIN / tool).exists() and shutil.which(tool) is None:
            missing.append(tool)
    if missing:
        raise HwpruneError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed "
            f"(placement and routing need qflow, graywolf and qrouter); install them with "
            f"{QFLOW_INSTALL}"
        )
    return qflow


def _output(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return r.stdout + r.stderr


def tool_versions(qflow: str) -> dict[str, str | None]:
    """qflow's, qrouter's, yosys' and (from dpkg, it prints none) graywolf's versions."""
    m = re.search(r"Qflow version (\S+) revision (\S+)", _output([qflow, "-v"]))
    qrouter = next(
        (
            str(p)
            for p in (QFLOW_BIN / "qrouter", shutil.which("qrouter"))
            if p and Path(p).exists()
        ),
        "qrouter",
    )
    qr = _output([qrouter, "-v", "0", "-h"]).strip().splitlines()
    yosys = re.search(r"Yosys (\S+)", _output(["yosys", "-V"]))
    graywolf = None
    if shutil.which("dpkg-query"):
        graywolf = _output(["dpkg-query", "-W", "-f", "${Version}", "graywolf"]).strip() or None
    return {
        "qflow": f"{m.group(1)}.{m.group(2)}" if m else None,
        "graywolf": graywolf,
        "qrouter": qr[-1].strip() if qr else None,
        "yosys": yosys.group(1) if yosys else None,
    }


def _tech_dir(lib: Library) -> Path:
    tech = lib.liberty.parent
    if not (tech / f"{lib.name}.sh").is_file() or not (tech / f"{lib.name}.par").is_file():
        raise HwpruneError(
            f"{lib.target}: {tech} holds no qflow technology setup ({lib.name}.sh and "
            f"{lib.name}.par); qflow places and routes only libraries installed with their "
            f"qflow files (e.g. {lib.package}, {QFLOW_INSTALL})"
        )
    return tech


def _tech_vars(tech: Path, name: str) -> dict[str, str]:
    text = (tech / f"{name}.sh").read_text(errors="replace")
    return {k: v.strip('"') for k, v in _TECH_SET.findall(text)}


def count_cells(netlist: Path, lib: Library) -> int:
    """Instances of ``lib``'s cells in a structural netlist (``map_to_library``'s mapped.v)."""
    names = set(liberty_cells(lib.liberty))
    text = Path(netlist).read_text(errors="replace")
    return sum(1 for m in re.finditer(r"^\s*(\S+)\s+\S+\s*\(", text, re.M) if m.group(1) in names)


def refuse_if_too_large(cell_count: int, max_cells: int, what: str) -> None:
    """HwpruneError when ``cell_count`` is above ``max_cells`` (checked before any placement)."""
    if cell_count > max_cells:
        raise HwpruneError(
            f"{what}: {cell_count} cells, above the {max_cells} this flow places and routes in "
            f"about {_LIMIT_MINUTES} minutes here; prune or quantise the network harder (or "
            f"place one layer at a time), or raise the limit (--max-cells) to try anyway"
        )


def _run_stage(
    argv: list[str], cwd: Path, out: Path, timeout_s: float, env: dict[str, str]
) -> tuple[int, bool]:
    """Run one qflow stage in its own process group; (exit code, timed out)."""
    with out.open("w") as fh:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            return proc.wait(timeout=max(timeout_s, 1.0)), False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return -1, True
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise


def _last_error(*logs: Path) -> str:
    for log in logs:
        if not log.exists():
            continue
        lines = log.read_text(errors="replace").splitlines()
        for ln in reversed(lines):
            if re.search(r"error|fail|premature", ln, re.I) and "error condition" not in ln:
                return ln.strip()
    return "no error line"


def lef_sizes(lef: Path) -> dict[str, tuple[float, float]]:
    """{macro: (width, height)} in µm from a LEF file."""
    out = {}
    for m in _MACRO.finditer(Path(lef).read_text(errors="replace")):
        size = _SIZE.search(m.group(2))
        if size:
            out[m.group(1)] = (float(size.group(1)), float(size.group(2)))
    return out


def _nets_section(text: str) -> str:
    start = re.search(r"^NETS \d+ ;", text, re.M)
    if start is None:
        return ""
    end = text.find("\nEND NETS", start.end())
    return text[start.end() : end if end >= 0 else len(text)]


def wire_length(def_text: str, units: int) -> float:
    """Routed wire length (µm): every segment of every regular net's ROUTED/NEW statement."""
    total = 0
    stmts = []
    for net in _nets_section(def_text).split(";"):
        at = net.find("+ ROUTED")
        if at >= 0:  # the connections before it are ( instance pin ) pairs, not points
            stmts += re.split(r"\bNEW\b", net[at + len("+ ROUTED") :])
    for stmt in stmts:
        x = y = None
        for px, py in _POINT.findall(stmt):
            nx = x if px == "*" else int(px)
            ny = y if py == "*" else int(py)
            if x is not None and nx is not None and ny is not None:
                total += abs(nx - x) + abs(ny - y)
            x, y = nx, ny
    return round(total / units, 1)


def read_layout(def_path: Path, lib: Library, fill_cells: set[str]) -> dict:
    """Core and die boxes, placed cells and their area, net count and wire length of a DEF."""
    text = def_path.read_text(errors="replace")
    units_m = _UNITS.search(text)
    units = int(units_m.group(1)) if units_m else 100
    sizes = lef_sizes(lib.lef)
    table = liberty_cells(lib.liberty)
    x0 = y0 = float("inf")
    x1 = y1 = float("-inf")
    cells: dict[str, int] = {}
    area = 0.0
    for _inst, macro, px, py, _orient in _COMPONENT.findall(text):
        w, h = sizes.get(macro, (0.0, 0.0))
        x, y = int(px) / units, int(py) / units
        x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x + w), max(y1, y + h)
        if macro in fill_cells:
            continue
        cells[macro] = cells.get(macro, 0) + 1
        area += table[macro].area if macro in table else w * h
    if not cells:
        raise HwpruneError(f"{def_path} holds no placed cells; see the placement log")
    die = _DIEAREA.search(text)
    nets = re.search(r"^NETS (\d+) ;", text, re.M)
    core_w, core_h = x1 - x0, y1 - y0
    out = {
        "core": {
            "width_um": round(core_w, 2),
            "height_um": round(core_h, 2),
            "area_um2": round(core_w * core_h, 2),
        },
        "cells": dict(sorted(cells.items())),
        "cell_count": sum(cells.values()),
        "cell_area_um2": round(area, 2),
        "nets": int(nets.group(1)) if nets else None,
        "wire_length_um": wire_length(text, units),
    }
    if die:
        dx0, dy0, dx1, dy1 = (int(die.group(i)) / units for i in range(1, 5))
        out["die"] = {
            "width_um": round(dx1 - dx0, 2),
            "height_um": round(dy1 - dy0, 2),
            "area_um2": round((dx1 - dx0) * (dy1 - dy0), 2),
        }
    return out


def read_timing(post_sta: Path) -> dict | None:
    """vesta's post-route figures: worst path delay (ns) and its ends, maximum clock (MHz)."""
    if not post_sta.is_file():
        return None
    text = post_sta.read_text(errors="replace")
    fmax = _FMAX.search(text)
    worst = _PATH.search(text)  # vesta lists the maximum-delay paths first, worst first
    if fmax is None and worst is None:
        return None
    return {
        "tool": "vesta",
        "critical_path_ns": round(float(worst.group(3)) / 1000, 4) if worst else None,
        "startpoint": worst.group(1) if worst else None,
        "endpoint": worst.group(2) if worst else None,
        "fmax_mhz": float(fmax.group(1)) if fmax else None,
        "meets_hold": "Design meets minimum hold timing" in text,
    }


def place_asic(
    rtl_dir: Path,
    lib: Library,
    work_dir: Path,
    utilisation: float = 0.5,
    timeout_s: float = 900,
    max_cells: int = MAX_CELLS,
    *,
    top: str = "hwprune_top",
    cell_count: int | None = None,
    netlist: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Place and route ``rtl_dir`` (its ``top``) on ``lib`` with qflow (module docstring).

    ``cell_count``, when known (e.g. from ``map_to_library``), is checked against
    ``max_cells`` before anything runs; ``netlist`` is an already mapped ``mapped.v`` of
    ``rtl_dir`` on ``lib`` (the mapping step is then skipped). ``timeout_s`` bounds the qflow
    stages together. Returns JSON-able data; raises HwpruneError when the design is too large,
    a tool is missing or a stage fails (routing that leaves nets unrouted is reported, not
    raised: ``routing.completed`` is False)."""
    if not 0 < utilisation <= 1:
        raise HwpruneError(f"utilisation must be in (0, 1], got {utilisation!r}")
    what = str(rtl_dir)
    if cell_count is not None:
        refuse_if_too_large(cell_count, max_cells, what)
    qflow = find_qflow()
    lib.check_installed()
    tech = _tech_dir(lib)
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    mapped = None
    if netlist is None:
        if progress is not None:
            progress("map")
        mapped = map_to_library(Path(rtl_dir), lib, work / "map", top, timeout_s)
        seconds["map"] = mapped["seconds"]
        netlist = work / "map" / MAPPED_V
        n_mapped = mapped["cell_count"]
    else:
        n_mapped = count_cells(netlist, lib)
    refuse_if_too_large(n_mapped, max_cells, what)

    proj = work / "qflow"
    shutil.rmtree(proj, ignore_errors=True)
    for sub in ("source", "synthesis", "layout", "tech"):
        (proj / sub).mkdir(parents=True)
    (proj / "tech" / lib.name).symlink_to(tech, target_is_directory=True)
    shutil.copyfile(netlist, proj / "source" / f"{top}.v")
    (proj / "project_vars.sh").write_text(
        "#!/usr/bin/tcsh -f\n# written by hwprune.estimate.asic_place\n"
        f"set initial_density = {utilisation:g}\n"
        'set graywolf_options = "-n"\n'
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "QFLOW_TECH", "QFLOW_TECH_DIR", "QFLOW_PROJECT_ROOT")
    }
    logs = proj / "log"
    commands = []
    routed_ok = True
    t_start = time.monotonic()
    for stage in STAGES:
        if stage == "backanno" and not routed_ok:
            break
        if progress is not None:
            progress(stage)
        argv = [qflow, stage, "-T", lib.name, top]
        commands.append(" ".join(["qflow", stage, "-T", lib.name, top]))
        out = proj / f"qflow_{stage}.out"
        left = timeout_s - (time.monotonic() - t_start)
        t0 = time.monotonic()
        code, timed_out = _run_stage(argv, proj, out, left, env)
        seconds[stage] = round(time.monotonic() - t0, 2)
        if timed_out:
            raise HwpruneError(
                f"qflow {stage} did not finish within the {timeout_s:g} s given to placement "
                f"and routing ({n_mapped} cells; log: {out}); raise timeout_s or place a "
                "smaller network"
            )
        if code != 0:
            if stage == "route" and (proj / "layout" / f"{top}_route.def").is_file():
                routed_ok = False  # qrouter left nets unrouted: report it below
                continue
            if stage == "backanno":
                break  # post-route timing is optional
            stage_log = {"synthesize": "synth.log", "place": "place.log", "route": "route.log"}
            raise HwpruneError(
                f"qflow {stage} failed on {lib.target}: "
                f"{_last_error(logs / stage_log[stage], out)} (logs: {out}, {logs})"
            )
    seconds["place_and_route"] = round(sum(seconds.get(s, 0.0) for s in STAGES), 2)

    layout = proj / "layout"
    routed_def = layout / f"{top}_route.def"
    def_path = routed_def if routed_def.is_file() else layout / f"{top}.def"
    tv = _tech_vars(tech, lib.name)
    fill = {tv.get(k, "") for k in ("fillcell", "decapcell", "antennacell")} - {""}
    placed = read_layout(def_path, lib, fill or {"FILL"})
    route_log = logs / "route.log"
    final = _FINAL.findall(route_log.read_text(errors="replace")) if route_log.is_file() else []
    failed = int(final[-1]) if final and final[-1] else (0 if final else None)
    core_area = placed["core"]["area_um2"]
    return {
        "tool": "qflow",
        "versions": tool_versions(qflow),
        "library": lib.target,
        "top": top,
        "commands": commands,
        "netlist": str(netlist),
        "mapped_cell_count": n_mapped,
        "mapped_area_um2": mapped["area_um2"] if mapped else None,
        "cell_count": placed["cell_count"],
        "cells": placed["cells"],
        "cell_area_um2": placed["cell_area_um2"],
        "utilisation": {
            "target": utilisation,
            "achieved": round(placed["cell_area_um2"] / core_area, 4) if core_area else None,
        },
        "core": placed["core"],
        "die": placed.get("die"),
        "routing": {
            "completed": failed == 0 and routed_ok,
            "failed_nets": failed,
            "nets": placed["nets"],
            "wire_length_um": placed["wire_length_um"],
        },
        "timing": read_timing(logs / "post_sta.log") if routed_ok else None,
        "seconds": seconds,
        "max_cells": max_cells,
        "project_dir": str(proj),
        "logs": {
            "synthesize": str(logs / "synth.log"),
            "place": str(logs / "place.log"),
            "route": str(route_log),
            "backanno": str(logs / "post_sta.log"),
            **{f"qflow_{s}": str(proj / f"qflow_{s}.out") for s in STAGES},
        },
    }
