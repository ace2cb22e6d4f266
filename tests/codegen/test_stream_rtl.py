"""The streaming design in simulation: compiled with ``--conv stream``, CNNs of every
geometry the importer takes run pixel by pixel through Icarus (seeded gaps in the input),
every stage's every pixel and every head layer bit-exact, the first image's latency the
cycle model's; through the AXI-Stream top under back-pressure; a corrupted kernel weight
fails; a pruned filter's position-dependent bias (flag terms) holds in hardware."""

from __future__ import annotations

import json
import shutil

import pytest

from hwprune import api
from hwprune.codegen import rtl_files
from hwprune.codegen.cocotb_tb import write_vectors
from hwprune.errors import HwpruneError
from hwprune.hw import stream
from hwprune.ir import golden
from hwprune.ir.passes import optimize
from hwprune.sim.rtl import run_rtl
from tests.hw.test_stream import conv_models_in, pruned_filter_graph

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")


MODELS = ["conv_variants", "cnn2d", "conv2d_stride_pad", "layer_conv1d_bipolar"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return conv_models_in(tmp_path_factory.mktemp("stream_models"), MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_streaming_design_bit_exact_every_stage(models, tmp_path, name):
    d = api.compile(models[name], tmp_path / "b", conv="stream")
    plan = stream.plan(d.graph)
    assert plan is not None and plan.stages
    man = json.loads((tmp_path / "b" / "rtl" / "manifest.json").read_text())
    assert man["latency_cycles"] == plan.latency
    for ly in man["layers"]:
        if ly.get("form") == "stream":  # the kernel's terms, once per layer
            assert ly["product_terms_verilog"] == ly["stream_terms"]
            assert ly["stream_terms"] - ly["flag_terms"] <= ly["kernel_nonzeros"]
    rep = api.sim(tmp_path / "b", vectors=40, progress=False, levels=["qonnx", "rtl", "rtl-axis"])
    assert [lv.passed for lv in rep.levels] == [True] * 3, [lv.detail for lv in rep.levels]


def test_corrupted_kernel_weight_fails(models, tmp_path):
    api.compile(models["cnn2d"], tmp_path / "b", conv="stream")
    rtl = tmp_path / "b" / "rtl"
    kernel = rtl / "hwprune_top_s2_conv1.v"
    text = kernel.read_text()
    line = next(ln for ln in text.splitlines() if "// w=" in ln and "<<<" in ln)
    kernel.write_text(text.replace(line, line.replace("<<< ", "<<< 1 + ", 1)))
    res = run_rtl(rtl, tmp_path / "work", rtl / "vectors.npz")
    assert not res.passed
    assert res.first_mismatch["layer"] == "conv1+thr1"


def test_pruned_filter_flag_terms_in_hardware(tmp_path):
    # As tests/hw/test_stream.py's hand-worked case: filter 1 of conv a is pruned, its
    # constant map folded into conv b's position-dependent biases; b reads flag bits.
    g = optimize(pruned_filter_graph())
    plan = stream.plan(g)
    assert plan.stages[1].flag and plan.head.ops == (plan.head.inputs[0],)
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    for fname, text in rtl_files(g, "hwprune_top").items():
        (rtl / fname).parent.mkdir(parents=True, exist_ok=True)
        (rtl / fname).write_text(text)
    write_vectors(rtl / "v.npz", g, golden.stimulus_vectors(g, 60, 0))
    res = run_rtl(rtl, tmp_path / "work", rtl / "v.npz")
    assert res.passed, res.first_mismatch


def test_stream_of_a_model_without_convolution_is_refused(tmp_path):
    from tests import qonnx_coverage_models as cov

    p = cov.COVERAGE_MODELS["mlp_bn"](tmp_path / "mlp.onnx", 0)
    with pytest.raises(HwpruneError, match="does not start with a convolution or pooling"):
        api.compile(p, tmp_path / "b", conv="stream")
    assert not (tmp_path / "b").exists()


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
@pytest.mark.parametrize("reuse", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_stage_estimate_against_yosys(models, tmp_path, reuse):
    # Each stage synthesised alone (yosys 0.23 synth_xilinx -family xc7 -flatten): the line
    # buffer's SRLs exactly as estimated, LUTs (with SRLs) and FFs within the model's error;
    # at reuse factor 2 too, with the shared kernels' multipliers and DSP slices.
    from hwprune.boards import get_board
    from hwprune.estimate import estimate_boards
    from hwprune.estimate.synth import synth_yosys

    d = api.compile(models["cnn2d"], tmp_path / "b", conv="stream", reuse_factor=reuse)
    board = get_board("pynq-z2")
    est = estimate_boards(d.graph, [board])[board.name]
    stages = [c for c in est["layers"] if c.get("form") == "stream"]
    assert len(stages) == 4 and all(c["unrolled"]["lut"] > 0 for c in stages)
    for k, c in enumerate(stages):
        syn = synth_yosys(tmp_path / "b" / "rtl", board, top=f"hwprune_top_s{k}")
        assert syn["srl"] == c["line_buffer"]["lutram"], c["name"]
        assert syn["bram18"] == c["line_buffer"]["bram18"] == 0
        lut = syn["lut"] + syn["srl"]
        assert 0.6 <= c["lut"] / lut <= 1.4, (c["name"], c["lut"], lut)
        assert 0.6 <= c["ff"] / max(syn["ff"], 1) <= 1.6, (c["name"], c["ff"], syn["ff"])
        # A shared kernel's multipliers: DSP slices by yosys' width rule, within one.
        assert abs(c["dsp"] - syn["dsp"]) <= 1, (c["name"], c["dsp"], syn["dsp"])


@pytest.mark.parametrize("reuse", [1, 3])
@pytest.mark.parametrize("top", ["hwprune_top", "hwprune_top_axis"])
def test_verilator_lint_wall_is_clean(models, tmp_path, top, reuse):
    import subprocess

    from hwprune.sim.rtl import _verilator_executable

    try:
        exe = _verilator_executable()
    except HwpruneError as e:
        pytest.skip(str(e))
    api.compile(models["conv_variants"], tmp_path / "b", conv="stream", reuse_factor=reuse)
    rtl = tmp_path / "b" / "rtl"
    files = sorted(p.name for p in rtl.glob("*.v"))
    cmd = [str(exe), "--lint-only", "-Wall", "--top-module", top, *files]
    res = subprocess.run(cmd, cwd=rtl, capture_output=True, text=True, timeout=120)
    assert "%Warning" not in res.stderr, res.stderr
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("kernel", ["adder-graph", "auto"])
def test_every_kernel_lowers_the_stream_kernels(models, tmp_path, kernel):
    api.compile(models["cnn2d"], tmp_path / "b", conv="stream", kernel=kernel)
    man = json.loads((tmp_path / "b" / "rtl" / "manifest.json").read_text())
    streamed = [ly for ly in man["layers"] if ly.get("form") == "stream"]
    assert len(streamed) == 3 and all(
        ly["product_terms_hls"] == ly["stream_terms"] for ly in streamed
    )
    if kernel == "adder-graph":
        assert {ly["kernel"] for ly in streamed} == {"adder-graph"}
    rep = api.sim(tmp_path / "b", vectors=40, progress=False, levels=["csim", "rtl"])
    assert [lv.passed for lv in rep.levels] == [True, True]


def emitted(g, rtl) -> tuple[dict[str, str], dict[str, int]]:
    """Write the design's Verilog and testbench into ``rtl``; (the files, the product terms
    the Verilog holds per Dense)."""
    from hwprune.builddir import write_files
    from hwprune.codegen.verilog import count_product_terms

    files = rtl_files(g, "hwprune_top")
    write_files(rtl, files)
    terms: dict[str, int] = {}
    for text in files.values():
        terms.update(count_product_terms(text))
    return files, terms


@pytest.mark.parametrize("reuse", [2, 3])
def test_reuse_factor_shares_the_kernel_over_r_cycles(tmp_path, reuse):
    # At reuse factor R each stage takes a grid position per R cycles and its Dense is one
    # multiplier per R terms (hw.reuse): bit-exact at every stage pixel, with the cycle
    # model's latency (run_rtl checks it), and the Verilog's weight tables hold every nonzero
    # kernel weight once.
    from dataclasses import replace

    from hwprune.hw.reuse import share, shared_dense

    g = optimize(pruned_filter_graph())
    g = replace(g, meta={**g.meta, "reuse_factor": reuse})
    plan = stream.plan(g)
    one = stream.plan(optimize(pruned_filter_graph()))
    assert plan.interval > one.interval * (reuse - 0.5)
    rtl = tmp_path / "rtl"
    files, terms = emitted(g, rtl)
    for st in plan.stages:
        d = shared_dense(st.kernel)
        assert d is not None
        assert terms[d.name] == d.n_terms
        sd = share(d, st.kernel.values[d.inputs[0]], reuse, None)
        assert sd.multipliers == sum(-(-len(r.cols) // reuse) for r in d.rows)
        assert f"shared over {reuse} cycles ({sd.multipliers} multipliers" in "".join(
            files.values()
        )
    write_vectors(rtl / "v.npz", g, golden.stimulus_vectors(g, 40, 0))
    res = run_rtl(rtl, tmp_path / "work", rtl / "v.npz")  # latency: the model's, checked
    assert res.passed, res.first_mismatch


def test_reuse_factor_through_compile_every_level(models, tmp_path):
    # --conv stream --reuse-factor 2 on a CNN with pooling: qonnx, C-simulation (stage loops
    # at II = 2), RTL and the AXI-Stream top all bit-exact; the manifest states R, the
    # multipliers and the interval; every stage's Dense keeps one term per nonzero weight.
    d = api.compile(models["cnn2d"], tmp_path / "b", conv="stream", reuse_factor=2)
    man = json.loads((tmp_path / "b" / "rtl" / "manifest.json").read_text())
    one = stream.plan(api.compile(models["cnn2d"], tmp_path / "one", conv="stream").graph)
    assert man["reuse_factor"] == 2
    assert man["interval_cycles"] == stream.plan(d.graph).interval > 1.5 * one.interval
    shared = [ly for ly in man["layers"] if "multipliers" in ly]
    assert shared
    for ly in shared:
        assert ly["product_terms_verilog"] == ly["stream_terms"] == ly["product_terms_hls"]
        assert ly["multipliers"] < ly["stream_terms"]
    params = (tmp_path / "b" / "hls" / "firmware" / "parameters.h").read_text()
    assert "static const unsigned reuse_factor = 2;" in params
    levels = ["qonnx", "csim", "rtl", "rtl-axis"]
    rep = api.sim(tmp_path / "b", vectors=30, progress=False, levels=levels)
    assert [lv.passed for lv in rep.levels] == [True] * 4, rep.levels
