"""Data pruning on small digits configs: per-class counts, seeding, rows kept unchanged, the
highest scores kept, forgetting events counted on a hand-worked record, and a full run."""

import warnings
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch
from tqdm import tqdm

from hwprune.config import KEEP_BY, Config, from_dict
from hwprune.train.data import Split, load_dataset
from hwprune.train.data_prune import SCORES, _keep_top, forgetting_events, prune_data
from hwprune.train.loop import train


@pytest.fixture(autouse=True)
def _quiet_single_thread():
    """Brevitas warnings off; one torch thread (the shared 2-core machine, as in test_loop)."""
    warnings.filterwarnings("ignore")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(seed: int = 0, **data) -> Config:
    """A small digits MLP (64-24-16-10), 2 scoring and 2 dense epochs, seeded."""
    doc = {
        "data": {"score_epochs": 2, **data},
        "model": {"hidden": [24, 16]},
        "train": {"epochs": 2, "lr": 0.01, "seed": seed},
        "prune": {"sparsity": 0.5, "finetune_epochs": 1},
    }
    return from_dict(doc)


def _keys(x: np.ndarray) -> np.ndarray:
    return np.array([r.tobytes() for r in x])


def _rows(x: np.ndarray, y: np.ndarray) -> Counter:
    return Counter((r.tobytes(), int(c)) for r, c in zip(x, y, strict=True))


def _distinct(split: Split) -> Split:
    """The split without repeated training images (digits has a few), so that every kept row
    names one training sample."""
    first = np.sort(np.unique(split.x_train, axis=0, return_index=True)[1])
    return replace(split, x_train=split.x_train[first], y_train=split.y_train[first])


def _scores(split: Split, cfg: Config) -> np.ndarray:
    return SCORES[cfg.data.keep_by](split, cfg, tqdm(disable=True))


def test_names_match_config():
    assert tuple(SCORES) == KEEP_BY


@pytest.mark.parametrize("keep_by", KEEP_BY)
@pytest.mark.parametrize("keep", [0.3, 0.75])
def test_keeps_round_fraction_of_each_class(keep_by, keep):
    cfg = tiny(keep=keep, keep_by=keep_by)
    split = load_dataset(cfg.data)
    out = prune_data(split, cfg, progress=False)
    want = [max(1, round(keep * n)) for n in np.bincount(split.y_train)]
    assert np.bincount(out.y_train).tolist() == want
    # The kept samples are training samples, rows and labels unchanged, none twice.
    kept, whole = _rows(out.x_train, out.y_train), _rows(split.x_train, split.y_train)
    assert all(whole[k] >= n for k, n in kept.items())
    for part in ("x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(out, part), getattr(split, part))
    assert (out.n_classes, out.shape) == (split.n_classes, split.shape)


def test_class_subset_then_keep():
    cfg = tiny(classes=[3, 1], keep=0.5, keep_by="random")
    split = load_dataset(cfg.data)
    out = prune_data(split, cfg, progress=False)
    assert out.n_classes == 2
    assert np.bincount(out.y_train).tolist() == [round(n / 2) for n in np.bincount(split.y_train)]


def test_keeps_at_least_one_per_class():
    cfg = tiny(keep=0.001, keep_by="random")
    out = prune_data(load_dataset(cfg.data), cfg, progress=False)
    assert np.bincount(out.y_train).tolist() == [1] * 10


@pytest.mark.parametrize("keep_by", KEEP_BY)
def test_deterministic_and_leaves_torch_generator_alone(keep_by):
    cfg = tiny(keep=0.5, keep_by=keep_by)
    split = load_dataset(cfg.data)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = prune_data(split, cfg, progress=False)
    # The real run draws its initialisation after this: it must not depend on the scoring.
    assert torch.equal(torch.get_rng_state(), before)
    b = prune_data(split, cfg, progress=False)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_train, b.y_train)
    if keep_by == "random":
        c = prune_data(split, tiny(seed=1, keep=0.5, keep_by=keep_by), progress=False)
        assert not np.array_equal(a.x_train, c.x_train)


