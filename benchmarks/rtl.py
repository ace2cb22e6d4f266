"""Hardware size per kernel, synthesized: hwprune's mac, adder-graph and auto Verilog of the
same networks, side by side with da4ml 0.6's own Verilog where it can be generated here.

    .venv/bin/python benchmarks/rtl.py [--only NAME ...] [--kernels mac adder-graph auto]

For each network and kernel: compile seconds (import excluded: the lowering and emission of
the optimized graph), latency in cycles, and yosys 0.23 ``synth_xilinx -family xc7 -flatten
-top hwprune_top`` (hwprune.estimate.synth.synth_yosys, the flow of ``hwprune estimate
--synth``) LUT, FF, CARRY4 and DSP with its seconds. The anchor column comes from
benchmarks/da4ml_anchor.py when da4ml is importable (``pip install da4ml==0.6.0``; not a
dependency of hwprune), synthesized by the same call. Results: results/rtl.json and
results/rtl.md (ratios to da4ml where it ran, else to mac).

Networks: the default job's digits MLP (trained here, seeded), the two shared models
(tests/models), and a 16-64-32-32-5 MLP with 16-bit signed inputs, 6-bit weights and 8-bit
activations at 0, 50, 75 and 90 % zeros (seeded random integer weights; tests/graphs.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwprune.boards import get_board  # noqa: E402
from hwprune.codegen.cocotb_tb import write_rtl  # noqa: E402
from hwprune.estimate.synth import synth_yosys  # noqa: E402
from hwprune.hw.schedule import latency_cycles  # noqa: E402
from hwprune.ir.graph import from_json  # noqa: E402
from hwprune.ir.passes import optimize  # noqa: E402

BUILD = ROOT / "build" / "bench-rtl"
RESULTS = ROOT / "benchmarks" / "results"
KERNELS = ("mac", "adder-graph", "auto")
BOARD = "pynq-z2"  # xc7


def networks() -> dict:
    """name -> a zero-argument function giving the optimized integer graph."""
    from tests.graphs import random_mlp

    def compiled(model: str, out: Path):
        # The imported, optimized graph: each kernel's row makes compile's choices by cost
        # (threshold forms, auto's kernels) itself, as compile does for that kernel.
        def build():
            from hwprune.frontend.qonnx import import_qonnx

            return optimize(import_qonnx(model))

        return build

    def digits():
        out = BUILD / "digits"
        if not (out / "ir.json").is_file():
            subprocess.run(
                [sys.executable, "-m", "hwprune.cli", "run", "-o", str(out), "--to", "compile"],
                check=True,
                capture_output=True,
            )
        return from_json((out / "ir.json").read_text())

    nets = {
        "digits 64-64-32-10 (default job)": digits,
        "unsw_nb15_mlp_w2a2": compiled(
            str(ROOT / "tests/models/unsw_nb15_mlp_w2a2.onnx"), BUILD / "unsw"
        ),
        "tfc_2w2a": compiled(str(ROOT / "tests/models/tfc_2w2a.onnx"), BUILD / "tfc"),
    }
    for z in (0, 50, 75, 90):
        nets[f"mlp 16-64-32-32-5, {z} % zeros"] = lambda z=z: optimize(
            random_mlp(
                100 + z,
                (16, 64, 32, 32, 5),
                sparsity=z / 100,
                in_signed=True,
                in_bits=16,
                w_bits=6,
                act_bits=8,
            )
        )
    return nets


def hwprune_row(g, kernel: str, work: Path, pipeline: int | None = None) -> dict:
    from hwprune.estimate.choices import choose

    meta = {**g.meta, "kernel": kernel}
    if pipeline is not None:
        meta["pipeline"] = pipeline
    t0 = time.perf_counter()
    gk = choose(replace(g, meta=meta))  # threshold forms, then (auto) kernels, by cost
    meta = gk.meta
    write_rtl(gk, work / "rtl")
    compile_s = time.perf_counter() - t0
    syn = synth_yosys(work / "rtl", get_board(BOARD), work / "synth", timeout_s=3600)
    return {
        "kernel": kernel if pipeline is None else f"{kernel} @ pipeline {pipeline}",
        "layer_kernels": meta.get("layer_kernels"),
        "latency_cycles": latency_cycles(gk),
        "compile_s": round(compile_s, 2),
        "lut": syn["lut"],
        "ff": syn["ff"],
        "carry4": syn["carry4"],
        "dsp": syn["dsp"],
        "yosys_s": round(syn["seconds"], 1),
        "yosys": syn["tool"],
        "command": syn["command"],
    }


def da4ml_row(ir_json: Path, work: Path, latency: int, da4ml_python: str | None) -> dict | None:
    """da4ml's own Verilog of the same graph at the same latency (benchmarks/da4ml_anchor.py,
    run by a Python that has da4ml 0.6.0, bit-exact against hwprune's golden interpreter),
    synthesized by the same call; None without such a Python."""
    if not da4ml_python:
        return None
    t0 = time.perf_counter()
    if not (work / "anchor.json").is_file():  # the solve takes minutes on tfc: kept
        cmd = [da4ml_python, str(ROOT / "benchmarks" / "da4ml_anchor.py"), str(ir_json)]
        cmd += [str(work), "--target-latency", str(latency)]
        subprocess.run(cmd, check=True, timeout=7200)
    compile_s = time.perf_counter() - t0
    info = json.loads((work / "anchor.json").read_text())
    board = get_board(BOARD)
    syn = synth_yosys(work / "verilog", board, work / "synth", top=info["top"], timeout_s=3600)
    return {
        "kernel": "da4ml",
        "latency_cycles": info["latency_cycles"],
        "bit_exact": bool(info["bit_exact_comb"] and info["bit_exact_pipeline"]),
        "compile_s": round(compile_s, 2),
        "lut": syn["lut"],
        "ff": syn["ff"],
        "carry4": syn["carry4"],
        "dsp": syn["dsp"],
        "yosys_s": round(syn["seconds"], 1),
    }


def _matched_adder_graph(g, done: dict, work: Path) -> dict | None:
    """adder-graph at mac's latency: the fewest adder levels per stage (from 5 up) that give
    no more cycles than mac, when the default 4 gives more (None when not needed)."""
    if "mac" not in done or "adder-graph" not in done:
        return None
    target = done["mac"]["latency_cycles"]
    if done["adder-graph"]["latency_cycles"] <= target:
        return None
    from hwprune.estimate.choices import choose

    for n in range(5, 33):
        gk = choose(replace(g, meta={**g.meta, "kernel": "adder-graph", "pipeline": n}))
        if latency_cycles(gk) <= target:
            key = f"adder-graph @ pipeline {n}"
            if key not in done:
                print(f"  {key} ...", flush=True)
                done[key] = hwprune_row(g, "adder-graph", work / f"adder-graph-p{n}", n)
            return done[key]
    return None


def _auto_is_one_kernel(g, done: dict) -> str | None:
    """The kernel auto picks for every layer, if it is one already measured."""
    from hwprune.estimate.choices import choose

    picks = set(
        choose(replace(g, meta={**g.meta, "kernel": "auto"})).meta.get("layer_kernels", {}).values()
    )
    return next(iter(picks)) if len(picks) == 1 and next(iter(picks)) in done else None


def table(results: dict) -> str:
    lines = [
        "| network | kernel | latency | LUT | FF | CARRY4 | DSP | LUT ratio "
        "| compile s | yosys s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        anchor = next((r for r in rows if r["kernel"] == "da4ml" and "lut" in r), None)
        base = anchor or next(r for r in rows if r["kernel"] == "mac")
        for r in rows:
            if "lut" not in r:
                lines.append(f"| {name} | {r['kernel']} | skipped: {r.get('skipped')} |||||||")
                continue
            ratio = r["lut"] / base["lut"] if base["lut"] else float("nan")
            lines.append(
                f"| {name} | {r['kernel']} | {r['latency_cycles']} | {r['lut']:,} | {r['ff']:,} "
                f"| {r['carry4']:,} | {r['dsp']} | {ratio:.2f} | {r['compile_s']} "
                f"| {r['yosys_s']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="substrings of network names to run")
    ap.add_argument("--kernels", nargs="*", default=list(KERNELS))
    ap.add_argument(
        "--da4ml-python",
        default=os.environ.get("DA4ML_PYTHON"),
        help="a Python with da4ml 0.6.0 installed (the anchor); default $DA4ML_PYTHON",
    )
    ap.add_argument(
        "--redo",
        action="store_true",
        help="measure hwprune's rows again (da4ml's, which do not change, are kept)",
    )
    a = ap.parse_args()
    out_json = RESULTS / "rtl.json"
    results = json.loads(out_json.read_text()) if out_json.is_file() else {}
    for name, build in networks().items():
        if a.only and not any(s in name for s in a.only):
            continue
        g = build()
        g = replace(g, meta={**g.meta, "board": BOARD})  # auto's DSP budget
        slug = "".join(ch if ch.isalnum() else "_" for ch in name)
        work = BUILD / slug
        work.mkdir(parents=True, exist_ok=True)
        ir = work / "ir.json"
        from hwprune.ir.graph import to_json

        ir.write_text(to_json(g))
        # --redo measures the kernels asked again (and adder-graph's matched-latency row with
        # adder-graph); every other row is kept.
        redo = set(a.kernels) if a.redo else set()
        done = {
            r["kernel"]: r
            for r in results.get(name, [])
            if r["kernel"] == "da4ml" or r["kernel"].split(" @")[0] not in redo
        }
        rows = []
        for k in dict.fromkeys([*KERNELS, *a.kernels]):
            if k in a.kernels:
                same = _auto_is_one_kernel(g, done) if k == "auto" else None
                if same is not None:  # auto chose one kernel everywhere: the same Verilog
                    done[k] = {**done[same], "kernel": "auto", "same_as": same}
                if k not in done:
                    print(f"{name}: {k} ...", flush=True)
                    done[k] = hwprune_row(g, k, work / k)
                    print(f"  {done[k]}", flush=True)
            if k in done:
                rows.append(done[k])
        matched = _matched_adder_graph(g, done, work)
        if matched is not None:
            rows.append(matched)
        anchor = done.get("da4ml") or da4ml_row(
            ir, work / "da4ml", rows[0]["latency_cycles"], a.da4ml_python
        )
        if anchor is not None:
            rows.append(anchor)
            print(f"  {anchor}", flush=True)
        results[name] = rows
        out_json.write_text(json.dumps(results, indent=1) + "\n")
        (RESULTS / "rtl.md").write_text(HEADER + table(results) + NOTES)


HEADER = """# Hardware size per kernel (yosys), against da4ml's own Verilog

