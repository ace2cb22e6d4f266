"""The host boundary: a float input at a stated precision (--input-type), and a final
Softmax / LogSoftmax / ArgMax after a float tail, bit-exact at every level."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hwprune import api
from hwprune.errors import HwpruneError
from hwprune.frontend.precision import parse_precision
from hwprune.frontend.qonnx import import_qonnx
from hwprune.ir import golden
from hwprune.sim import reference
from tests.frontend.op_models import FINAL_OPS, build_float_input_mlp
from tests.qonnx_coverage_models import COVERAGE_MODELS


@pytest.fixture(scope="module")
def float_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("float")
    return {f: build_float_input_mlp(d / f"{f}.onnx", 0, f) for f in FINAL_OPS}


def test_float_input_without_type_names_the_option(float_models):
    with pytest.raises(HwpruneError) as e:
        import_qonnx(float_models["Softmax"])
    msg = str(e.value)
    assert "--input-type" in msg and "'global_in'" in msg and "fixed<16,6>" in msg
    assert "\n" not in msg


def test_cli_without_type_is_one_line_exit_2(float_models, tmp_path):
    out = tmp_path / "b"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwprune.cli",
            "compile",
            str(float_models["Softmax"]),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "--input-type" in r.stderr
    assert not out.exists()


def test_estimate_takes_the_type_for_a_model_and_refuses_it_for_a_build(float_models, tmp_path):
    est = api.estimate(float_models["Softmax"], "pynq-z2", input_type="fixed<8,3>")
    assert est["pynq-z2"]["totals"]["lut"] > 0
    api.compile(float_models["Softmax"], tmp_path / "b", input_type="fixed<8,3>")
    with pytest.raises(HwpruneError, match="drop --input-type"):
        api.estimate(tmp_path / "b", "pynq-z2", input_type="fixed<8,3>")


def test_type_refused_when_the_model_quantizes_its_input(tmp_path):
    p = COVERAGE_MODELS["mlp_bn"](tmp_path / "m.onnx", 0)
    with pytest.raises(HwpruneError, match="drop --input-type"):
        import_qonnx(p, "fixed<16,6>")


def test_bad_type_spelling_is_refused(float_models):
    with pytest.raises(HwpruneError, match="fixd<16,6>"):
        import_qonnx(float_models["Softmax"], "fixd<16,6>")


def test_wider_than_float32_is_refused(float_models):
    with pytest.raises(HwpruneError, match="float32"):
        import_qonnx(float_models["Softmax"], "fixed<32,16>")


def test_input_is_the_stated_grid(float_models):
    g = import_qonnx(float_models["Softmax"], "ufixed<8,2>")
    (inp,) = g.inputs
    assert (inp.range.lo, inp.range.hi, inp.exp) == (0, 255, -6)
    assert g.host_input.input_type == "ufixed<8,2>"


def test_drawn_inputs_are_host_quantized_with_corners(float_models):
    t = parse_precision("fixed<8,3,RND,SAT>")
    x = reference.draw_model_inputs(float_models["Softmax"], 50, 3, t)
    levels = x.astype(np.float64) / t.step
    assert np.array_equal(levels, np.round(levels))  # on the grid
    assert levels.min() >= t.lo and levels.max() <= t.hi
    assert np.all(levels[0] == t.lo) and np.all(levels[1] == t.hi) and np.all(levels[2] == 0)
    assert np.array_equal(t.quantize(x), levels.astype(np.int64))  # quantizing is idempotent


@pytest.mark.parametrize("final", FINAL_OPS)
def test_float_input_and_final_op_bit_exact_at_every_level(float_models, final, tmp_path):
    out = tmp_path / "b"
    g = api.compile(float_models[final], out, input_type="fixed<8,3,RND,SAT>").graph
    assert g.host_output.final_op == final and g.host_output.tail
    # (the AXI-Stream top is checked by the coverage and real-model ladders)
    rep = api.sim(out, vectors=60, progress=False, levels=["qonnx", "csim", "rtl"])
    assert [lv.passed for lv in rep.levels] == [True] * 3
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    assert man["input_type"] == "fixed<8,3,RND,SAT>" and "RND" in man["input"]
    assert final in man["softmax"]


def test_golden_equals_qonnx_on_1000_grid_inputs(float_models):
    # Golden against qonnx on the stated grid, WRAP overflow included (floats drawn beyond
    # the range are wrapped by the host exactly as ap_fixed wraps them).
    p = float_models["ArgMax"]
    g = import_qonnx(p, "fixed<6,2>")
    feeds = reference.draw_model_inputs(p, 1000, 0, parse_precision("fixed<6,2>"))
    x, ints = reference.qonnx_reference(p, g, feeds)
    np.testing.assert_array_equal(golden.outputs(g, x), ints)


def test_stated_type_through_host_preprocessing(tmp_path):
    # fixed<8,3> levels k * 2**-5, then x * 0.5 - 0.25 on the host: the image is on the
    # 2**-6 grid: the hardware input is k - 16 (0.25 = 16 * 2**-6), in [-144, 111].
    p = build_float_input_mlp(tmp_path / "m.onnx", 0, "Softmax", scale_input=True)
    g = import_qonnx(p, "fixed<8,3>")
    (inp,) = g.inputs
    assert (inp.range.lo, inp.range.hi, inp.exp) == (-144, 111, -6)
    assert "Mul, Sub" in g.host_input.how
    feeds = reference.draw_model_inputs(p, 300, 0, parse_precision("fixed<8,3>"))
    x, ints = reference.qonnx_reference(p, g, feeds)
    np.testing.assert_array_equal(golden.outputs(g, x), ints)
