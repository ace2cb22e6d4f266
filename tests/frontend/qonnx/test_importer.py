"""QONNX import: the IR's golden interpreter equals qonnx execution; unsupported input fails
with one line naming the node, its op type and what is supported."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hwprune.errors import HwpruneError
from hwprune.frontend.qonnx import import_qonnx
from hwprune.ir import golden
from hwprune.ir.passes import optimize
from hwprune.sim.reference import qonnx_outputs
from tests.qonnx_ref import quantized_weight_nonzeros


def test_golden_equals_qonnx_execution(small_qonnx):
    g = import_qonnx(small_qonnx)
    x = golden.stimulus_vectors(g, 200, seed=3)
    np.testing.assert_array_equal(qonnx_outputs(small_qonnx, g, x), golden.outputs(g, x))
    h = optimize(g)
    np.testing.assert_array_equal(qonnx_outputs(small_qonnx, h, x), golden.outputs(h, x))


def test_imported_zeros_match_the_quantized_weights(small_qonnx):
    g = import_qonnx(small_qonnx)
    assert [op.n_terms for op in g.dense_ops()] == quantized_weight_nonzeros(small_qonnx)


def _model(nodes, inits, path, in_shape=(1, 4), out_shape=(1, 4)):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        initializer=inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def _quant_inits(prefix, scale=0.125, bits=8.0):
    t = helper.make_tensor
    return [
        t(f"{prefix}s", TensorProto.FLOAT, [], [scale]),
        t(f"{prefix}z", TensorProto.FLOAT, [], [0.0]),
        t(f"{prefix}b", TensorProto.FLOAT, [], [bits]),
    ]


def _quant(inp, out, prefix):
    return helper.make_node(
        "Quant",
        [inp, f"{prefix}s", f"{prefix}z", f"{prefix}b"],
        [out],
        domain="qonnx.custom_op.general",
        signed=0,
        narrow=0,
        rounding_mode="FLOOR",
    )


def test_unsupported_op_names_node_and_supported(tmp_path):
    nodes = [_quant("x", "q", "a"), helper.make_node("Sigmoid", ["q"], ["y"], name="sig")]
    p = _model(nodes, _quant_inits("a"), tmp_path / "m.onnx")
    with pytest.raises(HwpruneError) as e:
        import_qonnx(p)
    msg = str(e.value)
    assert "Sigmoid" in msg and "supported" in msg and "Gemm" in msg and "\n" not in msg


def test_per_channel_activation_scale_is_exact(tmp_path):
    # A per-channel activation quantizer reading a per-tensor one: exact integer thresholds,
    # golden equal to qonnx execution on random inputs and the corners.
    inits = _quant_inits("a") + _quant_inits("b")
    inits[3] = helper.make_tensor("bs", TensorProto.FLOAT, [4], [0.1, 0.2, 0.3, 0.4])
    nodes = [_quant("x", "q", "a"), _quant("q", "y", "b")]
    p = _model(nodes, inits, tmp_path / "m.onnx")
    g = import_qonnx(p)
    rng = np.random.default_rng(0)
    x = np.concatenate([[[0] * 4, [255] * 4], rng.integers(0, 256, (300, 4))])
    np.testing.assert_array_equal(golden.outputs(g, x), qonnx_outputs(p, g, x))


def test_non_positive_per_channel_scale_is_refused(tmp_path):
    # A negative scale would flip the comparisons; it is refused with one line naming the node.
    inits = _quant_inits("a") + _quant_inits("b")
    inits[3] = helper.make_tensor("bs", TensorProto.FLOAT, [4], [0.1, -0.2, 0.3, 0.4])
    nodes = [_quant("x", "q", "a"), _quant("q", "y", "b")]
    p = _model(nodes, inits, tmp_path / "m.onnx")
    with pytest.raises(HwpruneError, match="not positive") as e:
        import_qonnx(p)
    assert "Quant" in str(e.value) and "\n" not in str(e.value)


def test_unquantized_input_is_refused(tmp_path):
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], list(np.eye(4).ravel()))
    p = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [w], tmp_path / "m.onnx")
    with pytest.raises(HwpruneError, match="Quant"):
        import_qonnx(p)


def test_missing_and_non_onnx_files(tmp_path):
    with pytest.raises(HwpruneError, match="no such file"):
        import_qonnx(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_text("this is not a protobuf\n" * 10)
    with pytest.raises(HwpruneError, match="not an ONNX model"):
        import_qonnx(bad)
