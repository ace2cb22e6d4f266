"""What benchmarks/threshold_grid.py and cone_grid.py share: synthesise one emitted layer,
fit a power law to the grid, and write the fits where the estimator reads them."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

from hwprune.boards import Board
from hwprune.codegen.verilog import emit_verilog
from hwprune.estimate.synth import synth_yosys
from hwprune.ir.graph import Graph

# family -> the board whose yosys flow measures it (as benchmarks/estimate.py)
BOARDS = {"xc7": "pynq-z2", "ice40": "icebreaker", "ecp5": "ulx3s-85f"}


def synth_luts(g: Graph, board: Board) -> int:
    """LUTs yosys builds of ``g`` as hwprune emits it, with ``board``'s flow (no P&R)."""
    with tempfile.TemporaryDirectory() as tmp:
        rtl = Path(tmp) / "rtl"
        rtl.mkdir()
        for name, text in emit_verilog(g).items():
            if name != "hwprune_top_axis.v":
                (rtl / name).write_text(text)
        return synth_yosys(rtl, board, Path(tmp) / "work", pnr=False)["lut"]


def power_law(rows: list[tuple[float, float, float]]) -> dict:
    """Least squares of log y = log c + p log x1 + q log x2 over rows (x1, x2, y): c, p, q
    and the fit's median and worst relative error on the rows; rows with y <= 0 (nothing
    measured) are left out."""
    rows = [r for r in rows if r[2] > 0]
    a = np.array([[1.0, math.log(x1), math.log(x2)] for x1, x2, _ in rows])
    y = np.array([math.log(v) for *_, v in rows])
    (lc, p, q), *_ = np.linalg.lstsq(a, y, rcond=None)
    err = np.abs(np.exp(a @ np.array([lc, p, q])) - np.exp(y)) / np.exp(y)
    return {
        "c": round(math.exp(lc), 4),
        "p": round(float(p), 4),
        "q": round(float(q), 4),
        "median_error": round(float(np.median(err)), 4),
        "max_error": round(float(err.max()), 4),
    }


def write_fits(path: Path, header: list[str], data: dict, max_error: float = 1.0) -> None:
    """Each family's fit of ``data`` as a TOML table (c, p, q) under ``header`` comment
    lines; a fit whose median error on its own grid is above ``max_error`` is left out."""
    lines = [*(f"# {h}" for h in header), ""]
    for fam in BOARDS:
        if fam not in data:
            continue
        f = data[fam]["fit"]
        if f["median_error"] > max_error:
            lines += [f"# {fam}: not used, median error {100 * f['median_error']:.1f} %", ""]
            continue
        lines += [f"[{fam}]", f"c = {f['c']}", f"p = {f['p']}", f"q = {f['q']}", ""]
    path.write_text("\n".join(lines))
