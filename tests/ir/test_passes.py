"""IR passes keep the golden function unchanged and establish their invariants."""

from dataclasses import replace

import numpy as np

from hwprune.ir import golden
from hwprune.ir.graph import Dense, Graph, Input, IntRange, Requant, Row, verify
from hwprune.ir.passes import optimize, remove_dead_neurons, unread_inputs
from tests.graphs import random_mlp


def _same_function(a: Graph, b: Graph, seed: int = 0) -> None:
    x = golden.stimulus_vectors(a, 500, seed)
    np.testing.assert_array_equal(golden.outputs(a, x), golden.outputs(b, x))


def test_optimize_preserves_function_on_random_graphs():
    for seed in range(6):
        g = random_mlp(seed=seed, sizes=(20, 16, 12, 6), sparsity=0.85)
        h = optimize(g)
        verify(h)
        _same_function(g, h, seed)
        assert sum(op.n_terms for op in h.dense_ops()) <= sum(op.n_terms for op in g.dense_ops())


def test_hand_worked_constant_and_dead_neurons():
    # x: 3 inputs in [0, 3]. Layer d0: row 0 = 2*x0, row 1 = constant 7 (no terms),
    # row 2 = x2 (never read by d1). r0 = clip(v >> 1, 0, 15): row 1 is 7 >> 1 = 3.
    # d1 (output): y = 5*r0[0] + 4*r0[1] + 1 = 5*r0[0] + 13.
    g = Graph(
        (
            Input("x", (), 3, IntRange(0, 3), 0),
            Dense("d0", ("x",), 3, (Row(0, (0,), (2,)), Row(7, (), ()), Row(0, (2,), (1,))), 0),
            Requant("r0", ("d0",), 1, 0, 15),
            Dense("d1", ("r0",), 3, (Row(1, (0, 1), (5, 4)),), 0),
        ),
        ("d1",),
    )
    h = optimize(g)
    verify(h)
    d0, d1 = h.op("d0"), h.op("d1")
    assert d0.rows == (Row(0, (0,), (2,)),)  # constant and unread neurons are gone
    assert d1.rows == (Row(13, (0,), (5,)),)  # 4 * 3 folded into the bias
    assert unread_inputs(h) == {"x": [1, 2]}
    _same_function(g, h)


def test_dead_layer_keeps_one_element():
    g = random_mlp(seed=3, sizes=(8, 4, 3))
    d1 = g.op("dense1")
    dead = replace(d1, rows=tuple(Row(r.bias, (), ()) for r in d1.rows))
    g = replace(g, ops=tuple(dead if op.name == "dense1" else op for op in g.ops))
    h = remove_dead_neurons(g)
    verify(h)
    assert h.values["dense0"].size == 1
    _same_function(g, h)
