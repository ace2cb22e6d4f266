"""Small seeded Brevitas models with the layers the training side builds (convolutions,
pooling, flatten, binary / ternary / 1-bit quantizers), and their QONNX exports.

Every model starts from a flat (1, n_in) input with nn.Unflatten, as the trained models do,
except ``shaped_input_cnn``, exported with a (1, C, H, W) example input. Activation scales are
calibrated by a few train-mode forwards; some weights are zeroed, as pruning leaves them.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from brevitas.inject.enum import FloatToIntImplType
from brevitas.nn import QuantConv1d, QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8WeightPerTensorFixedPoint,
    Uint8ActPerTensorFixedPoint,
)
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from brevitas.quant.scaled_int import Int32Bias
from torch import nn

_ROUND = {"floor": FloatToIntImplType.FLOOR, "half_even": FloatToIntImplType.ROUND}


def weight_quant(bits: int):
    """Signed, narrow-range, power-of-two weights, as hwprune/train/model.py (2 bits: ternary)."""
    return type(f"Int{bits}Weight", (Int8WeightPerTensorFixedPoint,), {"bit_width": bits})


# Brevitas' binary weight quantizer has scale 0.1; hardware needs a power of two.
BinaryWeight = type("BinaryWeight", (SignedBinaryWeightPerTensorConst,), {"scaling_const": 0.25})


def act_quant(bits: int, rounding: str = "floor", signed: bool = False):
    """Power-of-two activation quantizer (unsigned unless asked)."""
    base = Int8ActPerTensorFixedPoint if signed else Uint8ActPerTensorFixedPoint
    return type(
        f"Act{bits}", (base,), {"bit_width": bits, "float_to_int_impl_type": _ROUND[rounding]}
    )


def _qid(bits: int, rounding: str = "floor", signed: bool = False) -> QuantIdentity:
    return QuantIdentity(act_quant=act_quant(bits, rounding, signed), return_quant_tensor=True)


def _qrelu(bits: int, rounding: str = "floor") -> QuantReLU:
    return QuantReLU(act_quant=act_quant(bits, rounding), return_quant_tensor=True)


def _prepare(model: nn.Module, in_shape: tuple[int, ...], signed_input: bool) -> nn.Module:
    """Zero about a third of every weight tensor, then calibrate activation scales."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (QuantConv1d, QuantConv2d, QuantLinear)):
                m.weight.mul_((torch.rand_like(m.weight) > 0.35).float())
    model.train()
    for _ in range(4):
        x = torch.rand(32, *in_shape)
        model(2 * x - 1 if signed_input else x)
    return model.eval()


def conv2d_stride_pad(seed: int = 0) -> tuple[nn.Module, int]:
    """Conv2d (3x3, stride 2, pad 1) -> half-even ReLU -> MaxPool 3x3 stride 2 pad 1 -> Linear."""
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Unflatten(1, (2, 9, 9)),
        _qid(4),
        QuantConv2d(
            2, 4, 3, stride=2, padding=1, weight_quant=weight_quant(4), bias_quant=Int32Bias
        ),
        _qrelu(4, "half_even"),
        nn.MaxPool2d(3, stride=2, padding=1),  # 5x5 -> 3x3
        nn.Flatten(),
        QuantLinear(36, 5, bias=True, weight_quant=weight_quant(4), bias_quant=Int32Bias),
    )
    return _prepare(m, (162,), False), 162


def pools_ternary_binary(seed: int = 1) -> tuple[nn.Module, int]:
    """Ternary conv -> MaxPool 2x2 -> conv -> AvgPool 2x2 -> QuantIdentity -> binary Linear."""
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        _qid(3),
        QuantConv2d(1, 3, 3, padding=1, weight_quant=weight_quant(2), bias_quant=Int32Bias),
        _qrelu(3),
        nn.MaxPool2d(2),  # 8x8 -> 4x4
        QuantConv2d(3, 4, 3, padding=1, bias=False, weight_quant=weight_quant(4)),
        _qrelu(4, "half_even"),
        nn.AvgPool2d(2),  # 4x4 -> 2x2
        _qid(4, "half_even"),
        nn.Flatten(),
        QuantLinear(16, 3, bias=True, weight_quant=BinaryWeight, bias_quant=Int32Bias),
    )
    return _prepare(m, (64,), False), 64


def conv1d_bipolar(seed: int = 2) -> tuple[nn.Module, int]:
    """Signed input -> Conv1d -> bipolar activation -> MaxPool1d 3 stride 2 pad 1 -> binary
    Linear."""
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Unflatten(1, (2, 12)),
        _qid(4, signed=True),
        QuantConv1d(2, 3, 3, padding=1, weight_quant=weight_quant(3), bias_quant=Int32Bias),
        QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True),
        nn.MaxPool1d(3, stride=2, padding=1),  # 12 -> 6
        nn.Flatten(),
        QuantLinear(18, 4, bias=True, weight_quant=BinaryWeight, bias_quant=Int32Bias),
    )
    return _prepare(m, (24,), True), 24


def shaped_input_cnn(seed: int = 3) -> tuple[nn.Module, tuple[int, ...]]:
    """A model whose graph input is already (1, C, H, W): no Unflatten, unpadded conv."""
    torch.manual_seed(seed)
    m = nn.Sequential(
        _qid(4),
        QuantConv2d(2, 3, 3, weight_quant=weight_quant(4), bias_quant=Int32Bias),
        _qrelu(4),
        nn.Flatten(),
        QuantLinear(48, 4, bias=True, weight_quant=weight_quant(4), bias_quant=Int32Bias),
    )
    return _prepare(m, (2, 6, 6), False), (2, 6, 6)


def export_shaped(model: nn.Module, in_shape: tuple[int, ...], path: Path) -> None:
    """Like hwprune.export.qonnx.export_model, with a (1, *in_shape) example input."""
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    raw = path.with_suffix(".raw.onnx")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.zeros(1, *in_shape), export_path=str(raw))
    cleanup_model(ModelWrapper(str(raw))).save(str(path))


def brevitas_outputs(model: nn.Module, x: np.ndarray, in_exp: int, out_exp: int) -> np.ndarray:
    """Brevitas forward on integer inputs, as integers on the output grid (float64)."""
    with torch.no_grad():
        y = model(torch.as_tensor(x * 2.0**in_exp, dtype=torch.float32))
    y = getattr(y, "value", y)
    return y.numpy().astype(np.float64) / 2.0**out_exp


def quantized_kernel_nonzeros(model_onnx: Path) -> list[int]:
    """Nonzero integer weights of every weight tensor (2-D or more), in node order, by qonnx's
    own execution of the Quant / BipolarQuant nodes on the initializers."""
    from qonnx.core.onnx_exec import execute_node

    from hwprune.frontend.qonnx import load_model

    m = load_model(model_onnx)
    inits = {i.name for i in m.graph.initializer}
    counts = []
    for node in m.graph.node:
        if node.op_type in ("Quant", "BipolarQuant") and node.input[0] in inits:
            ctx = {n: m.get_initializer(n) for n in node.input}
            execute_node(node, ctx, m.graph, opset_version=m.model.opset_import[0].version)
            if ctx[node.output[0]].ndim >= 2:
                counts.append(int(np.count_nonzero(ctx[node.output[0]])))
    return counts
