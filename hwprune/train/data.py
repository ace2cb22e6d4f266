"""Data sets that load offline from an installed package."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwprune.errors import HwpruneError


@dataclass(frozen=True)
class Split:
    """Float features in [0, 1] and integer labels, split into train and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int


def load_digits_split(test_fraction: float, seed: int) -> Split:
    """scikit-learn's bundled 8x8 digits (1,797 images, pixel values 0..16), scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(
        x, d.target, test_size=test_fraction, random_state=seed, stratify=d.target
    )
    return Split(xtr, ytr.astype(np.int64), xte, yte.astype(np.int64), 10)


DATASETS = {"digits": load_digits_split}


def load_dataset(name: str, test_fraction: float, seed: int) -> Split:
    """Load a registered data set by name."""
    if name not in DATASETS:
        raise HwpruneError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name](test_fraction, seed)
