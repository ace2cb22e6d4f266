#!/usr/bin/env python3
"""Rebuild an hwprune ir.json network with da4ml 0.6's tracing API and write da4ml's own
pipelined Verilog, as an anchor for hwprune's LUT/FF numbers.

    DA4ML_PYTHON benchmarks/da4ml_anchor.py IR_JSON OUT_DIR \
        [--latency-cutoff C | --target-latency L] [--n-random 500] [--seed 0] [--no-rtl-sim]

The network is traced in the IR's integer domain (every value is the IR integer itself; the
IR's power-of-two ``exp`` scales are dropped, which changes no bit of hardware):

* input  -> FixedVariableArray.from_lhs(lo, hi, step=1) per element (the IR input range)
* dense  -> ``x @ W.T`` with the constant integer matrix (da4ml's CMVM solver, adder graph
            with CSE; solver option hard_dc=2 as da4ml's own converter CLI default) ``+ bias``
* requant FLOOR     -> ``(x * 2**-shift).quantize(k, i, f=0, 'WRAP', 'TRN')`` (a floor; k, i
            are the value's own so WRAP never wraps), then ``max_of(lo).min_of(hi)`` (the
            clip; exactly what da4ml's quantize(..., overflow_mode='SAT') does internally;
            max_of(0) is da4ml's relu)
* requant HALF_EVEN -> floor((x + 2**(s-1) - 1 + bit_s(x)) * 2**-s), bit_s(x) the LSB of
            floor(x * 2**-s) (quantize k=0, i=1, f=0), then the clip
* threshold -> base + step * sum(x >= t) (da4ml comparisons), thresholds outside the
            element's range folded to constants
* max    -> max_of over each window

Then: comb_trace -> CombLogic; da4ml's C++ DAIS interpreter (CombLogic.predict, and the
pipeline stage by stage) is compared bit for bit with hwprune's golden interpreter
(run in hwprune's venv) on corner + random inputs; the Verilog is written with
da4ml.codegen.VerilogModel(latency_cutoff=C).write(); and (unless --no-rtl-sim) the
written pipelined Verilog is simulated with iverilog on the same vectors.

Latency convention (same as hwprune's manifest "latency_cycles"): the number of clock edges
from an input vector on the input port to its result on the output port, i.e. register
levels on the path. da4ml's pipeline of N stages registers its input (stage0_inp) and its
output (model_out): N + 1 cycles. da4ml's own metadata.json "latency" says N.

Without --latency-cutoff, the cutoff is searched so that N + 1 equals --target-latency, or,
by default, hwprune's latency_cycles read from IR_JSON's directory (rtl/manifest.json or
estimate.json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import da4ml
import numpy as np
from da4ml.codegen import VerilogModel
from da4ml.trace import FixedVariableArray, HWConfig, comb_trace, to_pipeline
from da4ml.types import minimal_kif

# Run in a Python with da4ml 0.6.0 (not a dependency of hwprune: e.g. a venv with
# ``pip install da4ml==0.6.0``); hwprune's golden runs in the repository's own venv.
HWPRUNE_ROOT = str(Path(__file__).resolve().parents[1])
HWPRUNE_PY = os.environ.get("HWPRUNE_PYTHON", f"{HWPRUNE_ROOT}/.venv/bin/python")
SOLVER_OPTIONS = {"hard_dc": 2}  # da4ml convert CLI default (--delay-constraint 2)
HWCONF = HWConfig(1, -1, -1)  # da4ml convert CLI default (--hw-config 1 -1 -1)
TOP = "da4ml_top"

SUPPORTED = {"input", "dense", "requant", "threshold", "max"}


class Skip(Exception):
    """The graph has something this anchor does not rebuild."""


# --- hwprune golden (in hwprune's own venv) ------------------------------------------------

_GOLDEN_CODE = r"""
import sys, numpy as np
sys.path.insert(0, sys.argv[4])
from hwprune.ir import graph, golden
g = graph.from_json(open(sys.argv[1]).read())
x = golden.stimulus_vectors(g, int(sys.argv[2]), int(sys.argv[3]))
y = golden.outputs(g, x)
np.savez(sys.argv[5], x=x, y=y)
"""


def golden_vectors(ir_json: Path, n_random: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "golden.npz"
        subprocess.run(
            [
                HWPRUNE_PY,
                "-c",
                _GOLDEN_CODE,
                str(ir_json),
                str(n_random),
                str(seed),
                HWPRUNE_ROOT,
                str(out),
            ],
            check=True,
        )
        d = np.load(out)
        return d["x"].astype(np.int64), d["y"].astype(np.int64)


# --- trace -----------------------------------------------------------------------------------


def _dense_matrix(op: dict) -> tuple[np.ndarray, np.ndarray]:
    w = np.zeros((len(op["rows"]), op["n_in"]), dtype=np.int64)
    b = np.zeros(len(op["rows"]), dtype=np.int64)
    for i, row in enumerate(op["rows"]):
        w[i, row["cols"]] = row["weights"]
        b[i] = row["bias"]
    return w, b


def _floor_shift(v, s: int):
    """floor(v * 2**-s) of one FixedVariable (exact: v is on an integer grid)."""
    y = v * (2.0**-s)
    if s <= 0:
        return y
    k, i, _ = y.kif
    return y.quantize(k=k, i=i, f=0, overflow_mode="WRAP", round_mode="TRN")


def _clip(v, lo: int, hi: int):
    return v.max_of(lo).min_of(hi)


def _requant(x: FixedVariableArray, op: dict) -> FixedVariableArray:
    s, lo, hi, rnd = op["shift"], op["lo"], op["hi"], op["rounding"]
    out = []
    for v in x._vars.ravel():
        if rnd == "floor" or s <= 0:
            y = _floor_shift(v, s)
        elif rnd == "half_even":
            q = _floor_shift(v, s)
            lsb = q.quantize(k=0, i=1, f=0, overflow_mode="WRAP", round_mode="TRN")
            y = _floor_shift(v + (2 ** (s - 1) - 1) + lsb * (2.0**s), s)
        else:
            raise Skip(f"requant rounding {rnd!r}")
        out.append(_clip(y, lo, hi))
    return FixedVariableArray(np.array(out, dtype=object), SOLVER_OPTIONS, hwconf=HWCONF)


def _threshold(x: FixedVariableArray, op: dict) -> FixedVariableArray:
    base, step = op["base"], op["step"]
    out = []
    for v, ts in zip(x._vars.ravel(), op["thresholds"]):
        lo, hi = float(v.low), float(v.high)
        const = sum(1 for t in ts if t <= lo)  # always passed
        live = [t for t in ts if lo < t <= hi]  # the rest (t > hi) never passed
        acc = None
        for t in sorted(set(live)):  # a repeated threshold is one comparator times its count
            b = v >= t
            m = live.count(t)
            b = b if m == 1 else b * m
            acc = b if acc is None else acc + b
        y = base + step * const
        out.append(y if acc is None else acc * step + y)
    return FixedVariableArray(np.array(out, dtype=object), SOLVER_OPTIONS, hwconf=HWCONF)


def _max(x: FixedVariableArray, op: dict) -> FixedVariableArray:
    xv = x._vars.ravel()
    out = []
    for grp in op["groups"]:
        m = xv[grp[0]]
        for j in grp[1:]:
            m = m.max_of(xv[j])
        out.append(m)
    return FixedVariableArray(np.array(out, dtype=object), SOLVER_OPTIONS, hwconf=HWCONF)


def trace(doc: dict, allow: set[str]):
    kinds = [op["kind"] for op in doc["ops"]]
    bad = sorted(set(kinds) - allow)
    if bad:
        raise Skip(f"op kind(s) {bad} not rebuilt (allowed here: {sorted(allow)})")
    inputs = [op for op in doc["ops"] if op["kind"] == "input"]
    if len(inputs) != 1 or len(doc["outputs"]) != 1:
        raise Skip("only single-input single-output graphs")
    vals: dict[str, FixedVariableArray] = {}
    inp = None
    for op in doc["ops"]:
        k = op["kind"]
        if k == "input":
            n = op["size"]
            inp = FixedVariableArray.from_lhs(
                low=np.full(n, float(op["lo"])),
                high=np.full(n, float(op["hi"])),
                step=np.ones(n),
                hwconf=HWCONF,
                solver_options=SOLVER_OPTIONS,
            )
            vals[op["name"]] = inp
            continue
        (src,) = op["inputs"]
        x = vals[src]
        if k == "dense":
            w, b = _dense_matrix(op)
            if np.abs(w).max(initial=0) >= 2**24:
                raise Skip("weights beyond float32's exact integers (da4ml's CMVM takes float32)")
            y = x @ w.T.astype(np.float64)
            vals[op["name"]] = y + b.astype(np.float64)
        elif k == "requant":
            vals[op["name"]] = _requant(x, op)
        elif k == "threshold":
            vals[op["name"]] = _threshold(x, op)
        elif k == "max":
            vals[op["name"]] = _max(x, op)
    return inp, vals[doc["outputs"][0]]


# --- latency ------------------------------------------------------------------------------


def hwprune_latency(ir_json: Path) -> int | None:
    d = ir_json.parent
    m = d / "rtl" / "manifest.json"
    if m.exists():
        return int(json.loads(m.read_text())["latency_cycles"])
    e = d / "estimate.json"
    if e.exists():
        doc = json.loads(e.read_text())
        tot = doc.get("totals", doc)
        if isinstance(tot, dict) and "latency_cycles" in tot:
            return int(tot["latency_cycles"])
    return None


def n_stages(comb, cutoff: float) -> int:
    return len(to_pipeline(comb, cutoff, verbose=False).solutions)


def search_cutoff(comb, target_cycles: int) -> tuple[float, int]:
    """A latency cutoff giving N + 1 == target_cycles stages (or the closest reachable)."""
    want = max(target_cycles - 1, 1)
    total = max(max(comb.out_latency), 1.0)
    lo, hi = 0.5, total + 1.0  # n_stages(hi) == 1; stages grow as the cutoff falls
    if n_stages(comb, hi) >= want:
        return hi, n_stages(comb, hi)
    for _ in range(40):  # bisection on the (monotone in practice) stage count
        mid = (lo + hi) / 2
        n = n_stages(comb, mid)
        if n == want:
            return mid, n
        if n > want:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-3:
            break
    # not hit exactly: take whichever side is closest (prefer fewer stages)
    nh, nl = n_stages(comb, hi), n_stages(comb, lo)
    return (hi, nh) if abs(nh - want) <= abs(nl - want) else (lo, nl)


# --- RTL simulation (iverilog) -------------------------------------------------------------


def _widths(qints):
    return [int(sum(minimal_kif(q))) for q in qints]


def rtl_sim(src_dir: Path, pipe, x: np.ndarray, cycles: int, work: Path) -> np.ndarray:
    """Simulate the written da4ml pipeline (top TOP) with iverilog on integer inputs x."""
    in_q, out_q = pipe.inp_qint, pipe.out_qint
    wi, wo = _widths(in_q), _widths(out_q)
    win, wout = sum(wi), sum(wo)
    lines = []
    for row in x:
        word = 0
        off = 0
        for v, q, w in zip(row, in_q, wi):
            if w:
                iv = int(round(int(v) / q.step))
                word |= (iv & ((1 << w) - 1)) << off
            off += w
        lines.append(format(word, "x"))
    (work / "in.hex").write_text("\n".join(lines) + "\n")
    n = len(x)
    tb = f"""`timescale 1ns/1ps
module tb;
  reg clk = 0;
  reg [{win - 1}:0] mem [0:{n - 1}];
  reg [{win - 1}:0] din;
  wire [{wout - 1}:0] dout;
  integer i, f;
  {TOP} dut (.clk(clk), .model_inp(din), .model_out(dout));
  initial begin
    $readmemh("in.hex", mem);
    f = $fopen("out.txt", "w");
    din = 0;
    for (i = 0; i < {n} + {cycles}; i = i + 1) begin
      din = (i < {n}) ? mem[i] : 0;
      #1 clk = 1;
      #1 clk = 0;
      if (i >= {cycles} - 1 && i - ({cycles} - 1) < {n}) $fwrite(f, "%h\\n", dout);
    end
    $fclose(f);
    $finish;
  end
endmodule
"""
    (work / "tb.v").write_text(tb)
    srcs = sorted(str(p) for p in src_dir.rglob("*.v") if not p.name.endswith("_wrapper.v"))
    subprocess.run(
        ["iverilog", "-g2012", "-o", str(work / "sim"), str(work / "tb.v"), *srcs],
        check=True,
        cwd=work,
    )
    subprocess.run(
        ["vvp", "-n", str(work / "sim")], check=True, cwd=work, stdout=subprocess.DEVNULL
    )
    words = [int(s, 16) for s in (work / "out.txt").read_text().split()]
    y = np.zeros((n, len(out_q)), dtype=np.int64)
    for r, word in enumerate(words):
        off = 0
        for j, (q, w) in enumerate(zip(out_q, wo)):
            if w:
                k = minimal_kif(q).keep_negative
                iv = (word >> off) & ((1 << w) - 1)
                if k and iv >> (w - 1):
                    iv -= 1 << w
                y[r, j] = int(round(iv * q.step))
            else:
                y[r, j] = int(q.min)
            off += w
    return y


# --- main --------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ir_json", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument(
        "--latency-cutoff",
        type=float,
        default=None,
        help="da4ml pipelining latency cutoff (default: searched to match hwprune)",
    )
    ap.add_argument(
        "--target-latency",
        type=int,
        default=None,
        help="cycles to match (default: hwprune's latency_cycles beside IR_JSON)",
    )
    ap.add_argument("--n-random", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--dense-requant-only",
        action="store_true",
        help="skip graphs with threshold/max ops (the brief's required scope)",
    )
    ap.add_argument("--no-rtl-sim", action="store_true")
    args = ap.parse_args(argv)

    ir_json, out = args.ir_json.resolve(), args.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    doc = json.loads(ir_json.read_text())
    kinds = sorted({op["kind"] for op in doc["ops"]})
    result: dict = {
        "ir_json": str(ir_json),
        "da4ml_version": da4ml.__version__ if hasattr(da4ml, "__version__") else "0.6.0",
        "op_kinds": kinds,
        "hwconf": list(HWCONF),
        "solver_options": SOLVER_OPTIONS,
        "top": TOP,
    }
    allow = {"input", "dense", "requant"} if args.dense_requant_only else SUPPORTED
    t0 = time.time()
    try:
        inp, outv = trace(doc, allow)
    except Skip as e:
        result.update(status="skipped", reason=str(e))
        print(f"SKIP {ir_json}: {e}", file=sys.stderr)
        (out / "anchor.json").write_text(json.dumps(result, indent=1) + "\n")
        return 2
    comb = comb_trace(inp, outv)
    result["trace_seconds"] = round(time.time() - t0, 2)
    result["da4ml_cost_estimate_lut"] = float(comb.cost)
    result["comb_latency"] = float(max(comb.out_latency))

    # bit-exact: da4ml's DAIS interpreter vs hwprune's golden
    x, y_gold = golden_vectors(ir_json, args.n_random, args.seed)
    y_comb = np.asarray(comb.predict(x.astype(np.float64)))
    comb_ok = y_comb.shape == y_gold.shape and bool(np.all(y_comb == y_gold))
    result["n_vectors"] = int(len(x))
    result["bit_exact_comb"] = comb_ok
    if not comb_ok:
        bad = np.argwhere(y_comb != y_gold)
        result["first_mismatch"] = {
            "vector": int(bad[0][0]),
            "elem": int(bad[0][1]),
            "da4ml": float(y_comb[tuple(bad[0])]),
            "golden": int(y_gold[tuple(bad[0])]),
        }

    # pipelining
    target = args.target_latency or hwprune_latency(ir_json)
    result["hwprune_latency_cycles"] = target
    if args.latency_cutoff is not None:
        cutoff = args.latency_cutoff
    elif target is not None:
        cutoff, _ = search_cutoff(comb, target)
    else:
        cutoff = 5.0  # da4ml convert CLI default
    src_root = out / "da4ml_prj"
    if src_root.exists():
        shutil.rmtree(src_root)
    model = VerilogModel(comb, TOP, src_root, latency_cutoff=cutoff, print_latency=False)
    model.write()
    pipe = model._pipe
    n = len(pipe.solutions)
    result.update(
        latency_cutoff_requested=cutoff,
        latency_cutoff_actual=model._latency_cutoff,
        pipeline_stages=n,
        latency_cycles=n + 1,
        da4ml_metadata_latency=n,
        reg_bits_estimate=int(pipe.reg_bits),
    )
    # the pipeline, stage by stage, in da4ml's interpreter
    y_p = x.astype(np.float64)
    for sol in pipe.solutions:
        y_p = np.asarray(sol.predict(y_p))
    result["bit_exact_pipeline"] = bool(np.all(y_p == y_gold))

    # Verilog files for synthesis (the wrapper is a bus-width adapter, left out)
    vdir = out / "verilog"
    if vdir.exists():
        shutil.rmtree(vdir)
    vdir.mkdir()
    gen = [
        p for p in sorted((src_root / "src").glob(f"{TOP}*.v")) if not p.name.endswith("_wrapper.v")
    ]
    text = "\n".join(p.read_text() for p in gen)
    for p in gen:
        shutil.copy(p, vdir / p.name)
    # da4ml's static primitives (shift_adder, negative, mux, ...): those instantiated only
    for p in sorted((src_root / "src" / "static").glob("*.v")):
        if re.search(rf"\b{p.stem}\s*#?\s*\(", text):
            shutil.copy(p, vdir / p.name)
    result["verilog_dir"] = str(vdir)
    result["verilog_files"] = sorted(p.name for p in vdir.glob("*.v"))

    if not args.no_rtl_sim and shutil.which("iverilog"):
        with tempfile.TemporaryDirectory() as td:
            y_rtl = rtl_sim(vdir, pipe, x, n + 1, Path(td))
        result["bit_exact_rtl_iverilog"] = bool(np.all(y_rtl == y_gold))
    result["bit_exact"] = bool(
        comb_ok and result["bit_exact_pipeline"] and result.get("bit_exact_rtl_iverilog", True)
    )
    result["status"] = "ok"
    result["seconds"] = round(time.time() - t0, 2)
    (out / "anchor.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0 if result["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
