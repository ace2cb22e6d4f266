"""The HLS project of a streaming design (``--conv stream``): an io_stream hls4ml project whose
stream stages read pixels through a line buffer and run their kernel once per output pixel.

Compiled from imported CNNs (stride, padding, dilation, groups, 1-D, max and average pooling,
thresholds) and from a hand-built graph whose pruned filter gives flag terms: the g++
C-simulation equals the golden interpreter on 1000 images, every streamed layer's C++ holds
exactly its kernel's terms, a corrupted kernel weight fails naming the stage, and hls4ml's own
test bench reproduces the golden outputs from the pixel-ordered tb_data.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import yaml

from hwprune import api
from hwprune import hlsgen as hls
from hwprune.errors import MismatchError
from hwprune.hw import stream
from hwprune.ir import golden
from hwprune.ir.graph import Graph
from hwprune.ir.passes import optimize
from hwprune.sim.csim import first_failing_layer, run_csim, trace_csim
from tests.hw.test_stream import conv_models_in
from tests.hw.test_stream import pruned_filter_graph as stream_case
from tests.test_hls4ml_project_tb_data import compile_test_bench, ints, run_test_bench

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

PART = "xc7z020clg400-1"
MODELS = ["conv_variants", "cnn2d", "conv2d_stride_pad", "layer_conv1d_bipolar"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Each model of tests/codegen/test_stream_rtl.py compiled with conv="stream", once."""
    d = tmp_path_factory.mktemp("stream_hls")
    paths = conv_models_in(d, MODELS)
    return {name: api.compile(p, d / name, conv="stream") for name, p in paths.items()}


# conv2d_stride_pad's C-simulation (25 s) runs with -m slow: its stride and padding are
# checked bit-exactly in RTL by tests/codegen/test_stream_rtl.py.
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n == "conv2d_stride_pad" else n for n in MODELS],
)
def test_streaming_project_bit_exact_with_one_term_per_kernel_weight(compiled, name):
    design = compiled[name]
    out, plan = design.build_dir, stream.plan(design.graph)
    assert plan is not None
    hls_dir = out / "hls"
    doc = yaml.safe_load((hls_dir / "hls4ml_config.yml").read_text())
    assert doc["IOType"] == "io_stream"
    top = (hls_dir / "firmware" / "myproject.cpp").read_text()
    assert "hls::stream<input_t>" in (hls_dir / "firmware" / "myproject.h").read_text()
    # One streaming stage per stream stage, then the collector, then the head.
    assert top.count("nnet::hwprune_stream_stage<") == len(plan.stages)
    assert top.count("nnet::hwprune_collect<") == 1
    # Every streamed layer's C++ holds its kernel's terms (weights and flags), once.
    kernels = {st.name: st.kernel.op(st.name) for st in plan.stages if st.kernel.dense_ops()}
    emitted = hls.emitted_dense_terms(hls_dir)
    for layer, op in kernels.items():
        want = {(r, c, w) for r, row in enumerate(op.rows) for c, w in zip(row.cols, row.weights)}
        assert set(emitted[layer]) == want and len(emitted[layer]) == op.n_terms, layer
    man = design.manifest
    streamed = [ly for ly in man["layers"] if ly.get("form") == "stream"]
    assert {ly["name"] for ly in streamed} == set(kernels)
    for ly in streamed:
        assert ly["product_terms_hls"] == ly["stream_terms"] == kernels[ly["name"]].n_terms
    rep = api.sim(out, vectors=1000, progress=False, levels=["csim"])
    (lv,) = rep.levels
    assert lv.passed and lv.vectors == 1000, lv.first_mismatch


