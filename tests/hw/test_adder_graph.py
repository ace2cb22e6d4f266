"""The adder-graph kernel (alkaid's constant-matrix solution, emitted in hwprune's netlist):
the netlist evaluated node by node equals the golden matrix product, registers delay values
to the stage that reads them, the solution shares adders (fewer than mac's), and wide
layers are solved in blocks."""

import shutil
from dataclasses import replace

import numpy as np
import pytest

from hwprune.codegen.cocotb_tb import write_rtl, write_vectors
from hwprune.codegen.manifest import manifest
from hwprune.estimate.costs import netlist_luts
from hwprune.hw import adder_graph
from hwprune.hw.kernels import lower_dense
from hwprune.ir import golden
from hwprune.ir.passes import optimize
from hwprune.sim.rtl import run_rtl
from tests.graphs import random_cnn, random_mlp
from tests.hw.test_mac import evaluate

GRAPHS = {
    "mlp": lambda: random_mlp(1, (24, 20, 9, 4), sparsity=0.6),
    "mlp_dense_signed": lambda: random_mlp(2, (16, 8, 3), sparsity=0.0, in_signed=True),
    "cnn": lambda: random_cnn(4),
    "wide": lambda: random_mlp(6, (150, 12), sparsity=0.5),  # 3 blocks of 64 inputs
    # dense2 reads an input whose range is {0} with nonzero weights: the solver drops it
    "zero_range_input": lambda: random_mlp(
        190, (16, 64, 32, 32, 5), sparsity=0.9, in_signed=True, in_bits=16, w_bits=6
    ),
}


def with_kernel(g, kernel, per_stage=4):
    return replace(g, meta={**g.meta, "kernel": kernel, "pipeline": per_stage})


