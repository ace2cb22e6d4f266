"""Transfer from a pruned checkpoint (`hwprune train --init`) against training from scratch.

Per data set, a source model is trained and pruned on classes 0-4 (dense QAT, then magnitude
pruning along AGP to 90 %, fine-tuned). The target task is classes 5-9 (relabelled 0-4, so
the output layer keeps its shape). Two ways to a 90 %-sparse target model, each on the full
target training set and on a small subset of it:

    transfer   the source's model.pt as --init, prune.init_masks = keep (its zeros stay
               zero): fine-tuning only, prune.finetune_epochs on the target data
    scratch    dense QAT for train.epochs on the target data, then the same pruning and
               the same fine-tuning epochs

Configs, epochs as in the examples: Fashion-MNIST from examples/fashion_mlp.toml (14x14, MLP
64-32, magnitude / AGP to 90 %, 10,000 training images, 20 dense + 15 fine-tuning epochs);
digits from examples/digits.toml (MLP 64-32, 60 + 40 epochs) with the same pruning. AGP's
end_step is set to two thirds of each run's fine-tuning steps (the subsets have fewer steps
per epoch). Seeded (train.seed 0, data.seed 0). Time on one core of a busy 2-core machine:
the Fashion-MNIST source run (and its scratch twin) is the longest point, 112 s; its transfer
to the full target set 27 s; all ten runs about 6 minutes, so the example's epochs stay.

Run from the repository root (quick: 2 + 2 epochs, small sets, about 20 seconds):

    .venv/bin/python benchmarks/auto_prune_transfer.py [--quick]

writes benchmarks/results/auto_prune_transfer.md and .json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import tomllib
import warnings
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SOURCE = (0, 1, 2, 3, 4)
TARGET = (5, 6, 7, 8, 9)
SPARSITY = 0.9
SEED = 0
# Target-task training set sizes: 0 = every image of classes 5-9 (Fashion-MNIST capped by the
# example's train_samples), then a small subset, where a transferred start should matter most.
SAMPLES = {"fashion-mnist": (10000, 500), "digits": (0, 100)}
# Quick mode: (dense QAT epochs, fine-tuning epochs) of a smoke run that checks the script.
QUICK_EPOCHS = (2, 2)
QUICK_SAMPLES = {"fashion-mnist": (1000, 200), "digits": (0, 100)}
EXAMPLES = {"fashion-mnist": "fashion_mlp.toml", "digits": "digits.toml"}


def _doc(dataset: str, classes: tuple[int, ...], samples: int, quick: bool) -> dict:
    """The example config of ``dataset`` for one run: its classes and training images (and
    in quick mode its epochs)."""
    doc = tomllib.loads((ROOT / "examples" / EXAMPLES[dataset]).read_text())
    for section in ("compile", "sim"):  # only training is measured here
        doc.pop(section, None)
    doc["data"] = {**doc["data"], "classes": list(classes), "train_samples": samples}
    doc["train"] = {**doc.get("train", {}), "seed": SEED}
    if quick:
        doc["train"]["epochs"] = QUICK_EPOCHS[0]
        doc["prune"] = {**doc.get("prune", {}), "finetune_epochs": QUICK_EPOCHS[1]}
    return doc


def _config(doc: dict, label: str):
    """``doc`` checked, with AGP's steps fitted to the run's fine-tuning."""
    from hwprune.config import from_dict
    from hwprune.train.data import load_dataset

    cfg = from_dict(doc, label)
    n = len(load_dataset(cfg.data).y_train)  # after the validation part is carved out
    steps = math.ceil(n / cfg.train.batch_size) * cfg.prune.finetune_epochs
    end = max(1, 2 * steps // 3)
    prune = {
        "criterion": "magnitude",
        "schedule": "agp",
        "sparsity": SPARSITY,
        "begin_step": 0,
        "end_step": end,
        "frequency": max(1, end // 30),
    }
    return from_dict({**doc, "prune": {**doc["prune"], **prune}}, label)


def _row(dataset: str, setting: str, cfg, res, seconds: float) -> dict:
    from hwprune.prune.masks import total_sparsity

    return {
        "dataset": dataset,
        "setting": setting,
        "classes": list(cfg.data.classes),
        "train_samples": len(res.split.y_train) + len(res.split.y_val),
        "sparsity": total_sparsity(res.masks),
        "accuracy": res.pruned_accuracy,
        "init_accuracy": res.init_accuracy,  # transfer: the checkpoint before fine-tuning
        "dense_accuracy": None if res.init_accuracy is not None else res.dense_accuracy,
        "seconds": seconds,
    }


def _timed(cfg, progress: bool, init: Path | None = None):
    from hwprune.train.loop import train

    t0 = time.perf_counter()
    res = train(cfg, progress=progress, init=init)
    return res, time.perf_counter() - t0


def dataset_rows(dataset: str, quick: bool = False, progress: bool = True) -> list[dict]:
    """The source run, then transfer and scratch on the full and the small target set."""
    import torch

    full, small = (QUICK_SAMPLES if quick else SAMPLES)[dataset]
    src = _config(_doc(dataset, SOURCE, full, quick), f"{dataset} source")
    res, sec = _timed(src, progress)
    rows = [_row(dataset, "source: dense QAT + prune", src, res, sec)]
    with tempfile.TemporaryDirectory() as tmp:
        init = Path(tmp) / "model.pt"
        torch.save(res.model.state_dict(), init)  # what `hwprune train` writes as model.pt
        for samples in (full, small):
            cfg = _config(_doc(dataset, TARGET, samples, quick), f"{dataset} target")
            res, sec = _timed(cfg, progress, init)
            rows.append(_row(dataset, "transfer: --init, keep masks", cfg, res, sec))
            reopen = replace(cfg, prune=replace(cfg.prune, init_masks="reopen"))
            res, sec = _timed(reopen, progress, init)
            rows.append(_row(dataset, "transfer: --init, reopen masks", reopen, res, sec))
            res, sec = _timed(cfg, progress)
            rows.append(_row(dataset, "scratch: dense QAT + prune", cfg, res, sec))
    return rows


def transfer_rows(quick: bool = False, progress: bool = True) -> list[dict]:
    """Every row, Fashion-MNIST then digits: dataset, setting, classes, train_samples (the
    target run's training images, validation part included), sparsity (mask sparsity over
    the pruned layers), accuracy (test, final exported model), init_accuracy (transfer: the
    checkpoint on the target task before fine-tuning), dense_accuracy, seconds."""
    import torch

    warnings.filterwarnings("ignore")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [r for ds in EXAMPLES for r in dataset_rows(ds, quick, progress)]
    finally:
        torch.set_num_threads(threads)


def transfer_markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table, with what each setting means."""
    lines = [
        "# Transfer from a pruned checkpoint (`hwprune train --init`) vs from scratch",
        "",
        f"Source: classes {SOURCE[0]}-{SOURCE[-1]}, dense QAT then magnitude / AGP to "
        f"{SPARSITY:.0%}. Target: classes {TARGET[0]}-{TARGET[-1]}. transfer = the source's "
        "model.pt as --init with prune.init_masks = keep, fine-tuning only; scratch = dense QAT "
        "and the same pruning and fine-tuning epochs. Accuracy: top-1 on the target test set "
        "of the final (masks squashed, BatchNorm folded) model; before = the checkpoint on the "
        "target task before fine-tuning. Seconds: training only, one core.",
        "",
        "| data set | setting | train samples | sparsity | test accuracy | before | seconds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        before = "" if r["init_accuracy"] is None else f"{r['init_accuracy']:.2%}"
        lines.append(
            f"| {r['dataset']} | {r['setting']} | {r['train_samples']} | {r['sparsity']:.1%} "
            f"| {r['accuracy']:.2%} | {before} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs: checks the script")
    ap.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "auto_prune_transfer.md"
    )
    a = ap.parse_args()
    t0 = time.perf_counter()
    rows = transfer_rows(a.quick, progress=True)
    wall = time.perf_counter() - t0
    cmd = "python benchmarks/auto_prune_transfer.py" + (" --quick" if a.quick else "")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(transfer_markdown(rows) + f"\nProduced by `{cmd}` in {wall / 60:.1f} min.\n")
    doc = {"command": cmd, "wall": wall, "rows": rows}
    a.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {a.out} (+ .json) in {wall / 60:.1f} min")


if __name__ == "__main__":
    main()