Written by `benchmarks/rtl.py` (`--redo` after a change to the hardware). yosys 0.23 (Debian)
`synth_xilinx -family xc7 -flatten -top <top>`; LUT = LUT1..LUT6, FF = FD*, as counted by
hwprune.estimate.synth. LUT ratio: to
da4ml 0.6's Verilog of the same network where it ran, else to hwprune's mac. Latency in
clock cycles (hwprune: default pipeline, 4 adder levels per stage).

"""

NOTES = """
Notes. hwprune's columns count LUT1-LUT6 plus INV, as `hwprune estimate --synth` does; da4ml's
are counted the same way. da4ml's Verilog was generated by `benchmarks/da4ml_anchor.py`
(da4ml 0.6.0, `HWConfig(1, -1, -1)`, solver `hard_dc=2` as da4ml's converter defaults, a
latency cutoff searched to hwprune mac's latency) from the imported graph (thresholds as
the model has them) and checked bit for bit against hwprune's golden interpreter on 502
vectors; its compile s is 0.0 where the generated Verilog was reused (tfc takes about 9 min
in da4ml). hwprune's rows make compile's choices per kernel: each threshold layer's form
(comparators, multiply-add-shift-clip, or folded into its Dense) and, for auto, the kernels.
"adder-graph @ pipeline N" is adder-graph at the fewest adder levels per stage that give
mac's latency or less. auto chooses per layer for the board pynq-z2 (xc7z020, 220 DSP
slices): the kernel of fewest estimated LUTs without DSP, then `mac-dsp` where it saves the
most LUTs per DSP within the 220; its DSP column is what yosys mapped. hwprune's rows were
measured on the Verilog before a21fa99 (each layer one clocked block, signed operands extended
by Verilog's rules): on digits, unsw and the 90 % MLP that change moved LUTs by -1.4 % to
+0.3 % and left FFs equal (results/synth_diff.md, `benchmarks/synth_diff.py 0d3b28d`).
"""


if __name__ == "__main__":
    main()
