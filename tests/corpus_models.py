"""Seeded QONNX models in the export styles of public third-party models, not hwprune's own.

Each entry of ``CORPUS`` rebuilds, with random weights, the graph pattern one public tool writes:

* ``qkeras_mlp``: qonnx's QKeras converter (``qonnx/converters/keras.py`` with the handlers in
  ``converters/qkeras/onnx.py`` and ``quantizers.py``) on the hls4ml jet-tagging MLP 16-64-32-32-5.
  tf2onnx turns a Dense into MatMul + Add; the converter puts a Quant on the kernel and on the
  bias and one after the Relu of a ``quantized_relu``. The float graph input reaches the first
  MatMul unquantized: hls4ml gives it a fixed-point type instead. (The converter writes the
  Quant nodes in domain "qonnx"; its own final ``cleanup_model`` call moves them to
  "qonnx.custom_op.general", the domain used here.)
* ``finn_tfc_w1a1`` / ``finn_tfc_w2a2``: FINN's BNN-PYNQ TFC (``brevitas_examples/bnn_pynq/
  models/FC.py``): ``x.view(x.shape[0], -1)`` traced with a dynamic batch (the Shape -> Gather ->
  Unsqueeze -> Concat -> Reshape flatten of the published FINN files), ``2x - 1``, bias-free
  Linear layers with unfolded BatchNorm, and a float tail (BatchNorm, or TensorNorm's
  Sub / Div / Mul / Add) with no quantizer after the last MatMul.
* ``brevitas_perchannel``: Brevitas per-channel weight and activation scales, a MaxPool over
  the per-channel map and a ``TruncAvgPool2d`` whose Trunc carries per-channel scales.
* ``wide_mlp``: a Brevitas 784-256-128-10 MLP with 2- to 4-bit weights, 70-90 % of them zero.

The Brevitas models go through ``export_qonnx`` with the TorchScript exporter (``dynamo=False``),
the one that wrote the public BNN-PYNQ and model-zoo files; only it traces the dynamic flatten.
Builders return the raw export (qonnx executes it); ``write_corpus`` saves each model cleaned with
qonnx's ``cleanup_model``, which folds the flatten's shape arithmetic into one constant.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from brevitas.core.scaling import ScalingImplType
from brevitas.inject.enum import FloatToIntImplType
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU, TruncAvgPool2d
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFloat,
    Uint8ActPerTensorFloat,
)
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from brevitas.quant.scaled_int import TruncTo8bit
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from torch import nn
from torch.nn.utils import prune

QONNX_DOMAIN = "qonnx.custom_op.general"

# tf2onnx's default opset when the QKeras converter was written; onnxruntime 1.31 reads IR <= 10.
QKERAS_OPSET = 13
QKERAS_IR_VERSION = 8

# The node chain the TorchScript exporter writes for x.view(x.shape[0], -1) with a dynamic batch.
DYNAMIC_FLATTEN = ("Shape", "Gather", "Unsqueeze", "Concat", "Reshape")

ModelLike = onnx.ModelProto | ModelWrapper


@dataclass(frozen=True)
class CorpusModel:
    """One corpus entry.

    ``input_type`` is the hls4ml precision of the float graph input when it reaches a MatMul with
    no quantizer in between (the importer cannot infer it), else None. ``sample_inputs(model, n,
    seed)`` returns ``n`` graph inputs stacked as (n, *input shape), float32."""

    build: Callable[[int], onnx.ModelProto]
    input_type: str | None
    description: str
    sample_inputs: Callable[[ModelLike, int, int], np.ndarray]


def _proto(model: ModelLike) -> onnx.ModelProto:
    return model.model if isinstance(model, ModelWrapper) else model


def _with_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with every tensor's shape recorded (qonnx's ``execute_onnx`` insists on it, and
    tf2onnx writes them too); the nodes are left as they are.

    qonnx's InferShapes cannot see through a Reshape whose shape is computed, so this runs ONNX
    shape inference with data propagation on a copy in which every qonnx quantizer (all of them
    shape-preserving) is an Identity."""
    shadow = onnx.ModelProto.FromString(model.SerializeToString())
    for node in shadow.graph.node:
        if node.domain == QONNX_DOMAIN:
            node.op_type, node.domain = "Identity", ""
            del node.input[1:]
            del node.attribute[:]
    shadow = onnx.shape_inference.infer_shapes(shadow, strict_mode=True, data_prop=True)
    out = onnx.ModelProto.FromString(model.SerializeToString())
    del out.graph.value_info[:]
    out.graph.value_info.extend(shadow.graph.value_info)
    return out


