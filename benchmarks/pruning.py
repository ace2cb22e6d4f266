"""What each pruning technique buys, in accuracy and in hardware.

For each data set (digits, Fashion-MNIST) this trains the float model and the dense QAT model
once, then every pruning criterion x schedule at 50, 75, 90 and 95 % sparsity, and the methods
around them (lottery-ticket rewinding, dynamic network surgery, distillation from the dense
model and from a 2x wider float teacher), each from the same seeded dense QAT start. Every
pruned result is exported to QONNX, compiled to hwprune's IR and sized on pynq-z2 by the
estimator, so accuracy can be read against estimated LUTs. Writes:

    benchmarks/results/pruning.md     tables (accuracy, achieved sparsity, product terms, LUT,
                                      FF, seconds; seeds stated)
    benchmarks/results/pruning.json   every row, for re-plotting
    benchmarks/results/pruning.png    accuracy vs sparsity and accuracy vs estimated LUT

Run from the repository root (2 cores: about 40 minutes; --quick for a 2-minute smoke run):

    .venv/bin/python benchmarks/pruning.py -j 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwprune.config import PRUNE_CRITERIA, PRUNE_SCHEDULES, from_dict  # noqa: E402

SPARSITIES = (0.5, 0.75, 0.9, 0.95)
BOARD = "pynq-z2"
SEED = 0
# The summary counts a run as having reached its target within this much sparsity
# (structured criteria round to whole units; the iterative guard may stop early).
REACHED = 0.05

# The base job per data set: the default MLP shape; the schedule keys are set so that AGP and
# constant sparsity finish changing masks at about two thirds of the fine-tuning steps.
BASE = {
    "digits": {
        "data": {"dataset": "digits", "seed": SEED},
        "model": {"hidden": [64, 32], "weight_bits": 6, "act_bits": 8},
        "train": {"epochs": 60, "seed": SEED},
        "prune": {"finetune_epochs": 30, "begin_step": 0, "end_step": 360, "frequency": 12},
    },
    "fashion-mnist": {
        "data": {"dataset": "fashion-mnist", "train_samples": 10000, "downsample": 2},
        "model": {"hidden": [64, 32], "weight_bits": 6, "act_bits": 6},
        "train": {"epochs": 15, "seed": SEED},
        "prune": {"finetune_epochs": 10, "begin_step": 0, "end_step": 800, "frequency": 40},
    },
}

# (label, prune/distill overrides): the methods, each on magnitude pruning.
METHODS = [
    (
        "lottery-ticket (4 rounds, rewind to epoch 1)",
        {"prune": {"method": "lottery-ticket", "schedule": "iterative"}},
    ),
    ("dns (one-shot target)", {"prune": {"method": "dns", "schedule": "one-shot"}}),
    ("dns (AGP target)", {"prune": {"method": "dns", "schedule": "agp"}}),
    (
        "distill from dense QAT (AGP)",
        {"prune": {"schedule": "agp"}, "distill": {"teacher": "dense"}},
    ),
    (
        "distill from 2x float (AGP)",
        {"prune": {"schedule": "agp"}, "distill": {"teacher": "larger"}},
    ),
]


def _merge(base: dict, over: dict) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for sec, vals in over.items():
        out.setdefault(sec, {}).update(vals)
    return out


def jobs(datasets: list[str], quick: bool) -> list[tuple[str, str, dict]]:
    """(data set, label, config document) for every run of the grid."""
    out = []
    for ds in datasets:
        base = base_doc(ds, quick)
        sparsities = SPARSITIES[2:3] if quick else SPARSITIES
        criteria = PRUNE_CRITERIA[:2] if quick else PRUNE_CRITERIA
        for s in sparsities:
            for c in criteria:
                for sch in PRUNE_SCHEDULES:
                    doc = _merge(base, {"prune": {"criterion": c, "schedule": sch, "sparsity": s}})
                    out.append((ds, f"{c} / {sch}", doc))
            for label, over in METHODS[: 1 if quick else None]:
                doc = _merge(_merge(base, over), {"prune": {"sparsity": s}})
                out.append((ds, label, doc))
    return out


def hardware(model, n_in: int) -> dict:
    """Export, import, optimize and estimate on BOARD: product terms, LUT, FF."""
    from hwprune.boards import get_board
    from hwprune.estimate import estimate
    from hwprune.export.qonnx import export_model
    from hwprune.frontend.qonnx import import_qonnx
    from hwprune.ir.passes import optimize

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_model(model, n_in, path)
        g = optimize(import_qonnx(path))
    est = estimate(g, get_board(BOARD))
    return {
        "product_terms": sum(op.n_terms for op in g.dense_ops()),
        "lut": est["totals"]["lut"],
        "ff": est["totals"]["ff"],
    }


def _config(ds: str, doc: dict, label: str):
    return from_dict(doc, f"benchmark {ds} {label}")


def _quiet() -> None:
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")


def run_job(job: tuple[str, str, dict], dense) -> dict:
    """Prune one configuration from the data set's shared dense start and size its hardware."""
    from hwprune.prune.masks import total_sparsity
    from hwprune.train.loop import train

    _quiet()
    ds, label, doc = job
    cfg = _config(ds, doc, label)
    t0 = time.perf_counter()
    res = train(cfg, progress=False, dense=dense)
    seconds = time.perf_counter() - t0
    hw = hardware(res.model, res.split.x_train.shape[1])
    return {
        "dataset": ds,
        "label": label,
        "criterion": cfg.prune.criterion,
        "schedule": cfg.prune.schedule,
        "method": cfg.prune.method,
        "teacher": cfg.distill.teacher,
        "target_sparsity": cfg.prune.sparsity,
        "mask_sparsity": total_sparsity(res.masks),  # zeros / weights over the pruned layers
        "mask_sparsity_per_layer": res.sparsity,
        "accuracy": res.pruned_accuracy,
        "seed": cfg.train.seed,
        "seconds": seconds,
        **hw,
    }


