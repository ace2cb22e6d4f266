"""ASIC estimates as text: the measured figures beside the fast estimate, and one table."""

from __future__ import annotations

from hwprune.estimate.report import align_table


def _ratio(est: float | None, measured: float | None) -> float | None:
    if est is None or not measured:
        return None
    return round(est / measured, 3)


def asic_synth_report(estimate: dict, synth: dict) -> dict:
    """``synth`` (``estimate.asic.synth_asic``) with the estimate / measured ratios of area
    and critical path ("ratio")."""
    sta = synth["sta"]
    return {
        **synth,
        "ratio": {
            "area": _ratio(
                (estimate.get("area_um2") or {}).get("total"), synth["area_um2"]["total"]
            ),
            "critical_path": _ratio(estimate.get("critical_path_ns"), sta["critical_path_ns"]),
        },
    }


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def asic_rows(ests: dict) -> list[list[str]]:
    """One row per ASIC target: estimated and (with --synth) measured area, Fmax, power."""
    rows = []
    for target, e in ests.items():
        syn = e.get("synth")
        sta = syn["sta"] if syn else {}
        power = sta.get("power_w", {}).get("total") if sta else None
        rows.append(
            [
                target,
                _fmt(e["area_um2"]["total"] / 1e6, ".4f") if e.get("area_um2") else "-",
                _fmt(syn["area_um2"]["total"] / 1e6, ".4f") if syn else "-",
                str(syn["cell_count"]) if syn else "-",
                _fmt(e.get("fmax_mhz"), ".1f"),
                _fmt(sta.get("fmax_mhz"), ".1f"),
                _fmt(power * 1e3, ".3f") if power is not None else "-",
                str(e.get("latency_cycles", "-")),
            ]
        )
    return rows


ASIC_HEADER = [
    "target",
    "area mm2 est",
    "area mm2 synth",
    "cells",
    "Fmax MHz est",
    "Fmax MHz STA",
    "power mW",
    "cycles",
]


def place_line(target: str, place: dict) -> str:
    """One line on a placed and routed design (``estimate.asic_place.place_asic``)."""
    core, route, timing = place["core"], place["routing"], place.get("timing") or {}
    fmax = timing.get("fmax_mhz")
    return (
        f"{target} placed and routed (qflow): core {core['area_um2'] / 1e6:.4f} mm2 at "
        f"utilisation {place['utilisation']['achieved']}, {place['cell_count']} cells, "
        f"{'routed' if route['completed'] else str(route['failed_nets']) + ' nets unrouted'}"
        + (f", post-route Fmax {fmax:.1f} MHz" if fmax else "")
    )


def format_asic_table(ests: dict) -> str:
    """The ASIC targets' table (``asic_rows``) as aligned text; power is OpenSTA's total at
    the library's clock and default activity (present only with --synth yosys); a line per
    placed and routed target after it."""
    lines = align_table(tuple(ASIC_HEADER), [tuple(r) for r in asic_rows(ests)])
    lines += [place_line(t, e["place"]) for t, e in ests.items() if e.get("place")]
    return "\n".join(lines)
