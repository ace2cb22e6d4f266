"""What a Threshold row costs after synthesis: k sorted compares of one b-bit value, their
popcount and the output register, on every family's yosys flow.

A row's compares read the same value, and yosys/ABC share their logic: on LUT4 one compare
of a 14-bit value is about 14 LUTs (a carry chain), fifteen are about 85, not 210. The
estimator's compare rule (``fabric.Fabric.compare_set_luts``) is fitted to this grid:
for each input width b and threshold count k, a Threshold layer of ``ELEMENTS`` elements
(thresholds evenly spaced over part of the range, as a uniform activation quantizer folded
with BatchNorm gives, or drawn at random), emitted by hwprune's own Verilog emitter and
synthesised with the family's flow (``hwprune.estimate.synth``). The popcount
(``costs.popcount_luts``) is subtracted; the rest is the compares' LUTs per row.

    .venv/bin/python benchmarks/threshold_grid.py [--families xc7 ice40 ecp5]

Writes results/threshold_grid.json (every point, and the least-squares fit of
log(compare LUTs) = log c + p log k + q log b per family) and results/threshold_grid.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gridfit import BOARDS, power_law, synth_luts, write_fits  # noqa: E402
from hwprune.boards import get_board  # noqa: E402
from hwprune.estimate.costs import popcount_luts  # noqa: E402
from hwprune.estimate.fabric import THRESHOLD_FIT, raw_fabric  # noqa: E402
from hwprune.ir.graph import Graph, Input, IntRange, Threshold  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
WIDTHS = (6, 8, 10, 12, 14, 16)
COUNTS = (1, 3, 7, 15)
SPACINGS = ("even", "random")
ELEMENTS = 8
# Wide accumulators with many thresholds (a brevitas 8-bit activation after a Dense: 193
# thresholds on a 41-bit sum): fewer elements, evenly spaced.
LARGE = ((24, 31), (32, 63), (41, 127), (41, 255))
LARGE_ELEMENTS = 2
# A fit whose median error on its own grid is above this is not written for the estimator.
MAX_FIT_ERROR = 0.10


def thresholds(b: int, k: int, spacing: str, rng: random.Random) -> tuple[int, ...]:
    """k sorted distinct thresholds strictly inside a signed b-bit range."""
    lo, hi = -(1 << (b - 1)), (1 << (b - 1)) - 1
    if spacing == "random":
        return tuple(sorted(rng.sample(range(lo + 1, hi), k)))
    span = (hi - lo) * rng.uniform(0.4, 0.9)
    step = span / (k + 1)
    start = lo + rng.uniform(0, hi - lo - span)
    return tuple(int(round(start + step * (i + 1))) for i in range(k))


def layer(b: int, k: int, spacing: str, seed: int, elements: int = ELEMENTS) -> Graph:
    rng = random.Random(seed)
    r = IntRange(-(1 << (b - 1)), (1 << (b - 1)) - 1)
    ts = tuple(thresholds(b, k, spacing, rng) for _ in range(elements))
    return Graph(
        (Input("x", (), elements, r, 0), Threshold("thr0", ("x",), ts, 0, 1, 0)), ("thr0",)
    )


def grid(large: bool) -> list[tuple[int, int, str, int]]:
    """(b, k, spacing, elements) of the small grid, or of the large points."""
    if large:
        return [(b, k, "even", LARGE_ELEMENTS) for b, k in LARGE]
    return [(b, k, sp, ELEMENTS) for b in WIDTHS for k in COUNTS for sp in SPACINGS]


def measure(fam: str, points: list[tuple[int, int, str, int]], seed0: int = 0) -> list[dict]:
    board = get_board(BOARDS[fam])
    fab = raw_fabric(board.family, board.part)
    out = []
    for seed, (b, k, spacing, elements) in enumerate(points, start=seed0 + 1):
        g = layer(b, k, spacing, seed, elements)
        lut = synth_luts(g, board) / elements
        cmp = lut - popcount_luts(k, fab)
        out.append({"b": b, "k": k, "spacing": spacing, "lut": lut, "compare": cmp})
        print(f"{fam} b={b:2d} k={k:3d} {spacing:6s} {lut:8.2f} LUT/row", flush=True)
    return out


def fit(points: list[dict]) -> dict:
    """log(compare LUTs) = log c + p log k + q log b over the points with k > 1."""
    return power_law([(p["k"], p["b"], p["compare"]) for p in points if p["k"] > 1])


def write_fit(data: dict) -> None:
    """The fits, where the estimator reads them (fabric.THRESHOLD_FIT). A family whose grid
    one power law does not describe (LUT6: a few compares cost more than apart, hundreds
    less) keeps the one-by-one compare rule."""
    header = [
        "A Threshold row's compares, per yosys flow: LUTs = c * k^p * b^q for k compares of",
        "one b-bit value (fabric.Fabric.compare_set_luts). Written by",
        "`.venv/bin/python benchmarks/threshold_grid.py` from its yosys runs",
        "(benchmarks/results/threshold_grid.json and .md).",
    ]
    write_fits(THRESHOLD_FIT, header, data, MAX_FIT_ERROR)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", nargs="+", default=list(BOARDS), choices=list(BOARDS))
    ap.add_argument(
        "--large-only",
        action="store_true",
        help="measure only the large points, keeping the small grid already in the results",
    )
    args = ap.parse_args()
    path = RESULTS / "threshold_grid.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    for fam in args.families:
        small = [p for p in data.get(fam, {}).get("points", []) if p["k"] <= max(COUNTS)]
        if not args.large_only or not small:
            small = measure(fam, grid(False))
        points = small + measure(fam, grid(True), seed0=1000)
        data[fam] = {"board": BOARDS[fam], "points": points, "fit": fit(points)}
    data["about"] = {"elements_per_layer": ELEMENTS, "script": "benchmarks/threshold_grid.py"}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    write_fit(data)
    lines = [
        "# Threshold rows after synthesis",
        "",
        "Produced by `.venv/bin/python benchmarks/threshold_grid.py` (yosys 0.23, the flows of "
        "`hwprune.estimate.synth`: xc7 = pynq-z2 `synth_xilinx -family xc7 -flatten`, ice40 = "
        "iCEBreaker `synth_ice40 -dsp`, ecp5 = ULX3S `synth_ecp5`). LUTs per row of "
        f"{ELEMENTS}-element Threshold layers: k sorted thresholds on a signed b-bit value, "
        "evenly spaced or random; 'compare' is the row less its popcount.",
        "",
    ]
    for fam in BOARDS:
        if fam not in data:
            continue
        f = data[fam]["fit"]
        lines += [
            f"## {fam}",
            "",
            f"Fit (k > 1): compare LUTs = {f['c']} * k^{f['p']} * b^{f['q']}; median error "
            f"{100 * f['median_error']:.1f} %, worst {100 * f['max_error']:.1f} %.",
            "",
            "| b | k | spacing | LUT per row | compare LUTs | fit |",
            "|---:|---:|---|---:|---:|---:|",
        ]
        for p in data[fam]["points"]:
            pred = f["c"] * p["k"] ** f["p"] * p["b"] ** f["q"] if p["k"] > 1 else float("nan")
            lines.append(
                f"| {p['b']} | {p['k']} | {p['spacing']} | {p['lut']:.2f} | "
                f"{p['compare']:.2f} | {pred:.1f} |"
            )
        lines.append("")
    (RESULTS / "threshold_grid.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
