"""Seeded random sparse integer graphs for tests of emitters, simulators and estimators.

They are built directly in the IR, independent of training and import, so a codegen test does
not depend on Brevitas. Expected values always come from the golden interpreter.
"""

from __future__ import annotations

import numpy as np

from hwprune.ir.graph import Dense, Graph, Input, IntRange, Requant, Rounding, Row, verify


def random_mlp(
    seed: int = 0,
    sizes: tuple[int, ...] = (16, 12, 8, 5),
    sparsity: float = 0.7,
    in_signed: bool = False,
    in_bits: int = 8,
    w_bits: int = 6,
    act_bits: int = 8,
    rounding: Rounding = Rounding.FLOOR,
) -> Graph:
    """A Dense/Requant chain with the given layer sizes; the last Dense is the output."""
    rng = np.random.default_rng(seed)
    lo, hi = (
        (-(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1) if in_signed else (0, (1 << in_bits) - 1)
    )
    ops: list = [Input("x", (), sizes[0], IntRange(lo, hi), -in_bits)]
    wmax = (1 << (w_bits - 1)) - 1
    prev = "x"
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        rows = []
        for _ in range(n_out):
            w = rng.integers(-wmax, wmax, size=n_in, endpoint=True)
            w[rng.random(n_in) < sparsity] = 0
            cols = tuple(int(c) for c in np.flatnonzero(w))
            rows.append(Row(int(rng.integers(-500, 500)), cols, tuple(int(w[c]) for c in cols)))
        name = f"dense{k}"
        ops.append(Dense(name, (prev,), n_in, tuple(rows), -(w_bits - 1)))
        prev = name
        if k < len(sizes) - 2:
            name = f"act{k}"
            ops.append(
                Requant(name, (prev,), int(rng.integers(3, 7)), 0, (1 << act_bits) - 1, rounding)
            )
            prev = name
    g = Graph(tuple(ops), (prev,))
    verify(g)
    return g


def _pool_groups(c: int, h: int, w: int, k: int) -> tuple[tuple[int, ...], ...]:
    """k x k, stride-k windows over a flat (c, h, w) tensor in C order."""
    groups = []
    for ch in range(c):
        for i in range(0, h - k + 1, k):
            for j in range(0, w - k + 1, k):
                groups.append(
                    tuple(ch * h * w + (i + a) * w + (j + b) for a in range(k) for b in range(k))
                )
    return tuple(groups)


def random_cnn(
    seed: int = 0,
    channels: int = 3,
    side: int = 6,
    n_out: int = 4,
    sparsity: float = 0.5,
    bipolar: bool = True,
    rounding: Rounding = Rounding.FLOOR,
) -> Graph:
    """Input -> Dense (a conv lowered to rows) -> Requant -> Max (2x2 pooling) -> Threshold
    (bipolar sign, or a 3-level multi-threshold) -> Dense output: every op kind, small."""
    from hwprune.ir.graph import Max, Threshold

    rng = np.random.default_rng(seed)
    n_in = side * side
    ops: list = [Input("x", (), n_in, IntRange(0, 15), -4)]
    rows = []
    for _ in range(channels * n_in):  # one row per output pixel, 3x3-ish random windows
        w = rng.integers(-7, 7, size=n_in, endpoint=True)
        w[rng.random(n_in) < max(sparsity, 1 - 9 / n_in)] = 0
        cols = tuple(int(c) for c in np.flatnonzero(w))
        rows.append(Row(int(rng.integers(-50, 50)), cols, tuple(int(w[c]) for c in cols)))
    ops.append(Dense("conv0", ("x",), n_in, tuple(rows), -3))
    ops.append(Requant("act0", ("conv0",), 2, -8, 7, rounding))
    groups = _pool_groups(channels, side, side, 2)
    ops.append(Max("pool0", ("act0",), groups))
    n_pool = len(groups)
    if bipolar:
        th = Threshold("sign0", ("pool0",), ((0,),) * n_pool, -1, 2, 0)
    else:
        ts = tuple(tuple(sorted(int(t) for t in rng.integers(-6, 6, size=3))) for _ in groups)
        th = Threshold("mt0", ("pool0",), ts, -1, 1, -1)
    ops.append(th)
    rows = []
    for _ in range(n_out):
        w = rng.integers(-3, 3, size=n_pool, endpoint=True)
        w[rng.random(n_pool) < sparsity] = 0
        cols = tuple(int(c) for c in np.flatnonzero(w))
        rows.append(Row(int(rng.integers(-9, 9)), cols, tuple(int(w[c]) for c in cols)))
    ops.append(Dense("dense1", (th.name,), n_pool, tuple(rows), -2))
    g = Graph(tuple(ops), ("dense1",))
    verify(g)
    return g


def random_threshold_mlp(
    seed: int = 0,
    sizes: tuple[int, ...] = (16, 12, 8, 5),
    n_thresholds: int = 3,
    w_bits: int = 2,
    sparsity: float = 0.8,
    bipolar: bool = False,
) -> Graph:
    """A FINN-style MLP: 2-bit unsigned input, Dense layers of ``w_bits`` weights, each but the
    last followed by a Threshold of ``n_thresholds`` sorted integer thresholds per element
    drawn from its accumulator's range (BatchNorm and the activation quantizer folded), output
    0 .. n_thresholds; the last Dense is the output. ``bipolar``: a BNN as FINN's TFC-w1a1,
    inputs and activations -1 or +1 (a sign: one threshold, base -1, step 2), weights +-1."""
    from hwprune.ir.graph import Threshold

    rng = np.random.default_rng(seed)
    ops: list = [Input("x", (), sizes[0], IntRange(-1, 1) if bipolar else IntRange(0, 3), 0)]
    wmax = (1 << (w_bits - 1)) - 1 if w_bits > 1 else 1
    prev = "x"
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        rows = []
        for _ in range(n_out):
            w = rng.integers(-wmax, wmax, size=n_in, endpoint=True)
            if bipolar:
                w = rng.choice(np.array([-1, 1]), size=n_in)
            w[rng.random(n_in) < sparsity] = 0
            cols = tuple(int(c) for c in np.flatnonzero(w))
            rows.append(Row(int(rng.integers(-8, 8)), cols, tuple(int(w[c]) for c in cols)))
        name = f"dense{k}"
        ops.append(Dense(name, (prev,), n_in, tuple(rows), 0))
        prev = name
        if k < len(sizes) - 2:
            acc = Graph(tuple(ops), (prev,)).values[prev]
            ts = []
            for r in acc.ranges:
                lo, hi = r.lo, max(r.hi, r.lo + 1)
                n = 1 if bipolar else n_thresholds
                ts.append(tuple(sorted(int(t) for t in rng.integers(lo, hi, size=n))))
            name = f"thr{k}"
            base, step = (-1, 2) if bipolar else (0, 1)
            ops.append(Threshold(name, (prev,), tuple(ts), base, step, 0))
            prev = name
    g = Graph(tuple(ops), (prev,))
    verify(g)
    return g
