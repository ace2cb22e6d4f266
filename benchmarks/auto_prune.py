"""Pruning that decides for itself: per-layer sparsity allocated under a board budget
(uniform, greedy, RL), the sensitivity curves it starts from, data pruning, and transfer from a
pruned checkpoint. Writes benchmarks/results/auto_prune.md, .png and .json.

Allocation: for digits (examples/digits.toml) and Fashion-MNIST (examples/fashion_mlp.toml,
14x14, 10,000 training images) under a LUT budget on pynq-z2 and on arty-a7-35t, one
``hwprune.auto.fit.FitSession`` per (data set, budget) trains the dense network and measures
the sensitivity once; then the three searches each allocate, train the final design with the
example's own criterion and schedule, and check it by the estimator, as
``hwprune train CONFIG --fit BUDGET --search S`` does. Accuracy is top-1 on the test set, never
seen by a search (greedy and RL choose by validation accuracy). The data-pruning and transfer
sections are ``benchmarks/auto_prune_data.py`` and ``auto_prune_transfer.py``.

    .venv/bin/python benchmarks/auto_prune.py [--only alloc,data,transfer] [--quick]

Each section's rows are kept in auto_prune.json, so a section can be run again alone.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwprune.config import load_config  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
# data set -> (example, trial fine-tune epochs, RL episodes, budgets). The budgets bind: the
# dense designs estimate 85k (digits) and 185k (Fashion-MNIST) LUTs; with every layer at 95 %
# they fit (5k and 11k).
ALLOC = {
    "digits": ("examples/digits.toml", 3, 128, ("pynq-z2:lut=0.3", "arty-a7-35t:lut=0.5")),
    "fashion-mnist": (
        "examples/fashion_mlp.toml", 2, 96, ("pynq-z2:lut=0.6", "arty-a7-35t:lut=1.0")
    ),
}  # fmt: skip
SEARCH_ORDER = ("uniform", "greedy", "rl")
RL_SEED = 0
WORKERS = 2


def _quick(cfg):
    t = replace(cfg.train, epochs=2)
    p = replace(cfg.prune, finetune_epochs=2, end_step=min(cfg.prune.end_step, 20), frequency=5)
    d = replace(cfg.data, train_samples=min(cfg.data.train_samples or 1000, 1000))
    return replace(cfg, train=t, prune=p, data=d)


def alloc_rows(quick: bool, progress: bool) -> tuple[list[dict], dict]:
    from hwprune.auto.fit import FitSession

    rows, curves = [], {}
    for ds, (example, epochs, episodes, budgets) in ALLOC.items():
        cfg = load_config(ROOT / example)
        if quick:
            cfg, epochs, episodes = _quick(cfg), 1, 16
        for spec in budgets:
            t0 = time.perf_counter()
            with FitSession(cfg, spec, epochs=epochs, workers=WORKERS, progress=progress) as s:
                prep = dict(s.seconds)
                curves[f"{ds} / {s.budget.board}"] = json.loads(s.sens.to_json())
                for search in SEARCH_ORDER:
                    t = time.perf_counter()
                    got = s.run(search, episodes=episodes, seed=RL_SEED)
                    r = got.report
                    rows.append(
                        {
                            "dataset": ds,
                            "example": example,
                            "budget": spec,
                            "board": s.budget.board,
                            "limit_lut": s.budget.limits["lut"],
                            "search": search,
                            "test_accuracy": r.pruned_accuracy,
                            "val_accuracy": r.val_accuracy,
                            "dense_accuracy": r.dense_accuracy,
                            "estimate": r.estimate,
                            "allocation": r.allocation,
                            "mask_sparsity": r.sparsity,
                            "rounds": len(r.rounds),
                            "trial_epochs": epochs,
                            "episodes": episodes if search == "rl" else None,
                            "seconds": time.perf_counter() - t,
                            "session_seconds": prep,
                            "best_reward": r.rounds[0]["info"].get("best_reward"),
                        }
                    )
                    print(
                        f"{ds} {spec} {search}: test {r.pruned_accuracy:.2%}, "
                        f"{r.estimate['lut']:,.0f} LUT, {time.perf_counter() - t:.0f} s",
                        flush=True,
                    )
            print(f"{ds} {spec}: {time.perf_counter() - t0:.0f} s", flush=True)
    return rows, curves


def alloc_markdown(rows: list[dict], curves: dict) -> str:
    lines = [
        "## Allocation under a board budget: uniform, greedy, RL",
        "",
        "Each row: `hwprune train EXAMPLE --fit BUDGET --search S` (a `FitSession` shared by "
        "the three searches: the same dense network and sensitivity). The final design is "
        "trained with the example's criterion and schedule and estimated from its exported "
        "QONNX on the board. Accuracy: test set (the searches saw only validation accuracy).",
        "",
        "| data set | budget (LUT) | search | test accuracy | vs uniform | est. LUT | "
        "allocation | rounds | seconds |",
        "|---|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        base = next(
            x for x in rows
            if x["dataset"] == r["dataset"] and x["budget"] == r["budget"]
            and x["search"] == "uniform"
        )  # fmt: skip
        delta = 100 * (r["test_accuracy"] - base["test_accuracy"])
        alloc = ", ".join(f"{v:.3f}" for v in r["allocation"].values())
        lines.append(
            f"| {r['dataset']} | {r['budget']} ({r['limit_lut']:,.0f}) | {r['search']} | "
            f"{r['test_accuracy']:.2%} | {delta:+.2f} pt | {r['estimate']['lut']:,.0f} | "
            f"{alloc} | {r['rounds']} | {r['seconds']:.0f} |"
        )
    lines += ["", "Per (data set, budget), the session's dense training and sensitivity:", ""]
    seen = set()
    for r in rows:
        key = (r["dataset"], r["budget"])
        if key in seen:
            continue
        seen.add(key)
        s = r["session_seconds"]
        lines.append(
            f"- {r['dataset']}, {r['budget']}: dense {s['dense']:.0f} s, budget check "
            f"{s['budget_check']:.0f} s, sensitivity {s['sensitivity']:.0f} s "
            f"({r['trial_epochs']} fine-tuning epochs per trial); RL {r['episodes'] or ''} "
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], curves: dict, data: list[dict]) -> bytes:
    from matplotlib.figure import Figure

    from hwprune.report.plots import _png

    datasets = list(ALLOC)
    fig = Figure(figsize=(12, 12), layout="constrained")
    axes = fig.subplots(3, 2)
    for j, ds in enumerate(datasets):
        ax = axes[0][j]
        key = next((k for k in curves if k.startswith(ds)), None)
        if key:
            c = curves[key]
            for ly in c["layers"]:
                pts = [(0.0, c["dense"]["val_accuracy"])] + sorted(
                    (p["level"], p["val_accuracy"]) for p in c["points"] if p["layer"] == ly["name"]
                )
                ax.plot(*zip(*pts), marker="o", label=ly["name"])
            ax.set_title(f"{ds}: each layer pruned alone ({key.split(' / ')[1]})")
            ax.set_xlabel("sparsity of the layer")
            ax.set_ylabel("validation accuracy")
            ax.legend(fontsize="small")
            ax.grid(alpha=0.3)
        ax = axes[1][j]
        for search, marker in zip(SEARCH_ORDER, ("s", "o", "^")):
            pts = [r for r in rows if r["dataset"] == ds and r["search"] == search]
            ax.scatter(
                [r["estimate"]["lut"] for r in pts],
                [100 * r["test_accuracy"] for r in pts],
                marker=marker,
                label=search,
            )
        for r in rows:
            if r["dataset"] == ds and r["search"] == "uniform":
                ax.axvline(r["limit_lut"], color="grey", ls=":", lw=1)
                ax.annotate(r["board"], (r["limit_lut"], ax.get_ylim()[0]), fontsize="small")
        ax.set_title(f"{ds}: allocations under each board's LUT budget (dotted)")
        ax.set_xlabel("estimated LUTs of the final design")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
        ax = axes[2][j]
        for by in ("el2n", "forgetting", "random"):
            pts = sorted(
                (r["keep"], 100 * r["test_accuracy"])
                for r in data
                if r["dataset"] == ds and (r["keep_by"] == by or r["keep"] == 1.0)
            )
            if pts:
                ax.plot(*zip(*pts), marker="o", label=by)
        ax.set_title(f"{ds}: data pruning")
        ax.set_xlabel("fraction of each class's training samples kept")
        ax.set_ylabel("test accuracy after pruning (%)")
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    return _png(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="alloc,data,transfer")
    ap.add_argument("--quick", action="store_true", help="tiny runs: checks the script")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    out = RESULTS / ("auto_prune_quick" if a.quick else "auto_prune")
    only = set(a.only.split(","))
    meta = {
        "machine": f"{platform.processor() or platform.machine()}, {WORKERS} Dask workers",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    # One JSON file per section, so sections can run alone (or side by side) and be merged.
    for section in SECTIONS:
        if section not in only:
            continue
        t = time.perf_counter()
        got = SECTIONS[section](a.quick)
        got = {**got, "wall": time.perf_counter() - t, **meta}
        _section_file(out, section).write_text(json.dumps(got, indent=1) + "\n")
    write_report(out, a.quick)


def _alloc(quick: bool) -> dict:
    rows, curves = alloc_rows(quick, progress=False)
    return {"rows": rows, "curves": curves}


def _data(quick: bool) -> dict:
    from benchmarks.auto_prune_data import data_rows

    return {"rows": data_rows(quick, progress=False)}


def _transfer(quick: bool) -> dict:
    from benchmarks.auto_prune_transfer import transfer_rows

    return {"rows": transfer_rows(quick, progress=False)}


SECTIONS = {"alloc": _alloc, "data": _data, "transfer": _transfer}


def _section_file(out: Path, section: str) -> Path:
    return out.with_name(f"{out.name}.{section}.json")


def write_report(out: Path, quick: bool) -> None:
    import torch

    from benchmarks.auto_prune_data import data_markdown
    from benchmarks.auto_prune_transfer import transfer_markdown

    doc = {
        s: json.loads(_section_file(out, s).read_text())
        for s in SECTIONS
        if _section_file(out, s).is_file()
    }
    walls = ", ".join(f"{k} {v['wall'] / 60:.1f} min ({v['date']})" for k, v in doc.items())
    machine = next(iter(doc.values()))["machine"] if doc else ""
    parts = [
        "# Pruning that decides for itself",
        "",
        f"Produced by `python benchmarks/auto_prune.py{' --quick' if quick else ''}` "
        f"({machine}; torch {torch.__version__}); the sections' wall times: {walls}. "
        f"RL seed {RL_SEED}; every training seeded by the examples' train.seed (0).",
        "",
    ]
    if "alloc" in doc:
        parts.append(alloc_markdown(doc["alloc"]["rows"], doc["alloc"]["curves"]))
    if "data" in doc:
        parts.append("## " + data_markdown(doc["data"]["rows"]).lstrip("# "))
    if "transfer" in doc:
        parts.append("## " + transfer_markdown(doc["transfer"]["rows"]).lstrip("# "))
    out.with_suffix(".md").write_text("\n".join(parts))
    alloc = doc.get("alloc", {"rows": [], "curves": {}})
    data = doc.get("data", {"rows": []})["rows"]
    out.with_suffix(".png").write_bytes(plot(alloc["rows"], alloc["curves"], data))
    print(f"wrote {out}.md and .png")


if __name__ == "__main__":
    main()
