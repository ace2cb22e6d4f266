"""Resource and latency estimates of a graph against catalogue boards, and a text table."""

from __future__ import annotations

from collections.abc import Iterable

from hwprune.boards import RESOURCES, Board
from hwprune.errors import HwpruneError
from hwprune.estimate.costs import COST_FUNCTIONS, NOT_COSTED, LayerCost, context
from hwprune.estimate.fabric import XC7, Fabric, fabric_of
from hwprune.estimate.stream import stream_costs
from hwprune.hw.reuse import input_hold, reuse_of
from hwprune.hw.schedule import latency_cycles
from hwprune.hw.stream import plan
from hwprune.ir.graph import Graph


def design_costs(g: Graph, fab: Fabric = XC7) -> tuple[list[LayerCost], tuple[int, int]]:
    """The cost of every layer of the design compiled from ``g`` on fabric ``fab``
    (``layer_costs``, or for a streaming design, ``hw.stream.plan``, its stages, collector and
    head: ``estimate.stream``) and the design's (latency in cycles, II)."""
    p = plan(g)
    if p is None:
        costs = layer_costs(g, fab)
        if input_hold(g):  # at reuse factor R > 1 the top registers its input (hw.reuse)
            (inp,) = g.inputs
            pb = max(1, (reuse_of(g) - 1).bit_length())
            bits = inp.size * inp.range.bits
            lp, fp = {"control": pb + 1}, {"reg": bits, "control": pb}
            hold = LayerCost(
                "input", "input", fab.lut(lp), fab.ff(fp), 0, 0, 1, reuse_of(g), 0, lp, fp
            )
            costs = [hold, *costs]
        latency = sum(c.latency_cycles for c in costs)
        # The per-op cycles must add up to the schedule the RTL implements.
        assert latency == latency_cycles(g), "layer cycles disagree with the schedule"
        # Every stage accepts a vector per cycle, so the pipeline's II is the worst layer's.
        return costs, (latency, max((c.ii for c in costs), default=1))
    # A stream's cycles come from its control (hw.stream.timing): from an image's first
    # pixel to its result, and between two results (the II, in cycles per image).
    return stream_costs(g, p, fab), (p.latency, p.interval)


def layer_costs(g: Graph, fab: Fabric = XC7) -> list[LayerCost]:
    """The cost of every op of ``g`` except Input ops, in graph order, on fabric ``fab``
    (default: 7-series primitives, uncalibrated), dead logic left out (``live_elements``)."""
    ops = [op for op in g.ops if type(op) not in NOT_COSTED]
    for op in ops:
        if type(op) not in COST_FUNCTIONS:
            raise HwpruneError(
                f"op {op.name!r} has kind {type(op).__name__}, which has no cost function; "
                "add one to hwprune.estimate.costs.COST_FUNCTIONS"
            )
    ctx = context(g, fab)
    return [COST_FUNCTIONS[type(op)](op, g, ctx) for op in ops]


def _pct(used: int, avail: int) -> float | None:
    # A resource the board lacks (uram = 0 on 7-series): 0 % if unused, None (JSON null)
    # if used, since no finite percentage says "cannot fit".
    if avail == 0:
        return 0.0 if used == 0 else None
    return round(100.0 * used / avail, 2)


def overflow(totals: dict[str, int], available: dict[str, int]) -> dict[str, dict[str, int]]:
    """The resources a design needs more of than a board has, in RESOURCES order: for each,
    {"used", "available", "over"} with over = used - available. Empty when it fits."""
    return {
        r: {"used": totals[r], "available": available[r], "over": totals[r] - available[r]}
        for r in RESOURCES
        if totals[r] > available[r]
    }


def overflow_text(over: dict[str, dict[str, int]]) -> str:
    """``overflow`` as one line: "lut 63,210 of 53,200 (+10,010, 119 %); dsp ..."."""
    parts = []
    for r, o in over.items():
        # A resource the board lacks entirely (uram on 7-series) has no finite share.
        share = f", {100 * o['used'] / o['available']:,.0f} %" if o["available"] else ""
        parts.append(f"{r} {o['used']:,} of {o['available']:,} (+{o['over']:,}{share})")
    return "; ".join(parts)


