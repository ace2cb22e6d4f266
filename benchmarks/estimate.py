"""How far the estimate is from synthesis, per resource, family and kernel: calibration and
validation kept apart, every real model listed one by one.

    .venv/bin/python benchmarks/estimate.py [--measure] [--fit] [--only NAME ...]
                                            [--families xc7 ice40 ecp5] [--timeout S]

Designs (``DESIGNS``): generated ones, in two disjoint sets (other seeds, other sizes):
MLPs of every kernel (``mac``, ``mac-dsp``, ``adder-graph``, ``auto``), sparsities 0.5-0.95,
weights of 2-8 bits, activations of 2-8 bits, signed and unsigned inputs, FLOOR and
HALF_EVEN rounding, reuse factors 1-4; CNNs with max pooling and sign or multi-threshold
activations; Threshold-activated MLPs (FINN style); streamed convolutions (``--conv
stream``, R = 1 and 2). Then every real model the project has: tests/models (the zoo models
of ../shared/models) and the corpus of tests/corpus_models.py, compiled as ``hwprune
compile`` does.

``--measure`` synthesises each design's emitted Verilog with the board family's yosys flow
(``hwprune.estimate.synth``: xc7 = pynq-z2's ``synth_xilinx -family xc7 -flatten``, ice40 =
iCEBreaker's ``synth_ice40 -dsp``, ecp5 = ULX3S's ``synth_ecp5``), without place and route.
Each result is kept in results/estimate_synth.json under the design, the family and the
SHA-256 of its Verilog; a design whose Verilog did not change is not synthesised again.

``--fit`` fits the family's constants (hwprune/estimate/calibration.toml) on the calibration
set only, and writes them with the measurement they came from. The report (always) compares
the estimate with synthesis on the validation set and the real models: median and 90th
percentile absolute error of LUT, FF and DSP per family and per kernel, latency against the
RTL's cycle count, and estimate time against synthesis time: results/estimate.md and
results/estimate.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUILD = ROOT / "build" / "estimate-bench"
RESULTS = ROOT / "benchmarks" / "results"
SYNTH_JSON = RESULTS / "estimate_synth.json"
# family -> the board whose flow measures it (boards/*.toml)
FAMILY_BOARDS = {"xc7": "pynq-z2", "ice40": "icebreaker", "ecp5": "ulx3s-85f"}


@dataclass(frozen=True)
class Design:
    """One measured design: how to build it, and which set it belongs to."""

    name: str
    group: str  # "calibration", "validation" or "real"
    kernel: str  # for the per-kernel table: mac, mac-dsp, adder-graph, auto, stream
    build: Callable[[Path], tuple]  # folder -> (compiled graph, {file: Verilog})
    notes: dict = field(default_factory=dict)


def _graph_design(make: Callable[[], object], kernel: str, reuse: int = 1) -> Callable:
    """A generated IR graph, optimised as compile does, with its kernel and reuse factor."""

    def build(folder: Path) -> tuple:
        from hwprune.codegen.verilog import emit_verilog
        from hwprune.ir.passes import optimize

        g = optimize(make())
        g.meta["kernel"] = kernel
        if kernel == "auto":
            from hwprune.estimate.costs import choose_kernels

            g.meta["kernel"] = "mac"
            chosen = choose_kernels(g, dsp_budget=40)
            g.meta["layer_kernels"] = {n: c["kernel"] for n, c in chosen.items()}
        if reuse > 1:
            g.meta["reuse_factor"] = reuse
        return g, emit_verilog(g)

    return build


def _compiled(model: Callable[[Path], Path], **kw) -> Callable:
    """A QONNX model compiled as ``hwprune compile`` does (``api.compile``)."""

    def build(folder: Path) -> tuple:
        from hwprune import api

        warnings.filterwarnings("ignore")
        src = model(folder)
        d = api.compile(src, folder / "build", **kw)
        rtl = folder / "build" / "rtl"
        return d.graph, {p.name: p.read_text() for p in sorted(rtl.glob("*.v"))}

    return build


def _mlp(**kw) -> Callable:
    def make():
        from tests.graphs import random_mlp

        return random_mlp(**kw)

    return make


def _cnn(**kw) -> Callable:
    def make():
        from tests.graphs import random_cnn

        return random_cnn(**kw)

    return make


def _thr(**kw) -> Callable:
    def make():
        from tests.graphs import random_threshold_mlp

        return random_threshold_mlp(**kw)

    return make


def _stream_model(name: str) -> Callable[[Path], Path]:
    def model(folder: Path) -> Path:
        from tests.hw.test_stream import conv_models_in

        folder.mkdir(parents=True, exist_ok=True)
        return conv_models_in(folder, [name])[name]

    return model


def _zoo(path: Path) -> Callable[[Path], Path]:
    return lambda folder: path


def _corpus(name: str) -> Callable[[Path], Path]:
    def model(folder: Path) -> Path:
        from tests.corpus_models import CORPUS, clean

        folder.mkdir(parents=True, exist_ok=True)
        p = folder / f"{name}.onnx"
        if not p.exists():
            clean(CORPUS[name].build(0)).save(str(p))
        return p

    return model


def _designs() -> list[Design]:
    from hwprune.ir.graph import Rounding
    from tests.corpus_models import CORPUS

    out: list[Design] = []

    def add(name, group, kernel, build):
        out.append(Design(name, group, kernel, build))

    # Calibration: seeds from 100; validation: seeds from 200, other sizes and mixes.
    for group, seed, sizes_a, sizes_b in (
        ("calibration", 100, (16, 24, 10), (32, 32, 16, 8)),
        ("validation", 200, (20, 28, 12), (24, 40, 20, 6)),
    ):
        s = seed
        for kernel in ("mac", "adder-graph"):
            for sizes, sp, wb, ab, signed, rnd in (
                (sizes_a, 0.5, 4, 8, False, "FLOOR"),
                (sizes_b, 0.8, 6, 8, True, "HALF_EVEN"),
                (sizes_b, 0.9, 8, 4, False, "FLOOR"),
                (sizes_a, 0.7, 3, 6, True, "FLOOR"),
                (sizes_b, 0.85, 2, 2, False, "HALF_EVEN"),
            ):
                s += 1
                kw = dict(
                    seed=s,
                    sizes=sizes,
                    sparsity=sp,
                    w_bits=wb,
                    act_bits=ab,
                    in_signed=signed,
                    rounding=Rounding[rnd],
                )
                add(f"{group[:3]}-{kernel}-{s}", group, kernel, _graph_design(_mlp(**kw), kernel))
        for kernel, sizes, sp in (("mac-dsp", sizes_a, 0.7), ("auto", sizes_b, 0.8)):
            s += 1
            g = _mlp(seed=s, sizes=sizes, sparsity=sp, w_bits=6, act_bits=8)
            add(f"{group[:3]}-{kernel}-{s}", group, kernel, _graph_design(g, kernel))
        for reuse in (2, 4):
            s += 1
            g = _mlp(seed=s, sizes=sizes_a, sparsity=0.6, w_bits=5, act_bits=8)
            add(
                f"{group[:3]}-mac-r{reuse}-{s}",
                group,
                f"mac R={reuse}",
                _graph_design(g, "mac", reuse),
            )
        for bipolar, ch, side in ((True, 3, 6), (False, 2, 8)):
            s += 1
            g = _cnn(seed=s, channels=ch + (group == "validation"), side=side, bipolar=bipolar)
            add(f"{group[:3]}-cnn-{s}", group, "mac", _graph_design(g, "mac"))
        for n_thr, w_bits in ((3, 2), (15, 4)):
            s += 1
            g = _thr(seed=s, sizes=sizes_b, n_thresholds=n_thr, w_bits=w_bits, sparsity=0.8)
            add(f"{group[:3]}-thr-{s}", group, "mac", _graph_design(g, "mac"))
        # Wide inputs (a fixed<16,6> or 12-bit sensor input, as the QKeras jet tagger) and a
        # wider FINN-style network (2-bit weights, 3 thresholds, as TFC-w2a2).
        wide = (16, 32, 16, 5) if group == "calibration" else (16, 48, 24, 5)
        for in_bits, sizes, sp, wb in ((16, wide, 0.7, 6), (12, sizes_a, 0.6, 4)):
            s += 1
            g = _mlp(seed=s, sizes=sizes, sparsity=sp, w_bits=wb, in_bits=in_bits, in_signed=True)
            add(f"{group[:3]}-mac-in{in_bits}-{s}", group, "mac", _graph_design(g, "mac"))
        s += 1
        tfc = (96, 64, 32, 10) if group == "calibration" else (128, 48, 48, 10)
        g = _thr(seed=s, sizes=tfc, n_thresholds=3, w_bits=2, sparsity=0.6)
        add(f"{group[:3]}-thr-{s}", group, "mac", _graph_design(g, "mac"))
        # A binarised network (FINN's TFC-w1a1: +-1 inputs, weights and activations, dense).
        s += 1
        bnn = (96, 48, 32, 10) if group == "calibration" else (112, 40, 40, 10)
        g = _thr(seed=s, sizes=bnn, w_bits=1, sparsity=0.0, bipolar=True)
        add(f"{group[:3]}-bnn-{s}", group, "mac", _graph_design(g, "mac"))
        # The same pruned (FINN's TFC-w2a2 and tfc_2w2a: +-1 sums, 60-70 % zeros).
        s += 1
        pruned = (128, 64, 32, 10) if group == "calibration" else (144, 48, 48, 10)
        g = _thr(seed=s, sizes=pruned, w_bits=1, sparsity=0.7, bipolar=True)
        add(f"{group[:3]}-bnn-pruned-{s}", group, "mac", _graph_design(g, "mac"))
    # Streamed convolutions (hw.stream): the coverage CNN at R = 1 and 2 for calibration,
    # the convolution-variants model for validation.
    add(
        "cal-stream-cnn2d",
        "calibration",
        "stream",
        _compiled(_stream_model("cnn2d"), conv="stream"),
    )
    add(
        "cal-stream-cnn2d-r2",
        "calibration",
        "stream",
        _compiled(_stream_model("cnn2d"), conv="stream", reuse_factor=2),
    )
    add(
        "val-stream-variants",
        "validation",
        "stream",
        _compiled(_stream_model("conv_variants"), conv="stream"),
    )
    # Every real model: the zoo's, then the corpus.
    for p in sorted((ROOT / "tests" / "models").glob("*.onnx")):
        add(p.stem, "real", "mac", _compiled(_zoo(p)))
    for name, cm in CORPUS.items():
        kw = {"input_type": cm.input_type} if getattr(cm, "input_type", None) else {}
        add(name, "real", "mac", _compiled(_corpus(name), **kw))
    return out


DESIGNS: list[Design] = _designs()


def rtl_sha(files: dict[str, str]) -> str:
    """SHA-256 over the design's Verilog files, names and texts, in name order."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return h.hexdigest()


