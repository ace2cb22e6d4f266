"""What a sweep leaves for its user: sweep.json, sweep.md (the Pareto fronts) and sweep.png.

Read-only: every function here turns point records (``point.run_point``) into text or image
bytes; ``write_results`` writes them, each atomically. Accuracy is the pruned model's test
accuracy; LUT and latency are hwprune's estimate on each point's own board.
"""

from __future__ import annotations

import json
from pathlib import Path

from hwprune.builddir import write_atomic
from hwprune.sweep.pareto import pareto_front
from hwprune.sweep.spec import Sweep, describe, show_value

SWEEP_JSON = "sweep.json"
SWEEP_MD = "sweep.md"
SWEEP_PNG = "sweep.png"
# The fronts: (estimate key, what it is called, how a table and the plot label it).
FRONTS = (("lut", "estimated LUT", "LUT"), ("latency_cycles", "latency", "latency (cycles)"))
MAX_ERROR_SHOWN = 300  # characters of a failed point's error in sweep.md


def pending_record(point) -> dict:
    return {"key": point.key, "inputs": point.inputs, "status": "pending"}


def ok_records(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("status") == "ok"]


def fronts(records: list[dict]) -> dict[str, list[dict]]:
    """The Pareto front of pruned accuracy against each cost of FRONTS, among the ok points,
    in order of increasing cost."""
    ok = ok_records(records)
    out = {}
    for cost, _, _ in FRONTS:
        pts = [(r["accuracy"]["pruned"], r["estimate"][cost]) for r in ok]
        out[cost] = [ok[i] for i in pareto_front(pts)]
    return out


def sweep_doc(sw: Sweep, records: list[dict]) -> dict:
    """sweep.json: the sweep's settings and every point's record, in the sweep's order."""
    counts = {s: sum(r["status"] == s for r in records) for s in ("ok", "failed", "pending")}
    return {
        "sweep": str(sw.source),
        "base": None if sw.base is None else str(sw.base),
        "mode": sw.mode,
        "grid_size": sw.grid_size,
        **({"samples": sw.samples, "seed": sw.seed} if sw.mode == "random" else {}),
        "sim": sw.sim,
        "synth": sw.synth,
        "axes": {k: list(v) for k, v in sw.axes},
        "summary": {"points": len(records), **counts},
        "pareto": {cost: [r["key"] for r in f] for cost, f in fronts(records).items()},
        "points": records,
    }


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _plain(v) -> str:
    """A value for a table cell: as in the sweep file, but a string without its quotes."""
    return v if isinstance(v, str) else show_value(v)


