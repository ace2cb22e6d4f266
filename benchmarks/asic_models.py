"""ASIC figures of the networks users bring: the default job's digits MLP, the two shared
models (tfc_2w2a, unsw_nb15_mlp_w2a2) and the 16-64-32-32-5 jet-tagging-sized MLP, each
compiled, then ``hwprune estimate BUILD --target asic:osu018 --synth yosys`` (yosys 0.23
mapping, OpenSTA 2.0.17 timing and power) beside the fast estimate.

    .venv/bin/python benchmarks/asic_models.py [--only NAME ...] [--timeout S]

Builds go to build/asic-models/<name>/ (the digits MLP is the default job run to its compile
step; the MLP is benchmarks/rtl.py's: 16-bit signed inputs, 6-bit weights, 8-bit
activations, 50 % zeros, compiled from its QONNX export). Results: results/asic_models.json
(every run kept under its name and the SHA-256 of its Verilog; a build whose Verilog did not
change is not mapped again) and results/asic_models.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIBRARY = "asic:osu018"
RESULTS = ROOT / "benchmarks" / "results"
OUT_JSON = RESULTS / "asic_models.json"
BUILD = ROOT / "build" / "asic-models"
MODELS = ROOT / "tests" / "models"


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "hwprune.cli", *args], cwd=ROOT, check=True)


NAMES = ("digits", "unsw_nb15_mlp_w2a2", "mlp-16-64-32-32-5", "tfc_2w2a")


def build(name: str):
    """(graph, RTL folder) of ``name``, compiled once into build/asic-models/<name>/."""
    from hwprune.api import load_graph

    out = BUILD / name
    if name == "mlp-16-64-32-32-5":
        from hwprune.codegen.cocotb_tb import write_rtl
        from hwprune.ir.passes import optimize
        from tests.graphs import random_mlp

        g = optimize(
            random_mlp(
                150,
                (16, 64, 32, 32, 5),
                sparsity=0.5,
                in_signed=True,
                in_bits=16,
                w_bits=6,
                act_bits=8,
            )
        )
        if not (out / "rtl" / "hwprune_top.v").is_file():
            write_rtl(g, out / "rtl")
        return g, out / "rtl"
    if not (out / "ir.json").is_file():
        if name == "digits":
            _cli("run", "-o", str(out), "--to", "compile")
        else:
            _cli("compile", str(MODELS / f"{name}.onnx"), "-o", str(out))
    return load_graph(out), out / "rtl"


def rtl_sha(rtl: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(rtl.glob("*.v")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def measure(g, rtl: Path, timeout: float) -> dict:
    from hwprune.estimate.asic import synth_asic
    from hwprune.estimate.asic_fast import asic_estimate
    from hwprune.estimate.asic_report import asic_synth_report
    from hwprune.libraries import find_library

    lib = find_library(LIBRARY)
    t0 = time.perf_counter()
    est = asic_estimate(g, lib)
    est_s = time.perf_counter() - t0
    syn = synth_asic(rtl, lib, rtl.parent / "asic" / lib.name, timeout_s=timeout)
    return {
        "estimate": est,
        "estimate_seconds": round(est_s, 3),
        "synth": asic_synth_report(est, syn),
    }


def estimate_again(g, synth: dict) -> dict:
    """The fast estimate of ``g`` and its ratios to a stored mapping ``synth``."""
    from hwprune.estimate.asic_fast import asic_estimate
    from hwprune.estimate.asic_report import asic_synth_report
    from hwprune.libraries import find_library

    t0 = time.perf_counter()
    est = asic_estimate(g, find_library(LIBRARY))
    seconds = round(time.perf_counter() - t0, 3)
    syn = {k: v for k, v in synth.items() if k != "ratio"}
    return {"estimate": est, "estimate_seconds": seconds, "synth": asic_synth_report(est, syn)}


def load() -> dict:
    return json.loads(OUT_JSON.read_text()) if OUT_JSON.is_file() else {}


def write_report(data: dict) -> None:
    lines = [
        "# ASIC figures of real networks (osu018)",
        "",
        "Written by `.venv/bin/python benchmarks/asic_models.py`: each network compiled, its "
        "Verilog mapped to asic:osu018 with yosys 0.23 (`synth -flatten; dfflibmap; abc "
        "-liberty`) and timed and powered with OpenSTA 2.0.17 at the library's 200 MHz clock "
        "and default activity (hwprune.estimate.asic.synth_asic), beside the fast estimate "
        "(hwprune.estimate.asic_fast, no synthesis).",
        "",
        "| network | cells | area mm² (synth) | area mm² (est.) | area err | Fmax MHz (STA) "
        "| Fmax MHz (est.) | power mW | leakage µW | est. s | synth s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in NAMES:
        r = data.get(name)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"| {name} | {r['error']} |" + " |" * 9)
            continue
        e, s = r["estimate"], r["synth"]
        sta = s["sta"]
        ea, ma = e["area_um2"]["total"], s["area_um2"]["total"]
        lines.append(
            f"| {name} | {s['cell_count']:,} | {ma / 1e6:.3f} | {ea / 1e6:.3f} "
            f"| {100 * (ea - ma) / ma:+.1f} % | {sta['fmax_mhz']:.1f} | "
            f"{e.get('fmax_mhz') or 0:.1f} | {sta['power_w']['total'] * 1e3:.2f} "
            f"| {sta['power_w']['leakage'] * 1e6:.3f} | {r['estimate_seconds']:.2f} "
            f"| {s['seconds'] + sta['seconds']:.0f} |"
        )
    (RESULTS / "asic_models.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=list(NAMES))
    ap.add_argument("--timeout", type=float, default=3600)
    a = ap.parse_args(argv)
    data = load()
    for name in a.only:
        g, rtl = build(name)
        sha = rtl_sha(rtl)
        if data.get(name, {}).get("sha256") == sha and "error" not in data[name]:
            # mapped before: the fast estimate again (its constants may have been refitted)
            data[name].update(estimate_again(g, data[name]["synth"]))
            continue
        print(f"{name}: mapping ...", flush=True)
        try:
            data[name] = {"sha256": sha, **measure(g, rtl, a.timeout)}
        except Exception as e:  # a failed or timed-out mapping is a result, recorded
            data[name] = {"sha256": sha, "error": str(e).splitlines()[0][:300]}
        OUT_JSON.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        write_report(data)
        print(f"{name}: {data[name].get('error') or 'done'}", flush=True)
    OUT_JSON.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    write_report(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