def test_keep_top_by_hand():
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.9, 0.5, 0.8, 0.3, 0.2, 0.7])
    # class 0: round(0.5 * 4) = 2 -> the 0.9 and 0.8; class 1: round(0.5 * 3) = 2 (half to
    # even) -> the 0.7 and 0.3.
    assert _keep_top(y, s, 0.5, [0, 0]).tolist() == [1, 3, 4, 6]
    # inf (never learned) ranks first; equal scores are broken by the seeded generator.
    flat = np.array([1.0, 1.0, 1.0, np.inf, 1.0, 1.0, 1.0])
    a = _keep_top(y, flat, 0.5, [0, 0])
    assert 3 in a and len(a) == 4 and np.array_equal(a, _keep_top(y, flat, 0.5, [0, 0]))
    picks = {tuple(_keep_top(y, flat, 0.5, [0, s])) for s in range(20)}
    assert len(picks) > 1


def _top_per_class(y: np.ndarray, scores: np.ndarray, keep: float) -> set[int]:
    """The indices of the highest scores of every class, by a plain sort."""
    top = set()
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        k = max(1, round(keep * len(members)))
        top |= set(members[np.argsort(-scores[members], kind="stable")[:k]].tolist())
    return top


def test_el2n_keeps_the_highest_scores():
    cfg = tiny(keep=0.4, keep_by="el2n")
    split = _distinct(load_dataset(cfg.data))
    scores = _scores(split, cfg)
    # || p - onehot ||_2 for a probability vector p lies in [0, sqrt(2)].
    assert scores.shape == split.y_train.shape
    assert np.all(scores >= 0) and np.all(scores <= np.sqrt(2) + 1e-9)
    assert len(np.unique(scores)) > len(scores) // 2  # continuous: top-k needs no tie-break
    want = sorted(_top_per_class(split.y_train, scores, 0.4))
    out = prune_data(split, cfg, progress=False)
    assert np.array_equal(out.x_train, split.x_train[want])
    assert np.array_equal(out.y_train, split.y_train[want])


def test_forgetting_events_by_hand():
    t, f = True, False
    correct = np.array(
        [  # presentations down, samples across
            [t, f, t, f, f],
            [f, f, t, t, f],
            [t, f, t, t, f],
            [f, f, t, f, f],
            [t, f, t, f, t],
        ]
    )
    # 0: T F T F T, two drops; 1: never correct; 2: never drops; 3: F T T F F, one drop;
    # 4: learned at the last presentation, never forgotten.
    assert forgetting_events(correct).tolist() == [2, np.inf, 0, 1, 0]


def test_forgetting_keeps_the_most_forgotten():
    cfg = tiny(keep=0.5, keep_by="forgetting", score_epochs=4)
    split = _distinct(load_dataset(cfg.data))
    scores = _scores(split, cfg)
    assert len(np.unique(scores)) > 2
    out = prune_data(split, cfg, progress=False)
    kept = np.isin(_keys(split.x_train), _keys(out.x_train))
    assert kept.sum() == len(out.y_train)
    for c in range(split.n_classes):
        # Within a class, no dropped sample scores above a kept one (ties may fall either way).
        mine = split.y_train == c
        assert scores[mine & kept].min() >= scores[mine & ~kept].max()


def test_train_end_to_end_with_half_the_data():
    cfg = tiny(keep=0.5, keep_by="el2n")
    res = train(cfg, progress=False)
    full = load_dataset(cfg.data)
    want = [round(n / 2) for n in np.bincount(full.y_train)]
    assert np.bincount(res.split.y_train).tolist() == want
    assert np.array_equal(res.split.x_test, full.x_test)
    assert res.pruned_accuracy > 0.5
