#!/usr/bin/env python3
"""Measure da4ml 0.6.0 and alkaid 0.8.2 as constant-matrix (CMVM) shift-and-add solvers for
hwprune's planned ``adder-graph`` Dense kernel.

Two roles in one file:

* driver (any Python 3.11 with numpy):  ``python cmvm_solvers.py all``
  runs every measurement below, one at a time, each in a fresh subprocess of the solver's own
  venv with a hard 600 s timeout (OMP_NUM_THREADS=1: the machine has 2 cores, shared), and
  writes results/cmvm_solvers.json and results/cmvm_solvers_tables.md (build/cmvm holds the
  compiled models it reads).
* worker (inside a solver venv): ``python cmvm_solvers.py run SOLVER CASE OPTS_JSON``
  solves one case and prints one JSON line.

Prerequisites (see cmvm_solvers.md):
  python3 -m venv /work/venvs/da4ml  && /work/venvs/da4ml/bin/pip install da4ml==0.6.0
  python3 -m venv /work/venvs/alkaid && /work/venvs/alkaid/bin/pip install alkaid==0.8.2
  .venv/bin/hwprune compile tests/models/tfc_2w2a.onnx -o build/cmvm/tfc
  .venv/bin/hwprune run -o build/cmvm/digits --to compile

Conventions. hwprune's Dense is y = W x + b with W (rows = outputs, cols = inputs) integer.
Both solvers take kernel K with ``x @ K`` = outputs, i.e. K = W.T, shape (n_in, n_out),
float32 (small integers are exact). Inputs are given as qintervals (lo, hi, step=1).
The bias is left out (it costs the same one constant add per row in every approach).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "build" / "cmvm"  # the compiled models
RESULTS = ROOT / "benchmarks" / "results"
VENVS = {"da4ml": "/work/venvs/da4ml/bin/python", "alkaid": "/work/venvs/alkaid/bin/python"}
TIMEOUT_S = 600
N_VECTORS = 100
SEED = 20260101


# --------------------------------------------------------------------------- cases


def _dense_layers(ir_path: Path):
    """[(name, W int64 (out, in), (lo, hi) of the layer's input)] from an hwprune ir.json."""
    doc = json.loads(ir_path.read_text())
    out = []
    for op in doc["ops"]:
        if op["kind"] != "dense":
            continue
        W = np.zeros((len(op["rows"]), op["n_in"]), dtype=np.int64)
        for r, row in enumerate(op["rows"]):
            W[r, row["cols"]] = row["weights"]
        src = doc["values"][op["inputs"][0]]  # union range of the layer's input vector
        out.append((op["name"], W, (int(src["lo"]), int(src["hi"]))))
    return out


def load_case(case: str):
    """Return (W int64 (out, in), input lo, input hi)."""
    if case == "tfc.dense0":
        name, W, (lo, hi) = _dense_layers(HERE / "tfc" / "ir.json")[0]
        return W, lo, hi
    if case.startswith("digits."):
        layers = {n: (W, r) for n, W, r in _dense_layers(HERE / "digits" / "ir.json")}
        W, (lo, hi) = layers[case.split(".", 1)[1]]
        return W, lo, hi
    if case.startswith("rand512x256"):  # rand512x256.z0 / rand512x256.z75
        zeros = int(case.split(".z")[1]) / 100
        rng = np.random.default_rng(SEED)
        W = rng.integers(-4, 4, size=(512, 256))  # 3-bit signed, -4..3
        if zeros:
            W = np.where(rng.random(W.shape) < zeros, 0, W)
        return W.astype(np.int64), 0, 255  # 8-bit unsigned inputs
    raise ValueError(case)


# --------------------------------------------------------------------------- baseline


def csd_nonzeros(n: int) -> int:
    m, k = abs(int(n)), 0
    while m:
        if m & 1:
            m -= 2 - (m & 3)
            k += 1
        m >>= 1
    return k


def baseline(W: np.ndarray):
    """hwprune today: one CSD shift-and-add per nonzero weight, then a balanced row sum."""
    adders, depth = 0, 0
    for row in W:
        nz = [int(w) for w in row if w]
        if not nz:
            continue
        digits = [csd_nonzeros(w) for w in nz]
        adders += sum(d - 1 for d in digits) + len(nz) - 1
        depth = max(
            depth, max(math.ceil(math.log2(d)) for d in digits) + math.ceil(math.log2(len(nz)))
        )
    return adders, depth


# --------------------------------------------------------------------------- solution walk
#
# A netlist node is (kind, a, b, shift, sub, exp, form):
#   value(node) = N * 2**exp with N an integer; form = {input j: integer c} with N = sum c*x_j.
# "add" nodes compute  value(a) +/- value(b) * 2**shift  exactly (align to the smaller exp).
# Exact integer range of N: sum over j of min/max of c*x_j (inputs are independent).


def _ops_of(stage, solver):
    """Yield (opcode, id0, id1, shift, input_index) of each op, solver-independent."""
    for op in stage.ops:
        if solver == "da4ml":  # Op(id0, id1, opcode, data, qint, latency, cost)
            if op.opcode == -1:
                yield -1, None, None, 0, op.id0
            else:
                yield op.opcode, op.id0, op.id1, op.data, None
        else:  # alkaid: Op(addr, opcode, data, qint, latency, cost)
            if op.opcode == -1:
                yield -1, None, None, 0, op.data[0]
            else:
                yield op.opcode, op.addr[0], op.addr[1], op.data[0], None


def to_netlist(stages, solver, n_in):
    """Flatten the solver's stages into one shift-add netlist over the original inputs.

    Returns (nodes, outputs): nodes[k] = dict(kind, a, b, shift, sub, exp, form, depth);
    outputs[j] = (node index or None for a constant-zero output, extra shift, negate).
    """
    nodes = []
    for j in range(n_in):
        nodes.append(dict(kind="in", a=j, b=None, shift=0, sub=False, exp=0, form={j: 1}, depth=0))
    # stage inputs: list of (node, shift, neg) feeding each stage input
    feeds = [(j, 0, False) for j in range(n_in)]
    for stage in stages:
        local = []  # stage-local buffer index -> (node, shift, neg)
        for opc, i0, i1, sh, inp in _ops_of(stage, solver):
            if opc == -1:
                node, s, neg = feeds[inp]
                local.append((node, s + stage.inp_shifts[inp], neg))
                continue
            assert opc in (0, 1), f"unexpected opcode {opc}"
            (na, sa, ga), (nb, sb, gb) = local[i0], local[i1]
            # value = (-1)^ga A 2^sa  +/-  (-1)^gb B 2^(sb+sh);  fold the signs into add/sub
            sub = (opc == 1) ^ ga ^ gb
            A, B = nodes[na], nodes[nb]
            ea, eb = A["exp"] + sa, B["exp"] + sb + sh
            e = min(ea, eb)
            form = {k: c << (ea - e) for k, c in A["form"].items()}
            sgn = -1 if sub else 1
            for k, c in B["form"].items():
                v = form.get(k, 0) + sgn * (c << (eb - e))
                if v:
                    form[k] = v
                else:
                    form.pop(k, None)
            nodes.append(
                dict(
                    kind="add",
                    a=na,
                    b=nb,
                    shift=eb - e,
                    ashift=ea - e,
                    sub=sub,
                    exp=e,
                    form=form,
                    depth=1 + max(A["depth"], B["depth"]),
                )
            )
            # result carries the sign of A: value = (-1)^ga * (node) * 2^0
            local.append((len(nodes) - 1, 0, ga))
        outs = []
        for idx, s, neg in zip(stage.out_idxs, stage.out_shifts, stage.out_negs):
            if idx < 0:
                outs.append((None, 0, False))
            else:
                node, s0, g = local[idx]
                outs.append((node, s0 + s, bool(g) ^ bool(neg)))
        feeds = outs
    return nodes, feeds


def check_netlist(nodes, outputs, W, lo, hi, n_vectors=N_VECTORS):
    """Symbolic check (forms == rows of W) and numeric check on random integer vectors."""
    n_out, n_in = W.shape
    sym_ok = True
    for j, (node, s, neg) in enumerate(outputs):
        want = {k: int(v) for k, v in enumerate(W[j]) if v}
        if node is None:
            sym_ok &= not want
            continue
        e = nodes[node]["exp"] + s
        sg = -1 if neg else 1
        got = {}
        for k, c in nodes[node]["form"].items():
            v = sg * c * 2**e if e >= 0 else sg * c / 2**-e
            got[k] = v
        sym_ok &= got == want
    # numeric: evaluate the netlist node by node on integer arrays (exact, int64 checked)
    rng = np.random.default_rng(SEED + 1)
    X = rng.integers(lo, hi + 1, size=(n_vectors, n_in), dtype=np.int64)
    X[0], X[1] = lo, hi  # the corners too
    vals = []
    maxabs = 0
    for nd in nodes:
        if nd["kind"] == "in":
            v = X[:, nd["a"]].copy()
        else:
            v = vals[nd["a"]] << nd["ashift"]
            v = (
                v - (vals[nd["b"]] << nd["shift"])
                if nd["sub"]
                else v + (vals[nd["b"]] << nd["shift"])
            )
        maxabs = max(maxabs, int(np.abs(v).max()))
        vals.append(v)
    assert maxabs < 2**62, "int64 overflow risk"
    Y = np.zeros((n_vectors, n_out), dtype=np.int64)
    for j, (node, s, neg) in enumerate(outputs):
        if node is None:
            continue
        e = nodes[node]["exp"] + s
        v = vals[node] << e if e >= 0 else vals[node] >> -e
        if e < 0:
            assert np.all((vals[node] & ((1 << -e) - 1)) == 0), "output not an integer"
        Y[:, j] = -v if neg else v
    num_ok = bool(np.array_equal(Y, X @ W.T))
    return bool(sym_ok), num_ok


def exact_range(form, lo, hi):
    a = sum(c * (lo if c > 0 else hi) for c in form.values())
    b = sum(c * (hi if c > 0 else lo) for c in form.values())
    return a, b


def netlist_stats(nodes, outputs, lo, hi):
    adds = [n for n in nodes if n["kind"] == "add"]
    live = set()
    stack = [o[0] for o in outputs if o[0] is not None]
    while stack:
        k = stack.pop()
        if k in live:
            continue
        live.add(k)
        if nodes[k]["kind"] == "add":
            stack += [nodes[k]["a"], nodes[k]["b"]]
    depth = max((nodes[o[0]]["depth"] for o in outputs if o[0] is not None), default=0)
    bits = 0
    for n in adds:  # width of each adder's result from its exact integer range
        a, b = exact_range(n["form"], lo, hi)
        bits += max(abs(a), abs(b)).bit_length() + (1 if a < 0 else 0)
    return dict(
        adders=len(adds),
        dead_adders=sum(1 for k, n in enumerate(nodes) if n["kind"] == "add" and k not in live),
        depth=depth,
        adder_bits=bits,
    )


# --------------------------------------------------------------------------- worker


def solve(solver, K, lo, hi, opts):
    qint = [(float(lo), float(hi), 1.0)] * K.shape[0]
    K = np.ascontiguousarray(K.astype(np.float32))
    if solver == "da4ml":
        from da4ml.cmvm import solve as f

        return list(f(K, qintervals=qint, **opts).solutions)
    from alkaid.cmvm import cmvm_solve as f

    return list(f(K, qintervals=qint, **opts))


def run_case(solver, case, opts):
    opts = dict(opts)
    block = opts.pop("block", None)  # split the inputs (columns of W) into blocks
    W, lo, hi = load_case(case)
    n_out, n_in = W.shape
    res = dict(
        solver=solver,
        case=case,
        shape=[n_out, n_in],
        in_range=[lo, hi],
        nonzeros=int(np.count_nonzero(W)),
        opts=opts,
        block=block,
    )
    res["baseline_adders"], res["baseline_depth"] = baseline(W)
    blocks = (
        [(0, n_in)] if not block else [(s, min(s + block, n_in)) for s in range(0, n_in, block)]
    )
    t_solve, stats, ok = 0.0, [], [True, True]
    zero_cost = 0
    block_nonzero = np.zeros((n_out,), dtype=np.int64)
    for s, e in blocks:
        Wb = W[:, s:e]
        t0 = time.perf_counter()
        stages = solve(solver, Wb.T, lo, hi, opts)
        t_solve += time.perf_counter() - t0
        zero_cost += sum(
            1 for st in stages for op in st.ops if op.opcode in (0, 1) and op.cost == 0
        )
        nodes, outs = to_netlist(stages, solver, e - s)
        sym, num = check_netlist(nodes, outs, Wb, lo, hi)
        ok = [ok[0] and sym, ok[1] and num]
        stats.append(netlist_stats(nodes, outs, lo, hi))
        block_nonzero += np.any(Wb != 0, axis=1)
    # summing the blocks: one adder per extra nonzero block in a row, balanced tree
    merge = int(np.sum(np.maximum(block_nonzero - 1, 0)))
    res.update(
        solve_s=round(t_solve, 3),
        adders=sum(s["adders"] for s in stats) + merge,
        merge_adders=merge,
        dead_adders=sum(s["dead_adders"] for s in stats),
        zero_cost_ops=zero_cost,
        depth=max(s["depth"] for s in stats)
        + math.ceil(math.log2(max(1, int(block_nonzero.max())))),
        adder_bits=sum(s["adder_bits"] for s in stats),
        symbolic_exact=ok[0],
        vectors_exact=ok[1],
        n_vectors=N_VECTORS,
    )
    return res


# --------------------------------------------------------------------------- driver

DEFAULT = {}
PLAN = [
    # (case, options); {} = the solver's defaults: method0='wmc', hard_dc=-1 (no depth limit),
    # decompose_dc=-2 (auto), search_all_decompose_dc=True
    ("tfc.dense0", DEFAULT),
    ("tfc.dense0", {"hard_dc": 0}),
    ("tfc.dense0", {"method0": "dummy"}),
    ("digits.dense0", DEFAULT),
    ("digits.dense1", DEFAULT),
    ("digits.dense2", DEFAULT),
    ("digits.dense0", {"hard_dc": 0}),
    ("digits.dense0", {"method0": "dummy"}),
    ("rand512x256.z75", {"search_all_decompose_dc": False, "block": 64}),
    ("rand512x256.z75", {"search_all_decompose_dc": False, "block": 128}),
    ("rand512x256.z75", {"search_all_decompose_dc": False}),
    # ("rand512x256.z75", DEFAULT),  run separately (see cmvm_solvers.md)
    ("rand512x256.z0", {"search_all_decompose_dc": False, "block": 64}),
    ("rand512x256.z0", {"search_all_decompose_dc": False, "block": 128}),
    ("rand512x256.z0", {"search_all_decompose_dc": False}),
    # ("rand512x256.z0", DEFAULT),  run separately (see cmvm_solvers.md)
]


def run_one(solver, case, opts, timeout=TIMEOUT_S):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [VENVS[solver], str(Path(__file__).resolve()), "run", solver, case, json.dumps(opts)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(solver=solver, case=case, opts=opts, error=f"timeout > {timeout} s")
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        return dict(solver=solver, case=case, opts=opts, error=p.stderr.strip()[-500:])
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["wall_s"] = round(wall, 1)
    return r


def fmt_opts(r):
    o = {k: v for k, v in (r.get("opts") or {}).items() if k != "block"}
    s = ", ".join(f"{k}={v}" for k, v in o.items()) or "defaults"
    b = r.get("block") if "block" in r else (r.get("opts") or {}).get("block")
    return s + (f", blocks of {b} inputs" if b else "")


def tables(results):
    lines = [
        "| case | W (out x in) | nnz | solver | options | solve s | adders | depth "
        "| baseline adders | baseline depth | adders vs baseline "
        "| exact (symbolic / 100 vectors) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(
                f"| {r['case']} | | | {r['solver']} | {fmt_opts(r)} | **{r['error'][:80]}** "
                "| | | | | | |"
            )
            continue
        ratio = r["adders"] / r["baseline_adders"] if r["baseline_adders"] else float("nan")
        extra = f" (incl. {r['merge_adders']} block-sum)" if r["merge_adders"] else ""
        lines.append(
            f"| {r['case']} | {r['shape'][0]}x{r['shape'][1]} | {r['nonzeros']} | {r['solver']} "
            f"| {fmt_opts(r)} | {r['solve_s']:.2f} | {r['adders']}{extra} | {r['depth']} "
            f"| {r['baseline_adders']} | {r['baseline_depth']} | {ratio:.3f} "
            f"| {'yes' if r['symbolic_exact'] else 'NO'} / "
            f"{'yes' if r['vectors_exact'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv):
    if argv[:1] == ["run"]:
        solver, case, opts = argv[1], argv[2], json.loads(argv[3])
        print(json.dumps(run_case(solver, case, opts)))
        return
    if argv[:1] == ["one"]:  # driver for a single measurement: one SOLVER CASE OPTS_JSON
        print(json.dumps(run_one(argv[1], argv[2], json.loads(argv[3]))))
        return
    solvers = argv[1:] or ["alkaid", "da4ml"]
    out = RESULTS / "cmvm_solvers.json"
    results = json.loads(out.read_text()) if out.exists() else []
    done = {
        (r["solver"], r["case"], json.dumps(r.get("opts_in", r.get("opts")), sort_keys=True))
        for r in results
    }
    for case, opts in PLAN:
        for solver in solvers:
            key = (solver, case, json.dumps(opts, sort_keys=True))
            if key in done:
                continue
            r = run_one(solver, case, opts)
            r["opts_in"] = opts
            results.append(r)
            print(
                json.dumps(
                    {
                        k: r.get(k)
                        for k in (
                            "solver",
                            "case",
                            "opts_in",
                            "solve_s",
                            "adders",
                            "depth",
                            "baseline_adders",
                            "symbolic_exact",
                            "vectors_exact",
                            "error",
                        )
                    }
                ),
                flush=True,
            )
            out.write_text(json.dumps(results, indent=1))
    (RESULTS / "cmvm_solvers_tables.md").write_text(tables(results))


if __name__ == "__main__":
    main(sys.argv[1:] if sys.argv[1:] else ["all"])
