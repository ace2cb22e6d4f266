"""Masks kept apart from the weights while training, and made permanent before export."""

from __future__ import annotations

import torch


def apply_masks(params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> None:
    """Zero the masked weights in place: after every optimizer step while fine-tuning, and
    once more at the end, which squashes the masks into exact zeros for export."""
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask)


def mask_sparsity(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """Fraction of zeros in each mask (the sparsity the masks demand, per layer)."""
    return {n: float((m == 0).sum()) / m.numel() for n, m in masks.items()}


def total_sparsity(masks: dict[str, torch.Tensor]) -> float:
    """Fraction of zeros over all masks together (weights counted, not layers)."""
    zeros = sum(int((m == 0).sum()) for m in masks.values())
    return zeros / max(1, sum(m.numel() for m in masks.values()))
