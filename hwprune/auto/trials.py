"""Trials: the trained dense network pruned to one per-layer allocation, fine-tuned briefly,
scored on the validation set and (optionally) exported and sized by the estimator.

A trial prunes one-shot with the configured criterion and fine-tunes ``epochs`` epochs without
a teacher; the final design of ``train --fit`` then uses the configured schedule, method and
teacher. Every trial starts from the same dense network (``train_dense``, saved once to a
file the workers read), so trials differ only in their allocation. They run as Dask tasks on
the sweep's cluster (``hwprune.sweep.runner``), or in-process without one.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hwprune.config import Config

Pairs = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Trial:
    """One allocation to try (pickled to a worker)."""

    config: Config
    dense_file: str  # absolute path of the saved DenseStart
    allocation: Pairs  # (layer, sparsity); layers not named stay dense
    epochs: int  # fine-tuning epochs after pruning
    board: str = ""  # "" = no estimate; else export and estimate on this board


def trial_config(cfg: Config, allocation: Pairs, epochs: int) -> Config:
    """``cfg`` pruning exactly ``allocation``: one-shot, standard, no teacher, ``epochs``."""
    p = replace(
        cfg.prune,
        layers=(),
        layer_sparsity=tuple((n, round(float(s), 6)) for n, s in allocation),
        sparsity=0.0,
        schedule="one-shot",
        method="standard",
        finetune_epochs=epochs,
    )
    return replace(cfg, prune=p, distill=replace(cfg.distill, teacher="none"))


def final_config(cfg: Config, allocation: Pairs) -> Config:
    """``cfg`` with its per-layer targets set to ``allocation`` (every other prune key kept:
    the configured criterion, schedule, method and teacher make the final design)."""
    p = replace(
        cfg.prune,
        layers=(),
        layer_sparsity=tuple((n, round(float(s), 4)) for n, s in allocation),
        sparsity=0.0,
    )
    return replace(cfg, prune=p)


def save_dense(cfg: Config, path: Path, progress: bool) -> Path:
    """Train the dense QAT network once and save its DenseStart to ``path``."""
    import torch

    from hwprune.train.loop import train_dense

    dense = train_dense(cfg, progress=progress)
    torch.save(dense, path)
    return path


@functools.lru_cache(maxsize=2)
def _dense(path: str, mtime: float):
    import torch

    return torch.load(path, weights_only=False)


def load_dense(path: str | Path):
    p = Path(path)
    return _dense(str(p), p.stat().st_mtime)


def design_entry(model_onnx: Path, cfg: Config, board: str) -> dict:
    """The estimate of the design ``hwprune compile`` makes of ``model_onnx`` with the config's
    compile options, on ``board`` (estimate.json's entry), without writing the design."""
    from hwprune.api import design_graph
    from hwprune.boards import get_board
    from hwprune.estimate import estimate_boards

    c = cfg.compile
    conv, stream_layers = cfg.conv_choice()
    b = get_board(board)
    _, g = design_graph(
        model_onnx, b, c.kernel, c.reuse_factor, c.input_type or None, c.pipeline, conv,
        stream_layers,
    )  # fmt: skip
    return estimate_boards(g, [b])[b.name]


def figures(entry: dict) -> dict[str, float]:
    """An estimate entry's budget figures: lut, ff, dsp, bram18 and latency_ns."""
    t = entry["totals"]
    out = {r: float(t[r]) for r in ("lut", "ff", "dsp", "bram18")}
    out["latency_ns"] = t["latency_cycles"] * 1000.0 / entry["clock_mhz"]
    return out


def run_trial(trial: Trial) -> dict:
    """Prune, fine-tune, score on validation and test; with a board, export and estimate."""
    import numpy as np

    from hwprune.sweep.point import _pin_threads
    from hwprune.train.loop import accuracy, train

    _pin_threads()
    t0 = time.perf_counter()
    cfg = trial_config(trial.config, trial.allocation, trial.epochs)
    res = train(cfg, progress=False, dense=load_dense(trial.dense_file))
    out = {
        "allocation": dict(trial.allocation),
        "val_accuracy": accuracy(res.model, res.split.x_val, res.split.y_val),
        "test_accuracy": res.pruned_accuracy,
        "sparsity": {k: float(v) for k, v in res.sparsity.items()},
    }
    if trial.board:
        from hwprune.export.qonnx import export_model

        with tempfile.TemporaryDirectory(prefix="hwprune-trial-") as tmp:
            path = Path(tmp) / "model.onnx"
            export_model(res.model, int(np.prod(res.split.shape)), path)
            entry = design_entry(path, trial.config, trial.board)
        out["figures"] = figures(entry)
        out["layers"] = [
            {k: ly[k] for k in ("name", "kind", "lut", "ff", "dsp", "bram18")}
            for ly in entry["layers"]
        ]
    out["seconds"] = time.perf_counter() - t0
    return out


def run_trials(
    trials: Sequence[Trial], client=None, progress: bool = True, desc: str = "trials"
) -> list[dict]:
    """Every trial's result, in order: on the Dask ``client``'s workers, or in-process."""
    from tqdm import tqdm

    bar = tqdm(total=len(trials), desc=desc, unit="trial", disable=not progress, leave=False)
    try:
        if client is None:
            out = []
            for t in trials:
                out.append(run_trial(t))
                bar.update()
            return out
        from distributed import as_completed

        futures = client.map(run_trial, list(trials), pure=False)
        for _ in as_completed(futures):
            bar.update()
        return client.gather(futures)
    finally:
        bar.close()