def _summarise(design: tuple[list[LayerCost], tuple[int, int]], board: Board) -> dict:
    costs, (latency, ii) = design
    totals = {
        "lut": sum(c.lut for c in costs),
        "ff": sum(c.ff for c in costs),
        "dsp": sum(c.dsp for c in costs),
        "bram18": sum(c.bram18 for c in costs),
        # No cost function places anything in UltraRAM.
        "uram": 0,
        "latency_cycles": latency,
        "ii": ii,
    }
    avail = board.available
    over = overflow(totals, avail)
    return {
        "board": board.name,
        "part": board.part,
        "clock_mhz": board.clock_mhz,
        "usable_after_shell": board.usable_after_shell,
        "totals": totals,
        "available": avail,
        "utilization_pct": {r: _pct(totals[r], avail[r]) for r in RESOURCES},
        "fits": not over,
        "overflow": over,
        "layers": [c.as_dict() for c in costs],
    }


def estimate(g: Graph, board: Board) -> dict:
    """Estimated LUT, FF, DSP, BRAM18, URAM, latency and II of ``g`` on ``board``.

    Returns plain JSON-able data: board, part, clock_mhz, usable_after_shell, totals,
    available, utilization_pct (None where the board has none of a resource that is used),
    fits (every resource used <= available), overflow (``overflow``: each resource used beyond
    what is available, with used, available and over; empty when it fits) and per-layer
    figures (name, kind, lut, ff, dsp, bram18, latency_cycles, ii, product_terms). The model
    is described in ``hwprune.estimate.costs``; it depends on the board through its family's
    fabric (``estimate.fabric``: LUT inputs, DSP rule, calibrated constants) and the fit
    verdict.
    """
    return _summarise(design_costs(g, fabric_of(board)), board)


def estimate_boards(g: Graph, boards: Iterable[Board]) -> dict[str, dict]:
    """``estimate(g, b)`` for every board, keyed by board name (the graph is costed once per
    fabric)."""
    designs: dict[Fabric, tuple] = {}
    out = {}
    for b in boards:
        fab = fabric_of(b)
        if fab not in designs:
            designs[fab] = design_costs(g, fab)
        out[b.name] = _summarise(designs[fab], b)
    return out


def _used_of(used: int, avail: int) -> str:
    pct = _pct(used, avail)
    share = "-" if pct is None else f"{pct:.1f}%"
    return f"{used:,}/{avail:,} {share}"


def align_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Fixed-width text lines: names left-aligned, numbers right-aligned so digits line up,
    and a rule under the header."""
    widths = [max(len(r[k]) for r in (header, *rows)) for k in range(len(header))]
    lines = []
    for r in (header, *rows):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_table(estimates: dict[str, dict]) -> str:
    """A fixed-width text table of ``estimate_boards`` output, one line per board.

    Columns: board, LUT / FF / DSP / BRAM18 as used/available and percent, latency in cycles
    and in ns at the board's clock, II, and the fit verdict (yes / NO). Boards whose
    figures are what a platform shell leaves are marked with '*'. Under the table, each board
    the design does not fit, with what overflows and by how much (``overflow_text``).
    """
    header = ("board", "LUT", "FF", "DSP", "BRAM18", "cycles", "ns", "II", "fits")
    rows = []
    for name, e in estimates.items():
        t, a = e["totals"], e["available"]
        ns = t["latency_cycles"] * 1000.0 / e["clock_mhz"]
        rows.append(
            (
                name + ("*" if e.get("usable_after_shell") else ""),
                _used_of(t["lut"], a["lut"]),
                _used_of(t["ff"], a["ff"]),
                _used_of(t["dsp"], a["dsp"]),
                _used_of(t["bram18"], a["bram18"]),
                str(t["latency_cycles"]),
                f"{ns:.1f}",
                str(t["ii"]),
                "yes" if e["fits"] else "NO",
            )
        )
    lines = align_table(header, rows)
    if any(e.get("usable_after_shell") for e in estimates.values()):
        lines.append("* available = what the platform shell leaves, not the whole device")
    # From totals and available, so an estimate.json written before "overflow" reads the same.
    over = {n: overflow(e["totals"], e["available"]) for n, e in estimates.items()}
    over = {n: o for n, o in over.items() if o}
    if over:
        lines += ["", "does not fit (resource used of available, +excess, share):"]
        width = max(len(n) for n in over)
        lines += [f"  {n:<{width}}  {overflow_text(o)}" for n, o in over.items()]
    return "\n".join(lines) + "\n"