def load_synth() -> dict:
    return json.loads(SYNTH_JSON.read_text()) if SYNTH_JSON.exists() else {}


def save_synth(name: str, family: str, rec: dict) -> None:
    """Add one result to the file, atomically and under a lock: runs for other families may
    write at the same time, and a stopped run leaves the previous file whole."""
    import fcntl

    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / "estimate_synth.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = load_synth()
        data.setdefault(name, {})[family] = rec
        tmp = SYNTH_JSON.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        tmp.replace(SYNTH_JSON)


def built(d: Design) -> tuple:
    """(graph, Verilog files, rtl folder) of a design, built under build/estimate-bench."""
    folder = BUILD / d.name
    g, files = d.build(folder)
    rtl = folder / "rtl-synth"
    rtl.mkdir(parents=True, exist_ok=True)
    for old in rtl.glob("*.v"):
        old.unlink()
    for name, text in files.items():
        (rtl / name).write_text(text)
    return g, files, rtl


def measure(designs: list[Design], families: list[str], timeout: float) -> None:
    """Synthesise every design for every family whose result is missing or stale."""
    from hwprune.boards import get_board
    from hwprune.errors import HwpruneError
    from hwprune.estimate.synth import synth_yosys

    data = load_synth()
    for i, d in enumerate(designs):
        g, files, rtl = built(d)
        sha = rtl_sha(files)
        for fam in families:
            old = data.get(d.name, {}).get(fam)
            if old and old.get("rtl_sha256") == sha:
                continue
            board = get_board(FAMILY_BOARDS[fam])
            print(f"[{i + 1}/{len(designs)}] {d.name} {fam} ...", flush=True)
            try:
                r = synth_yosys(
                    rtl, board, BUILD / d.name / f"work-{fam}", timeout_s=timeout, pnr=False
                )
                rec = {k: v for k, v in r.items() if k not in ("cells",)}
                rec["cells"] = r["cells"]
            except HwpruneError as e:
                rec = {"error": str(e)}
            rec["rtl_sha256"] = sha
            rec["board"] = board.name
            save_synth(d.name, fam, rec)
            print(
                f"    {rec.get('lut', rec.get('error'))} LUT, {rec.get('ff')} FF, "
                f"{rec.get('dsp')} DSP, {rec.get('seconds', 0):.0f} s",
                flush=True,
            )


