"""Float-scale / BatchNorm chains compiled into exact integer thresholds: hand-worked cases,
each also checked against qonnx execution on every input."""

import itertools

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hwprune.errors import HwpruneError
from hwprune.frontend.qonnx import chains, import_qonnx
from hwprune.ir import golden
from hwprune.ir.graph import Dense, Requant, Rounding, Threshold
from hwprune.sim.reference import qonnx_outputs


def _t(name, dims, vals):
    return helper.make_tensor(name, TensorProto.FLOAT, dims, list(np.ravel(vals)))


def _quant(inp, out, p, scale, inits):
    """A 2-bit signed narrow Quant (levels -1, 0, 1), rounding half to even."""
    inits += [_t(f"{p}s", [], [scale]), _t(f"{p}z", [], [0.0]), _t(f"{p}b", [], [2.0])]
    return helper.make_node(
        "Quant",
        [inp, f"{p}s", f"{p}z", f"{p}b"],
        [out],
        domain="qonnx.custom_op.general",
        signed=1,
        narrow=1,
        rounding_mode="ROUND",
    )


def _save(nodes, inits, path, n=2):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
        initializer=inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def _all_inputs(n):
    return np.array(list(itertools.product((-1, 0, 1), repeat=n)), dtype=np.int64)


def _layer(path, w, after):
    """x -> Quant (scale 1) -> MatMul(Quant'd w, scale 1) -> ``after`` nodes -> y."""
    inits = [_t("w", list(w.shape), w)]
    nodes = [_quant("x", "xq", "qi", 1.0, inits), _quant("w", "wq", "qw", 1.0, inits)]
    nodes.append(helper.make_node("MatMul", ["xq", "wq"], ["acc"]))
    nodes += after(inits)
    return _save(nodes, inits, path, w.shape[1])


def test_negative_gamma_batchnorm_negates_the_row(tmp_path):
    # acc0 = x0 + x1 in [-2, 2], acc1 = x1 in [-1, 1]; BN with mean 0, var 1, eps 0:
    # y0 = -acc0 + 0.25 -> levels 1, 1, 0, -1, -1 for acc0 = -2..2 (falling: negate the row);
    # y1 = 0.5 * acc1 -> -0.5, 0, 0.5 all round (half to even) to level 0.
    w = np.array([[1.0, 0.0], [1.0, 1.0]])

    def bn(inits):
        inits += [_t("g", [2], [-1.0, 0.5]), _t("be", [2], [0.25, 0.0])]
        inits += [_t("mu", [2], [0.0, 0.0]), _t("var", [2], [1.0, 1.0])]
        node = helper.make_node(
            "BatchNormalization", ["acc", "g", "be", "mu", "var"], ["bn"], epsilon=0.0
        )
        return [node, _quant("bn", "y", "qo", 1.0, inits)]

    p = _layer(tmp_path / "bn.onnx", w, bn)
    g = import_qonnx(p)
    (dense,) = [op for op in g.ops if isinstance(op, Dense)]
    (thr,) = [op for op in g.ops if isinstance(op, Threshold)]
    # Row 0 negated: acc0' = -x0 - x1, whose levels -1, -1, 0, 1, 1 rise: thresholds 0, 1.
    assert dense.rows[0].weights == (-1, -1) and dense.rows[1].weights == (1,)
    # Element 1 is level 0 everywhere: threshold -1 (always passed) and 2 (never, range ends 1).
    assert thr.thresholds == ((0, 1), (-1, 2))
    assert (thr.base, thr.step, thr.exp) == (-1, 1, 0)
    x = _all_inputs(2)
    np.testing.assert_array_equal(qonnx_outputs(p, g, x), golden.outputs(g, x))


def test_float_scale_quant_with_three_levels(tmp_path):
    # acc0 = x0 in [-1, 1], acc1 = 2 * x1 in [-2, 2]; real = acc * 0.25 + (0, 0.12); the
    # output Quant has scale 0.3: level = clip(round(real / 0.3), -1, 1).
    # elem 0: -0.83, 0, 0.83 -> -1, 0, 1: thresholds 0, 1.
    # elem 1: -1.27, -0.43, 0.4, 1.23, 2.07 -> -1, 0, 0, 1, 1: thresholds -1, 1.
    w = np.array([[1.0, 0.0], [0.0, 2.0]])

    def affine(inits):
        inits += [_t("m", [], [0.25]), _t("b", [2], [0.0, 0.12])]
        return [
            helper.make_node("Mul", ["acc", "m"], ["am"]),
            helper.make_node("Add", ["am", "b"], ["ab"]),
            _quant("ab", "y", "qo", 0.3, inits),
        ]

    p = _layer(tmp_path / "f.onnx", w, affine)
    g = import_qonnx(p)
    (thr,) = [op for op in g.ops if isinstance(op, Threshold)]
    assert thr.thresholds == ((0, 1), (-1, 1))
    assert (thr.base, thr.step, thr.exp) == (-1, 1, 0)  # 0.3 is no power of two: exp nominal
    # The model output is the quantizer's: the host multiplies the levels by 0.3.
    assert g.host_output.tensor == g.meta["output_name"]
    assert g.host_output.scale == pytest.approx(0.3)
    x = _all_inputs(2)
    np.testing.assert_array_equal(qonnx_outputs(p, g, x), golden.outputs(g, x))


