"""What an adder cone costs after synthesis: K registered w-bit operands summed by the emitted
pairwise tree, which yosys' alumacc merges into one ``$macc`` and maccmap builds as rows of
full adders before one carry chain.

On LUT6 a full adder is two LUTs without a carry chain, so a cone of 16 six-bit operands
costs about twice what the adder rule (one LUT per bit of each carry-chain adder) says, and
the gap grows with K. The estimator's cone rule (``fabric.Fabric.cone_luts``) is fitted to
this grid: for each operand count K (one cone: K <= 2^LEVELS_PER_STAGE) and operand width
w, a Dense layer of ``ROWS`` rows of K +-1 terms of a signed w-bit input, emitted by
hwprune's own Verilog emitter and synthesised with the family's flow
(``hwprune.estimate.synth``).

    .venv/bin/python benchmarks/cone_grid.py [--families xc7 ice40 ecp5]

Writes results/cone_grid.json (every point, and the least-squares fit of log(LUTs per row) =
log c + p log K + q log w per family) and results/cone_grid.md.
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
from hwprune.estimate.fabric import CONE_FIT  # noqa: E402
from hwprune.ir.graph import Dense, Graph, Input, IntRange, Row  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
COUNTS = (3, 4, 6, 8, 12, 16)
WIDTHS = (2, 3, 4, 6, 8, 10)
# Unsigned inputs (binary features, 2-bit activations) times +-1: 0/1 and 0/-1 operands.
UNSIGNED_WIDTHS = (1, 2)
ROWS = 8
N_IN = 32


def layer(k: int, w: int, seed: int, signed: bool = True) -> Graph:
    rng = random.Random(seed)
    rows = []
    for _ in range(ROWS):
        cols = tuple(sorted(rng.sample(range(N_IN), k)))
        rows.append(Row(0, cols, tuple(rng.choice((-1, 1)) for _ in cols)))
    r = IntRange(-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else IntRange(0, (1 << w) - 1)
    return Graph(
        (Input("x", (), N_IN, r, 0), Dense("dense0", ("x",), N_IN, tuple(rows), 0)), ("dense0",)
    )


def grid(unsigned: bool) -> list[tuple[int, int, bool]]:
    """(K, w, signed) of the signed grid or of the unsigned one."""
    if unsigned:
        return [(k, w, False) for k in COUNTS for w in UNSIGNED_WIDTHS]
    return [(k, w, True) for k in COUNTS for w in WIDTHS]


def _seed(i: int, signed: bool) -> int:
    return i if signed else 1000 + i


def measure(fam: str, points: list[tuple[int, int, bool]]) -> list[dict]:
    board = get_board(BOARDS[fam])
    out = []
    for i, (k, w, signed) in enumerate(points, start=1):
        seed = _seed(i, signed)
        g = layer(k, w, seed, signed)
        lut = synth_luts(g, board) / ROWS
        out.append({"k": k, "w": w, "signed": signed, "seed": seed, "lut": lut})
        print(f"{fam} K={k:2d} w={w:2d} signed={signed} {lut:7.2f} LUT/row", flush=True)
    return out


def shape(k: int, w: int, seed: int, signed: bool = True) -> tuple[float, float] | None:
    """The mean (operands, mean operand bits) of the layer's cones as the estimator sees them
    (``costs.cone_shapes``); None when its cones take the narrow rule (+-1 sums)."""
    from hwprune.estimate.costs import cone_shapes
    from hwprune.hw.layers import lower_layer

    g = layer(k, w, seed, signed)
    shapes = cone_shapes(lower_layer(g, g.ops[1]))
    if len(shapes) != ROWS:
        return None
    return (
        sum(s[0] for s in shapes) / len(shapes),
        sum(s[1] for s in shapes) / len(shapes),
    )


def fit(points: list[dict]) -> dict:
    """log(LUTs per row) = log c + p log K + q log bits, over the points the cone rule
    costs (``shape``), with K and bits as the estimator reads them."""
    pts = []
    for i, p in enumerate(points, start=1):
        sh = shape(p["k"], p["w"], p.get("seed", i), p.get("signed", True))
        if sh is not None:
            pts.append({**p, "k": sh[0], "w": sh[1]})
    return power_law([(p["k"], p["w"], p["lut"]) for p in pts])


def write_fit(data: dict) -> None:
    """The fits, where the estimator reads them (fabric.CONE_FIT)."""
    header = [
        "An adder cone yosys builds as one $macc, per yosys flow: LUTs = c * K^p * bits^q for",
        "K operands of bits bits on average (fabric.Fabric.cone_luts). Written by",
        "`.venv/bin/python benchmarks/cone_grid.py` from its yosys runs",
        "(benchmarks/results/cone_grid.json and .md).",
    ]
    write_fits(CONE_FIT, header, data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", nargs="+", default=list(BOARDS), choices=list(BOARDS))
    ap.add_argument("--refit", action="store_true", help="fit the measured points again")
    ap.add_argument(
        "--add-unsigned",
        action="store_true",
        help="measure only the unsigned points, keeping the signed grid already in the results",
    )
    args = ap.parse_args()
    path = RESULTS / "cone_grid.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    for fam in args.families:
        if args.refit:
            points = data[fam]["points"]
        elif args.add_unsigned:
            signed = [p for p in data[fam]["points"] if p.get("signed", True)]
            points = signed + measure(fam, grid(True))
        else:
            points = measure(fam, grid(False)) + measure(fam, grid(True))
        data[fam] = {"board": BOARDS[fam], "points": points, "fit": fit(points)}
    data["about"] = {"rows_per_layer": ROWS, "inputs": N_IN, "script": "benchmarks/cone_grid.py"}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    write_fit(data)
    lines = [
        "# Adder cones after synthesis",
        "",
        "Produced by `.venv/bin/python benchmarks/cone_grid.py` (yosys 0.23, the flows of "
        "`hwprune.estimate.synth`). LUTs per row of a Dense layer whose rows sum K +-1 terms "
        "of a signed w-bit input in one registered cone.",
        "",
    ]
    for fam in BOARDS:
        if fam not in data:
            continue
        f = data[fam]["fit"]
        lines += [
            f"## {fam}",
            "",
            f"Fit: LUTs = {f['c']} * K^{f['p']} * w^{f['q']}; median error "
            f"{100 * f['median_error']:.1f} %, worst {100 * f['max_error']:.1f} %.",
            "",
            "| K | input bits | LUT per row | fit |",
            "|---:|---:|---:|---:|",
        ]
        for i, p in enumerate(data[fam]["points"], start=1):
            signed = p.get("signed", True)
            sh = shape(p["k"], p["w"], p.get("seed", i), signed)
            pred = f"{f['c'] * sh[0] ** f['p'] * sh[1] ** f['q']:.1f}" if sh else "not the rule"
            inp = f"{p['w']} {'signed' if signed else 'unsigned'}"
            lines.append(f"| {p['k']} | {inp} | {p['lut']:.2f} | {pred} |")
        lines.append("")
    (RESULTS / "cone_grid.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
