"""Quantization-aware training with a one-shot magnitude pruning schedule.

Schedule: train dense for ``train.epochs``; compute masks once (criterion from prune/);
fine-tune ``prune.finetune_epochs`` with the masks applied after every step; squash.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from hwprune.config import Config
from hwprune.prune.magnitude import CRITERIA, apply_masks
from hwprune.train.data import Split, load_dataset
from hwprune.train.model import build_mlp, forward_numpy, prunable


@dataclass(frozen=True)
class TrainResult:
    """The trained, pruned model and what it scored."""

    model: torch.nn.Module
    split: Split
    dense_accuracy: float
    pruned_accuracy: float
    masks: dict[str, torch.Tensor]


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the quantized model (Brevitas forward, eval mode)."""
    return float((forward_numpy(model, x).argmax(1) == y).mean())


def _epochs(model, split: Split, cfg: Config, n: int, desc: str, masks=None) -> None:
    if n == 0:
        return
    params = prunable(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n)
    x = torch.as_tensor(split.x_train)
    y = torch.as_tensor(split.y_train)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    bar = tqdm(range(n), desc=desc, unit="epoch", leave=True, dynamic_ncols=True)
    for _ in bar:
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), cfg.train.batch_size):
            idx = perm[i : i + cfg.train.batch_size]
            opt.zero_grad()
            out = model(x[idx])
            loss = loss_fn(getattr(out, "value", out), y[idx])
            loss.backward()
            opt.step()
            if masks is not None:
                apply_masks(params, masks)
            total += float(loss) * len(idx)
        sched.step()
        bar.set_postfix(loss=f"{total / len(x):.3f}")


def train(cfg: Config) -> TrainResult:
    """Train dense with QAT, prune once, fine-tune with fixed masks, squash the masks."""
    torch.manual_seed(cfg.train.seed)
    split = load_dataset(cfg.data.dataset, cfg.data.test_fraction, cfg.data.seed)
    model = build_mlp(cfg.model, split.x_train.shape[1], split.n_classes)
    _epochs(model, split, cfg, cfg.train.epochs, "train (dense QAT)")
    dense_acc = accuracy(model, split.x_test, split.y_test)

    params = prunable(model)
    crit = CRITERIA[cfg.prune.method]
    masks = {n: crit(p, cfg.prune.sparsity) for n, p in params.items()}
    apply_masks(params, masks)
    _epochs(model, split, cfg, cfg.prune.finetune_epochs, "fine-tune (pruned)", masks)
    apply_masks(params, masks)  # squash: masked weights are exact zeros from here on
    pruned_acc = accuracy(model, split.x_test, split.y_test)
    return TrainResult(model, split, dense_acc, pruned_acc, masks)
