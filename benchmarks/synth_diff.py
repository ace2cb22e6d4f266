"""The hardware of two revisions' Verilog, synthesized side by side: what a change to the
emitter's text did to LUT, FF and CARRY4 counts.

    .venv/bin/python benchmarks/synth_diff.py BASE [--only NAME ...] [--kernels K ...]

BASE is a git revision; it is checked out in its own worktree (build/synth-diff/tree-BASE)
and imported from there, the working tree from here. Each network of benchmarks/rtl.py and
each kernel goes through the same call both times (rtl.hwprune_row: compile's choices, then
yosys 0.23 ``synth_xilinx -family xc7 -flatten``). Results: results/synth_diff.json and .md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "synth-diff"
RESULTS = ROOT / "benchmarks" / "results"
SIZES = ("lut", "ff", "carry4", "dsp")

# One side's measurement, run by a Python whose path starts at that side's tree.
_SIDE = """
import json, sys
from pathlib import Path
tree, out, only, kernels = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
sys.path[:0] = [str(tree), str(tree / "benchmarks")]
import rtl
rtl.BUILD = Path(sys.argv[5])  # one digits training for both sides
res = {}
for name, build in rtl.networks().items():
    if only and not any(o in name for o in only.split("|")):
        continue
    g = build()
    for k in kernels.split("|"):
        r = rtl.hwprune_row(g, k, out / name.replace(" ", "_") / k)
        res[f"{name} / {k}"] = {x: r[x] for x in ("lut", "ff", "carry4", "dsp")}
        print(name, k, res[f"{name} / {k}"], flush=True)
print("RESULT " + json.dumps(res))
"""


def side(tree: Path, tag: str, only: list[str], kernels: list[str]) -> dict:
    cmd = [sys.executable, "-c", _SIDE, str(tree), str(BUILD / tag), "|".join(only)]
    cmd += ["|".join(kernels), str(BUILD / "nets")]
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, check=True)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[7:])


def table(base: str, head: str, old: dict, new: dict) -> str:
    lines = [
        f"# Synthesized size of {base} against {head}",
        "",
        "Written by `benchmarks/synth_diff.py`. yosys 0.23 `synth_xilinx -family xc7 -flatten`",
        "(hwprune.estimate.synth), the same networks and kernels as benchmarks/rtl.py.",
        "",
        "| network / kernel | LUT before | LUT after | ratio | FF before | FF after "
        "| CARRY4 before | CARRY4 after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, a in old.items():
        b = new[k]
        lines.append(
            f"| {k} | {a['lut']:,} | {b['lut']:,} | {b['lut'] / a['lut']:.3f} | {a['ff']:,} "
            f"| {b['ff']:,} | {a['carry4']:,} | {b['carry4']:,} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", help="the git revision to compare the working tree with")
    ap.add_argument("--only", nargs="*", default=[], help="substrings of network names")
    ap.add_argument("--kernels", nargs="*", default=["mac", "adder-graph"])
    a = ap.parse_args()
    rev = subprocess.run(
        ["git", "rev-parse", "--short", a.base], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    tree = BUILD / f"tree-{rev}"
    if not tree.is_dir():
        BUILD.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "worktree", "add", "-f", str(tree), rev], cwd=ROOT, check=True)
    old = side(tree, f"old-{rev}", a.only, a.kernels)
    new = side(ROOT, "new", a.only, a.kernels)
    head = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    RESULTS.joinpath("synth_diff.json").write_text(
        json.dumps({"base": rev, "head": head, "before": old, "after": new}, indent=1) + "\n"
    )
    RESULTS.joinpath("synth_diff.md").write_text(table(rev, head, old, new))


if __name__ == "__main__":
    main()
