"""Calibrate the analytical estimator against yosys on the emitted Verilog.

For a few seeded random graphs (tests/graphs.py) this emits the design with
``hwprune.codegen.verilog.emit_verilog``, synthesises it with yosys
``synth_xilinx -family xc7 -nodsp -flatten`` and compares LUT and FF counts with
``hwprune.estimate``. Each design is synthesised twice:

* ``emitted``: the Verilog exactly as the emitter writes it (products as ``x * W``, which
  yosys maps to an array multiplier, not to the CSD shift-and-add the estimator assumes);
* ``csd``: the same files with every product line rewritten as CSD shift-and-add of
  ``x_c`` (the structure the estimator costs), all other lines unchanged.

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
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwprune.boards import get_board  # noqa: E402
from hwprune.estimate import estimate  # noqa: E402
from hwprune.estimate.costs import csd_digits  # noqa: E402
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

_PRODUCT = re.compile(
    r"^(\s*wire signed \[\d+:0\] p_\d+_\d+ = )(x_\d+) \* (-?)\d+'sd(\d+);$", re.MULTILINE
)


def csd_expr(x: str, w: int) -> str:
    """``x * w`` as CSD shift-and-add (most significant digit first, sign applied last)."""
    digits = sorted(csd_digits(abs(w)), reverse=True)

    def term(p: int) -> str:
        return x if p == 0 else f"({x} <<< {p})"

    expr = term(digits[0][0])
    for p, d in digits[1:]:
        expr += (" + " if d > 0 else " - ") + term(p)
    return f"-({expr})" if w < 0 else expr


def rewrite_csd(text: str) -> str:
    """Replace every ``p = x_c * W;`` product line by its CSD shift-and-add form.

    The wire keeps its declared width, so the two's-complement result is unchanged (an
    intermediate that wraps around still gives the exact product modulo 2**width).
    """

    def sub(m: re.Match) -> str:
        w = int(m.group(4)) * (-1 if m.group(3) else 1)
        return f"{m.group(1)}{csd_expr(m.group(2), w)};"

    return _PRODUCT.sub(sub, text)


def yosys_stat(files: dict[str, str], top: str, workdir: Path) -> dict[str, int]:
    """Cell counts of ``synth_xilinx -family xc7 -nodsp`` on the given Verilog files."""
    for name, text in files.items():
        (workdir / name).write_text(text)
    reads = "; ".join(f"read_verilog {workdir / n}" for n in sorted(files))
    script = f"{reads}; synth_xilinx -family xc7 -nodsp -flatten -top {top}; stat"
    log = subprocess.run(["yosys", "-p", script], capture_output=True, text=True, check=True).stdout
    # The final `stat` is the last "Printing statistics" section of the log.
    tail = log[log.rindex("Printing statistics") :]
    cells: dict[str, int] = {}
    for cell, n in re.findall(r"^\s+([A-Z][A-Z0-9_]+)\s+(\d+)$", tail, re.MULTILINE):
        cells[cell] = cells.get(cell, 0) + int(n)
    return cells


def lut_ff(cells: dict[str, int]) -> tuple[int, int, int]:
    """(LUT, FF, SRL): LUT1-6 plus INV (a LUT1 in the device); FD* flip-flops; SRL16/32."""
    lut = sum(n for c, n in cells.items() if re.fullmatch(r"LUT[1-6]|INV", c))
    ff = sum(n for c, n in cells.items() if re.fullmatch(r"FD[RSCP]E(_1)?", c))
    srl = sum(n for c, n in cells.items() if c.startswith("SRL"))
    return lut, ff, srl


def run_case(label: str, kwargs: dict) -> dict:
    """Estimate and synthesise one graph both ways; return the figures for the table."""
    from hwprune.codegen.verilog import emit_verilog  # another engineer's module

    g = random_mlp(**kwargs)
    try:
        # The real flow optimises before emitting: without it yosys would also delete
        # neurons nothing reads and constant rows, which the IR still holds.
        from hwprune.ir.passes import optimize

        g = optimize(g)
    except ImportError:
        pass
    est = estimate(g, get_board("pynq-z2"))
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
            ("csd", {n: rewrite_csd(t) for n, t in files.items()}),
        ):
            d = Path(tmp) / variant
            d.mkdir()
            t0 = time.monotonic()
            cells = yosys_stat(fs, "hwprune_top", d)
            lut, ff, srl = lut_ff(cells)
            out[variant] = {
                "lut": lut,
                "ff": ff,
                "srl": srl,
                "carry4": cells.get("CARRY4", 0),
                "s": round(time.monotonic() - t0, 1),
            }
    return out


def table(results: list[dict]) -> str:
    """The markdown table: estimate, yosys on both netlists, and est/yosys ratios."""
    lines = [
        "| graph | nonzero terms | est LUT | yosys LUT emitted (est/yosys) "
        "| yosys LUT csd (est/yosys) | LUT per term est / emitted / csd "
        "| est FF | yosys FF emitted (est/yosys) | yosys FF csd | CARRY4 emitted / csd |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        e, c, n = r["emitted"], r["csd"], max(r["terms"], 1)
        lines.append(
            f"| {r['label']} | {r['terms']} | {r['est_lut']} "
            f"| {e['lut']} ({r['est_lut'] / e['lut']:.2f}) "
            f"| {c['lut']} ({r['est_lut'] / c['lut']:.2f}) "
            f"| {r['est_lut'] / n:.1f} / {e['lut'] / n:.1f} / {c['lut'] / n:.1f} "
            f"| {r['est_ff']} | {e['ff']} ({r['est_ff'] / max(e['ff'], 1):.2f}) "
            f"| {c['ff']} | {e['carry4']} / {c['carry4']} |"
        )
    srl = sum(r[v]["srl"] for r in results for v in ("emitted", "csd"))
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
    try:
        from hwprune.codegen.verilog import emit_verilog  # noqa: F401
    except ImportError as e:
        print(f"the Verilog emitter is not usable yet ({e})", file=sys.stderr)
        return 2
    ver = subprocess.run(["yosys", "-V"], capture_output=True, text=True).stdout.strip()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda c: run_case(*c), CASES))
    text = (
        f"Estimator (`hwprune.estimate`) vs `{ver}` `synth_xilinx -family xc7 -nodsp -flatten`"
        " on `hwprune.codegen.verilog.emit_verilog` output of `optimize(random_mlp(...))`.\n"
        "LUT = LUT1-6 + INV cells; FF = FDRE/FDSE/FDCE/FDPE. 'emitted': the files as written "
        "(products `x * W`); 'csd': product lines rewritten as CSD shift-and-add.\n"
        "Regenerate: `.venv/bin/python benchmarks/estimate_vs_yosys.py "
        "--out benchmarks/results/estimate_vs_yosys.md`\n\n"
        + table(results)
        + "\nHow to read it: est/yosys below 1 means the estimate is optimistic. The "
        "estimator costs CSD shift-and-add products on carry chains, so the 'csd' column "
        "measures the model and the 'emitted' column what yosys makes of the emitter's "
        "`x * W` (an array multiplier per product). Estimated FF is the schedule's register "
        "bits plus the valid shift register; yosys drops bits that are constant or never "
        "read.\n"
    )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
