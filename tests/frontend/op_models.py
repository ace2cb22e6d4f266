"""Small hand-written QONNX models for the ops no other test model holds: a float graph input
read by a MatMul with no quantizer (as QKeras / hls4ml models come), Unsqueeze, Squeeze and
Identity on activations, and each final op the host takes as argmax (Softmax, LogSoftmax,
ArgMax) after a float output tail.

Written with onnx.helper and cleaned with qonnx, like tests/qonnx_coverage_models.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from tests.qonnx_coverage_models import QONNX_DOMAIN, _c, _pruned, _quant

FINAL_OPS = ("Softmax", "LogSoftmax", "ArgMax")


def _finish(nodes, inits, name: str, x_shape, y, path: Path) -> Path:
    """Make the graph (input ``x`` of ``x_shape``, output value info ``y``), clean it with
    qonnx and save it."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model
    from qonnx.util.cleanup import cleanup_model

    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [y],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)]
    cleanup_model(ModelWrapper(qonnx_make_model(graph, opset_imports=opsets))).save(str(path))
    return path


def build_float_input_mlp(
    path: Path, seed: int, final: str = "LogSoftmax", scale_input: bool = False
) -> Path:
    """FLOAT32 input (1, 12), no quantizer [-> Mul 0.5 -> Sub 0.25: host-side preprocessing,
    with ``scale_input``] -> Unsqueeze -> Squeeze -> Identity -> MatMul
    (4-bit weights, scale 2**-3) -> Add (quantized bias) -> Relu -> Quant (unsigned 4-bit,
    2**-2, FLOOR) -> MatMul (3-bit, float scale 0.3) -> Mul 0.7 -> Add -> ``final``."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def add(node_inits):
        nodes.append(node_inits[0])
        inits.extend(node_inits[1])

    inits += [
        helper.make_tensor("ax", TensorProto.INT64, [1], [1]),
        helper.make_tensor("ax2", TensorProto.INT64, [1], [1]),
    ]
    x = "x"
    if scale_input:
        inits += [_c("k_half", 0.5), _c("k_quarter", 0.25)]
        nodes += [
            helper.make_node("Mul", ["x", "k_half"], ["t_half"]),
            helper.make_node("Sub", ["t_half", "k_quarter"], ["t_pre"]),
        ]
        x = "t_pre"
    nodes += [
        helper.make_node("Unsqueeze", [x, "ax"], ["t_u"]),  # (1, 1, 12)
        helper.make_node("Squeeze", ["t_u", "ax2"], ["t_s"]),  # (1, 12)
        helper.make_node("Identity", ["t_s"], ["t_id"]),
    ]
    inits.append(_c("w1_f", _pruned(rng, (12, 8), -7, 7) * 0.125))
    add(_quant("w1_f", "w1", 0.125, 4, signed=True))
    inits.append(_c("b1_f", rng.integers(-40, 40, 8) * 2.0**-6))
    add(_quant("b1_f", "b1", 2.0**-6, 16, signed=True))
    nodes += [
        helper.make_node("MatMul", ["t_id", "w1"], ["t_mm1"]),
        helper.make_node("Add", ["t_mm1", "b1"], ["t_add1"]),
        helper.make_node("Relu", ["t_add1"], ["t_relu"]),
    ]
    add(_quant("t_relu", "t_act", 0.25, 4, signed=False, mode="FLOOR"))
    inits.append(_c("w2_f", _pruned(rng, (8, 5), -3, 3) * 0.3))
    add(_quant("w2_f", "w2", 0.3, 3, signed=True))
    inits += [_c("k_mul", 0.7), _c("k_add", rng.normal(0, 0.3, 5))]
    nodes += [
        helper.make_node("MatMul", ["t_act", "w2"], ["t_mm2"]),
        helper.make_node("Mul", ["t_mm2", "k_mul"], ["t_mul"]),
        helper.make_node("Add", ["t_mul", "k_add"], ["t_logits"]),
    ]
    if final == "ArgMax":
        nodes.append(helper.make_node("ArgMax", ["t_logits"], ["y"], axis=1, keepdims=1))
        y = helper.make_tensor_value_info("y", TensorProto.INT64, [1, 1])
    else:
        nodes.append(helper.make_node(final, ["t_logits"], ["y"], axis=-1))
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])
    return _finish(nodes, inits, "float_input_mlp", (1, 12), y, path)


def build_conv_variants(path: Path, seed: int) -> Path:
    """FLOAT32 input (1, 4, 7, 7) -> Quant (unsigned 4-bit, zero point 2) -> Conv (group 2,
    dilation 2, pads 1, 3-bit weights, float scale) -> Relu -> Quant (unsigned 3-bit) ->
    MaxPool 3x3 stride 2 ceil_mode 1 -> Flatten -> MatMul -> Quant (signed 5-bit, zero
    point -3)."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def add(node_inits):
        nodes.append(node_inits[0])
        inits.extend(node_inits[1])

    def quant(x, y, scale, bits, signed, zp=0.0, mode="ROUND"):
        node, qi = _quant(x, y, scale, bits, signed, mode=mode)
        qi[1] = _c(f"{y}_z", zp)
        return node, qi

    add(quant("x", "q_in", 1 / 15, 4, signed=False, zp=2.0))
    inits.append(_c("wc_f", _pruned(rng, (6, 2, 3, 3), -3, 3) * 0.21))
    add(quant("wc_f", "wc", 0.21, 3, signed=True))
    nodes += [
        helper.make_node(
            "Conv", ["q_in", "wc"], ["t_conv"], group=2, dilations=[2, 2], pads=[1, 1, 2, 2]
        ),
        helper.make_node("Relu", ["t_conv"], ["t_relu"]),
    ]
    add(quant("t_relu", "t_act", 0.125, 3, signed=False))
    nodes += [
        helper.make_node(
            "MaxPool", ["t_act"], ["t_pool"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1
        ),
        helper.make_node("Flatten", ["t_pool"], ["t_flat"], axis=1),
    ]
    inits.append(_c("wd_f", _pruned(rng, (54, 4), -3, 3) * 0.125))
    add(quant("wd_f", "wd", 0.125, 3, signed=True))
    nodes.append(helper.make_node("MatMul", ["t_flat", "wd"], ["t_mm"]))
    add(quant("t_mm", "y", 0.0625, 5, signed=True, zp=-3.0, mode="FLOOR"))
    return _finish(
        nodes,
        inits,
        "conv_variants",
        (1, 4, 7, 7),
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]),
        path,
    )


