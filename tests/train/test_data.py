"""Data loaders: shapes, splits, stratification, subsets, downsampling and the IDX reader
(checked on small IDX files written here by hand, and on the installed Fashion-MNIST)."""

from __future__ import annotations

import gzip
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hwprune.config import DataConfig
from hwprune.errors import HwpruneError
from hwprune.train.data import (
    DATASETS,
    FASHION_MNIST_DIR,
    VAL_FRACTION,
    load_dataset,
    load_fashion_mnist,
)


def _check_split(s, n_features: int) -> None:
    for x, y in ((s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape == (len(y), n_features)
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert int(np.prod(s.shape)) == n_features


def _proportions(y, k):
    return np.bincount(y, minlength=k) / len(y)


def test_digits_split():
    s = load_dataset(DataConfig())
    _check_split(s, 64)
    assert s.shape == (1, 8, 8) and s.n_classes == 10
    n = len(s.y_train) + len(s.y_val) + len(s.y_test)
    assert n == 1797
    assert len(s.y_test) == math.ceil(0.25 * 1797)  # scikit-learn rounds the test part up
    assert len(s.y_val) == round(VAL_FRACTION * (len(s.y_train) + len(s.y_val)))
    # Stratified: every part has the class proportions of the whole set.
    from sklearn.datasets import load_digits

    whole = _proportions(load_digits().target, 10)
    for y in (s.y_train, s.y_val, s.y_test):  # two nested splits: off by at most 2 per class
        assert np.all(np.abs(np.bincount(y, minlength=10) - len(y) * whole) <= 2)
    # The pixel values are 0..16 / 16: exact multiples of 1/16.
    assert np.array_equal(s.x_train * 16, np.round(s.x_train * 16))


def test_digits_seeded_and_disjoint():
    from sklearn.datasets import load_digits

    a, b = load_dataset(DataConfig(seed=3)), load_dataset(DataConfig(seed=3))
    c = load_dataset(DataConfig(seed=4))
    assert np.array_equal(a.x_val, b.x_val) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_val, c.x_val)
    # No image is in two parts (digits has a few duplicate images: compare with multiplicity).
    whole = {r.tobytes(): 0 for r in (load_digits().data / 16).astype(np.float32)}
    for r in (load_digits().data / 16).astype(np.float32):
        whole[r.tobytes()] += 1
    seen: dict[bytes, int] = {}
    for x in (a.x_train, a.x_val, a.x_test):
        for r in x:
            seen[r.tobytes()] = seen.get(r.tobytes(), 0) + 1
    assert seen == whole


def test_digits_downsample_and_subset():
    full = load_dataset(DataConfig())
    s = load_dataset(DataConfig(downsample=2, train_samples=500))
    _check_split(s, 16)
    assert s.shape == (1, 4, 4)
    assert len(s.y_train) + len(s.y_val) == 500
    assert len(s.y_test) == len(full.y_test)
    # The test part is untouched by the subset: the same images, 2x2-averaged by hand.
    want = full.x_test.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(-1, 16)
    np.testing.assert_allclose(s.x_test, want, rtol=0, atol=1e-7)
    with pytest.raises(HwpruneError, match="does not divide"):
        load_dataset(DataConfig(downsample=3))
    with pytest.raises(HwpruneError, match="train_samples"):
        load_dataset(DataConfig(train_samples=5000))


def _write_idx(path: Path, data: np.ndarray) -> None:
    """The IDX format by its definition: 0, 0, type 0x08 (ubyte), ndim, big-endian dims."""
    head = bytes([0, 0, 8, data.ndim]) + np.array(data.shape, ">u4").tobytes()
    path.write_bytes(gzip.compress(head + data.astype(np.uint8).tobytes()))


@pytest.fixture
def tiny_fashion(tmp_path) -> Path:
    """A Fashion-MNIST-shaped set small enough to check by hand: 200 + 30 images of 28x28,
    10 classes; image k is filled with k % 256, and its top-left pixel is 255."""
    rng = np.random.default_rng(0)
    for part, n in (("train", 200), ("t10k", 30)):
        img = np.repeat(np.arange(n) % 256, 28 * 28).reshape(n, 28, 28).astype(np.uint8)
        img[:, 0, 0] = 255
        _write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz", img)
        _write_idx(tmp_path / f"{part}-labels-idx1-ubyte.gz", rng.permutation(n) % 10)
    return tmp_path


def test_fashion_reader_on_hand_made_files(tiny_fashion):
    s = load_fashion_mnist(DataConfig("fashion-mnist"), root=tiny_fashion)
    _check_split(s, 784)
    assert s.shape == (1, 28, 28) and s.n_classes == 10
    assert len(s.y_test) == 30 and len(s.y_train) + len(s.y_val) == 200
    assert len(s.y_val) == 30  # 15 % of 200, 3 per class
    assert np.array_equal(np.bincount(s.y_val), np.full(10, 3))
    assert np.all(s.x_test[:, 0] == 1.0)
    assert np.array_equal(s.x_test[:, 1] * 255, np.arange(30, dtype=np.float32))
    d = load_fashion_mnist(DataConfig("fashion-mnist", downsample=2), root=tiny_fashion)
    assert d.shape == (1, 14, 14)
    # Top-left 2x2 block of test image 5: (255 + 3 * 5) / (4 * 255); the next block 5 / 255.
    assert d.x_test[5, 0] == np.float32((255 + 15) / 1020)
    assert d.x_test[5, 1] == np.float32(5 / 255)


def test_fashion_subset_is_stratified_and_seeded(tiny_fashion):
    cfg = DataConfig("fashion-mnist", train_samples=100, seed=1)
    a = load_fashion_mnist(cfg, root=tiny_fashion)
    b = load_fashion_mnist(cfg, root=tiny_fashion)
    assert len(a.y_train) + len(a.y_val) == 100
    counts = np.bincount(np.concatenate([a.y_train, a.y_val]), minlength=10)
    assert np.array_equal(counts, np.full(10, 10))
    assert np.array_equal(a.x_train, b.x_train)


def test_fashion_missing_files(tmp_path):
    with pytest.raises(HwpruneError, match="fashion-mnist not found in .*dataset-fashion-mnist"):
        load_fashion_mnist(DataConfig("fashion-mnist"), root=tmp_path)


def test_fashion_corrupt_file(tiny_fashion):
    (tiny_fashion / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x01"))
    with pytest.raises(HwpruneError, match="not an unsigned-byte IDX"):
        load_fashion_mnist(DataConfig("fashion-mnist"), root=tiny_fashion)


@pytest.mark.skipif(
    not (FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist is not installed",
)
def test_installed_fashion_mnist():
    s = load_dataset(DataConfig("fashion-mnist", train_samples=2000, downsample=2))
    _check_split(s, 196)
    assert s.shape == (1, 14, 14)
    assert len(s.y_test) == 10_000
    assert np.array_equal(np.bincount(s.y_test), np.full(10, 1000))  # the set's own test part
    assert np.array_equal(np.bincount(s.y_val), np.full(10, 30))


def test_registry():
    assert set(DATASETS) == {"digits", "fashion-mnist"}
    with pytest.raises(HwpruneError, match="unknown data.dataset"):
        load_dataset(DataConfig("mnist"))


def _pairs(x: np.ndarray, y: np.ndarray) -> Counter:
    """Every (image, label) pair with its multiplicity (digits holds duplicate images)."""
    return Counter((r.tobytes(), int(c)) for r, c in zip(x, y, strict=True))


def _digits_by_hand(classes: tuple[int, ...]) -> Counter:
    """scikit-learn's digits restricted to ``classes``, labelled by position in ``classes``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16).astype(np.float32)
    label = {c: i for i, c in enumerate(classes)}
    keep = np.isin(d.target, classes)
    return _pairs(x[keep], [label[c] for c in d.target[keep]])


@pytest.mark.parametrize("classes", [(5, 6, 7, 8, 9), (3, 1)])
def test_digits_classes_subset_and_relabel(classes):
    s = load_dataset(DataConfig(classes=classes))
    _check_split(s, 64)
    assert s.n_classes == len(classes)
    for y in (s.y_train, s.y_val, s.y_test):
        assert np.array_equal(np.unique(y), np.arange(len(classes)))
    x = np.concatenate([s.x_train, s.x_val, s.x_test])
    y = np.concatenate([s.y_train, s.y_val, s.y_test])
    assert _pairs(x, y) == _digits_by_hand(classes)  # exactly those images, order given kept
    # The test part is the full run's, filtered: classes do not change the train/test split.
    full = load_dataset(DataConfig())
    keep = np.isin(full.y_test, classes)
    assert np.array_equal(s.x_test, full.x_test[keep])
    assert np.array_equal(classes[0] == full.y_test[keep], s.y_test == 0)


def test_digits_classes_with_train_samples():
    s = load_dataset(DataConfig(classes=(0, 1), train_samples=100))
    assert len(s.y_train) + len(s.y_val) == 100 and s.n_classes == 2
    counts = np.bincount(np.concatenate([s.y_train, s.y_val]))
    assert len(counts) == 2 and abs(counts[0] - 100 * 178 / 360) <= 1  # 178 zeros, 182 ones


def test_classes_outside_the_data_set():
    with pytest.raises(HwpruneError, match=r"data.classes names class 12, but digits has class"):
        load_dataset(DataConfig(classes=(2, 12)))
