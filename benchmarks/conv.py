"""Streaming against unrolled convolution, on the bundled CNN examples: what a user gets from
``--conv stream`` (hwprune.hw.stream) and what it costs.

    .venv/bin/python benchmarks/conv.py [--only NAME ...] [--rows ROW ...] [--vectors N]
                                        [--timeout S]

For each example (examples/digits_cnn.toml, examples/fashion_cnn.toml) the model is trained
once with its own config (build/conv/<name>/train), then compiled both ways from the same
model.onnx, side by side: ``--conv unroll`` (an adder tree per output pixel) and ``--conv
stream``, and streamed at ``--reuse-factor`` 2, 3 and 4 (each stage a grid position per R
cycles, its kernel's multipliers shared R times: hwprune.hw.reuse). Per design: yosys 0.23
``synth_xilinx -family xc7 -flatten`` (hwprune.estimate.synth)
LUT, FF, SRL, BRAM18, CARRY4 and its wall time; the estimate's LUT and FF for pynq-z2 and the
fit verdict of both; latency in cycles (the unrolled pipeline's, the stream's cycle model,
which the generated testbench checks on every run) and images per second at 100 MHz (unroll:
one image per cycle; stream: one per ``interval`` cycles, images back to back); the Icarus
RTL simulation of N images (``hwprune sim --levels rtl``, wall time and images/s). Accuracy is
the trained model's on the test set (train.json: dense QAT and pruned); every hardware level
is bit-exact with it, so it is the hardware's too. A synthesis that does not finish within
--timeout seconds is recorded as such; a design estimated above --max-lut LUTs (the unrolled
Fashion-MNIST CNN: over a million) is neither synthesised nor simulated, and its estimate
stands for it. Results: results/conv.json and results/conv.md.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "conv"
RESULTS = ROOT / "benchmarks" / "results"
EXAMPLES = {"digits_cnn": "examples/digits_cnn.toml", "fashion_cnn": "examples/fashion_cnn.toml"}
CLOCK_MHZ = 100
# The designs measured per example: key -> label (stream-r<R>: --reuse-factor R).
ROWS = {
    "unroll": "unroll",
    "stream": "stream",
    "stream-r2": "stream, R = 2",
    "stream-r3": "stream, R = 3",
    "stream-r4": "stream, R = 4",
}


def trained(name: str) -> Path:
    """The example's model, trained once (kept in build/conv/<name>/train)."""
    from hwprune import api
    from hwprune.config import load_config

    out = BUILD / name / "train"
    if not (out / "model.onnx").is_file():
        cfg = load_config(ROOT / EXAMPLES[name])
        api.train(cfg, out, progress=False)
        api.export(cfg, out)
    return out


def measure(
    name: str, model: Path, conv: str, vectors: int, timeout: float, max_lut: int, reuse: int = 1
) -> dict:
    from hwprune import api
    from hwprune.boards import get_board
    from hwprune.errors import HwpruneError
    from hwprune.estimate.synth import synth_yosys
    from hwprune.hw.schedule import latency_cycles
    from hwprune.hw.stream import plan

    out = BUILD / name / (conv if reuse == 1 else f"{conv}-r{reuse}")
    t0 = time.perf_counter()
    try:
        d = api.compile(model, out, conv=conv, reuse_factor=reuse)
    except HwpruneError as e:
        print(name, conv, reuse, e, flush=True)
        return {"conv": conv, "reuse_factor": reuse, "error": str(e)}
    compile_s = time.perf_counter() - t0
    p = plan(d.graph)
    latency = latency_cycles(d.graph) if p is None else p.latency
    interval = 1 if p is None else p.interval
    est = d.estimates["pynq-z2"]
    row = {
        "conv": conv,
        "reuse_factor": reuse,
        "compile_s": round(compile_s, 1),
        "est_lut": est["totals"]["lut"],
        "est_ff": est["totals"]["ff"],
        "est_dsp": est["totals"]["dsp"],
        "est_fits_pynq_z2": est["fits"],
        "latency_cycles": latency,
        "interval_cycles": interval,
        "images_per_s": round(CLOCK_MHZ * 1e6 / interval),
    }
    if est["totals"]["lut"] > max_lut:
        # Far beyond any board: synthesis and simulation of it are not run (hours, and more
        # memory than this machine has); the estimate stands for it.
        why = f"not run: estimated {est['totals']['lut']:,} LUT, over --max-lut {max_lut:,}"
        row |= {"sim_passed": None, "sim_images": 0, "sim_s": None, "sim_images_per_s": None}
        row["yosys"] = {"error": why}
        print(name, conv, json.dumps(row), flush=True)
        return row
    t0 = time.perf_counter()
    rep = api.sim(out, vectors=vectors, progress=False, levels=["rtl"])
    sim_s = time.perf_counter() - t0
    (lv,) = rep.levels
    row |= {
        "sim_passed": lv.passed,
        "sim_images": lv.vectors,
        "sim_s": round(sim_s, 1),
        "sim_images_per_s": round(lv.vectors / sim_s, 1),
    }
    board = get_board("pynq-z2")
    try:
        syn = synth_yosys(out / "rtl", board, work_dir=out / "synth", timeout_s=timeout)
    except HwpruneError as e:
        row["yosys"] = {"error": str(e)}
    else:
        keys = ("lut", "ff", "srl", "lutram", "bram18", "carry4", "dsp", "seconds")
        row["yosys"] = {k: syn[k] for k in keys} | {"tool": syn["tool"]}
        avail = board.available
        row["yosys_fits_pynq_z2"] = (
            syn["lut"] + syn["srl"] + syn["lutram"] <= avail["lut"]
            and syn["ff"] <= avail["ff"]
            and syn["bram18"] <= avail["bram18"]
            and syn["dsp"] <= avail["dsp"]
        )
    print(name, conv, json.dumps(row), flush=True)
    return row