def input_shape(model: ModelLike) -> tuple[int, ...]:
    """Static shape of the graph input (batch included)."""
    dims = _proto(model).graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value for d in dims)


# ---------------------------------------------------------------------------------------------
# qkeras_mlp: the QKeras converter's graph, written with onnx.helper (no TensorFlow here).


def _c(name: str, value) -> TensorProto:
    """FLOAT32 initializer."""
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _magnitude_prune(w: np.ndarray, frac: float) -> np.ndarray:
    """Zero the ``frac`` smallest-magnitude weights of every output column (last axis), keeping at
    least one; tfmot's magnitude pruning leaves the same kind of pattern."""
    k = max(1, round(w.shape[0] * (1.0 - frac)))
    thresh = -np.sort(-np.abs(w), axis=0)[k - 1 : k, :]
    return np.where(np.abs(w) >= thresh, w, 0.0)


def _qk_quant(x: str, name: str, scale, bits: int, signed: bool, narrow: bool):
    """The Quant node ``convert_quantized_bits`` / ``convert_quantized_relu`` produce: zero point
    0, rounding_mode ROUND, narrow = the quantizer's ``symmetric`` flag."""
    inits = [_c(f"{name}_scale", scale), _c(f"{name}_zero_point", 0.0), _c(f"{name}_bits", bits)]
    node = helper.make_node(
        "Quant",
        [x, f"{name}_scale", f"{name}_zero_point", f"{name}_bits"],
        [f"{name}:0"],
        name=name,
        domain=QONNX_DOMAIN,
        signed=int(signed),
        narrow=int(narrow),
        rounding_mode="ROUND",
    )
    return node, inits


def _po2(bits: int, integer: int, signed: bool) -> float:
    """QKeras' grid step of quantized_bits / quantized_relu(bits, integer): 2**-(bits-integer-s)."""
    return 2.0 ** -(bits - integer - int(signed))


