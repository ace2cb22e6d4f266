"""Thresholds by bisection (monotonic chains with too many integers to evaluate each one)
equal thresholds by exhaustion, where qonnx evaluates every integer: the independent
reference."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from hwprune.errors import HwpruneError
from hwprune.frontend.qonnx import chains

OPSETS = [helper.make_opsetid("", 13), helper.make_opsetid("qonnx.custom_op.general", 1)]


def _chain(rng, c: int, bits: int, signed: bool):
    """start -> Mul (per-element, some negative) -> Add -> BatchNorm (one negative gamma)
    -> Relu (when unsigned) -> Quant (per-channel scale)."""
    consts = {
        "k": rng.uniform(0.2, 1.5, c) * rng.choice([-1, 1], c),
        "b": rng.normal(0, 3, c),
        "g": np.concatenate([[-0.7], rng.uniform(0.3, 2.0, c - 1)]),
        "beta": rng.normal(0, 1, c),
        "mean": rng.normal(0, 1, c),
        "var": rng.uniform(0.5, 2.0, c),
        "qs": rng.uniform(0.05, 0.4, c),
        "qz": 0.0,
        "qb": float(bits),
    }
    consts = {k: np.asarray(v, dtype=np.float32) for k, v in consts.items()}
    nodes = [
        helper.make_node("Mul", ["s", "k"], ["t1"]),
        helper.make_node("Add", ["t1", "b"], ["t2"]),
        helper.make_node("BatchNormalization", ["t2", "g", "beta", "mean", "var"], ["t3"]),
    ]
    last = "t3"
    if not signed:
        nodes.append(helper.make_node("Relu", ["t3"], ["t4"]))
        last = "t4"
    nodes.append(
        helper.make_node(
            "Quant",
            [last, "qs", "qz", "qb"],
            ["y"],
            domain="qonnx.custom_op.general",
            signed=int(signed),
            narrow=0,
            rounding_mode="ROUND",
        )
    )
    return nodes, consts


@pytest.mark.parametrize("signed", [True, False])
def test_bisection_equals_exhaustion(signed):
    rng = np.random.default_rng(7)
    c, bits = 6, 3
    nodes, consts = _chain(rng, c, bits, signed)
    scale = rng.uniform(0.001, 0.01, c)
    ranges = [(-3000 - 100 * i, 2500 + 77 * i) for i in range(c)]
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    qs = consts["qs"].astype(np.float64)
    shape = (c,)
    # Reference: every integer of every element evaluated by qonnx.
    cand = chains.candidates(ranges, "test")
    levels = chains.quant_levels(nodes, "s", cand, scale, qs, consts, OPSETS, "test", shape)
    want, dirs_seen = [], []
    for k, (lo, hi) in enumerate(ranges):
        lv = levels[: hi - lo + 1, k]
        d = chains.monotone_direction(lv)
        dirs_seen.append(d)
        if d < 0:
            lo, lv = -hi, lv[::-1]
        want.append(chains.thresholds_for(lo, lv, qmin, 1, qmax - qmin))
    dirs = chains.directions(nodes, "s", scale, consts, shape)
    assert dirs is not None
    # The analytic directions agree wherever the levels are not constant.
    for d, seen in zip(dirs, dirs_seen):
        assert seen in (d, 1)
    got = chains.search_thresholds(
        nodes, "s", ranges, dirs, scale, qs, qmin, 1, qmax - qmin, consts, OPSETS, "t", shape
    )
    assert got == want


def test_non_monotonic_op_falls_back():
    nodes = [helper.make_node("Abs", ["s"], ["t"])]
    assert chains.directions(nodes, "s", np.ones(2), {}, (2,)) is None


def test_end_levels_off_grid_fail_loudly():
    # A decreasing chain claimed increasing: the end check catches it.
    rng = np.random.default_rng(0)
    nodes, consts = _chain(rng, 2, 3, True)
    consts["k"] = np.abs(consts["k"])
    consts["g"] = np.abs(consts["g"])
    with pytest.raises(HwpruneError, match="monotonic"):
        chains.search_thresholds(
            nodes,
            "s",
            [(-5000, 5000)] * 2,
            np.array([-1, -1]),
            np.full(2, 0.01),
            consts["qs"].astype(np.float64),
            -4,
            1,
            7,
            consts,
            OPSETS,
            "t",
            (2,),
        )
