"""How convolutions become hardware: ``--conv unroll|stream|auto``, ``--stream-layers`` and
the per-layer ``conv`` key of the config; auto picks by the estimate against the board."""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest

from hwprune import api
from hwprune.boards import get_board
from hwprune.config import load_config
from hwprune.errors import HwpruneError
from hwprune.estimate import estimate_boards
from hwprune.frontend.qonnx import import_qonnx
from hwprune.hw import stream
from hwprune.ir.passes import optimize


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    from tests import qonnx_coverage_models as cov

    warnings.filterwarnings("ignore")
    return cov.COVERAGE_MODELS["cnn2d"](tmp_path_factory.mktemp("cnn") / "cnn2d.onnx", 0)


def _graph(path, conv):
    g = optimize(import_qonnx(path))
    meta = {**g.meta, "kernel": "mac", "pipeline": 4, "reuse_factor": 1, "conv": conv}
    return replace(g, meta=meta)


def test_auto_keeps_unrolled_when_it_fits(cnn):
    g = api._choose(_graph(cnn, "auto"), cnn, get_board("pynq-z2"))
    assert stream.plan(g) is None
    rec = g.meta["conv_choice"]
    assert rec["stream_layers"] == 0 and rec["by_stream_layers"]["0"]["fits"] is True


def test_auto_streams_the_fewest_layers_that_fit(cnn):
    pynq = get_board("pynq-z2")
    sizes = {
        k: estimate_boards(api._streamed(_graph(cnn, "stream"), k), [pynq])[pynq.name]["totals"]
        for k in (1, 2, 3, 4)
    }
    unrolled = estimate_boards(api._choose(_graph(cnn, "unroll"), cnn, pynq), [pynq])
    full = unrolled[pynq.name]["totals"]["lut"]
    # A board whose LUTs hold the design with 3 stages streamed, not with 2 or 0.
    assert sizes[3]["lut"] < min(sizes[2]["lut"], full)
    small = replace(pynq, name="small", lut=sizes[3]["lut"])
    g = api._choose(_graph(cnn, "auto"), cnn, small)
    assert g.meta["conv_choice"]["stream_layers"] == 3
    assert len(stream.plan(g).stages) == 3
    # no board that small: every layer streams, and the estimate says it does not fit
    tiny = replace(pynq, name="tiny", lut=10)
    g = api._choose(_graph(cnn, "auto"), cnn, tiny)
    assert len(stream.plan(g).stages) == 4
    assert not any(f["fits"] for f in g.meta["conv_choice"]["by_stream_layers"].values())


def test_stream_layers_limits_the_stream(cnn, tmp_path):
    d = api.compile(cnn, tmp_path / "b", conv="stream", stream_layers=2)
    p = stream.plan(d.graph)
    assert [st.ops for st in p.stages] == [("conv0", "thr0"), ("maxpool0",)]
    assert p.head.ops[1].name == "conv1"  # unrolled from here
    rep = api.sim(tmp_path / "b", vectors=30, progress=False, levels=["qonnx", "rtl"])
    assert all(lv.passed for lv in rep.levels)


def test_bad_conv_values_are_refused(cnn, tmp_path):
    with pytest.raises(HwpruneError, match="--conv sideways: choose one of: unroll, stream, auto"):
        api.compile(cnn, tmp_path / "b", conv="sideways")
    with pytest.raises(HwpruneError, match="stream_layers 0 must be 1 or more"):
        api.compile(cnn, tmp_path / "b", conv="stream", stream_layers=0)
    assert not (tmp_path / "b").exists()


def _config(tmp_path, first: str, second: str, compile_conv: str = "unroll"):
    text = f"""
[model]
input_bits = 8
[[model.layers]]
kind = "conv2d"
out = 4
padding = 1
{first}
[[model.layers]]
kind = "relu"
bits = 4
[[model.layers]]
kind = "maxpool"
kernel = 2
{second}
[[model.layers]]
kind = "flatten"
[[model.layers]]
kind = "linear"
[compile]
conv = "{compile_conv}"
"""
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_per_layer_conv_keys(tmp_path):
    cfg = load_config(_config(tmp_path, "", 'conv = "unroll"', "stream"))
    assert cfg.conv_choice() == ("stream", 1)  # the pooling and everything after unrolled
    cfg = load_config(_config(tmp_path, 'conv = "stream"', ""))
    assert cfg.conv_choice() == ("stream", 1)  # the first conv streams, the rest unrolled
    cfg = load_config(_config(tmp_path, 'conv = "unroll"', "", "auto"))
    assert cfg.conv_choice() == ("unroll", None)
    with pytest.raises(HwpruneError, match='layer maxpool0: conv = "stream" after layer conv2d0'):
        load_config(_config(tmp_path, 'conv = "unroll"', 'conv = "stream"'))
    with pytest.raises(HwpruneError, match="conv"):
        load_config(_config(tmp_path, 'conv = "sideways"', ""))
