"""The golden interpreter: numpy, bit-exact, the reference every other level is compared to.

Integers are held in int64; ``verify`` guarantees every value fits in MAX_BITS < 64 bits, and
numpy's integer matmul is exact (no floating-point BLAS is involved).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwprune.ir.graph import (
    MAX_BITS,
    Dense,
    Graph,
    Input,
    Max,
    Op,
    Requant,
    Rounding,
    Threshold,
)


def dense_matrix(op: Dense) -> tuple[np.ndarray, np.ndarray]:
    """The (n_out, n_in) int64 weight matrix and the int64 bias vector of a Dense op."""
    w = np.zeros((op.n_out, op.n_in), dtype=np.int64)
    b = np.zeros(op.n_out, dtype=np.int64)
    for i, row in enumerate(op.rows):
        w[i, list(row.cols)] = row.weights
        b[i] = row.bias
    return w, b


def _dense(op: Dense, x: np.ndarray) -> np.ndarray:
    w, b = dense_matrix(op)
    return x @ w.T + b


def requant_array(x: np.ndarray, shift: int, lo: int, hi: int, rounding: Rounding) -> np.ndarray:
    """Vectorised ``graph.shift_round`` followed by the clip."""
    if shift <= 0:
        y = x << -shift
    else:
        y = x >> shift  # arithmetic shift: floor
        if rounding is Rounding.HALF_EVEN:
            rem = x - (y << shift)
            half = 1 << (shift - 1)
            y = y + ((rem > half) | ((rem == half) & (y & 1 == 1)))
    return np.clip(y, lo, hi)


def _requant(op: Requant, x: np.ndarray) -> np.ndarray:
    return requant_array(x, op.shift, op.lo, op.hi, op.rounding)


def _max(op: Max, x: np.ndarray) -> np.ndarray:
    # Groups may differ in size: pad each with its own first member, which leaves its max
    # unchanged, so one fancy-indexed (batch, n_out, longest) gather does every window.
    width = max(len(grp) for grp in op.groups)
    idx = np.array([grp + (grp[0],) * (width - len(grp)) for grp in op.groups], dtype=np.int64)
    return x[:, idx].max(axis=2)


# Padding for threshold lists of unequal length: no int64 input reaches it (verify keeps
# values within MAX_BITS < 63 bits), so a padded slot never counts.
_NEVER = np.iinfo(np.int64).max


def _threshold(op: Threshold, x: np.ndarray) -> np.ndarray:
    width = max((len(ts) for ts in op.thresholds), default=0)
    # Thresholds are Python ints and may lie far outside int64; clipping them to int64's
    # bounds keeps every comparison's outcome, since inputs are well inside those bounds.
    lo, hi = int(np.iinfo(np.int64).min), int(_NEVER)
    t = np.full((len(op.thresholds), width), _NEVER, dtype=np.int64)
    for i, ts in enumerate(op.thresholds):
        t[i, : len(ts)] = [min(max(v, lo), hi) for v in ts]
    count = (x[:, :, None] >= t[None, :, :]).sum(axis=2, dtype=np.int64)
    if max(abs(op.base), op.step) >= 1 << MAX_BITS:
        # A base or step beyond int64 (the result still fits: verify checks its range).
        return (op.base + op.step * count.astype(object)).astype(np.int64)
    return op.base + op.step * count


# op kind -> evaluation; Input ops are fed, not evaluated.
EVALUATORS: dict[type[Op], Callable] = {
    Dense: _dense,
    Requant: _requant,
    Max: _max,
    Threshold: _threshold,
}


def run(g: Graph, feeds: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
    """Evaluate a graph on a batch; returns every op's output, shape (batch, size), int64.

    ``feeds`` maps input names to integer arrays, or is one array for a single-input graph.
    Inputs outside their declared range are rejected: the hardware would not see them.
    """
    if isinstance(feeds, np.ndarray):
        (inp,) = g.inputs
        feeds = {inp.name: feeds}
    vals: dict[str, np.ndarray] = {}
    for op in g.ops:
        if isinstance(op, Input):
            x = np.asarray(feeds[op.name])
            if x.ndim != 2 or x.shape[1] != op.size:
                raise ValueError(
                    f"input {op.name}: expected shape (batch, {op.size}), got {x.shape}"
                )
            if x.size and (x.min() < op.range.lo or x.max() > op.range.hi):
                raise ValueError(f"input {op.name}: values outside [{op.range.lo}, {op.range.hi}]")
            vals[op.name] = x.astype(np.int64)
        else:
            vals[op.name] = EVALUATORS[type(op)](op, *(vals[i] for i in op.inputs))
    return vals


def outputs(g: Graph, feeds: dict[str, np.ndarray] | np.ndarray) -> np.ndarray:
    """The graph's (single) output for a batch of inputs."""
    (out,) = g.outputs
    return run(g, feeds)[out]


def stimulus_vectors(g: Graph, n_random: int, seed: int) -> np.ndarray:
    """Corner vectors (all minimum, all maximum, zeros where in range) then seeded random ones."""
    (inp,) = g.inputs
    lo, hi = inp.range.lo, inp.range.hi
    corners = [np.full(inp.size, lo), np.full(inp.size, hi)]
    if lo <= 0 <= hi and lo != 0:
        corners.append(np.zeros(inp.size))
    rng = np.random.default_rng(seed)
    rand = rng.integers(lo, hi, size=(n_random, inp.size), endpoint=True)
    return np.vstack([np.array(corners, dtype=np.int64), rand.astype(np.int64)])