def test_corrupted_kernel_weight_fails_naming_the_stage(compiled, tmp_path):
    design = compiled["cnn2d"]
    out = tmp_path / "b"
    shutil.copytree(design.build_dir, out)
    params = out / "hls" / "firmware" / "parameters.h"
    text = params.read_text()
    # Stage conv1+thr1's kernel Dense: its first positive weight negated (it still fits the
    # weight type), the number of terms unchanged.
    block = text[text.index('// hwprune-dense "conv1"') :]
    term = re.search(r"acc\d+ \+= x\[\d+\] \* weight_t\(([1-9]\d*)\);", block)
    bad = term.group(0).replace(f"weight_t({term.group(1)})", f"weight_t(-{term.group(1)})")
    params.write_text(text.replace(term.group(0), bad, 1))
    assert hls.count_product_terms(out / "hls") == hls.count_product_terms(design.build_dir / "hls")
    with pytest.raises(MismatchError, match="csim differs from golden") as e:
        api.sim(out, vectors=200, progress=False, levels=["csim"])
    (lv,) = e.value.report.levels
    assert not lv.passed
    assert lv.first_mismatch["layer"] == "thr1"  # the op whose value the stage streams


def pruned_filter_graph() -> Graph:
    """tests/hw/test_stream.py's hand-built case (flag terms), optimized."""
    return optimize(stream_case())


@pytest.fixture(scope="module")
def flag_project(tmp_path_factory):
    g = pruned_filter_graph()
    out = tmp_path_factory.mktemp("flag") / "hls"
    hls.write_hls_project(g, out, PART, vectors=golden.stimulus_vectors(g, 100, 0))
    return g, out


def test_pruned_filter_flag_terms_bit_exact(flag_project):
    g, out = flag_project
    plan = stream.plan(g)
    b = plan.stages[1]
    assert b.flag and plan.head.ops == (plan.head.inputs[0],)  # the stream ends the network
    kb = b.kernel.op("b")
    flags = b.n_taps * len(b.in_map.channels)
    assert any(c >= flags for row in kb.rows for c in row.cols)
    assert hls.count_product_terms(out) == {
        st.name: st.kernel.op(st.name).n_terms for st in plan.stages
    }
    x = golden.stimulus_vectors(g, 1000, 1)
    np.testing.assert_array_equal(run_csim(out, x), golden.outputs(g, x))
    # Each stage's trace, its pixel stream put back in the IR's order, is golden's.
    traces, want = trace_csim(out, x[:20]), golden.run(g, x[:20])
    assert list(traces) == ["ra", "rb"]
    for name, got in traces.items():
        np.testing.assert_array_equal(got, want[name], err_msg=name)
    assert first_failing_layer(out, g, x[7]) is None


def test_hls4mls_test_bench_reads_the_pixel_stream(flag_project):
    g, out = flag_project
    st = stream.plan(g).stages[0]
    x = golden.stimulus_vectors(g, 100, 0)
    # The test bench's inputs are the images pixel by pixel (hw.stream.pixels), not IR order.
    lines = (out / hls.TB_INPUTS).read_text().splitlines()
    np.testing.assert_array_equal(ints(lines), stream.pixels(st.in_map, x).reshape(len(x), -1))
    _, log = run_test_bench(compile_test_bench(out), out)
    assert (out / "tb_data" / "csim_results.log").read_text() == (out / hls.TB_OUTPUTS).read_text()
    np.testing.assert_array_equal(ints(log), golden.outputs(g, x))


def test_streaming_project_names_file(flag_project):
    g, out = flag_project
    doc = json.loads((out / hls.NAMES_FILE).read_text())
    plan = stream.plan(g)
    assert doc["stream"]["input"] == list(range(36))  # one channel, nothing removed
    assert [d["ir"] for d in doc["ops"]] == [op.name for op in g.ops]
    assert [d["ir"] for d in doc["ops"] if d["traced"]] == [st.ops[-1] for st in plan.stages]
    headers = {p.name for p in (out / "firmware" / "nnet_utils").glob("hwprune_*.h")}
    assert headers == {f"hwprune_{k}.h" for k in ("dense", "requant", "max", "threshold", "stream")}
