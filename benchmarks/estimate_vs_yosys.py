"""Calibrate the analytical estimator against yosys on the emitted Verilog.

For a few seeded random graphs (tests/graphs.py, optimized as the real flow does) this emits
the design with ``hwprune.codegen.verilog.emit_verilog``, synthesises it with yosys
``synth_xilinx -family xc7 -nodsp -flatten`` (``hwprune.estimate.synth.synth_yosys``) and
compares LUT and FF counts with ``hwprune.estimate``. Each design is synthesised twice, side
by side:

* ``emitted``: the Verilog exactly as hwprune writes it (products as CSD shift-and-add);
* ``mult``: the baseline, the same files with every product line written back as a plain
  constant multiply ``x_c * W`` (rebuilt from the line's ``// w=`` comment), the form a
  straightforward emitter would write and yosys maps to an array multiplier.

Run from the repository root (needs yosys on PATH; about 1-3 minutes per design):

    .venv/bin/python benchmarks/estimate_vs_yosys.py -j 2 \
        --out benchmarks/results/estimate_vs_yosys.md
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwprune.boards import get_board  # noqa: E402
from hwprune.codegen.verilog import emit_verilog  # noqa: E402
from hwprune.estimate import estimate  # noqa: E402
from hwprune.estimate.synth import synth_yosys  # noqa: E402
from hwprune.ir.passes import optimize  # noqa: E402
from tests.graphs import random_mlp  # noqa: E402

# (label, random_mlp keyword arguments). The 64-64-32-10 cases mirror the default job
# (README: 6-bit weights, 8-bit activations, 85 % zeros).
CASES: list[tuple[str, dict]] = [
    ("16-12-8-5 s0.7", dict(seed=0, sizes=(16, 12, 8, 5), sparsity=0.7)),
    ("32-24-10 s0.5 signed-in", dict(seed=1, sizes=(32, 24, 10), sparsity=0.5, in_signed=True)),
    ("64-64-32-10 s0.85", dict(seed=2, sizes=(64, 64, 32, 10), sparsity=0.85)),
    ("64-64-32-10 s0.95", dict(seed=3, sizes=(64, 64, 32, 10), sparsity=0.95)),
    ("16-64-32-32-5 s0.7 w4", dict(seed=4, sizes=(16, 64, 32, 32, 5), sparsity=0.7, w_bits=4)),
]

# An emitted product line: its wire, the input it reads (first x_c) and its weight comment.
_PRODUCT = re.compile(
    r"^(\s*wire signed \[\d+:0\] p_\d+_\d+ = )[^;]*?(x_\d+)[^;]*; // w=(-?\d+)$", re.MULTILINE
)


def rewrite_mult(text: str) -> str:
    """Write every product line back as ``x_c * W`` (the plain-multiplier baseline).

    The wire keeps its declared width, so the two's-complement result is unchanged.
    """

    def sub(m: re.Match) -> str:
        w = int(m.group(3))
        lit = f"{abs(w).bit_length() + 1}'sd{abs(w)}"
        return f"{m.group(1)}{m.group(2)} * {'-' if w < 0 else ''}{lit}; // w={w}"

    return _PRODUCT.sub(sub, text)


def run_case(label: str, kwargs: dict) -> dict:
    """Estimate one graph and synthesise it both ways; return the figures for the table."""
    board = get_board("pynq-z2")
    g = optimize(random_mlp(**kwargs))
    est = estimate(g, board)
    files = emit_verilog(g)
    out = {
        "label": label,
        "terms": sum(op.n_terms for op in g.dense_ops()),
        "est_lut": est["totals"]["lut"],
        "est_ff": est["totals"]["ff"],
    }
    with tempfile.TemporaryDirectory(prefix="hwprune-calib-") as tmp:
        for variant, fs in (
            ("emitted", files),
            ("mult", {n: rewrite_mult(t) for n, t in files.items()}),
        ):
            rtl = Path(tmp) / variant / "rtl"
            rtl.mkdir(parents=True)
            for name, text in fs.items():
                (rtl / name).write_text(text)
            r = synth_yosys(rtl, board, Path(tmp) / variant / "work", nodsp=True)
            out[variant] = {
                "lut": r["lut"],
                "ff": r["ff"],
                "srl": r["srl"],
                "carry4": r["carry4"],
                "s": round(r["seconds"], 1),
            }
    return out


def table(results: list[dict]) -> str:
    """The markdown table: estimate, yosys on both netlists, and the ratios."""
    lines = [
        "| graph | nonzero terms | est LUT | yosys LUT emitted (est/yosys) "
        "| yosys LUT mult baseline | emitted/mult LUT | LUT per term est / emitted / mult "
        "| est FF | yosys FF emitted (est/yosys) | CARRY4 emitted / mult "
        "| yosys s emitted / mult |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        e, m, n = r["emitted"], r["mult"], max(r["terms"], 1)
        lines.append(
            f"| {r['label']} | {r['terms']} | {r['est_lut']} "
            f"| {e['lut']} ({r['est_lut'] / e['lut']:.2f}) "
            f"| {m['lut']} | {e['lut'] / m['lut']:.2f} "
            f"| {r['est_lut'] / n:.1f} / {e['lut'] / n:.1f} / {m['lut'] / n:.1f} "
            f"| {r['est_ff']} | {e['ff']} ({r['est_ff'] / max(e['ff'], 1):.2f}) "
            f"| {e['carry4']} / {m['carry4']} | {e['s']} / {m['s']} |"
        )
    srl = sum(r[v]["srl"] for r in results for v in ("emitted", "mult"))
    if srl:
        lines.append(f"\n{srl} SRL cells (shift registers in LUTs) are not counted above.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-j", "--jobs", type=int, default=2, help="designs synthesised at once")
    ap.add_argument("--out", type=Path, help="also write the markdown table here")
    args = ap.parse_args(argv)
    if shutil.which("yosys") is None:
        print("yosys is not on PATH; install it (apt-get install yosys)", file=sys.stderr)
        return 2
    ver = subprocess.run(["yosys", "-V"], capture_output=True, text=True).stdout.strip()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda c: run_case(*c), CASES))
    text = (
        f"Estimator (`hwprune.estimate`) vs `{ver}` `synth_xilinx -family xc7 -nodsp -flatten`"
        " on `hwprune.codegen.verilog.emit_verilog` output of `optimize(random_mlp(...))`.\n"
        "LUT = LUT1-6 + INV cells; FF = FDRE/FDSE/FDCE/FDPE. 'emitted': the files as written "
        "(products as CSD shift-and-add); 'mult': the baseline, product lines written back as "
        "`x * W`.\n"
        "Regenerate: `.venv/bin/python benchmarks/estimate_vs_yosys.py "
        "--out benchmarks/results/estimate_vs_yosys.md`\n\n"
        + table(results)
        + "\nHow to read it: est/yosys below 1 means the estimate is optimistic. "
        "emitted/mult below 1 is what writing products as CSD shift-and-add saves over plain "
        "constant multiplies (which yosys maps to array multipliers, or to DSPs without "
        "-nodsp). Estimated FF is the schedule's register bits plus the valid shift register; "
        "yosys drops bits that are constant or never read, so the estimate is an upper bound.\n"
    )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