def base_doc(ds: str, quick: bool) -> dict:
    doc = BASE[ds]
    if quick:
        doc = _merge(
            doc,
            {
                "train": {"epochs": 3},
                "prune": {"finetune_epochs": 2, "end_step": 20, "frequency": 5},
            },
        )
        if ds != "digits":
            doc = _merge(doc, {"data": {"train_samples": 1000}})
    return doc


def baselines(ds: str, quick: bool) -> tuple[dict, object]:
    """The float model and the dense QAT model (the shared start of every pruning run)."""
    from hwprune.train.loop import train_dense, train_float
    from hwprune.train.model import build_model, fold_batchnorm

    _quiet()
    cfg = _config(ds, base_doc(ds, quick), "baseline")
    t0 = time.perf_counter()
    float_acc = train_float(cfg, progress=False)
    t1 = time.perf_counter()
    dense = train_dense(cfg, progress=False)
    t2 = time.perf_counter()
    from hwprune.train.data import load_dataset

    split = load_dataset(cfg.data)
    model = build_model(cfg.model, split.shape, split.n_classes)
    model.load_state_dict(dense.state)
    hw = hardware(fold_batchnorm(model), split.x_train.shape[1])
    row = {
        "dataset": ds,
        "float_accuracy": float_acc,
        "float_seconds": t1 - t0,
        "dense_accuracy": dense.dense_accuracy,
        "dense_seconds": t2 - t1,
        "seed": cfg.train.seed,
        **{f"dense_{k}": v for k, v in hw.items()},
    }
    return row, dense


# --- report -------------------------------------------------------------------------------


