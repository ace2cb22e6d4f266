"""Data sets that load offline from an installed package.

Every loader returns a ``Split``: flat float32 features in [0, 1] (images flattened in C order,
(C, H, W) -> C*H*W, as the IR expects), int64 labels, and a validation part carved out of the
training part (stratified, seeded) for the pruning accuracy guard. This module imports no
torch: config validation reads ``DATASETS`` from here.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hwprune.errors import HwpruneError

if TYPE_CHECKING:
    from hwprune.config import DataConfig

# Where the Debian package dataset-fashion-mnist installs its four IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
VAL_FRACTION = 0.15  # of the training part, after any train_samples subset


@dataclass(frozen=True)
class Split:
    """Train / validation / test parts: x float32 (N, features) in [0, 1], y int64 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    shape: tuple[int, ...]  # one sample's natural shape, e.g. (1, 8, 8); x is its C-order flat


def _downsample(img: np.ndarray, d: int, name: str) -> np.ndarray:
    """Sum (N, C, H, W) integer images over d x d blocks (the caller divides by d*d)."""
    n, c, h, w = img.shape
    if h % d or w % d:
        raise HwpruneError(
            f"data.downsample = {d} does not divide the {h}x{w} images of {name}; "
            f"use a divisor of {h}"
        )
    return img.reshape(n, c, h // d, d, w // d, d).sum(axis=(3, 5), dtype=np.int64)


def _stratified(y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified, seeded draw of ``n`` samples, and of the rest."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    return tuple(train_test_split(idx, train_size=n, random_state=seed, stratify=y))


def _select_classes(x, y, classes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The samples of ``classes`` only, in their original order, relabelled by position in
    ``classes`` (classes (3, 1): label 3 -> 0, 1 -> 1)."""
    relabel = np.full(max(int(y.max()), *classes) + 1, -1, dtype=np.int64)
    relabel[list(classes)] = np.arange(len(classes))
    keep = relabel[y] >= 0
    return x[keep], relabel[y[keep]]


def _finish(xtr, ytr, xte, yte, shape, full: int, cfg: DataConfig, name: str) -> Split:
    """From integer pixels (0..full): keep the chosen classes, subset the training part, carve
    out validation, downsample and scale to float32 in [0, 1]. Works on indices and integers
    so a 60,000-image set is never copied in float64, and each pixel is rounded to float32
    once."""
    if cfg.classes:
        present = np.unique(ytr)
        for c in cfg.classes:
            if c not in present:
                raise HwpruneError(
                    f"data.classes names class {c}, but {name} has classes {present.min()}.."
                    f"{present.max()}; choose class indices in that range"
                )
        xtr, ytr = _select_classes(xtr, ytr, cfg.classes)
        xte, yte = _select_classes(xte, yte, cfg.classes)
    n = cfg.train_samples
    if n:
        k = len(np.unique(ytr))
        if not k <= n <= len(ytr):
            raise HwpruneError(
                f"data.train_samples = {n} is outside [{k}, {len(ytr)}] for the {len(ytr)} "
                f"{name} training images; use 0 (all) or a value in that range"
            )
        if n < len(ytr):
            keep = np.sort(_stratified(ytr, n, cfg.seed)[0])
            xtr, ytr = xtr[keep], ytr[keep]
    n_val = int(round(VAL_FRACTION * len(ytr)))
    val, train = _stratified(ytr, n_val, cfg.seed)
    d = cfg.downsample
    c, h, w = shape

    def scale(x):
        x = _downsample(x.reshape(-1, c, h, w), d, name).reshape(len(x), -1)
        return x.astype(np.float32) / np.float32(full * d * d)

    i64, k = np.int64, len(np.unique(ytr))
    return Split(
        scale(xtr[train]), ytr[train].astype(i64), scale(xtr[val]), ytr[val].astype(i64),
        scale(xte), yte.astype(i64), k, (c, h // d, w // d),
    )  # fmt: skip


def load_digits(cfg: DataConfig) -> Split:
    """scikit-learn's bundled 8x8 digits (1,797 images, pixel values 0..16), scaled to [0, 1];
    the test part is ``cfg.test_fraction`` of them (stratified, seeded)."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    d = sk_digits()
    x = d.data.astype(np.uint8)
    xtr, xte, ytr, yte = train_test_split(
        x, d.target, test_size=cfg.test_fraction, random_state=cfg.seed, stratify=d.target
    )
    return _finish(xtr, ytr, xte, yte, (1, 8, 8), 16, cfg, "digits")


def _read_idx(path: Path) -> np.ndarray:
    """One IDX file (big-endian header: 0, 0, type 0x08 = ubyte, ndim; then the dims)."""
    raw = gzip.decompress(path.read_bytes())
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise HwpruneError(
            f"{path}: not an unsigned-byte IDX file; reinstall the Debian package "
            "dataset-fashion-mnist"
        )
    ndim = raw[3]
    dims = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise HwpruneError(
            f"{path}: holds {data.size} bytes of data, its header says {dims}; reinstall the "
            "Debian package dataset-fashion-mnist"
        )
    return data.reshape(dims)


@lru_cache(maxsize=2)
def _read_fashion(root: Path) -> tuple[np.ndarray, ...]:
    """The four Fashion-MNIST arrays (cached: benchmarks load the set once per config)."""
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    names += ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    paths = [root / f"{n}.gz" for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise HwpruneError(
            f"fashion-mnist not found in {root} (missing {', '.join(missing)}); install the "
            "Debian package dataset-fashion-mnist (make system)"
        )
    return tuple(_read_idx(p) for p in paths)


def load_fashion_mnist(cfg: DataConfig, root: Path = FASHION_MNIST_DIR) -> Split:
    """Fashion-MNIST (60,000 + 10,000 images, 28x28, 10 classes) from the Debian package's IDX
    files, scaled to [0, 1]; its own 10,000-image test set (``test_fraction`` is not used)."""
    xtr, ytr, xte, yte = _read_fashion(Path(root))
    return _finish(xtr, ytr, xte, yte, (1, 28, 28), 255, cfg, "fashion-mnist")


DATASETS = {"digits": load_digits, "fashion-mnist": load_fashion_mnist}


def load_dataset(cfg: DataConfig) -> Split:
    """Load the data set ``cfg.dataset`` names (a key of ``DATASETS``)."""
    if cfg.dataset not in DATASETS:
        raise HwpruneError(
            f"unknown data.dataset {cfg.dataset!r}; choose one of {', '.join(DATASETS)}"
        )
    return DATASETS[cfg.dataset](cfg)
