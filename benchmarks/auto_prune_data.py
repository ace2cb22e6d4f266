"""Data pruning: test accuracy against the fraction of training data kept.

For digits (examples/digits.toml) and Fashion-MNIST (examples/fashion_mlp.toml: 14x14,
10,000 training images) this runs the full pipeline, ``hwprune.train.loop.train`` (dense QAT,
then pruning at the config's sparsity), on 100 %, 70 %, 50 % and 30 % of each class's training
samples, chosen by each ``data.keep_by`` score (EL2N, forgetting events, random). The epochs
are cut from the examples' so that the whole grid fits in about 10 minutes on one core; the
rows say how many were run. A library section: ``data_rows`` measures, ``data_markdown``
tabulates. Run from the repository root (``--quick``: a smoke run under a minute):

    .venv/bin/python benchmarks/auto_prune_data.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwprune.config import KEEP_BY, from_dict  # noqa: E402
from hwprune.train.data import load_dataset  # noqa: E402
from hwprune.train.data_prune import EL2N_RUNS, QUANTIZED_SCORING  # noqa: E402
from hwprune.train.loop import train  # noqa: E402

KEEPS = (1.0, 0.7, 0.5, 0.3)
# data set -> (example config, dense epochs, fine-tuning epochs, train_samples override).
# The examples train 60 + 40 (digits) and 20 + 15 (Fashion-MNIST) epochs; these are
# benchmarks/pruning.py's Fashion-MNIST epochs and half digits'. Measured here, one core:
# a 100 % point took 11 s CPU (digits, 20 + 15) and 57 s (Fashion-MNIST, 15 + 10; 97 s wall on
# a busy machine), and a point costs about its fraction kept plus a few seconds of scoring, so
# this grid needs about 7 minutes of CPU.
FULL = {
    "digits": ("examples/digits.toml", 30, 20, None),
    "fashion-mnist": ("examples/fashion_mlp.toml", 15, 10, None),
}
QUICK = {
    "digits": ("examples/digits.toml", 3, 2, None),
    "fashion-mnist": ("examples/fashion_mlp.toml", 2, 1, 1000),
}
QUICK_KEEPS = (1.0, 0.5)
# A step schedule (AGP) stops changing masks at this fraction of the fine-tuning steps, which
# shrink with the data kept (the examples' end_step would not fit 30 % of the data).
END_FRACTION = 0.75
MASK_UPDATES = 30


def _doc(path: str, epochs: int, finetune: int, samples: int | None, keep: float, by: str):
    """The example's TOML document with the benchmark's epochs and data fraction, and for a
    step schedule end_step and frequency scaled to the fine-tuning steps of the kept data;
    and the number of training samples kept."""
    doc = tomllib.loads((ROOT / path).read_text())
    doc["train"]["epochs"] = epochs
    doc["prune"]["finetune_epochs"] = finetune
    data = doc.setdefault("data", {})
    if samples:
        data["train_samples"] = samples
    if keep < 1:
        data.update(keep=keep, keep_by=by)
    cfg = from_dict(doc)
    # prune_data keeps round(keep * n_c) of every class c, at least 1
    counts = np.bincount(load_dataset(cfg.data).y_train)
    n_train = sum(max(1, round(keep * n)) for n in counts)
    if "end_step" in doc["prune"]:
        steps = finetune * math.ceil(n_train / cfg.train.batch_size)
        end = max(1, int(END_FRACTION * steps))
        doc["prune"].update(end_step=end, frequency=max(1, end // MASK_UPDATES))
    return doc, n_train


def data_rows(quick: bool = False, progress: bool = True) -> list[dict]:
    """One row per (data set, keep_by, keep): the full pipeline's test accuracy after dense QAT
    and after pruning, the training samples kept and the seconds taken (scoring included). The
    keep = 1.0 row is shared by every keep_by (nothing is scored), its keep_by is "-"."""
    warnings.filterwarnings("ignore")  # Brevitas' deprecation warnings, once per layer
    runs, keeps = (QUICK, QUICK_KEEPS) if quick else (FULL, KEEPS)
    rows = []
    for dataset, (path, epochs, finetune, samples) in runs.items():
        for keep in keeps:
            for by in KEEP_BY if keep < 1 else ("-",):
                doc, n_train = _doc(path, epochs, finetune, samples, keep, by)
                cfg = from_dict(doc)
                t0 = time.perf_counter()
                res = train(cfg, progress=progress)
                seconds = time.perf_counter() - t0
                assert len(res.split.y_train) == n_train
                rows.append(
                    {
                        "dataset": dataset,
                        "keep_by": by,
                        "keep": keep,
                        "n_train": n_train,
                        "epochs": f"{epochs} + {finetune}",
                        "score_epochs": cfg.data.score_epochs if keep < 1 else 0,
                        "sparsity": cfg.prune.sparsity,
                        "dense_accuracy": res.dense_accuracy,
                        "test_accuracy": res.pruned_accuracy,
                        "seconds": seconds,
                    }
                )
    return rows


def data_markdown(rows: list[dict]) -> str:
    """The rows as a markdown table per data set, with the methods' sources."""
    out = ["## Data pruning: accuracy against the training data kept", ""]
    out += [
        "Full pipeline (`hwprune.train.loop.train`: dense QAT, then pruning at the config's "
        "sparsity) on a fraction `keep` of each class's training samples, the highest-scoring "
        "by `keep_by`. Epochs (dense + fine-tuning) are cut from the examples' to keep the "
        "grid affordable; seconds include scoring. Seed 0.",
        "",
        '- el2n: Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet: Finding Important '
        'Examples Early in Training", NeurIPS 2021; || softmax(f(x)) - onehot(y) ||_2 after '
        f"`score_epochs` epochs, mean of {EL2N_RUNS} initialisations; highest kept.",
        '- forgetting: Toneva et al., "An Empirical Study of Example Forgetting during Deep '
        'Neural Network Learning", ICLR 2019; correct -> incorrect transitions between '
        "minibatch presentations over `score_epochs` epochs, never-learned samples first.",
        "- random: a seeded stratified draw.",
        f"- Scoring runs train the config's layers {'with' if QUANTIZED_SCORING else 'without'} "
        "quantizers.",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        out += ["", f"### {dataset}", ""]
        out += [
            "| keep_by | keep | n_train | epochs | dense QAT acc | pruned acc (sparsity) "
            "| seconds |",
            "|---|---:|---:|---|---:|---:|---:|",
        ]
        for r in (r for r in rows if r["dataset"] == dataset):
            out.append(
                f"| {r['keep_by']} | {r['keep']:.2f} | {r['n_train']} | {r['epochs']} "
                f"| {r['dense_accuracy']:.4f} | {r['test_accuracy']:.4f} ({r['sparsity']:.2f}) "
                f"| {r['seconds']:.1f} |"
            )
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run under a minute")
    args = ap.parse_args()
    print(data_markdown(data_rows(quick=args.quick)))


if __name__ == "__main__":
    main()