def test_thresholds_for_by_hand():
    # levels of the integers 3..7: -1, 0, 0, 2, 2 on a step-1 grid from -1 (3 thresholds).
    assert chains.thresholds_for(3, np.array([-1, 0, 0, 1, 1]), -1, 1, 2) == (4, 6)
    assert chains.thresholds_for(3, np.array([-1, -1, 1, 1, 1]), -1, 2, 1) == (5,)
    with pytest.raises(ValueError):  # a level off the base + step * j grid
        chains.thresholds_for(0, np.array([-1, 0, 1]), -1, 2, 1)
    assert chains.monotone_direction(np.array([1, 1, 0])) == -1
    assert chains.monotone_direction(np.array([0, 1, 0])) == 0


def test_two_dynamic_operands_are_refused(tmp_path):
    # acc + relu(acc) is no map by constants: refused with one line naming the node.
    w = np.array([[1.0, 0.0], [0.0, 1.0]])

    def two_dyn(inits):
        return [
            helper.make_node("Relu", ["acc"], ["r"]),
            helper.make_node("Add", ["acc", "r"], ["s"]),
            _quant("s", "y", "qo", 0.3, inits),
        ]

    p = _layer(tmp_path / "n.onnx", w, two_dyn)
    with pytest.raises(HwpruneError, match="Add of an activation and a constant"):
        import_qonnx(p)


def _qnode(inp, out, p, scale, bits, signed, inits, shape=()):
    inits += [_t(f"{p}s", list(shape), np.full(shape, scale) if shape else [scale])]
    inits += [_t(f"{p}z", [], [0.0]), _t(f"{p}b", [], [float(bits)])]
    return helper.make_node(
        "Quant",
        [inp, f"{p}s", f"{p}z", f"{p}b"],
        [out],
        domain="qonnx.custom_op.general",
        signed=int(signed),
        narrow=0,
        rounding_mode="ROUND",
    )


def _save_shaped(nodes, inits, path, in_shape, out_shape):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("qonnx.custom_op.general", 2)]
    m = helper.make_model(graph, opset_imports=opsets)
    m.ir_version = 8
    onnx.save(m, path)
    return path


def test_trunc_after_avgpool_is_a_floor_shift(tmp_path):
    # x (1, 1, 2, 2) 4-bit levels 0..15 -> AveragePool 2x2 (sum / 4 on scale 1/4) -> Trunc
    # (scale 0.25, out scale 1: trunc factor 4, floor, 4 bits): level = floor(sum / 4).
    inits = []
    nodes = [_qnode("x", "xq", "qi", 1.0, 4, False, inits)]
    nodes.append(helper.make_node("AveragePool", ["xq"], ["avg"], kernel_shape=[2, 2]))
    inits += [_t("ts", [], [0.25]), _t("tz", [], [0.0]), _t("tib", [], [6.0])]
    inits += [_t("tos", [], [1.0]), _t("tob", [], [4.0])]
    nodes.append(
        helper.make_node(
            "Trunc",
            ["avg", "ts", "tz", "tib", "tos", "tob"],
            ["y"],
            domain="qonnx.custom_op.general",
            rounding_mode="FLOOR",
            signed=0,
            narrow=0,
        )
    )
    p = _save_shaped(nodes, inits, tmp_path / "t.onnx", (1, 1, 2, 2), (1, 1, 1, 1))
    g = import_qonnx(p)
    (rq,) = [op for op in g.ops if isinstance(op, Requant)]
    assert (rq.shift, rq.lo, rq.hi, rq.rounding) == (2, 0, 15, Rounding.FLOOR)
    x = np.random.default_rng(0).integers(0, 16, size=(200, 4))
    want = x.sum(axis=1, keepdims=True) // 4  # by hand
    np.testing.assert_array_equal(golden.outputs(g, x), want)
    np.testing.assert_array_equal(qonnx_outputs(p, g, x), want)


def test_transpose_is_read_through_by_the_next_layer(tmp_path):
    # x (1, 2, 3) -> Quant -> Transpose (0, 2, 1) -> Flatten -> MatMul: the Dense reads the
    # transposed order, so logical input j of the MatMul is x's element perm[j].
    inits = [_t("w", [6, 2], np.arange(12).reshape(6, 2) - 5.0)]
    nodes = [
        _qnode("x", "xq", "qi", 1.0, 4, True, inits),
        _qnode("w", "wq", "qw", 1.0, 8, True, inits),
    ]
    nodes += [
        helper.make_node("Transpose", ["xq"], ["tr"], perm=[0, 2, 1]),
        helper.make_node("Flatten", ["tr"], ["fl"], axis=1),
        helper.make_node("MatMul", ["fl", "wq"], ["y"]),
    ]
    p = _save_shaped(nodes, inits, tmp_path / "tr.onnx", (1, 2, 3), (1, 2))
    g = import_qonnx(p)
    assert len(g.ops) == 2  # Input, Dense: the transpose costs nothing
    x = np.random.default_rng(1).integers(-8, 8, size=(200, 6))
    want = x.reshape(-1, 2, 3).transpose(0, 2, 1).reshape(-1, 6) @ (np.arange(12).reshape(6, 2) - 5)
    np.testing.assert_array_equal(golden.outputs(g, x), want)
    np.testing.assert_array_equal(qonnx_outputs(p, g, x), want)


def test_transpose_before_a_float_map_is_refused(tmp_path):
    inits = [_t("k", [], [0.3])]
    nodes = [_qnode("x", "xq", "qi", 1.0, 4, True, inits)]
    nodes += [
        helper.make_node("Transpose", ["xq"], ["tr"], perm=[0, 2, 1]),
        helper.make_node("Mul", ["tr", "k"], ["m"]),
        _qnode("m", "y", "qo", 1.0, 4, True, inits),
    ]
    p = _save_shaped(nodes, inits, tmp_path / "n.onnx", (1, 2, 3), (1, 3, 2))
    with pytest.raises(HwpruneError, match="transposed activation"):
        import_qonnx(p)
