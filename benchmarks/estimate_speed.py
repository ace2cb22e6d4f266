"""Speed of the estimate (issue 14): `hwprune estimate DIR` as a whole process, and the
library's estimate of a 16-64-32-32-5 MLP, at a base commit and at this checkout, side by side.

    .venv/bin/python benchmarks/estimate_speed.py [--base 7f641db] [--runs 15]

The base commit is unpacked with ``git archive`` into build/bench-estimate/ (no git worktree
is registered). Both trees run with this Python, in turn (base, this, base, ...), so a change
in the machine's load reaches both.

CLI: ``python -m hwprune.cli estimate BUILD --board pynq-z2``, one process per run: wall
seconds, and the CPU seconds of the process, on two compiled builds: the default job's digits
MLP (``hwprune run --to compile``) and tfc_2w2a (tests/models). A first run of each tree
writes its bytecode caches, as an installed package has them. Both trees must print the same
text.

Library: ``estimate_boards(g, list_boards())`` on the optimized 16-64-32-32-5 MLP of
benchmarks/rtl.py (16-bit signed inputs, 6-bit weights, 8-bit activations; tests/graphs.py)
at 0, 50, 75 and 90 % zeros. Cold: every functools cache of hwprune is cleared before each
run (layers are lowered once per process and cached). Milliseconds of wall and CPU time; both
trees must give the same estimate JSON, byte for byte.

Results: results/estimate_speed.json and results/estimate_speed.md (medians; min and max).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "bench-estimate"
RESULTS = ROOT / "benchmarks" / "results"
BOARD = "pynq-z2"
ZEROS = (0, 50, 75, 90)
ROUNDS = 3  # library: each tree's runs are split over this many alternating processes


def library_worker(tree: str, runs: int) -> None:
    """Print, as JSON, the cold estimate times of ``tree``'s hwprune on the MLPs."""
    sys.path.insert(0, tree)
    import gc
    import hashlib

    from hwprune.boards import list_boards
    from hwprune.estimate import estimate_boards
    from hwprune.ir.passes import optimize
    from tests.graphs import random_mlp

    def clear_caches() -> None:
        for name, mod in list(sys.modules.items()):
            if name.startswith("hwprune"):
                for v in vars(mod).values():
                    if hasattr(v, "cache_clear"):
                        v.cache_clear()

    boards = list_boards()
    out = {}
    for z in ZEROS:
        g = optimize(
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
        wall, cpu, one_wall, one_cpu = [], [], [], []
        one = [b for b in boards if b.name == BOARD]
        for _ in range(runs):
            clear_caches()
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            est = estimate_boards(g, boards)
            wall.append(1000 * (time.perf_counter() - t0))
            cpu.append(1000 * (time.process_time() - c0))
            # one board, as `hwprune estimate --board pynq-z2` asks
            clear_caches()
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            estimate_boards(g, one)
            one_wall.append(1000 * (time.perf_counter() - t0))
            one_cpu.append(1000 * (time.process_time() - c0))
        text = json.dumps(est, indent=1, sort_keys=True) + "\n"
        out[str(z)] = {
            "terms": sum(op.n_terms for op in g.dense_ops()),
            "wall_ms": wall,
            "cpu_ms": cpu,
            "one_wall_ms": one_wall,
            "one_cpu_ms": one_cpu,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
        }
    print(json.dumps(out))


def unpack(base: str) -> tuple[Path, str]:
    """The base commit's files, unpacked once into build/bench-estimate/base-<sha>."""
    sha = subprocess.run(
        ["git", "rev-parse", base], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    tree = WORK / f"base-{sha[:12]}"
    if not (tree / "hwprune" / "cli.py").is_file():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree, sha


def head() -> str:
    sha = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return sha + (" + uncommitted changes" if dirty else "")


def env_for(tree: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(tree)}


def builds() -> dict[str, Path]:
    """The two compiled builds, made once with this checkout."""
    py = [sys.executable, "-m", "hwprune.cli"]
    made = {
        "digits (default job)": (
            WORK / "digits",
            ["run", "-o", str(WORK / "digits"), "--to", "compile"],
        ),
        "tfc_2w2a": (
            WORK / "tfc",
            ["compile", str(ROOT / "tests/models/tfc_2w2a.onnx"), "-o", str(WORK / "tfc")],
        ),
    }
    for build, args in made.values():
        if not (build / "ir.json").is_file():
            print(f"compiling {build} ...", flush=True)
            subprocess.run(py + args, cwd=ROOT, env=env_for(ROOT), check=True, capture_output=True)
    return {name: build for name, (build, _) in made.items()}


def cli_run(tree: Path, build: Path) -> tuple[float, float, str]:
    """(wall s, CPU s, stdout) of one `hwprune estimate` process of ``tree``."""
    cmd = [sys.executable, "-m", "hwprune.cli", "estimate", str(build), "--board", BOARD]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=tree, env=env_for(tree), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{tree}: hwprune estimate failed: {r.stderr.strip()}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, r.stdout


def spread(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="7f641db", help="the commit to compare with")
    ap.add_argument("--runs", type=int, default=15, help="runs per tree and measure")
    ap.add_argument(
        "--model-changed",
        action="store_true",
        help="the cost model changed between the trees: time them though the estimates differ",
    )
    ap.add_argument("--library-worker", nargs=2, metavar=("TREE", "RUNS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.library_worker:
        library_worker(a.library_worker[0], int(a.library_worker[1]))
        return 0
    base_tree, base_sha = unpack(a.base)
    trees = {"base": base_tree, "this": ROOT}
    names = {"base": base_sha[:12], "this": head()}
    cli: dict = {}
    for label, build in builds().items():
        outs = {}
        for side, tree in trees.items():  # writes the bytecode caches
            outs[side] = cli_run(tree, build)[2]
        if outs["base"] != outs["this"] and not a.model_changed:
            raise SystemExit(f"{label}: the two trees print different estimates")
        runs: dict[str, dict[str, list[float]]] = {s: {"wall": [], "cpu": []} for s in trees}
        for _ in range(a.runs):
            for side, tree in trees.items():
                wall, cpu, _ = cli_run(tree, build)
                runs[side]["wall"].append(wall)
                runs[side]["cpu"].append(cpu)
        cli[label] = {s: {k: spread(v) for k, v in r.items()} for s, r in runs.items()}
        print(label, {s: round(c["wall"]["median"], 3) for s, c in cli[label].items()}, flush=True)
    lib: dict = {s: {} for s in trees}
    per_round = max(1, a.runs // ROUNDS)
    for _ in range(ROUNDS):
        for side, tree in trees.items():
            cmd = [sys.executable, __file__, "--library-worker", str(tree), str(per_round)]
            r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, check=True)
            for z, res in json.loads(r.stdout).items():
                keys = ("wall_ms", "cpu_ms", "one_wall_ms", "one_cpu_ms")
                acc = lib[side].setdefault(z, {**res, **{k: [] for k in keys}})
                if acc["sha256"] != res["sha256"]:
                    raise SystemExit(f"{side}: the estimate changed between runs")
                for k in keys:
                    acc[k] += res.get(k, [])
    library = {}
    for z in map(str, ZEROS):
        b, t = lib["base"][z], lib["this"][z]
        if b["sha256"] != t["sha256"] and not a.model_changed:
            raise SystemExit(f"{z} % zeros: the estimate JSON differs between the trees")
        library[z] = {
            "terms": t["terms"],
            "sha256": t["sha256"],
            "base_sha256": b["sha256"],
            **{s: {k: spread(lib[s][z][f"{k}_ms"]) for k in ("wall", "cpu")} for s in trees},
            # one board (pynq-z2); a base without that measure has none
            "one": {
                s: {k: spread(lib[s][z][f"one_{k}_ms"]) for k in ("wall", "cpu")}
                for s in trees
                if lib[s][z]["one_wall_ms"]
            },
        }
        print(f"{z} % zeros", {s: round(library[z][s]["wall"]["median"], 1) for s in trees})
    doc = {
        "python": platform.python_version(),
        "machine": machine(),
        "trees": names,
        "board": BOARD,
        "runs": a.runs,
        "cli_s": cli,
        "library_ms": library,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "estimate_speed.json").write_text(json.dumps(doc, indent=1) + "\n")
    (RESULTS / "estimate_speed.md").write_text(markdown(doc))
    print(f"wrote {RESULTS / 'estimate_speed.md'}")
    return 0


def _cell(s: dict, fmt: str) -> str:
    return f"{s['median']:{fmt}} ({s['min']:{fmt}}-{s['max']:{fmt}})"


def markdown(doc: dict) -> str:
    base, this = doc["trees"]["base"], doc["trees"]["this"]
    lines = [
        "# Estimate speed: the CLI on a compiled build, the library on a 16-64-32-32-5 MLP",
        "",
        f"Written by `benchmarks/estimate_speed.py`: Python {doc['python']}, {doc['machine']}.",
        f"base = {base}, this = {this}. Median (min-max) of {doc['runs']} runs per tree, "
        "the trees in turn; wall and CPU time.",
        "",
        f"## `hwprune estimate BUILD --board {doc['board']}`, one process (seconds)",
        "",
        "| build | base wall | this wall | base / this | base CPU | this CPU |",
        "|---|---|---|---|---|---|",
    ]
    for label, c in doc["cli_s"].items():
        ratio = c["base"]["wall"]["median"] / c["this"]["wall"]["median"]
        lines.append(
            f"| {label} | {_cell(c['base']['wall'], '.3f')} | {_cell(c['this']['wall'], '.3f')} "
            f"| {ratio:.1f}x | {_cell(c['base']['cpu'], '.3f')} | "
            f"{_cell(c['this']['cpu'], '.3f')} |"
        )
    lines += [
        "",
        "## `estimate_boards(g, list_boards())`, cold caches (milliseconds)",
        "",
        "16-64-32-32-5, 16-bit signed inputs, 6-bit weights, 8-bit activations "
        "(tests/graphs.random_mlp, optimized). The estimate JSON's sha256 prefix, base / this "
        "(the same when the cost model did not change).",
        "",
        "| zeros | product terms | base wall | this wall | base / this | base CPU | this CPU "
        "| JSON |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for z, r in doc["library_ms"].items():
        ratio = r["base"]["wall"]["median"] / r["this"]["wall"]["median"]
        lines.append(
            f"| {z} % | {r['terms']:,} | {_cell(r['base']['wall'], '.1f')} | "
            f"{_cell(r['this']['wall'], '.1f')} | {ratio:.1f}x | {_cell(r['base']['cpu'], '.1f')} "
            f"| {_cell(r['this']['cpu'], '.1f')} | {r.get('base_sha256', r['sha256'])[:12]} / "
            f"{r['sha256'][:12]} |"
        )
    lines += [
        "",
        f"## `estimate_boards(g, [{doc['board']}])`: one board, cold caches (milliseconds)",
        "",
        "The same networks, one board (what `hwprune estimate --board` and `compile` ask for).",
        "",
        "| zeros | product terms | base wall | this wall | base CPU | this CPU |",
        "|---|---|---|---|---|---|",
    ]
    for z, r in doc["library_ms"].items():
        one = r.get("one", {})
        cells = [
            _cell(one[s][k], ".1f") if s in one else "-"
            for k in ("wall", "cpu")
            for s in ("base", "this")
        ]
        lines.append(
            f"| {z} % | {r['terms']:,} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
