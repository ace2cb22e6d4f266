"""Pruning criteria: how a mask is computed. Schedules (how much, when) live in train/.

A mask is a 0/1 tensor kept apart from the weight while training; ``squash`` writes the
zeros into the weights before export so they become exact integer zeros.
"""

from __future__ import annotations

import torch


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Unstructured, per layer: zero the ``sparsity`` fraction of smallest |w| (ties by index)."""
    n = weight.numel()
    k = int(round(sparsity * n))
    mask = torch.ones(n, dtype=weight.dtype)
    if k > 0:
        order = torch.argsort(weight.detach().abs().flatten(), stable=True)
        mask[order[:k]] = 0
    return mask.view_as(weight)


CRITERIA = {"magnitude": magnitude_mask}


def apply_masks(params: dict[str, torch.nn.Parameter], masks: dict[str, torch.Tensor]) -> None:
    """Zero the masked weights in place: after every optimizer step while fine-tuning, and
    once more before export, which makes the masks permanent (exact zeros)."""
    with torch.no_grad():
        for name, p in params.items():
            p.mul_(masks[name])