def _table(sw: Sweep, rows: list[dict]) -> list[str]:
    synth = any(r.get("synth") for r in rows)
    head = [*sw.axis_keys]
    if "compile.board" not in head:
        head.append("board")
    head += ["accuracy", "dense", "LUT", "FF", "DSP", "latency", "fits"]
    head += ["LUT (yosys)"] if synth else []
    head += ["seconds", "point"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        e = r["estimate"]
        cells = [_plain(r["inputs"][k]) for k in sw.axis_keys]
        if "compile.board" not in sw.axis_keys:
            cells.append(r["board"])
        cells += [
            f"{100 * r['accuracy']['pruned']:.2f} %",
            f"{100 * r['accuracy']['dense']:.2f} %",
            f"{e['lut']:,}",
            f"{e['ff']:,}",
            f"{e['dsp']:,}",
            str(e["latency_cycles"]),
            "yes" if e["fits"] else "no",
        ]
        if synth:
            cells.append(f"{r['synth']['lut']:,}" if r.get("synth") else "")
        cells += [f"{r['seconds']['total']:.1f}", f"`{r['key']}`"]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def sweep_markdown(sw: Sweep, records: list[dict]) -> str:
    """sweep.md: the fronts of accuracy against estimated LUT and against latency, every
    point (best accuracy first), and the failed points with their errors."""
    ok = ok_records(records)
    failed = [r for r in records if r["status"] == "failed"]
    pending = [r for r in records if r["status"] == "pending"]
    how = (
        f"a grid of {sw.grid_size} points"
        if sw.mode == "grid"
        else f"{sw.samples} of a grid of {sw.grid_size} points, drawn with seed {sw.seed}"
    )
    lines = [
        f"# Sweep: {sw.source}",
        "",
        f"{how.capitalize()}; {len(ok)} ok, {len(failed)} failed"
        + (f", {len(pending)} not run" if pending else "")
        + ". Accuracy is the pruned model's test accuracy (dense: before pruning); LUT, FF, "
        "DSP and latency are hwprune's estimate on the point's board; seconds are the point's "
        "wall time (train to estimate); point is its folder under points/.",
        "",
    ]
    if sw.axes:
        lines += ["Axes: " + "; ".join(f"`{k}` {show_value(list(v))}" for k, v in sw.axes), ""]
    for cost, name, _ in FRONTS:
        front = fronts(records)[cost]
        lines += [f"## Pareto front: accuracy against {name}", ""]
        lines += _table(sw, front) if front else ["No point finished."]
        lines.append("")
    lines += ["## All points (best accuracy first, then fewest LUTs)", ""]
    ranked = sorted(ok, key=lambda r: (-r["accuracy"]["pruned"], r["estimate"]["lut"]))
    lines += _table(sw, ranked) if ranked else ["No point finished."]
    lines.append("")
    if failed:
        lines += ["## Failed points", "", "| point | inputs | step | error |", "|---|---|---|---|"]
        for r in failed:
            err = r["error"]
            err = err if len(err) <= MAX_ERROR_SHOWN else err[:MAX_ERROR_SHOWN] + "..."
            cells = [f"`{r['key']}`", describe(r["inputs"]), str(r.get("failed_step")), err]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines += ["", "Tracebacks: points/<point>/error.txt.", ""]
    return "\n".join(lines)


def sweep_png(sw: Sweep, records: list[dict]) -> bytes | None:
    """Accuracy against estimated LUT (left) and against latency (right): every ok point,
    the Pareto front highlighted as a step line. None when no point finished."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    from hwprune.report.plots import _png

    ok = ok_records(records)
    if not ok:
        return None
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, len(FRONTS), squeeze=False)[0]
    all_fronts = fronts(records)
    for ax, (cost, _, label) in zip(axes, FRONTS):
        xs = [r["estimate"][cost] for r in ok]
        ys = [100 * r["accuracy"]["pruned"] for r in ok]
        ax.scatter(xs, ys, s=18, color="0.6", label=f"all points ({len(ok)})", zorder=2)
        front = all_fronts[cost]
        fx = [r["estimate"][cost] for r in front]
        fy = [100 * r["accuracy"]["pruned"] for r in front]
        # The best accuracy reachable for a budget: flat to the next front point, then up;
        # flat after the last one to the right edge.
        ax.step([*fx, max(xs)], [*fy, fy[-1]], where="post", color="tab:red", lw=1.2, zorder=3)
        ax.scatter(fx, fy, s=30, color="tab:red", label=f"Pareto front ({len(front)})", zorder=4)
        if min(xs) > 0 and max(xs) > 10 * min(xs):
            ax.set_xscale("log")
            # Plain numbers at 1, 2 and 5 of each decade (matplotlib's minor labels overlap).
            ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        if cost == "latency_cycles":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(f"{label}, estimated")
        ax.set_ylabel("pruned accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    fig.suptitle(f"{sw.source}: accuracy against hardware", fontsize="medium")
    return _png(fig)


def write_json(out_dir: Path, sw: Sweep, records: list[dict]) -> Path:
    p = Path(out_dir) / SWEEP_JSON
    write_atomic(p, json.dumps(sweep_doc(sw, records), indent=1) + "\n")
    return p


def write_results(out_dir: Path, sw: Sweep, records: list[dict]) -> list[Path]:
    """Write sweep.json, sweep.md and (when a point finished) sweep.png; return the paths."""
    out_dir = Path(out_dir)
    paths = [write_json(out_dir, sw, records)]
    md = out_dir / SWEEP_MD
    write_atomic(md, sweep_markdown(sw, records))
    paths.append(md)
    png = sweep_png(sw, records)
    if png is not None:
        tmp = out_dir / f".{SWEEP_PNG}.tmp"
        tmp.write_bytes(png)
        tmp.replace(out_dir / SWEEP_PNG)
        paths.append(out_dir / SWEEP_PNG)
    return paths
