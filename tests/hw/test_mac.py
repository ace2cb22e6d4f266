"""The mac kernel's netlist: one product node per nonzero weight and nothing for a zero,
exact ranges, and the netlist evaluated node by node equals the golden matrix product."""

import numpy as np
import pytest

from hwprune.hw.csd import trailing_zeros
from hwprune.hw.kernels import lower_dense
from hwprune.hw.schedule import schedule
from hwprune.ir import golden
from hwprune.ir.passes import optimize
from tests.graphs import random_cnn, random_mlp

GRAPHS = {
    "mlp": lambda: random_mlp(1, (24, 20, 9, 4), sparsity=0.6),
    "mlp_dense": lambda: random_mlp(2, (10, 8, 3), sparsity=0.0),
    "mlp_sparse": lambda: random_mlp(3, (40, 30, 6), sparsity=0.95, in_signed=True),
    "cnn": lambda: random_cnn(4),
    "wide_two_banks": lambda: random_mlp(5, (64, 6), sparsity=0.0),  # 65 operands: depth 7
}


def evaluate(net, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's value on input rows ``x`` (n, size), from the netlist alone."""
    val: dict[str, np.ndarray] = {}
    for n in net.nodes:
        if n.kind == "const":
            val[n.name] = np.full(len(x), n.value, dtype=np.int64)
        elif n.kind == "input":
            val[n.name] = x[:, n.col]
        elif n.kind in ("product", "mult"):
            val[n.name] = x[:, n.col] * n.value
        elif n.kind == "add":
            val[n.name] = val[n.args[0]] + val[n.args[1]]
        elif n.kind == "shiftadd":
            a = val[n.args[0]] << n.shifts[0]
            b = val[n.args[1]] << n.shifts[1]
            val[n.name] = a - b if n.sub else a + b
        elif n.kind == "shift":
            k = n.shifts[0]
            v = val[n.args[0]]
            assert k >= 0 or np.all(v % (1 << -k) == 0), n.name  # only zeros are dropped
            val[n.name] = v << k if k >= 0 else v >> -k
        else:
            assert n.kind == "reg", n.kind
            val[n.name] = val[n.args[0]]
        assert np.all((n.range.lo <= val[n.name]) & (val[n.name] <= n.range.hi)), n.name
        assert np.all(val[n.name] % (1 << n.tz) == 0), n.name  # known-zero low bits hold
    return val


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_netlist_computes_the_layer(name):
    g = optimize(GRAPHS[name]())
    rng = np.random.default_rng(0)
    for op in g.dense_ops():
        net = lower_dense(g, op)
        x_range = g.values[op.inputs[0]]
        lo = np.array([r.lo for r in x_range.ranges])
        hi = np.array([r.hi for r in x_range.ranges])
        x = rng.integers(lo, hi + 1, size=(200, len(lo)))
        x = np.concatenate([x, lo[None], hi[None]])
        w, b = golden.dense_matrix(op)
        val = evaluate(net, x)
        got = np.stack([val[t] for t in net.tops], axis=1)
        assert np.array_equal(got, x @ w.T + b)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_one_product_per_nonzero_weight(name):
    g = optimize(GRAPHS[name]())
    for op in g.dense_ops():
        net = lower_dense(g, op)
        products = [(n.row, n.col, n.value) for n in net.of_kind("product")]
        want = [(i, c, w) for i, row in enumerate(op.rows) for c, w in zip(row.cols, row.weights)]
        assert sorted(products) == sorted(want) and len(products) == op.n_terms
        assert all(v != 0 for _, _, v in products)
        assert all(n.tz == trailing_zeros(n.value) for n in net.of_kind("product"))


def test_schedule_registers_are_the_netlist_registers():
    g = optimize(GRAPHS["wide_two_banks"]())
    by_op = {ls.op: ls for ls in schedule(g)}
    for op in g.dense_ops():
        net = lower_dense(g, op)
        ls = by_op[op.name]
        assert ls.depth == net.depth and len(ls.stages) == len(net.bank_levels)
        regs = sum(n.range.bits for n in net.of_kind("reg"))
        final = sum(r.bits for r in g.values[ls.fused or op.name].ranges)
        assert ls.ff == regs + final
        assert regs > 0 and len(ls.stages) == 2