def build_qkeras_mlp(seed: int) -> onnx.ModelProto:
    """Jet-tagging MLP 16-64-32-32-5 as qonnx's QKeras converter writes it.

    Kernels: quantized_bits(6, 0) per tensor (scale 2**-5, signed, not narrow), except fc2's
    quantized_bits(4, 0, symmetric=1, alpha="auto_po2"): a power-of-two scale per output channel
    (qonnx PR #135's array scales), shape (1, 32). Biases: quantized_bits(8, 3). Activations:
    quantized_relu(6, integer) -> Relu then an unsigned Quant with scale 2**-(6-integer)."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    # (name, n_in, n_out, kernel bits, kernel integer bits, relu integer bits or None)
    layers = [
        ("fc1", 16, 64, 6, 0, 2),
        ("fc2", 64, 32, 4, 0, 1),
        ("fc3", 32, 32, 6, 0, 2),
        ("output", 32, 5, 6, 0, None),
    ]
    x = "input_1"
    for name, n_in, n_out, bits, integer, relu_int in layers:
        prefix = f"model/{name}"
        if name == "fc2":
            # auto_po2: each channel's float weights are spread around its own power of two.
            scale = 2.0 ** rng.integers(-7, -3, size=(1, n_out))
            narrow = True
            w = rng.normal(0.0, 1.0, (n_in, n_out)) * scale * rng.uniform(2.0, 5.0, (1, n_out))
        else:
            scale = _po2(bits, integer, signed=True)
            narrow = False
            w = rng.normal(0.0, rng.uniform(0.2, 0.35), (n_in, n_out))
        w = _magnitude_prune(w, rng.uniform(0.45, 0.8))
        inits.append(_c(f"{prefix}/kernel", w))
        q, qi = _qk_quant(
            f"{prefix}/kernel",
            f"{prefix}/MatMul_kernel_quantizer",
            scale,
            bits,
            signed=True,
            narrow=narrow,
        )
        nodes.append(q)
        inits += qi
        inits.append(_c(f"{prefix}/bias", rng.normal(0.0, 0.3, n_out)))
        qb, qbi = _qk_quant(
            f"{prefix}/bias",
            f"{prefix}/BiasAdd_bias_quantizer",
            _po2(8, 3, True),
            8,
            signed=True,
            narrow=False,
        )
        nodes.append(qb)
        inits += qbi
        nodes += [
            helper.make_node(
                "MatMul", [x, q.output[0]], [f"{prefix}/MatMul:0"], name=f"{prefix}/MatMul"
            ),
            helper.make_node(
                "Add",
                [f"{prefix}/MatMul:0", qb.output[0]],
                [f"{prefix}/BiasAdd:0"],
                name=f"{prefix}/BiasAdd",
            ),
        ]
        x = f"{prefix}/BiasAdd:0"
        if relu_int is not None:
            act = f"model/{name}_relu"
            nodes.append(helper.make_node("Relu", [x], [f"{act}/Relu:0"], name=f"{act}/Relu"))
            qa, qai = _qk_quant(
                f"{act}/Relu:0",
                f"{act}/Relu_activation_quantizer",
                _po2(6, relu_int, signed=False),
                6,
                signed=False,
                narrow=False,
            )
            nodes.append(qa)
            inits += qai
            x = qa.output[0]
    nodes.append(
        helper.make_node("Softmax", [x], ["softmax"], name="model/softmax/Softmax", axis=-1)
    )
    graph = helper.make_graph(
        nodes,
        "qkeras_to_qonnx_converted",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("softmax", TensorProto.FLOAT, [1, 5])],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", QKERAS_OPSET), helper.make_opsetid(QONNX_DOMAIN, 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="tf2onnx")
    model.ir_version = QKERAS_IR_VERSION
    return _with_shapes(model)


def sample_fixed_16_6(model: ModelLike, n: int, seed: int) -> np.ndarray:
    """Inputs on the fixed<16,6> grid (k * 2**-10, k in [-2**15, 2**15 - 1]): a normal of std 4
    rounded down to the grid, with about 5 % of the entries (at least one per sample) replaced
    by the grid's extremes or its smallest steps around zero."""
    rng = np.random.default_rng(seed)
    shape = (n, *input_shape(model))
    k = np.floor(rng.normal(0.0, 4.0, shape) * 2**10)
    extremes = np.array([-(2**15), 2**15 - 1, -1, 1, 0])
    hit = rng.random(shape) < 0.05
    hit.reshape(n, -1)[np.arange(n), rng.integers(0, hit[0].size, n)] = True
    k = np.where(hit, rng.choice(extremes, shape), k)
    return (np.clip(k, -(2**15), 2**15 - 1) * 2.0**-10).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Brevitas models.


def _pruning_mask(w: torch.Tensor, frac: float) -> torch.Tensor:
    """Magnitude mask keeping the largest (1 - frac) of each output channel (dim 0), at least one,
    so that no per-channel scale is computed from an all-zero channel."""
    flat = w.detach().abs().reshape(w.shape[0], -1)
    k = max(1, round(flat.shape[1] * (1.0 - frac)))
    thresh = flat.topk(k, dim=1).values[:, -1:]
    return (flat >= thresh).reshape(w.shape)


