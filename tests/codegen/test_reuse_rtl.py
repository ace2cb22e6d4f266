"""--reuse-factor R in the unrolled design (hw.reuse): every Dense shares its multipliers R
times, the top takes a vector per R cycles (``in_ready``), and the estimate's latency and II
are the RTL's and the HLS project's."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from hwprune import api
from hwprune.codegen.cocotb_tb import write_vectors
from hwprune.estimate.report import design_costs
from hwprune.hw.schedule import latency_cycles
from hwprune.ir import golden
from hwprune.ir.passes import optimize
from hwprune.sim.rtl import run_rtl
from tests.codegen.test_stream_rtl import emitted
from tests.hw.test_stream import pruned_filter_graph

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")


@pytest.mark.parametrize("reuse", [2, 3])
def test_shared_layers_bit_exact_with_the_stated_latency(tmp_path, reuse):
    # The CNN of the stream tests unrolled: two convolutions (each a Dense of many rows),
    # Requant and Max layers between. Every layer register of 40 vectors bit-exact, each
    # vector out after latency_cycles (the harness checks it), R - 1 or more cycles apart.
    g = optimize(pruned_filter_graph())
    g = replace(g, meta={**g.meta, "reuse_factor": reuse})
    g = replace(g, meta={k: v for k, v in g.meta.items() if k != "stream_stages"})
    one = replace(g, meta={**g.meta, "reuse_factor": 1})
    rtl = tmp_path / "rtl"
    _, terms = emitted(g, rtl)
    assert terms == {op.name: op.n_terms for op in g.dense_ops()}
    n_dense = len(g.dense_ops())
    # Per Dense R cycles where it took one; the input register one more.
    assert latency_cycles(g) > latency_cycles(one) + n_dense * (reuse - 1) - n_dense
    write_vectors(rtl / "v.npz", g, golden.stimulus_vectors(g, 40, 0))
    res = run_rtl(rtl, tmp_path / "work", rtl / "v.npz")
    assert res.passed, res.first_mismatch
    _, (latency, ii) = design_costs(g)
    assert (latency, ii) == (latency_cycles(g), reuse)


def test_reuse_factor_every_level_and_the_estimate_agrees_with_hls(tmp_path):
    # A small CNN with a truncating average pool, unrolled, at R = 2: qonnx, C-simulation,
    # RTL and the AXI-Stream top (random back-pressure, the core's in_ready) bit-exact;
    # estimate.json's II is the HLS project's pipeline interval, its latency the RTL's.
    from tests import qonnx_coverage_models as cov

    model = cov.COVERAGE_MODELS["trunc_avgpool"](tmp_path / "m.onnx", 0)
    d = api.compile(model, tmp_path / "b", reuse_factor=2)
    est = api.estimate(tmp_path / "b", "pynq-z2")["pynq-z2"]
    man = json.loads((tmp_path / "b" / "rtl" / "manifest.json").read_text())
    cfg = (tmp_path / "b" / "hls" / "hls4ml_config.yml").read_text()
    assert "PipelineInterval: 2" in cfg
    assert est["totals"]["ii"] == 2
    assert est["totals"]["latency_cycles"] == man["latency_cycles"] == latency_cycles(d.graph)
    rep = api.sim(tmp_path / "b", vectors=40, progress=False)
    assert len(rep.levels) == 4 and all(lv.passed for lv in rep.levels), rep.levels