@pytest.mark.parametrize("per_stage", [0, 1, 4])
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_netlist_computes_the_layer(name, per_stage):
    g = with_kernel(optimize(GRAPHS[name]()), "adder-graph", per_stage)
    rng = np.random.default_rng(1)
    for op in g.dense_ops():
        net = lower_dense(g, op)
        xr = g.values[op.inputs[0]].ranges
        lo, hi = np.array([r.lo for r in xr]), np.array([r.hi for r in xr])
        x = np.concatenate([rng.integers(lo, hi + 1, size=(200, len(lo))), lo[None], hi[None]])
        w, b = golden.dense_matrix(op)
        val = evaluate(net, x)
        got = np.stack([val[t] for t in net.tops], axis=1)
        assert np.array_equal(got, x @ w.T + b)
        # every register bank but the last closes at a level the pipeline allows
        assert len(net.bank_levels) == (1 if per_stage == 0 else -(-net.depth // per_stage) or 1)
        # a value read in a later stage than it was made goes through that many registers
        for n in net.nodes:
            if n.kind == "reg":
                assert 0 <= n.stage < len(net.bank_levels) - 1


def test_shares_adders_and_costs_less_than_mac():
    g = optimize(random_mlp(7, (48, 32), sparsity=0.3, w_bits=6))
    (op,) = g.dense_ops()
    x = g.values[op.inputs[0]]
    mac = lower_dense(with_kernel(g, "mac"), op)
    ag = lower_dense(with_kernel(g, "adder-graph"), op)
    n_mac = len(mac.of_kind("add")) + sum(1 for _ in mac.of_kind("product"))
    n_ag = len(ag.of_kind("shiftadd"))
    assert n_ag < n_mac
    assert netlist_luts(ag, x) < netlist_luts(mac, x)


def test_whole_layer_keeps_the_cheaper_solution_without_more_banks(monkeypatch):
    g = optimize(random_mlp(3, (40, 24), sparsity=0.4, w_bits=5))
    (op,) = g.dense_ops()
    x = g.values[op.inputs[0]]
    for per_stage in (2, 4):
        chosen = adder_graph.lower_adder_graph(op, x, per_stage)
        monkeypatch.setattr(adder_graph, "WHOLE_LAYER_NONZEROS", -1)  # blocks, least depth
        least = adder_graph.lower_adder_graph(op, x, per_stage)
        monkeypatch.undo()
        assert len(chosen.of_kind("shiftadd")) <= len(least.of_kind("shiftadd"))
        assert len(chosen.bank_levels) <= len(least.bank_levels)
        assert chosen.solve.startswith("whole matrix") and least.solve.startswith("split")


def test_blocks_of_a_wide_layer(monkeypatch):
    monkeypatch.setattr(adder_graph, "WHOLE_LAYER_NONZEROS", 0)
    g = optimize(GRAPHS["wide"]())
    (op,) = g.dense_ops()
    net = adder_graph.lower_adder_graph(op, g.values[op.inputs[0]], 4)
    used = len(net.cols)
    assert used > 2 * adder_graph.BLOCK
    # each block's graph names its nodes g<block>_...: three blocks were solved
    blocks = {n.name.split("_")[0] for n in net.of_kind("shiftadd") if n.name.startswith("g")}
    assert blocks == {"g0", "g1", "g2"}
    assert net.solve.startswith("split: ") and "3 blocks of <= 64 inputs" in net.solve


def test_manifest_says_how_each_layer_was_solved():
    g = with_kernel(optimize(random_mlp(2, (12, 8, 4), sparsity=0.3)), "adder-graph")
    layers = manifest(g, g, {}, {})["layers"]
    assert [ly["solve"].split(" (")[0] for ly in layers] == ["whole matrix"] * 2
    assert "solve" not in manifest(g, with_kernel(g, "mac"), {}, {})["layers"][0]


# CI runs the default pipeline on each graph, and one layer-per-stage and one deep case.
RTL_CASES = [
    ("mlp", 4),
    ("mlp_dense_signed", 4),
    ("cnn", 4),
    ("cnn", 0),
    ("mlp_dense_signed", 2),
    *[pytest.param(n, s, marks=pytest.mark.slow) for n, s in [("mlp", 0), ("mlp", 2)]],
    *[pytest.param(n, s, marks=pytest.mark.slow) for n, s in [("mlp_dense_signed", 0)]],
    pytest.param("cnn", 2, marks=pytest.mark.slow),
]


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
@pytest.mark.parametrize("name, per_stage", RTL_CASES)
def test_rtl_bit_exact(tmp_path, name, per_stage):
    g = with_kernel(optimize(GRAPHS[name]()), "adder-graph", per_stage)
    write_rtl(g, tmp_path / "rtl")
    write_vectors(tmp_path / "vectors.npz", g, golden.stimulus_vectors(g, 80, seed=5))
    res = run_rtl(tmp_path / "rtl", tmp_path / "work", tmp_path / "vectors.npz", "icarus")
    assert res.passed, res.first_mismatch  # values and the latency the schedule states


def test_auto_is_never_worse_than_either_kernel_by_the_estimate():
    from hwprune.boards import get_board
    from hwprune.estimate import estimate
    from hwprune.estimate.costs import choose_kernels

    g = optimize(random_mlp(8, (30, 24, 12, 4), sparsity=0.5))
    choice = choose_kernels(g)
    auto = with_kernel(g, "auto")
    auto = replace(
        auto, meta={**auto.meta, "layer_kernels": {n: c["kernel"] for n, c in choice.items()}}
    )
    board = get_board("pynq-z2")
    lut = {k: estimate(with_kernel(g, k), board)["totals"]["lut"] for k in ("mac", "adder-graph")}
    assert estimate(auto, board)["totals"]["lut"] <= min(lut.values())
    for c in choice.values():  # no board, no DSP budget: the fewest LUTs without DSP
        assert c["lut"][c["kernel"]] == min(v for k, v in c["lut"].items() if c["dsp"][k] == 0)


def test_solves_in_worker_processes_equal_solves_here(monkeypatch):
    import os
    import pickle

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: the solves run in this process")
    rng = np.random.default_rng(4)
    ranges = [adder_graph.IntRange(0, 15)] * 6
    tasks = [(rng.integers(-3, 4, size=(5, 6)), ranges, least) for least in (True, False, True)]
    here = [adder_graph._solve(*t) for t in tasks]
    monkeypatch.setattr(adder_graph, "PARALLEL_NONZEROS", 0)
    there = adder_graph._solve_all(tasks)
    assert pickle.dumps(there) == pickle.dumps(here)