def build_per_channel_input(path: Path, seed: int) -> Path:
    """FLOAT32 input (1, 3, 4) -> Quant with one float scale per channel (the host's levels)
    -> Flatten -> MatMul (4-bit, 2**-3) -> Relu -> Quant (unsigned 4-bit, float scale)."""
    rng = np.random.default_rng(seed)
    q_in, qi = _quant("x", "q_in", 0.0, 6, signed=False, mode="ROUND")
    qi[0] = _c("q_in_s", np.array([0.013, 0.029, 0.0071], dtype=np.float32).reshape(1, 3, 1))
    nodes, inits = [q_in], list(qi)
    inits.append(_c("w_f", _pruned(rng, (12, 5), -7, 7) * 0.125))
    w, wi = _quant("w_f", "w", 0.125, 4, signed=True)
    nodes.append(w)
    inits += wi
    nodes += [
        helper.make_node("Flatten", ["q_in"], ["t_flat"], axis=1),
        helper.make_node("MatMul", ["t_flat", "w"], ["t_mm"]),
        helper.make_node("Relu", ["t_mm"], ["t_relu"]),
    ]
    y, yi = _quant("t_relu", "y", 0.021, 4, signed=False)
    nodes.append(y)
    inits += yi
    return _finish(
        nodes,
        inits,
        "per_channel_input",
        (1, 3, 4),
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5]),
        path,
    )


# Faults build_user_named can plant, each refused by the importer at one node after cleanup.
USER_NAMED_FAULTS = (
    "rounding_mode",
    "bit_width",
    "zero_point",
    "negative_scale",
    "gemm_alpha",
    "float_input",
    "unsupported_op",
)


def build_user_named(path: Path, fault: str | None = None, input_scale: float = 0.125) -> Path:
    """A model whose node names are not the ones qonnx cleanup gives, saved as written (not
    cleaned): FLOAT32 input ``x`` (1, 6) -> Quant ``my_quant`` (signed 4-bit,
    ``input_scale``) -> Gemm ``fc1`` (weights from an unnamed Quant producing ``w``) -> Relu
    ``relu`` -> Quant ``Quant_0`` (unsigned 4-bit, 2**-2) -> BipolarQuant ``BipolarQuant_11``.

    Cleanup renames them Quant_0, Gemm_0, Quant_1, Relu_0, Quant_2 and BipolarQuant_0, so the
    user's ``Quant_0`` is cleanup's ``Quant_2``. ``fault`` (one of ``USER_NAMED_FAULTS``)
    makes one node unsupported."""
    from qonnx.util.basic import qonnx_make_model

    rng = np.random.default_rng(0)
    q_in, inits = _quant("x", "q_in", input_scale, 4, signed=True)
    q_in.name = "my_quant"
    w, wi = _quant("w_f", "w", 0.125, 4, signed=True)
    inits += wi + [_c("w_f", _pruned(rng, (6, 5), -7, 7) * 0.125)]
    gemm = helper.make_node("Gemm", ["q_in", "w"], ["h"], name="fc1")
    relu = helper.make_node("Relu", ["h"], ["r"], name="relu")
    act, ai = _quant("r", "a", 0.25, 4, signed=False)
    act.name = "Quant_0"
    inits += ai + [_c("y_s", 1.0)]
    sign = helper.make_node(
        "BipolarQuant", ["a", "y_s"], ["y"], domain=QONNX_DOMAIN, name="BipolarQuant_11"
    )
    nodes = [q_in, w, gemm, relu, act, sign]
    inits_by_name = {i.name: i for i in inits}
    if fault == "rounding_mode":
        q_in.attribute[-1].CopyFrom(helper.make_attribute("rounding_mode", "CEIL"))
    elif fault == "bit_width":
        inits_by_name["w_b"].CopyFrom(_c("w_b", 2.5))
    elif fault == "zero_point":
        inits_by_name["a_z"].CopyFrom(_c("a_z", 0.5))
    elif fault == "negative_scale":
        inits_by_name["y_s"].CopyFrom(_c("y_s", -1.0))
    elif fault == "gemm_alpha":
        gemm.attribute.append(helper.make_attribute("alpha", 0.5))
    elif fault == "float_input":
        nodes.remove(q_in)
        gemm.input[0] = "x"
    elif fault == "unsupported_op":
        nodes.insert(4, helper.make_node("Erf", ["r"], ["r_erf"]))
        act.input[0] = "r_erf"
    elif fault is not None:
        raise ValueError(f"unknown fault {fault!r}; use one of {USER_NAMED_FAULTS}")
    graph = helper.make_graph(
        nodes,
        "user_named",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        initializer=list(inits_by_name.values()),
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)]
    onnx.save(qonnx_make_model(graph, opset_imports=opsets), str(path))
    return path
