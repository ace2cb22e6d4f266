"""The mac-dsp kernel (one DSP multiplier per weight that is not +-2^k) and auto's DSP budget.

Expected values: the golden interpreter (RTL), yosys' own DSP48E1 count, and the estimator's
per-kernel figures (auto must stay within the budget and never spend more LUTs)."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from hwprune.boards import get_board
from hwprune.codegen.cocotb_tb import write_rtl, write_vectors
from hwprune.codegen.verilog import count_product_terms, emit_verilog
from hwprune.estimate import layer_costs
from hwprune.estimate.costs import choose_kernels
from hwprune.hw.kernels import lower_dense
from hwprune.ir import golden
from hwprune.ir.passes import optimize
from hwprune.sim.rtl import run_rtl
from tests.graphs import random_mlp
from tests.hw.test_mac import evaluate


def _g(kernel="mac-dsp", seed=4, sizes=(8, 6, 4)):
    g = optimize(random_mlp(seed, sizes=sizes, sparsity=0.4))
    return replace(g, meta={"kernel": kernel, "pipeline": 4, "board": "pynq-z2"})


def test_one_multiplier_per_weight_not_a_power_of_two():
    g = _g()
    for op in g.dense_ops():
        net = lower_dense(g, op)
        mult = {(n.row, n.col): n.value for n in net.of_kind("mult")}
        wired = {(n.row, n.col): n.value for n in net.of_kind("product")}
        for i, row in enumerate(op.rows):
            for c, w in zip(row.cols, row.weights, strict=True):
                assert ((i, c) in mult) == bool(abs(w) & (abs(w) - 1)), (i, c, w)
                assert (i, c) in mult or (i, c) in wired
        x = golden.stimulus_vectors(g, 50, 0)
        vals = golden.run(g, x)
        got = evaluate(net, vals[op.inputs[0]])
        want = vals[op.name]
        assert all(np.array_equal(got[t], want[:, i]) for i, t in enumerate(net.tops))


def test_product_terms_are_the_nonzero_weights():
    g = _g()
    counts = count_product_terms("".join(emit_verilog(g).values()))
    assert counts == {op.name: op.n_terms for op in g.dense_ops()}


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
def test_rtl_bit_exact(tmp_path):
    g = _g()
    write_rtl(g, tmp_path / "rtl")
    write_vectors(tmp_path / "v.npz", g, golden.stimulus_vectors(g, 80, seed=2))
    r = run_rtl(tmp_path / "rtl", tmp_path / "w", tmp_path / "v.npz", "icarus")
    assert r.passed, r.first_mismatch


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_yosys_maps_each_multiplier_to_one_dsp(tmp_path):
    from hwprune.estimate.synth import synth_yosys

    g = _g()
    write_rtl(g, tmp_path / "rtl")
    syn = synth_yosys(tmp_path / "rtl", get_board("pynq-z2"), tmp_path / "synth", timeout_s=600)
    est = layer_costs(g)
    assert syn["dsp"] == sum(c.dsp for c in est) > 0
    assert syn["lut"] <= sum(c.lut for c in est)  # the adder tree is an upper bound


@pytest.mark.parametrize("budget", [0, 5, 40, 10_000])
def test_auto_stays_within_the_dsp_budget(budget):
    g = _g("auto", seed=9, sizes=(16, 12, 8, 5))
    choice = choose_kernels(g, dsp_budget=budget)
    used = sum(c["dsp"][c["kernel"]] for c in choice.values())
    assert used <= budget
    no_dsp = sum(min(v for k, v in c["lut"].items() if c["dsp"][k] == 0) for c in choice.values())
    assert sum(c["lut"][c["kernel"]] for c in choice.values()) <= no_dsp
    if budget == 0:
        assert used == 0
    if budget == 10_000:  # every layer where a DSP kernel saves LUTs takes it
        for c in choice.values():
            assert c["lut"][c["kernel"]] == min(c["lut"].values())
