"""Compile time per kernel on one 512x256 layer of 3-bit weights (issue 11: under 60 s each).

    .venv/bin/python benchmarks/compile_time.py [--table]

The layer: 256 unsigned 8-bit inputs, 512 outputs, seeded random weights in -3..3 with 0 %
and 75 % of them zero, then an 8-bit requantization (tests/graphs.random_mlp). Each kernel
runs in a fresh Python (no cache shared between kernels) and is timed over what compile does
with the optimized graph: the choices by cost (threshold forms; auto's kernels, board
pynq-z2 with its 220 DSP slices), the Verilog, and the estimate. Also recorded: how the
adder-graph solved the matrix (whole, or split into blocks), as the manifest says.
Results: results/compile_time.json and results/compile_time.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
KERNELS = ("mac", "mac-dsp", "adder-graph", "auto")
ZEROS = (0, 75)
LIMIT_S = 60.0


def one(kernel: str, zeros: int) -> dict:
    """Time one kernel on the layer (run in its own process by ``main``)."""
    sys.path.insert(0, str(ROOT))
    from dataclasses import replace

    from hwprune.codegen.verilog import emit_verilog
    from hwprune.estimate import layer_costs
    from hwprune.estimate.choices import choose
    from hwprune.hw.kernels import lower_dense
    from hwprune.ir.passes import optimize
    from tests.graphs import random_mlp

    g = optimize(random_mlp(512 + zeros, (256, 512, 8), sparsity=zeros / 100, w_bits=3))
    g = replace(g, meta={**g.meta, "kernel": kernel, "board": "pynq-z2"})
    t0 = time.perf_counter()
    gk = choose(g)
    files = emit_verilog(gk)
    costs = layer_costs(gk)
    seconds = time.perf_counter() - t0
    big = gk.dense_ops()[0]
    net = lower_dense(gk, big)
    return {
        "kernel": kernel,
        "zeros_percent": zeros,
        "nonzero_weights": big.n_terms,
        "layer_kernel": net.kernel,
        "solve": net.solve,
        "seconds": round(seconds, 1),
        "verilog_bytes": sum(len(t) for t in files.values()),
        "lut_estimate": sum(c.lut for c in costs),
        "dsp_estimate": sum(c.dsp for c in costs),
    }


def main() -> None:
    rows = []
    for zeros in ZEROS:
        for kernel in KERNELS:
            cmd = [sys.executable, __file__, "--one", kernel, str(zeros)]
            env = {**os.environ, "PYTHONWARNINGS": "ignore"}
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(row, flush=True)
            rows.append(row)
    (RESULTS / "compile_time.json").write_text(json.dumps(rows, indent=1) + "\n")
    write_table(rows)


def write_table(rows: list[dict]) -> None:
    from importlib.metadata import version

    lines = [
        "# Compile time per kernel: one 512x256 layer of 3-bit weights",
        "",
        "Written by `benchmarks/compile_time.py` on this machine (2 cores). Seconds: the",
        "choices by cost, the Verilog and the estimate of the optimized graph, each kernel in a",
        f"fresh process. Limit: {LIMIT_S:.0f} s per kernel. adder-graph: alkaid",
        f"{version('alkaid')} (`cmvm_solve`), its block solves shared among worker processes,",
        "one per core.",
        "",
        "| zeros | nonzero weights | kernel | chosen for the layer | seconds | under limit "
        "| est. LUT | est. DSP | adder-graph solve |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ok = "yes" if r["seconds"] < LIMIT_S else "NO"
        lines.append(
            f"| {r['zeros_percent']} % | {r['nonzero_weights']:,} | {r['kernel']} "
            f"| {r['layer_kernel']} | {r['seconds']} | {ok} | {r['lut_estimate']:,} "
            f"| {r['dsp_estimate']} | {r['solve'] or '-'} |"
        )
    (RESULTS / "compile_time.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2], int(sys.argv[3]))))
    elif sys.argv[1:] == ["--table"]:  # the table again from the committed JSON
        write_table(json.loads((RESULTS / "compile_time.json").read_text()))
    else:
        main()