def table(res: dict) -> str:
    lines = [
        "# Streaming against unrolled convolution",
        "",
        "Written by `benchmarks/conv.py` (its docstring says how each figure is taken).",
        "yosys 0.23 `synth_xilinx -family xc7 -flatten`; LUT counts LUT1-6 cells, SRL the",
        "SRL16E/SRLC32E shift-register LUTs (the line buffers); fit = LUT + SRL, FF, BRAM18 and",
        "DSP within the pynq-z2's XC7Z020 (53,200 LUT, 106,400 FF, 280 BRAM18, 220 DSP).",
        "Images/s at 100 MHz; simulation is Icarus 11 through the generated harness (2 cores,",
        "shared with other work while measured: the rates are lower bounds).",
        "`stream, R = n`: `--reuse-factor n` (hwprune/hw/reuse.py): every Dense, the stream",
        "kernels' and the head's, uses each multiplier n times, a stage takes a grid position",
        "per n cycles; yosys maps the multipliers of 9 bits or more to DSP48E1 slices. A row",
        "'not compiled' is a reuse factor hls4ml refuses for a head layer (the HLS project",
        "takes the same R; the error names the ones that fit).",
        "",
    ]
    for name, r in res.items():
        acc = r["accuracy"]
        lines += [
            f"## {name}",
            "",
            f"Accuracy on the test set: dense QAT {acc['dense']:.2%}, pruned {acc['pruned']:.2%}"
            " (the hardware is bit-exact with the pruned model).",
            "",
            "| conv | yosys LUT | SRL | FF | DSP | BRAM18 | CARRY4 | fits | est LUT | est DSP | "
            "latency | images/s | sim images/s |",
            "|:--|--:|--:|--:|--:|--:|--:|:--|--:|--:|--:|--:|--:|",
        ]
        notes: list[str] = []
        for key in (k for k in ROWS if k in r):
            x = r[key]
            if "error" in x:  # not compiled (hls4ml refuses the reuse factor for the head)
                lines.append(
                    f"| {ROWS[key]} | "
                    + " | ".join(["-"] * 6 + ["not compiled (below)"] + ["-"] * 5)
                    + " |"
                )
                notes.append(f"{ROWS[key]}: not compiled: {x['error']}.")
                continue
            y = x["yosys"]
            if "error" in y:
                syn = ["-"] * 6 + [y["error"]]
            else:
                syn = [f"{y['lut']:,}", f"{y['srl']:,}", f"{y['ff']:,}", str(y["dsp"])]
                syn += [str(y["bram18"]), f"{y['carry4']:,}"]
                syn += ["yes" if x["yosys_fits_pynq_z2"] else "NO"]
            lines.append(
                f"| {ROWS[key]} | "
                + " | ".join(syn)
                + f" | {x['est_lut']:,} | {x.get('est_dsp', 0)} | {x['latency_cycles']:,} | "
                f"{x['images_per_s']:,} | {x['sim_images_per_s'] or '-'} |"
            )
        for note in notes:
            lines += ["", note]
        u, s = r["unroll"]["yosys"], r["stream"]["yosys"]
        if "error" not in u and "error" not in s:
            ratio = (s["lut"] + s["srl"]) / (u["lut"] + u["srl"])
            lines += ["", f"Stream / unroll LUT (with SRL): {ratio:.3f}."]
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=list(EXAMPLES))
    ap.add_argument("--vectors", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=5400)
    ap.add_argument("--max-lut", type=int, default=400_000, dest="max_lut")
    ap.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    path = RESULTS / "conv.json"
    res = json.loads(path.read_text()) if path.is_file() else {}
    for name in a.only:
        tr = trained(name)
        t = json.loads((tr / "train.json").read_text())
        row = res.get(name, {})  # rows not measured this run are kept
        row["accuracy"] = {"dense": t["dense_accuracy"], "pruned": t["pruned_accuracy"]}
        for key in a.rows:
            conv, _, r = key.partition("-r")
            row[key] = measure(
                name, tr / "model.onnx", conv, a.vectors, a.timeout, a.max_lut, int(r or 1)
            )
        res[name] = row
        path.write_text(json.dumps(res, indent=1) + "\n")
        (RESULTS / "conv.md").write_text(table(res))


if __name__ == "__main__":
    main()