def markdown(base: list[dict], rows: list[dict], cmd: str, wall: float) -> str:
    """The committed result: per data set, baselines, then the grid and the methods."""
    lines = [
        "# Pruning techniques: accuracy against estimated hardware",
        "",
        f"Produced by `{cmd}` ({wall / 60:.0f} min wall, 2 cores). One seed ({SEED}) per row: "
        "train seed, data split and masks are seeded, so a rerun reproduces the numbers. "
        "Accuracy is top-1 on the test set of the final, exported (BatchNorm-folded, "
        "masks squashed) quantized model. Sparsity is the mask sparsity over the pruned layers "
        "(structured criteria round to whole units and never remove output classes, so "
        "they can land below the target). LUT and FF are hwprune's estimate on "
        f"{BOARD} of the compiled design (zero terms, dead neurons and unread inputs removed).",
        "",
    ]
    lines += [
        "## Summary",
        "",
        "Per data set and target sparsity, among the runs whose mask sparsity came within "
        f"{REACHED:.0%} of the target: the most accurate run, and the run with the fewest "
        "estimated LUTs among those within 1 accuracy point of the dense QAT model.",
        "",
        "| data set | target | most accurate | accuracy | LUT | fewest LUT within 1 point "
        "| accuracy | LUT |",
        "|---|---:|---|---:|---:|---|---:|---:|",
    ]
    for b in base:
        mine = [r for r in rows if r["dataset"] == b["dataset"]]
        for s in sorted({r["target_sparsity"] for r in mine}):
            at = [
                r for r in mine if r["target_sparsity"] == s and r["mask_sparsity"] >= s - REACHED
            ]
            best = max(at, key=lambda r: (r["accuracy"], -r["lut"]))
            near = [r for r in at if r["accuracy"] >= b["dense_accuracy"] - 0.01]
            small = min(near, key=lambda r: (r["lut"], -r["accuracy"])) if near else None
            tail = (
                f"{small['label']} | {small['accuracy']:.2%} | {small['lut']} |"
                if small
                else "none | | |"
            )
            lines.append(
                f"| {b['dataset']} | {s:.0%} | {best['label']} | {best['accuracy']:.2%} | "
                f"{best['lut']} | {tail}"
            )
    lines += [
        "",
        "Reading notes: `iterative` stops (and rolls back) when validation accuracy falls more "
        "than prune.tolerance (2 points) below dense, so its sparsity column is often below "
        "the target: it trades sparsity for accuracy by design. `constant` equals `one-shot` "
        "under the standard method: pruned weights are held at zero, so re-applying the same "
        "target finds the same weights (it differs under dns, where masked weights keep "
        "learning). AGP and constant finish changing masks at end_step, two thirds into "
        "fine-tuning.",
        "",
    ]
    for b in base:
        ds = b["dataset"]
        cfg = BASE[ds]
        lines += [
            f"## {ds}",
            "",
            f"Config: {json.dumps(cfg)}",
            "",
            "| baseline | accuracy | product terms | LUT | FF | seconds |",
            "|---|---:|---:|---:|---:|---:|",
            f"| float (same layers, no quantizers) | {b['float_accuracy']:.2%} | | | | "
            f"{b['float_seconds']:.0f} |",
            f"| dense QAT | {b['dense_accuracy']:.2%} | {b['dense_product_terms']} | "
            f"{b['dense_lut']} | {b['dense_ff']} | {b['dense_seconds']:.0f} |",
            "",
        ]
        mine = [r for r in rows if r["dataset"] == ds]
        for s in sorted({r["target_sparsity"] for r in mine}):
            lines += [
                f"### target sparsity {s:.0%}",
                "",
                "| criterion / schedule or method | accuracy | vs dense | sparsity | terms | LUT "
                "| FF | seconds |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for r in (r for r in mine if r["target_sparsity"] == s):
                lines.append(
                    f"| {r['label']} | {r['accuracy']:.2%} | "
                    f"{(r['accuracy'] - b['dense_accuracy']) * 100:+.1f} | "
                    f"{r['mask_sparsity']:.1%} | {r['product_terms']} | {r['lut']} | "
                    f"{r['ff']} | {r['seconds']:.0f} |"
                )
            lines.append("")
    return "\n".join(lines) + "\n"


def plot(base: list[dict], rows: list[dict], path: Path) -> None:
    """Accuracy vs sparsity (left) and accuracy vs estimated LUT (right), one row per data set;
    colour = criterion (methods in grey shades), marker = schedule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = dict(zip(PRUNE_SCHEDULES, "os^D"))
    colors = dict(zip(PRUNE_CRITERIA, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(len(base), 2, figsize=(14, 5 * len(base) + 2), squeeze=False)
    for (ax_s, ax_l), b in zip(axes, base):
        mine = [r for r in rows if r["dataset"] == b["dataset"]]
        grid = [r for r in mine if r["method"] == "standard" and r["teacher"] == "none"]
        for c in PRUNE_CRITERIA:
            for sch in PRUNE_SCHEDULES:
                pts = sorted(
                    (r for r in grid if r["criterion"] == c and r["schedule"] == sch),
                    key=lambda r: r["target_sparsity"],
                )
                if not pts:
                    continue
                kw = dict(color=colors[c], marker=markers[sch], alpha=0.8, ms=5, lw=1)
                lab = f"{c} / {sch}"
                ax_s.plot(
                    [r["mask_sparsity"] for r in pts], [r["accuracy"] for r in pts], label=lab, **kw
                )
                ax_l.plot([r["lut"] for r in pts], [r["accuracy"] for r in pts], ls="", **kw)
        others = sorted({r["label"] for r in mine} - {r["label"] for r in grid})
        for k, lab in enumerate(others):
            pts = sorted((r for r in mine if r["label"] == lab), key=lambda r: r["target_sparsity"])
            kw = dict(color=str(0.15 + 0.2 * k), marker="*", ms=9, lw=1.5, ls="--")
            ax_s.plot(
                [r["mask_sparsity"] for r in pts], [r["accuracy"] for r in pts], label=lab, **kw
            )
            ax_l.plot([r["lut"] for r in pts], [r["accuracy"] for r in pts], **{**kw, "ls": ""})
        for ax in (ax_s, ax_l):
            ax.axhline(b["dense_accuracy"], color="k", lw=1, label="dense QAT")
            ax.axhline(b["float_accuracy"], color="k", lw=1, ls=":", label="float")
            ax.set_ylabel("test accuracy")
            ax.set_ylim(max(0.0, b["dense_accuracy"] - 0.35), 1.0)
            ax.grid(alpha=0.3)
        ax_l.plot([b["dense_lut"]], [b["dense_accuracy"]], "kx", ms=10)
        ax_s.set_xlabel("mask sparsity of the pruned layers")
        ax_l.set_xlabel(f"estimated LUT on {BOARD}")
        ax_l.set_xscale("log")
        ax_s.set_title(f"{b['dataset']}: accuracy vs sparsity")
        ax_l.set_title(f"{b['dataset']}: accuracy vs estimated LUT")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, ncol=6, loc="lower center", frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(BASE), choices=list(BASE))
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="a few short runs: checks the script")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pruning.md")
    ap.add_argument(
        "--replot", action="store_true", help="rewrite the .md and .png from the .json only"
    )
    a = ap.parse_args()
    if a.replot:
        doc = json.loads(a.out.with_suffix(".json").read_text())
        a.out.write_text(markdown(doc["baselines"], doc["rows"], doc["command"], doc["wall"]))
        plot(doc["baselines"], doc["rows"], a.out.with_suffix(".png"))
        return
    from tqdm import tqdm

    t0 = time.perf_counter()
    grid = jobs(a.datasets, a.quick)
    with ProcessPoolExecutor(a.jobs) as pool:
        pairs = list(pool.map(baselines, a.datasets, [a.quick] * len(a.datasets)))
        base = [row for row, _ in pairs]
        starts = {ds: dense for ds, (_, dense) in zip(a.datasets, pairs)}
        futures = [pool.submit(run_job, job, starts[job[0]]) for job in grid]
        rows = [f.result() for f in tqdm(futures, desc="pruning runs")]
    wall = time.perf_counter() - t0
    cmd = "python benchmarks/pruning.py" + (" --quick" if a.quick else "") + f" -j {a.jobs}"
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(markdown(base, rows, cmd, wall))
    a.out.with_suffix(".json").write_text(
        json.dumps({"command": cmd, "wall": wall, "baselines": base, "rows": rows}, indent=1) + "\n"
    )
    plot(base, rows, a.out.with_suffix(".png"))
    print(f"wrote {a.out} (+ .json, .png) in {wall / 60:.1f} min")


if __name__ == "__main__":
    main()