def _prune(model: nn.Module, fracs: list[float]) -> None:
    """Apply one pruning fraction per weight layer, in module order, and make the masks
    permanent (torch.nn.utils.prune.remove) as Brevitas users do before export."""
    layers = [m for m in model.modules() if isinstance(m, (QuantLinear, QuantConv2d))]
    for m, frac in zip(layers, fracs, strict=True):
        prune.custom_from_mask(m, "weight", _pruning_mask(m.weight, frac))
        prune.remove(m, "weight")


def _init_weights(model: nn.Module, gen: torch.Generator, dist: str) -> None:
    """Seeded weights with a random gain per layer, so that no scale comes out a round number:
    FINN's uniform(-1, 1) (its training clips weights to that range), or a normal of std
    1/sqrt(fan_in) clipped to 2.5 sigma (so that one outlier does not set a whole per-tensor
    scale). Layers with per-channel weight scales also get a gain per output channel; under a
    per-tensor scale that would round whole weak channels to zero."""
    with torch.no_grad():
        for m in model.modules():
            if not isinstance(m, (QuantLinear, QuantConv2d)):
                continue
            w = m.weight
            per_channel = m.quant_weight().scale.numel() > 1
            spread = 0.8 if per_channel else 0.2
            row = 1.0 - spread / 2 + spread * torch.rand(w.shape[0], generator=gen)
            gain = (0.4 + 0.5 * torch.rand((), generator=gen)) * row.reshape(
                -1, *[1] * (w.dim() - 1)
            )
            if dist == "uniform":
                w.copy_((torch.rand(w.shape, generator=gen) * 2 - 1) * gain.clamp(max=1.0))
            else:
                sd = gain / np.sqrt(w[0].numel())
                w.copy_(torch.clamp(torch.randn(w.shape, generator=gen) * sd, -2.5 * sd, 2.5 * sd))


