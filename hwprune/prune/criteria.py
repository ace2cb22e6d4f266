"""Pruning criteria: how a mask is computed, apart from how much is pruned and when
(prune/schedules.py) and what happens around it (train/loop.py METHODS).

A criterion maps the chosen layers' weights and a target sparsity to 0/1 masks shaped like
the weights: ``fn(weights, sparsity, ctx) -> {name: mask}``. It never touches the weights.

How the achieved sparsity relates to the target ``s`` (per layer of ``n`` weights):

- magnitude, random: exactly ``round(s * n)`` weights are zero in every chosen layer.
- global-magnitude: exactly ``round(s * N)`` zeros over all chosen layers together (``N``
  weights); single layers may end up sparser or denser than ``s``.
- l1/l2-neuron, mrmr: whole output units go (rows of a Linear, filters of a conv), so a layer
  of ``u`` units loses ``round(s * u)`` of them, at most ``u - 1`` (a layer with no unit left
  would cut the network); the layer's sparsity is that count over ``u``, within ``1 / (2u)``
  of ``s`` unless capped. The output layer keeps all its units (each one is a class), so the
  sparsity over all chosen layers is below ``s`` when the output layer is among them.
- l1/l2-channel: whole input channels go (columns of a Linear, input channels of a conv),
  ``round(s * c)`` of ``c``, at most ``c - 1``, in every chosen layer including the output
  layer (a column there is a hidden unit no class reads).

Ties are broken by position (the lower index is pruned first), so masks are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

# names -> ({name: (N, units) activations}, labels (N,)); mrmr asks for the layers it prunes.
ActivationFn = Callable[[tuple[str, ...]], tuple[dict[str, np.ndarray], np.ndarray]]


@dataclass(frozen=True)
class MaskContext:
    """What a criterion may need besides the weights.

    ``output_layer``: name of the network's last layer (its units are the classes);
    ``generator``: seeded torch generator for random choices (random, mrmr's MI estimator);
    ``activations``: for mrmr, a callable returning unit activations and the labels.
    """

    output_layer: str
    generator: torch.Generator
    activations: ActivationFn | None = None


CriterionFn = Callable[[dict[str, torch.Tensor], float, MaskContext], dict[str, torch.Tensor]]


def _count(sparsity: float, n: int, cap: int) -> int:
    """How many of ``n`` items to prune for ``sparsity``, never more than ``cap``."""
    return min(int(round(sparsity * n)), cap)


def _mask_smallest(scores: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """1-D 0/1 mask with the ``k`` lowest scores zero (stable sort: lower index first)."""
    mask = torch.ones(scores.numel(), dtype=dtype)
    if k > 0:
        order = torch.argsort(scores, stable=True)
        mask[order[:k]] = 0
    return mask


def magnitude(
    weights: dict[str, torch.Tensor], sparsity: float, ctx: MaskContext
) -> dict[str, torch.Tensor]:
    """Unstructured, per layer: zero the ``sparsity`` fraction of smallest |w| in each layer."""
    out = {}
    for name, w in weights.items():
        k = _count(sparsity, w.numel(), w.numel())
        out[name] = _mask_smallest(w.detach().abs().flatten(), k, w.dtype).view_as(w)
    return out


def global_magnitude(
    weights: dict[str, torch.Tensor], sparsity: float, ctx: MaskContext
) -> dict[str, torch.Tensor]:
    """Unstructured, one threshold over all chosen layers (ties: earlier layer first)."""
    # Float |w| across layers: layers with larger weights keep more of them, which is the
    # point of a global threshold (and its known risk: a layer of small weights can empty).
    flat = torch.cat([w.detach().abs().flatten().double() for w in weights.values()])
    keep = _mask_smallest(flat, _count(sparsity, flat.numel(), flat.numel()), torch.float64)
    out, at = {}, 0
    for name, w in weights.items():
        out[name] = keep[at : at + w.numel()].view_as(w).to(w.dtype)
        at += w.numel()
    return out


def random_mask(
    weights: dict[str, torch.Tensor], sparsity: float, ctx: MaskContext
) -> dict[str, torch.Tensor]:
    """Baseline: ``round(sparsity * n)`` weights per layer chosen uniformly (seeded). Weights
    that are already exactly zero go first, so a schedule raising the sparsity step by step
    keeps what it pruned before, as it does with the other criteria."""
    out = {}
    for name, w in weights.items():
        k = _count(sparsity, w.numel(), w.numel())
        score = torch.rand(w.numel(), generator=ctx.generator, dtype=torch.float64)
        score[w.detach().flatten() == 0] = -1.0
        out[name] = _mask_smallest(score, k, w.dtype).view_as(w)
    return out


def _unit_norms(w: torch.Tensor, dim: int, p: int) -> torch.Tensor:
    """The p-norm of every slice of ``w`` along ``dim`` (dim 0: output units, 1: inputs)."""
    rest = [d for d in range(w.dim()) if d != dim]
    return w.detach().abs().double().pow(p).sum(dim=rest).pow(1.0 / p)


def _expand(unit_mask: torch.Tensor, w: torch.Tensor, dim: int) -> torch.Tensor:
    """Broadcast a per-unit 0/1 vector along ``dim`` to the full weight shape."""
    shape = [1] * w.dim()
    shape[dim] = -1
    return unit_mask.to(w.dtype).view(shape).expand_as(w).clone()


def _norm_criterion(dim: int, p: int) -> CriterionFn:
    """Structured criterion removing whole slices along ``dim`` by smallest L``p`` norm."""

    def fn(
        weights: dict[str, torch.Tensor], sparsity: float, ctx: MaskContext
    ) -> dict[str, torch.Tensor]:
        out = {}
        for name, w in weights.items():
            if dim == 0 and name == ctx.output_layer:  # its units are the classes
                out[name] = torch.ones_like(w)
                continue
            n = w.shape[dim]
            # n - 1 at most: a layer without a single unit left would disconnect the network.
            keep = _mask_smallest(_unit_norms(w, dim, p), _count(sparsity, n, n - 1), w.dtype)
            out[name] = _expand(keep, w, dim)
        return out

    kind = "output units (rows/filters)" if dim == 0 else "input channels (columns)"
    fn.__doc__ = f"Structured: prune whole {kind} with the smallest L{p} norm, per layer."
    return fn


def mrmr_keep(acts: np.ndarray, labels: np.ndarray, n_keep: int, seed: int) -> np.ndarray:
    """Indices of the ``n_keep`` units chosen greedily by minimum-redundancy
    maximum-relevance (Peng, Long & Ding 2005, MID form: relevance minus redundancy).

    Relevance is the mutual information of a unit's activation with the label (scikit-learn's
    k-NN estimator, seeded); redundancy is the mean |Pearson correlation| with the units
    already kept. A unit whose activation is constant carries nothing a bias could not, so it
    counts as fully redundant (|correlation| 1). Ties go to the lower index.
    """
    from sklearn.feature_selection import mutual_info_classif

    acts = np.asarray(acts, dtype=np.float64)
    # MI in nats and |correlation| in [0, 1] are subtracted as they are (MID, not MIQ).
    relevance = mutual_info_classif(acts, labels, random_state=seed)
    std = acts.std(axis=0)
    live = std > 0
    corr = np.ones((acts.shape[1], acts.shape[1]))
    if live.sum() > 1:
        corr[np.ix_(live, live)] = np.abs(np.corrcoef(acts[:, live], rowvar=False))
    kept = [int(np.argmax(relevance))]  # the first unit: relevance alone
    redundancy_sum = corr[kept[0]].copy()  # running sum of |corr| with the kept units
    for _ in range(1, n_keep):
        score = relevance - redundancy_sum / len(kept)
        score[kept] = -np.inf
        kept.append(int(np.argmax(score)))  # argmax: the first of equal scores
        redundancy_sum += corr[kept[-1]]
    return np.array(sorted(kept), dtype=np.int64)


def mrmr(
    weights: dict[str, torch.Tensor], sparsity: float, ctx: MaskContext
) -> dict[str, torch.Tensor]:
    """Structured, hidden layers only: keep the units mRMR selects from their activations
    (``ctx.activations``), prune the rest (whole rows/filters). The output layer is kept."""
    hidden = tuple(n for n in weights if n != ctx.output_layer)
    out = {n: torch.ones_like(w) for n, w in weights.items()}
    if not hidden or sparsity == 0:
        return out
    if ctx.activations is None:
        raise ValueError("the mrmr criterion needs MaskContext.activations")
    acts, labels = ctx.activations(hidden)
    for name in hidden:
        w = weights[name]
        units = w.shape[0]
        n_keep = units - _count(sparsity, units, units - 1)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=ctx.generator))
        keep = torch.zeros(units, dtype=w.dtype)
        keep[torch.as_tensor(mrmr_keep(acts[name], labels, n_keep, seed))] = 1
        out[name] = _expand(keep, w, 0)
    return out


# The criteria by config name (config.PRUNE_CRITERIA lists the same names).
CRITERIA: dict[str, CriterionFn] = {
    "magnitude": magnitude,
    "global-magnitude": global_magnitude,
    "random": random_mask,
    "l1-neuron": _norm_criterion(0, 1),
    "l2-neuron": _norm_criterion(0, 2),
    "l1-channel": _norm_criterion(1, 1),
    "l2-channel": _norm_criterion(1, 2),
    "mrmr": mrmr,
}