# --- latency: an independent count of cycles in Icarus -----------------------------------

_PROBE = """`timescale 1ns/1ps
module probe;
  reg clk = 0, rst = 1, in_valid = 0;
  reg [{w}-1:0] in_data = 0;
  wire out_valid;
  wire [{o}-1:0] out_data;
  {ready_wire}
  integer cycle = 0, start = -1;
  hwprune_top dut (.clk(clk), .rst(rst), .in_valid(in_valid), {ready_port}.in_data(in_data),
                   .out_valid(out_valid), .out_data(out_data));
  always #5 clk = ~clk;
  always @(posedge clk) begin
    cycle <= cycle + 1;
    if (cycle == 3) begin rst <= 0; end
    if (cycle == 5) begin in_valid <= 1; end
    if (in_valid && {accept}) begin in_valid <= 0; start <= cycle; end
    if (out_valid && start >= 0) begin $display("LATENCY %0d", cycle - start); $finish; end
    if (cycle > 100000) begin $display("LATENCY none"); $finish; end
  end
endmodule
"""


def probe_latency(rtl: Path, work: Path) -> int | None:
    """Cycles from the clock edge that takes an input vector to the one where out_valid is
    high, counted by Icarus on the emitted top (None: the top is not a plain vector top)."""
    import re
    import subprocess

    top = (rtl / "hwprune_top.v").read_text()
    w = re.search(r"input wire \[(\d+):0\] in_data", top)
    o = re.search(r"output wire \[(\d+):0\] out_data", top)
    if not (w and o):
        return None
    ready = "in_ready" in top
    tb = _PROBE.format(
        w=int(w.group(1)) + 1,
        o=int(o.group(1)) + 1,
        ready_wire="wire in_ready;" if ready else "",
        ready_port=".in_ready(in_ready), " if ready else "",
        accept="in_ready" if ready else "1",
    )
    work.mkdir(parents=True, exist_ok=True)
    (work / "probe.v").write_text(tb)
    srcs = [str(p) for p in sorted(rtl.glob("*.v")) if p.name != "hwprune_top_axis.v"]
    subprocess.run(
        [
            "iverilog",
            "-g2005",
            "-o",
            str(work / "probe.vvp"),
            "-s",
            "probe",
            str(work / "probe.v"),
            *srcs,
        ],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(["vvp", "-n", str(work / "probe.vvp")], capture_output=True, text=True)
    m = re.search(r"LATENCY (\d+)", out.stdout)
    return int(m.group(1)) if m else None


# --- fit and report -------------------------------------------------------------------------


def raw_parts(g, family: str, part: str) -> tuple[dict, dict, dict]:
    """(LUT parts, FF parts, totals) of a design on the family's uncalibrated fabric."""
    from hwprune.estimate.fabric import raw_fabric
    from hwprune.estimate.report import design_costs

    costs, (lat, ii) = design_costs(g, raw_fabric(family, part))
    lp: dict[str, int] = {}
    fp: dict[str, int] = {}
    for c in costs:
        for k, v in c.lut_parts.items():
            lp[k] = lp.get(k, 0) + v
        for k, v in c.ff_parts.items():
            fp[k] = fp.get(k, 0) + v
    return lp, fp, {"dsp": sum(c.dsp for c in costs), "latency": lat, "ii": ii}


def fit(rows: list[tuple[dict, float]], names: tuple[str, ...]) -> dict[str, float]:
    """Per-category factors minimising the relative error of sum(factor * part) against the
    measured figure over ``rows`` [(parts, measured)], robustly (soft-L1 loss: one odd design
    does not drag every factor) and held near 1 (a weak pull, so a category few designs have
    keeps its analytical weight), each within [0.25, 4]; a category no row has keeps 1."""
    import numpy as np
    from scipy.optimize import least_squares

    used = [n for n in names if any(p.get(n, 0) for p, _ in rows)]
    if not used:
        return {}
    a = np.array([[p.get(n, 0) / max(y, 1) for n in used] for p, y in rows], dtype=float)

    def residual(c):
        return np.concatenate([a @ c - 1.0, 0.05 * (c - 1.0)])

    r = least_squares(
        residual, np.ones(len(used)), bounds=(0.25, 4.0), loss="soft_l1", f_scale=0.05
    )
    return {n: round(float(x), 4) for n, x in zip(used, r.x)}


def write_calibration(consts: dict, meta: dict) -> None:
    from hwprune.estimate.fabric import CALIBRATION

    lines = [
        "# Calibrated constants of the estimator, per family: each LUT and flip-flop category",
        "# of hwprune.estimate.fabric (PARTS, FF_PARTS) is multiplied by its factor.",
        "# Written by `.venv/bin/python benchmarks/estimate.py --fit` from the yosys runs in",
        "# benchmarks/results/estimate_synth.json on the calibration designs only",
        f"# ({meta['designs']} designs; {meta['tool']}; flows: {meta['flows']}).",
        "# Validation (other designs and every real model): benchmarks/results/estimate.md.",
        "",
    ]
    for fam in sorted(consts):
        for what in ("lut", "ff"):
            if not consts[fam][what]:
                continue
            lines.append(f"[{fam}.{what}]")
            for k, v in consts[fam][what].items():
                lines.append(f"{k} = {v}")
            lines.append("")
    CALIBRATION.write_text("\n".join(lines))


def run_fit(designs: list[Design], families: list[str]) -> None:
    from hwprune.boards import get_board
    from hwprune.estimate.fabric import PARTS, _calibration

    data = load_synth()
    # the families not fitted now keep their constants
    _calibration.cache_clear()
    consts: dict[str, dict] = {
        fam: {"lut": dict(t.get("lut", {})), "ff": dict(t.get("ff", {}))}
        for fam, t in _calibration().items()
        if fam not in families
    }
    tool = flows = ""
    cal = [d for d in designs if d.group == "calibration"]
    for fam in families:
        board = get_board(FAMILY_BOARDS[fam])
        lut_rows, ff_rows = [], []
        for d in cal:
            rec = data.get(d.name, {}).get(fam)
            if not rec or "error" in rec:
                continue
            g, files = d.build(BUILD / d.name)
            if rec.get("rtl_sha256") != rtl_sha(files):
                continue  # measured on other Verilog: --measure again
            lp, fp, _ = raw_parts(g, board.family, board.part)
            lut_rows.append((lp, rec["lut"] + rec.get("srl", 0) + rec.get("lutram", 0)))
            ff_rows.append((fp, rec["ff"]))
            tool = rec["tool"]
            flows += "" if fam in flows else f"{fam}: {rec['command'].split(' -top')[0]}; "
        # Flip-flops are counted structurally (live register bits, costs.register_bits), not
        # fitted: the factors stay 1 and the report shows how far that is.
        del ff_rows
        consts[fam] = {"lut": fit(lut_rows, PARTS), "ff": {}}
        print(fam, consts[fam], flush=True)
    write_calibration(consts, {"designs": len(cal), "tool": tool, "flows": flows.rstrip("; ")})


def _err(est: float, meas: float) -> float:
    return (est - meas) / meas if meas else (0.0 if est == 0 else float("inf"))


def _pct(x: float) -> str:
    return f"{100 * x:+.1f} %"


def _q(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def report(designs: list[Design], families: list[str]) -> dict:
    """Estimate every measured design with the calibrated fabrics; errors against yosys."""
    from hwprune.boards import get_board
    from hwprune.estimate import estimate
    from hwprune.estimate import fabric as fabmod

    fabmod._calibration.cache_clear()
    fabmod.calibrated.cache_clear()
    data = load_synth()
    rows = []
    for d in designs:
        if d.name not in data:
            continue
        g, files, _ = built(d)  # writes rtl-synth, which the latency probe reads
        latency = None
        for fam in families:
            rec = data[d.name].get(fam)
            if not rec or "error" in rec or rec.get("rtl_sha256") != rtl_sha(files):
                continue
            board = get_board(FAMILY_BOARDS[fam])
            t0 = time.perf_counter()
            est = estimate(g, board)
            est_s = time.perf_counter() - t0
            if latency is None:
                latency = probe_latency(BUILD / d.name / "rtl-synth", BUILD / d.name / "probe")
            t = est["totals"]
            meas_lut = rec["lut"] + rec.get("srl", 0) + rec.get("lutram", 0)
            rows.append(
                {
                    "design": d.name,
                    "group": d.group,
                    "kernel": d.kernel,
                    "family": fam,
                    "est": {
                        "lut": t["lut"],
                        "ff": t["ff"],
                        "dsp": t["dsp"],
                        "latency": t["latency_cycles"],
                    },
                    "yosys": {
                        "lut": meas_lut,
                        "ff": rec["ff"],
                        "dsp": rec["dsp"],
                        "latency": latency,
                    },
                    "err": {
                        "lut": _err(t["lut"], meas_lut),
                        "ff": _err(t["ff"], rec["ff"]),
                    },
                    "est_s": est_s,
                    "synth_s": rec["seconds"],
                }
            )
    missing = []
    for d in designs:
        for fam in families:
            rec = data.get(d.name, {}).get(fam)
            if not any(r["design"] == d.name and r["family"] == fam for r in rows):
                why = "not synthesised yet (--measure)" if rec is None else rec.get("error", "")
                if rec is not None and not why:
                    why = "measured on other Verilog (--measure again)"
                missing.append({"design": d.name, "group": d.group, "family": fam, "why": why})
    return {"rows": rows, "missing": missing}


def summary_lines(rows: list[dict], key: Callable[[dict], str]) -> list[str]:
    out = [
        "| set | designs | LUT median | LUT p90 | FF median | FF p90 | DSP exact | latency exact |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    for k in sorted(groups):
        rs = groups[k]
        lut = [abs(r["err"]["lut"]) for r in rs]
        ff = [abs(r["err"]["ff"]) for r in rs]
        dsp = sum(r["est"]["dsp"] == r["yosys"]["dsp"] for r in rs)
        lat = [r for r in rs if r["yosys"]["latency"] is not None]
        lat_ok = sum(r["est"]["latency"] == r["yosys"]["latency"] for r in lat)
        out.append(
            f"| {k} | {len(rs)} | {100 * _q(lut, 0.5):.1f} % | {100 * _q(lut, 0.9):.1f} % "
            f"| {100 * _q(ff, 0.5):.1f} % | {100 * _q(ff, 0.9):.1f} % | {dsp} of {len(rs)} "
            f"| {lat_ok} of {len(lat)} |"
        )
    return out


def write_report(res: dict) -> None:
    rows = res["rows"]
    val = [r for r in rows if r["group"] in ("validation", "real")]
    cal = [r for r in rows if r["group"] == "calibration"]
    lines = [
        "# Estimate against synthesis: calibration and validation",
        "",
        "Produced by `.venv/bin/python benchmarks/estimate.py --measure --fit` (yosys runs cached "
        "in results/estimate_synth.json by the SHA-256 of each design's Verilog). Measured: "
        + "; ".join(f"{f} = {b}" for f, b in FAMILY_BOARDS.items())
        + " (hwprune.estimate.synth flows, no place and route); LUT = the family's LUTs "
        "(xc7: LUT1-6 + SRL + LUTRAM; ice40: SB_LUT4; ecp5: LUT4 + 2 x CCU2C), FF = its "
        "flip-flops, DSP = DSP48E1 / SB_MAC16 / MULT18X18D. Latency: cycles from the edge that "
        "takes an input vector to out_valid, counted by Icarus on the emitted top (streamed "
        "designs: '-', their cycle model is checked by tests/codegen/test_stream_rtl.py). "
        "Errors are (estimate - yosys) / yosys; the constants (hwprune/estimate/"
        "calibration.toml) were fitted on the calibration set only.",
        "",
        "## Validation set (generated designs not used in the fit, and every real model)",
        "",
        "Per family:",
        "",
        *summary_lines(val, lambda r: r["family"]),
        "",
        "Per family and kernel:",
        "",
        *summary_lines(val, lambda r: f"{r['family']} {r['kernel']}"),
        "",
        "Real models only:",
        "",
        *summary_lines([r for r in val if r["group"] == "real"], lambda r: r["family"]),
        "",
        "## Calibration set (the fit's own designs)",
        "",
        *summary_lines(cal, lambda r: r["family"]),
        "",
        "## Every design",
        "",
        "| design | set | kernel | family | est LUT | yosys LUT | LUT err | est FF | yosys FF "
        "| FF err | DSP est / yosys | latency est / RTL | estimate ms | synthesis s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(
        rows,
        key=lambda r: (
            {"real": 0, "validation": 1, "calibration": 2}[r["group"]],
            r["design"],
            r["family"],
        ),
    ):
        e, y = r["est"], r["yosys"]
        lat = "-" if y["latency"] is None else y["latency"]
        lines.append(
            f"| {r['design']} | {r['group']} | {r['kernel']} | {r['family']} | {e['lut']:,} "
            f"| {y['lut']:,} | {_pct(r['err']['lut'])} | {e['ff']:,} | {y['ff']:,} "
            f"| {_pct(r['err']['ff'])} | {e['dsp']} / {y['dsp']} | {e['latency']} / {lat} "
            f"| {1000 * r['est_s']:.1f} | {r['synth_s']:.1f} |"
        )
    lib = res.get("library_ms", {})
    if lib:
        lines += [
            "",
            "Library speed, 16-64-32-32-5 MLP (4,184 product terms), cold caches, median of 15: "
            + "; ".join(f"`{k}` {v} ms" for k, v in lib.items())
            + ".",
        ]
    if res.get("missing"):
        lines += [
            "",
            "## Not in the tables",
            "",
            "| design | set | family | why |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {m['design']} | {m['group']} | {m['family']} | {m['why'][:160]} |"
            for m in res["missing"]
        ]
    est_s = sum(r["est_s"] for r in rows)
    syn_s = sum(r["synth_s"] for r in rows)
    lines += [
        "",
        f"Estimate time against synthesis time, all rows: {est_s:.2f} s of estimates, "
        f"{syn_s:,.0f} s of yosys ({syn_s / max(est_s, 1e-9):,.0f}x).",
    ]
    (RESULTS / "estimate.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "estimate.json").write_text(json.dumps(res, indent=1) + "\n")


def library_speed(runs: int = 15) -> dict:
    """Milliseconds of ``estimate(g, pynq-z2)`` and ``estimate_boards(g, every board)`` on the
    16-64-32-32-5 MLP of benchmarks/estimate_speed.py (16-bit signed inputs, 6-bit weights,
    no zeros: 4,184 product terms), every hwprune cache cleared before each run (cold), the
    median of ``runs``."""
    from hwprune.boards import get_board, list_boards
    from hwprune.estimate import estimate, estimate_boards
    from hwprune.ir.passes import optimize
    from tests.graphs import random_mlp

    g = optimize(
        random_mlp(
            seed=0, sizes=(16, 64, 32, 32, 5), sparsity=0.0, in_signed=True, in_bits=16, w_bits=6
        )
    )

    from hwprune.estimate.costs import clear_caches

    def clear() -> None:
        for mod in list(sys.modules.values()):
            if getattr(mod, "__name__", "").startswith("hwprune"):
                for v in list(vars(mod).values()):
                    if hasattr(v, "cache_clear"):
                        v.cache_clear()
        clear_caches()  # the estimator's memo tables (the last version missed value numbers)

    out = {}
    for label, run in (
        ("estimate(g, pynq-z2)", lambda: estimate(g, get_board("pynq-z2"))),
        ("estimate_boards(g, all boards)", lambda: estimate_boards(g, list_boards())),
    ):
        ts = []
        for _ in range(runs):
            clear()
            t0 = time.perf_counter()
            run()
            ts.append(1000 * (time.perf_counter() - t0))
        out[label] = round(statistics.median(ts), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure", action="store_true", help="synthesise missing designs")
    ap.add_argument("--fit", action="store_true", help="refit the calibration constants")
    ap.add_argument("--only", nargs="*", help="design names (default: all)")
    ap.add_argument("--group", nargs="*", help="calibration, validation, real")
    ap.add_argument("--families", nargs="*", default=list(FAMILY_BOARDS))
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args(argv)
    designs = [
        d
        for d in DESIGNS
        if (not args.only or d.name in args.only) and (not args.group or d.group in args.group)
    ]
    if args.measure:
        measure(designs, args.families, args.timeout)
    if args.fit:
        run_fit(DESIGNS, args.families)
    res = report(designs, args.families)
    res["library_ms"] = library_speed()
    write_report(res)
    print((RESULTS / "estimate.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