def _calibrate(model: nn.Module, in_shape: tuple[int, ...], gen: torch.Generator) -> nn.Module:
    """Set BatchNorm statistics and activation scales from seeded [0, 1) batches.

    BatchNorm's running statistics come from a first train-mode pass, then get a random shift,
    gamma and beta (every c/4-th gamma negative, as trained BNN BatchNorms have some); the
    activation quantizers then see more batches with BatchNorm frozen, so their scales fit it."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    for bn in bns:
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    # Brevitas warns when a float bias keeps it from computing an output scale; harmless here.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            model(torch.rand(64, *in_shape, generator=gen))
        for bn in bns:
            c = bn.num_features
            bn.running_mean.add_(0.3 * torch.randn(c, generator=gen) * bn.running_var.sqrt())
            bn.running_var.mul_(0.5 + 1.5 * torch.rand(c, generator=gen))
            bn.weight.copy_(0.5 + torch.rand(c, generator=gen))
            bn.weight[:: max(2, c // 4)] *= -1
            bn.bias.copy_(0.4 * torch.randn(c, generator=gen))
            bn.eval()
        for _ in range(4):
            model(torch.rand(64, *in_shape, generator=gen))
    return model.eval()


def _export(model: nn.Module, in_shape: tuple[int, ...], dynamic_batch: bool) -> onnx.ModelProto:
    """``export_qonnx`` with the TorchScript exporter, for a (1, *in_shape) input.

    With ``dynamic_batch`` the batch axis is traced as a symbol (so x.shape[0] becomes a Shape
    node), then pinned back to 1 in the graph's input and output, as qonnx's Keras converter does
    for its unknown batch; intermediate value infos, which still name the symbol, are dropped."""
    from brevitas.export import export_qonnx

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    kwargs = {"dynamo": False, "input_names": ["x"], "output_names": ["y"]}
    if dynamic_batch:
        kwargs["dynamic_axes"] = {"x": {0: "batch"}, "y": {0: "batch"}}
    # torch.onnx prints progress lines and warnings that say nothing about the model.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = export_qonnx(model, torch.zeros(1, *in_shape), export_path=None, **kwargs)
    if dynamic_batch:
        for vi in (proto.graph.input[0], proto.graph.output[0]):
            vi.type.tensor_type.shape.dim[0].dim_value = 1
        del proto.graph.value_info[:]
    return _with_shapes(proto)


class _TensorNorm(nn.Module):
    """A scalar affine norm with TensorNorm's export (Sub, Div, Mul, Add), the float tail of
    BNN-PYNQ's TFC / CNV; values are set by the builder, not trained."""

    def __init__(self, mean: float, std: float, weight: float, bias: float):
        super().__init__()
        for name, v in (("mean", mean), ("std", std), ("weight", weight), ("bias", bias)):
            self.register_buffer(name, torch.tensor([v]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std * self.weight + self.bias


class _TFC(nn.Module):
    """BNN-PYNQ's TFC topology: flatten, 2x - 1, an input quantizer, bias-free Linear layers each
    followed by BatchNorm1d and its activation quantizer, and a last Linear into ``tail``."""

    def __init__(self, hidden: tuple[int, ...], weight_quant, act_quants, in_quant, tail):
        super().__init__()
        self.in_quant = QuantIdentity(act_quant=in_quant)
        layers: list[nn.Module] = []
        n_in = 28 * 28
        for n_out, act_quant in zip(hidden, act_quants, strict=True):
            layers += [
                QuantLinear(n_in, n_out, bias=False, weight_quant=weight_quant),
                nn.BatchNorm1d(n_out),
                QuantIdentity(act_quant=act_quant),
            ]
            n_in = n_out
        layers.append(QuantLinear(n_in, 10, bias=False, weight_quant=weight_quant))
        self.features = nn.Sequential(*layers)
        self.tail = tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(x.shape[0], -1)
        x = 2.0 * x - torch.tensor([1.0])
        return self.tail(self.features(self.in_quant(x)))


# FINN's CommonWeightQuant / CommonActQuant at 1 bit: constant scale 1, bipolar.
_Bipolar = type("Bipolar", (SignedBinaryActPerTensorConst,), {"min_val": -1.0, "max_val": 1.0})
_BinaryWeight = type("BinaryWeight", (SignedBinaryWeightPerTensorConst,), {"scaling_const": 1.0})
# FINN's 2-bit input quantizer: narrow, constant scale 1 (max_val 1 over max_int 1): -1, 0, +1.
_Ternary1 = type(
    "Ternary1",
    (Int8ActPerTensorFloat,),
    {
        "bit_width": 2,
        "narrow_range": True,
        "scaling_impl_type": ScalingImplType.CONST,
        "min_val": -1.0,
        "max_val": 1.0,
    },
)
# 2-bit weights with a float scale, the absmax of the (clipped, pruned) weights.
_W2 = type("W2", (Int8WeightPerTensorFloat,), {"bit_width": 2})


def _act2(scale: float):
    """2-bit signed activations (-2, -1, 0, 1) times a constant float ``scale``: FINN's
    CommonActQuant shape with a trained-looking scale. (A scale calibrated from statistics
    comes out near 2 after BatchNorm, which would make nearly every activation 0.)"""
    attrs = {"bit_width": 2, "scaling_impl_type": ScalingImplType.CONST}
    return type("A2", (Int8ActPerTensorFloat,), {**attrs, "min_val": -scale, "max_val": scale})


_TFC_HIDDEN = (64, 64, 64)


def build_finn_tfc_w1a1(seed: int) -> onnx.ModelProto:
    """TFC-w1a1 784-64-64-64-10: BipolarQuant (scale 1) input, weights and activations, unfolded
    BatchNorm after every MatMul, the last one with no quantizer after it."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    acts = [_Bipolar] * len(_TFC_HIDDEN)
    model = _TFC(_TFC_HIDDEN, _BinaryWeight, acts, _Bipolar, nn.BatchNorm1d(10))
    _init_weights(model, gen, "uniform")  # bipolar weights cannot show pruning
    return _export(_calibrate(model, (1, 28, 28), gen), (1, 28, 28), dynamic_batch=True)


def build_finn_tfc_w2a2(seed: int) -> onnx.ModelProto:
    """TFC-w2a2 784-64-64-64-10: a 2-bit narrow input Quant (scale 1), ternary weights with a
    float per-tensor scale, BatchNorm then 2-bit signed activation Quants with float scales, and
    TensorNorm's float tail (Sub, Div, Mul, Add) after the last MatMul."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    tail = _TensorNorm(
        *(float(v) for v in rng.uniform([-2.0, 8.0, 0.6, -0.5], [2.0, 20.0, 1.7, 0.5]))
    )
    acts = [_act2(float(s)) for s in rng.uniform(0.45, 0.9, len(_TFC_HIDDEN))]
    model = _TFC(_TFC_HIDDEN, _W2, acts, _Ternary1, tail)
    _init_weights(model, gen, "uniform")
    _prune(model, list(rng.uniform(0.4, 0.7, 4)))
    return _export(_calibrate(model, (1, 28, 28), gen), (1, 28, 28), dynamic_batch=True)


def sample_unit_images(
    boundaries: tuple[float, ...],
) -> Callable[[ModelLike, int, int], np.ndarray]:
    """Uniform [0, 1) images; every other one has 20 % of its pixels set to values from
    ``boundaries`` (where 2x - 1 sits exactly on the input quantizer's rounding boundary)."""

    def sample(model: ModelLike, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        shape = (n, *input_shape(model))
        x = rng.random(shape)
        hit = (rng.random(shape) < 0.2) & (np.arange(n) % 2 == 1).reshape(-1, *[1] * len(shape[1:]))
        return np.where(hit, rng.choice(boundaries, shape), x).astype(np.float32)

    sample.__doc__ = f"Uniform [0, 1) images, some with pixels exactly at {boundaries}."
    return sample


def sample_uniform(model: ModelLike, n: int, seed: int) -> np.ndarray:
    """Uniform [0, 1) inputs of the graph input's shape."""
    return np.random.default_rng(seed).random((n, *input_shape(model))).astype(np.float32)


def _per_channel_act(bits: int, channels: int):
    """Unsigned activation quantizer with one float scale per channel of an NCHW map."""
    return type(
        f"PerChannelU{bits}",
        (Uint8ActPerTensorFloat,),
        {
            "bit_width": bits,
            "scaling_per_output_channel": True,
            "per_channel_broadcastable_shape": (1, channels, 1, 1),
            "scaling_stats_permute_dims": (1, 0, 2, 3),
        },
    )


_In8Floor = type(
    "In8Floor", (Uint8ActPerTensorFloat,), {"float_to_int_impl_type": FloatToIntImplType.FLOOR}
)
_W4PerChannel = type("W4PerChannel", (Int8WeightPerChannelFloat,), {"bit_width": 4})
_Trunc5 = type("Trunc5", (TruncTo8bit,), {"bit_width": 5})


def build_brevitas_perchannel(seed: int) -> onnx.ModelProto:
    """Input (1, 2, 8, 8): 8-bit unsigned FLOOR input Quant -> Conv2d 2->8 3x3 (4-bit per-channel
    weights, float bias) -> Relu + per-channel 4-bit Quant -> MaxPool 2x2 -> TruncAvgPool2d 2x2
    (AveragePool + a Trunc to 5 bits with per-channel scales) -> Flatten -> Linear 32->10 (8-bit
    per-channel weights, float bias) -> per-tensor 8-bit signed output Quant."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = nn.Sequential(
        QuantIdentity(act_quant=_In8Floor, return_quant_tensor=True),
        QuantConv2d(2, 8, 3, padding=1, bias=True, weight_quant=_W4PerChannel),
        QuantReLU(act_quant=_per_channel_act(4, 8), return_quant_tensor=True),
        nn.MaxPool2d(2),
        TruncAvgPool2d(2, stride=2, trunc_quant=_Trunc5, return_quant_tensor=True),
        nn.Flatten(),
        QuantLinear(32, 10, bias=True, weight_quant=Int8WeightPerChannelFloat),
        QuantIdentity(act_quant=Int8ActPerTensorFloat),
    )
    _init_weights(model, gen, "normal")
    _prune(model, list(rng.uniform(0.4, 0.7, 2)))
    with torch.no_grad():  # a live ReLU channel each (a trained network's dead channel gets
        model[1].bias.abs_()  # Brevitas' 1e-10 floor scale, which hwprune refuses by name)
    return _export(_calibrate(model, (2, 8, 8), gen), (2, 8, 8), dynamic_batch=False)


_U8 = type("U8", (Uint8ActPerTensorFloat,), {"bit_width": 8})
_U6 = type("U6", (Uint8ActPerTensorFloat,), {"bit_width": 6})
_U4 = type("U4", (Uint8ActPerTensorFloat,), {"bit_width": 4})
_W3 = type("W3", (Int8WeightPerTensorFloat,), {"bit_width": 3})


def build_wide_mlp(seed: int) -> onnx.ModelProto:
    """784-256-128-10 (234 752 weights): 8-bit unsigned input Quant -> Gemm (4-bit per-channel
    weights) -> Relu + 6-bit Quant -> Gemm (3-bit per-tensor) -> Relu + 4-bit Quant -> Gemm
    (ternary, per-tensor) with float biases throughout and a float output."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = nn.Sequential(
        QuantIdentity(act_quant=_U8),
        QuantLinear(784, 256, bias=True, weight_quant=_W4PerChannel),
        QuantReLU(act_quant=_U6),
        QuantLinear(256, 128, bias=True, weight_quant=_W3),
        QuantReLU(act_quant=_U4),
        QuantLinear(128, 10, bias=True, weight_quant=_W2),
    )
    _init_weights(model, gen, "normal")
    _prune(model, [rng.uniform(0.75, 0.85), rng.uniform(0.6, 0.7), rng.uniform(0.25, 0.35)])
    return _export(_calibrate(model, (784,), gen), (784,), dynamic_batch=False)


CORPUS: dict[str, CorpusModel] = {
    "qkeras_mlp": CorpusModel(
        build=build_qkeras_mlp,
        input_type="fixed<16,6>",
        description="qonnx QKeras converter, jet-tagging MLP 16-64-32-32-5, unquantized input",
        sample_inputs=sample_fixed_16_6,
    ),
    "finn_tfc_w1a1": CorpusModel(
        build=build_finn_tfc_w1a1,
        input_type=None,
        description="FINN BNN-PYNQ TFC-w1a1 784-64-64-64-10, dynamic flatten, BatchNorm tail",
        sample_inputs=sample_unit_images((0.5,)),
    ),
    "finn_tfc_w2a2": CorpusModel(
        build=build_finn_tfc_w2a2,
        input_type=None,
        description="FINN BNN-PYNQ TFC-w2a2 784-64-64-64-10, dynamic flatten, TensorNorm tail",
        sample_inputs=sample_unit_images((0.25, 0.5, 0.75)),
    ),
    "brevitas_perchannel": CorpusModel(
        build=build_brevitas_perchannel,
        input_type=None,
        description="Brevitas CNN with per-channel weight, activation and Trunc scales",
        sample_inputs=sample_uniform,
    ),
    "wide_mlp": CorpusModel(
        build=build_wide_mlp,
        input_type=None,
        description="Brevitas MLP 784-256-128-10, 2-4-bit weights, 70-90 % zeros",
        sample_inputs=sample_uniform,
    ),
}


def clean(model: ModelLike) -> ModelWrapper:
    """The model after qonnx's ``cleanup_model`` (shape folding, readable names, no static
    graph inputs)."""
    from qonnx.util.cleanup import cleanup_model

    return cleanup_model(
        ModelWrapper(onnx.ModelProto.FromString(_proto(model).SerializeToString()))
    )


def write_corpus(directory: Path | str, seed: int = 0) -> dict[str, Path]:
    """Build every ``CORPUS`` model with ``seed``, clean it and save it as ``<name>.onnx`` in
    ``directory``; returns {name: path}."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, entry in CORPUS.items():
        path = out / f"{name}.onnx"
        clean(entry.build(seed)).save(str(path))
        paths[name] = path
    return paths


def has_dynamic_flatten(model: ModelLike) -> bool:
    """Whether the graph holds the Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain, each
    node consuming the previous one's output."""
    nodes = _proto(model).graph.node
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def follows(node: onnx.NodeProto, rest: tuple[str, ...]) -> bool:
        if not rest:
            return True
        nxt = [c for c in consumers.get(node.output[0], []) if c.op_type == rest[0]]
        return any(follows(c, rest[1:]) for c in nxt)

    return any(n.op_type == DYNAMIC_FLATTEN[0] and follows(n, DYNAMIC_FLATTEN[1:]) for n in nodes)


def weight_stats(model: ModelLike) -> dict[str, tuple[tuple[int, ...], float]]:
    """{weight tensor: (shape, fraction of exact zeros after its quantizer)} for every Quant /
    BipolarQuant whose input is an initializer of two or more dimensions, quantized by qonnx's
    own reference functions."""
    from qonnx.custom_op.general.quant import quant

    m = model if isinstance(model, ModelWrapper) else ModelWrapper(model)
    stats = {}
    for node in m.graph.node:
        w = m.get_initializer(node.input[0])
        if node.op_type not in ("Quant", "BipolarQuant") or w is None or w.ndim < 2:
            continue
        if node.op_type == "BipolarQuant":
            zeros = 0.0  # sign(x) with sign(0) = +1: never zero
        else:
            s, z, b = (m.get_initializer(i) for i in node.input[1:4])
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            mode = attrs.get("rounding_mode", b"ROUND").decode()
            q = quant(w, s, z, b, attrs["signed"], attrs["narrow"], mode)
            zeros = float(np.mean(q == 0))
        stats[node.input[0]] = (tuple(w.shape), zeros)
    return stats


def _summary(seed: int = 0, n: int = 5) -> None:
    """Build, clean and run every model on ``n`` sampled inputs; print what the report needs."""
    import time

    from qonnx.core.onnx_exec import execute_onnx

    for name, entry in CORPUS.items():
        t0 = time.perf_counter()
        raw = entry.build(seed)
        t_build = time.perf_counter() - t0
        cleaned = clean(raw)
        xs = entry.sample_inputs(cleaned, n, seed)
        iname, oname = cleaned.graph.input[0].name, cleaned.graph.output[0].name
        outs = [execute_onnx(cleaned, {iname: x})[oname] for x in xs]
        assert all(np.isfinite(o).all() for o in outs), name
        raw_w = ModelWrapper(raw)
        raw_out = execute_onnx(raw_w, {raw_w.graph.input[0].name: xs[0]})[raw.graph.output[0].name]
        assert np.array_equal(raw_out, outs[0]), f"{name}: cleanup changed the output"
        assert has_dynamic_flatten(raw) == name.startswith("finn_"), name
        assert not has_dynamic_flatten(cleaned), name
        ops: dict[str, int] = {}
        for node in cleaned.graph.node:
            ops[node.op_type] = ops.get(node.op_type, 0) + 1
        stats = weight_stats(cleaned)
        total = sum(int(np.prod(s)) for s, _ in stats.values())
        zeros = sum(int(np.prod(s)) * z for s, z in stats.values()) / total
        print(f"{name}: built in {t_build:.2f} s, raw dynamic flatten: {has_dynamic_flatten(raw)}")
        print(f"  in {input_shape(cleaned)} out {cleaned.get_tensor_shape(oname)}")
        print(f"  ops {ops}")
        print(f"  weights {total}, zero fraction {zeros:.3f}, input_type {entry.input_type}")
        for wname, (shape, z) in stats.items():
            print(f"    {wname} {shape} zeros {z:.3f}")
        print(
            f"  output range [{min(o.min() for o in outs):.4g}, {max(o.max() for o in outs):.4g}]"
        )


if __name__ == "__main__":
    _summary()
