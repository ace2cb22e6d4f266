"""Thresholds as multiply-add, shift and clip (hwprune.ir.affine) and the choice by cost.

Expected values: the count of thresholds reached, by exhaustion over every integer of the
range (the definition of a Threshold), hand-worked fits, and the golden interpreter of the
graph before the rewrite.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from hwprune.codegen.cocotb_tb import write_rtl, write_vectors
from hwprune.estimate import layer_costs
from hwprune.estimate.choices import choose, choose_requant
from hwprune.ir import golden
from hwprune.ir.affine import (
    AffineFit,
    fit_element,
    fold_threshold,
    layer_fit,
    prove,
    split_threshold,
)
from hwprune.ir.graph import Dense, Graph, Input, IntRange, Requant, Row, Threshold, verify
from hwprune.sim.rtl import run_rtl


def _count(ts, v):
    return sum(1 for t in ts if v >= t)


def _exhaustive(ts, r, f: AffineFit) -> bool:
    return all(
        _count(ts, v) == min(max((f.m * v + f.b) >> f.s, 0), f.n) for v in range(r.lo, r.hi + 1)
    )


def _bn_thresholds(rng, n_levels: int, r: IntRange) -> tuple[int, ...]:
    """The thresholds of clip(round(a * x + c), 0, n_levels) with a random float a > 0 and c:
    what a BatchNorm and a uniform quantizer fold to. t_k = the least integer x reaching k."""
    a = float(rng.uniform(0.05, 30.0))
    c = float(rng.uniform(-20, 20))
    xs = np.arange(r.lo - 2000, r.hi + 2000)
    y = np.clip(np.floor(a * xs + c + 0.5), 0, n_levels)
    return tuple(
        int(xs[np.argmax(y >= k)]) if (y >= k).any() else r.hi + 1 for k in range(1, n_levels + 1)
    )


def test_hand_worked_fit():
    # thresholds 3, 5, 7 on [0, 10]: c(x) = floor((x - 1) / 2), clipped to [0, 3]
    f = fit_element((3, 5, 7), IntRange(0, 10))
    assert (f.m, f.b, f.s, f.n) == (1, -1, 1, 3)
    assert prove((3, 5, 7), IntRange(0, 10), f)


def test_no_affine_form():
    # one step per unit, then one after eight: no floor of a line has both spacings
    assert fit_element((1, 2, 10), IntRange(0, 20)) is None


@pytest.mark.parametrize("seed", range(12))
def test_fits_of_batchnorm_thresholds_are_exact(seed):
    rng = np.random.default_rng(seed)
    lo = int(rng.integers(-300, 50))
    r = IntRange(lo, lo + int(rng.integers(1, 400)))
    ts = _bn_thresholds(rng, int(rng.choice([1, 3, 7, 15, 255])), r)
    f = fit_element(ts, r)
    assert f is not None
    assert _exhaustive(ts, r, f)


@pytest.mark.parametrize("seed", range(12))
def test_any_fit_of_random_thresholds_is_exact(seed):
    rng = np.random.default_rng(100 + seed)
    r = IntRange(-40, 40)
    ts = tuple(sorted(int(v) for v in rng.integers(-50, 50, size=int(rng.integers(1, 6)))))
    f = fit_element(ts, r)
    if f is not None:
        assert _exhaustive(ts, r, f)
    # prove() agrees with exhaustion on arbitrary (m, b, s)
    for _ in range(30):
        cand = AffineFit(
            int(rng.integers(0, 9)), int(rng.integers(-64, 64)), int(rng.integers(0, 4)), len(ts)
        )
        assert prove(ts, r, cand) == _exhaustive(ts, r, cand), cand


def _net(seed: int, n_levels: int = 15, step: int = 1) -> Graph:
    """Input -> Dense -> Threshold (BatchNorm-like thresholds) -> Dense."""
    rng = np.random.default_rng(seed)
    n_in, n_mid, n_out = 12, 8, 3
    ops = [Input("x", (), n_in, IntRange(0, 15), -4)]
    rows = []
    for _ in range(n_mid):
        w = rng.integers(-3, 4, size=n_in)
        w[rng.random(n_in) < 0.4] = 0
        cols = tuple(int(c) for c in np.flatnonzero(w))
        rows.append(Row(int(rng.integers(-20, 20)), cols, tuple(int(w[c]) for c in cols)))
    ops.append(Dense("d0", ("x",), n_in, tuple(rows), -2))
    g0 = Graph(tuple(ops), ("d0",))
    acc = g0.values["d0"]
    ths = tuple(_bn_thresholds(rng, n_levels, r) for r in acc.ranges)
    ops.append(Threshold("t0", ("d0",), ths, 0, step, -3))
    rows = []
    for _ in range(n_out):
        w = rng.integers(-3, 4, size=n_mid)
        cols = tuple(int(c) for c in np.flatnonzero(w))
        rows.append(Row(0, cols, tuple(int(w[c]) for c in cols)))
    ops.append(Dense("d1", ("t0",), n_mid, tuple(rows), -2))
    g = Graph(tuple(ops), ("d1",), meta={"kernel": "mac", "pipeline": 4})
    verify(g)
    return g


@pytest.mark.parametrize("rewrite", [split_threshold, fold_threshold])
@pytest.mark.parametrize("seed", range(4))
def test_rewrites_keep_every_output(rewrite, seed):
    g = _net(seed)
    new = rewrite(g, "t0")
    assert new is not None
    verify(new)
    x = golden.stimulus_vectors(g, 500, seed)
    before, after = golden.run(g, x), golden.run(new, x)
    assert np.array_equal(before["t0"], after["t0"])
    assert np.array_equal(before["d1"], after["d1"])
    assert isinstance(new.op("t0"), Requant)
    assert new.values["t0"] == g.values["t0"]  # same ranges and exponent downstream


def test_fold_only_into_a_dense_read_by_the_threshold_alone():
    g = _net(0)
    assert fold_threshold(replace(g, outputs=("d1", "d0")), "t0") is None
    assert split_threshold(replace(g, outputs=("d1", "d0")), "t0") is not None


def test_step_other_than_one_keeps_thresholds():
    g = _net(1, n_levels=1, step=2)
    assert layer_fit(g, g.op("t0")) is None
    assert choose_requant(g).meta["requant_choice"]["t0"]["form"] == "thresholds"


@pytest.mark.parametrize("kernel", ["mac", "adder-graph", "auto"])
def test_choice_is_the_cheapest_by_the_estimate(kernel):
    g = _net(2, n_levels=255)
    g = replace(g, meta={**g.meta, "kernel": kernel})
    chosen = choose(g)
    rec = chosen.meta["requant_choice"]["t0"]
    assert rec["lut"][rec["form"]] == min(rec["lut"].values())
    assert set(rec["lut"]) == {"thresholds", "multiply-add-shift-clip", "folded"}
    assert sum(c.lut for c in layer_costs(chosen)) == rec["lut"][rec["form"]]
    # 255 BatchNorm thresholds per element: a multiply-add is far cheaper than comparators
    assert rec["form"] != "thresholds"


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
@pytest.mark.parametrize("rewrite", [split_threshold, fold_threshold])
def test_rtl_bit_exact(tmp_path, rewrite):
    g = rewrite(_net(3), "t0")
    write_rtl(g, tmp_path / "rtl")
    write_vectors(tmp_path / "vectors.npz", g, golden.stimulus_vectors(g, 80, seed=1))
    res = run_rtl(tmp_path / "rtl", tmp_path / "work", tmp_path / "vectors.npz", "icarus")
    assert res.passed, res.first_mismatch
