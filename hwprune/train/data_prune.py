"""Data pruning: train on the most informative fraction of each class.

A short seeded scoring run ranks the training samples (``SCORES``, by ``data.keep_by``); the
``data.keep`` fraction of each class with the highest scores is kept, ties broken by a seeded
generator. Only the training part shrinks: validation and test stay as loaded. The scoring
runs leave torch's global generator as they found it, so the real run starts from the same
initialisation with or without data pruning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hwprune.config import Config
from hwprune.train.data import Split
from hwprune.train.loop import _fit, _Job, _logits, _threads
from hwprune.train.model import build_model, forward_numpy

# The scoring runs train the config's layers without quantizers: on Fashion-MNIST (14x14,
# 8,500 samples, the 64-32 MLP) an epoch took 0.47 s float against 5.5 s quantized (measured
# here, one thread), and a ranking needs only the scores' order, not exported integers.
QUANTIZED_SCORING = False
# EL2N is averaged over this many independently initialised scoring runs (Paul et al. average
# over 10; a few already steady the ranking, and each run costs score_epochs of training).
EL2N_RUNS = 3


def forgetting_events(correct: np.ndarray) -> np.ndarray:
    """Per sample, the number of forgetting events in ``correct`` [presentations, samples]
    (bool: classified correctly when presented): transitions correct -> incorrect between
    consecutive presentations (Toneva et al. 2019). A sample never classified correctly gets
    inf: the paper sorts never-learned samples as forgotten most often."""
    correct = np.asarray(correct, dtype=bool)
    events = (correct[:-1] & ~correct[1:]).sum(axis=0).astype(np.float64)
    events[~correct.any(axis=0)] = np.inf
    return events


def _score_job(cfg: Config, split: Split, seed: int) -> _Job:
    """A plain ``_fit`` job: no layer pruned, batch order seeded by ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return _Job(cfg, split, (), "", progress=False, gen=gen, mask_gen=gen)


def _epoch_ticks(bar: tqdm, steps_per_epoch: int) -> Callable[[int], bool]:
    """A ``_fit`` hook advancing ``bar`` by one at the end of every epoch."""

    def hook(step: int) -> bool:
        if step and step % steps_per_epoch == 0:
            bar.update(1)
        return True

    return hook


def _el2n(split: Split, cfg: Config, bar: tqdm) -> np.ndarray:
    """EL2N (Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet", NeurIPS 2021):
    || softmax(f(x)) - onehot(y) ||_2 after score_epochs epochs of training, averaged over
    EL2N_RUNS initialisations. High = hard to fit, kept."""
    bar.reset(total=EL2N_RUNS * cfg.data.score_epochs)
    onehot = np.eye(split.n_classes)[split.y_train]
    total = np.zeros(len(split.y_train))
    for run in range(EL2N_RUNS):
        seed = cfg.train.seed + run
        torch.manual_seed(seed)
        model = build_model(cfg.model, split.shape, split.n_classes, quantized=QUANTIZED_SCORING)
        job = _score_job(cfg, split, seed)
        _fit(job, model, cfg.data.score_epochs, "", hook=_epoch_ticks(bar, job.steps_per_epoch))
        logits = forward_numpy(model, split.x_train)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        total += np.linalg.norm(p - onehot, axis=1)
    return total / EL2N_RUNS


def _forgetting(split: Split, cfg: Config, bar: tqdm) -> np.ndarray:
    """Forgetting events (Toneva et al., "An Empirical Study of Example Forgetting during Deep
    Neural Network Learning", ICLR 2019) over score_epochs epochs of training, read from the
    minibatch predictions at each presentation. High = often forgotten (or never learned),
    kept. Adam at train.lr and train.batch_size, like the real run; its own loop because
    ``_fit`` does not expose the minibatch predictions."""
    bar.reset(total=cfg.data.score_epochs)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, split.shape, split.n_classes, quantized=QUANTIZED_SCORING)
    x, y = torch.as_tensor(split.x_train), torch.as_tensor(split.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    # Each epoch presents every sample once: presentation e of a sample is in epoch e.
    correct = np.zeros((cfg.data.score_epochs, len(y)), dtype=bool)
    model.train()
    for epoch in range(cfg.data.score_epochs):
        for idx in torch.randperm(len(y), generator=gen).split(cfg.train.batch_size):
            out = _logits(model(x[idx]))
            correct[epoch, idx.numpy()] = (out.argmax(1) == y[idx]).numpy()
            opt.zero_grad()
            F.cross_entropy(out, y[idx]).backward()
            opt.step()
        bar.update(1)
    return forgetting_events(correct)


def _random(split: Split, cfg: Config, bar: tqdm) -> np.ndarray:
    """Seeded uniform scores: a random stratified draw (the baseline both papers compare to)."""
    return np.random.default_rng([cfg.data.seed, cfg.train.seed, 1]).random(len(split.y_train))


# Scores by config name (config.KEEP_BY lists the same names): fn(split, cfg, bar) -> one
# score per training sample, the highest kept; fn sets the bar's total to its scoring epochs.
SCORES: dict[str, Callable[[Split, Config, tqdm], np.ndarray]] = {
    "el2n": _el2n,
    "forgetting": _forgetting,
    "random": _random,
}


def _keep_top(y: np.ndarray, scores: np.ndarray, keep: float, seed: list[int]) -> np.ndarray:
    """Sorted indices of the round(keep * n_c) highest-scoring samples of every class c (at
    least 1), ties broken by a generator seeded with ``seed``."""
    tie = np.random.default_rng(seed).random(len(y))
    kept = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        k = max(1, round(keep * len(members)))
        order = np.lexsort((tie[members], -scores[members]))  # last key sorts first
        kept.append(members[order[:k]])
    return np.sort(np.concatenate(kept))


def prune_data(split: Split, cfg: Config, progress: bool) -> Split:
    """The split with its training part cut to the data.keep fraction of each class scored
    highest by data.keep_by; validation and test unchanged. Deterministic for given
    data.seed and train.seed."""
    d = cfg.data
    desc = f"score data ({d.keep_by})"
    with (
        _threads(1),
        torch.random.fork_rng(devices=[]),
        tqdm(total=0, desc=desc, unit="epoch", disable=not progress) as bar,
    ):
        scores = SCORES[d.keep_by](split, cfg, bar)
    kept = _keep_top(split.y_train, scores, d.keep, [d.seed, cfg.train.seed])
    return replace(split, x_train=split.x_train[kept], y_train=split.y_train[kept])
