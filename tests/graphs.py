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
