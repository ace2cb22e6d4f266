"""Seeded, self-made QONNX models that together cover every node type issue 4 asks the importer
to handle: Quant, BipolarQuant, Trunc, MatMul, Gemm, Add, Mul, Div, Sub, Transpose, Reshape,
Flatten, BatchNormalization, Relu, Conv (1-D and 2-D), MaxPool, AveragePool, Softmax.

They look like third-party models, not like hwprune's own exports: per-tensor float scales that
are not powers of two, BatchNorm left unfolded between layers (one channel with a negative
gamma each), bipolar and ternary quantizers, 30-60 % zero weights as pruning leaves them. Most
are Brevitas models exported with ``export_qonnx``; the element-wise ops Brevitas never emits on
their own (Transpose, Flatten, Mul / Div / Sub on activations) and a bipolar-input MLP in the
style of FINN's UNSW-NB15 model are written with onnx.helper. Every file is cleaned with qonnx's
``cleanup_model``, so it is what ``execute_onnx`` after cleanup sees.

Graph inputs are either FLOAT32 in [0, 1) followed by a Quant node, or annotated with an
integer / bipolar qonnx datatype; ``sample_inputs`` draws from whichever it is.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from brevitas.nn import (
    QuantConv1d,
    QuantConv2d,
    QuantIdentity,
    QuantLinear,
    QuantReLU,
    TruncAvgPool2d,
)
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat, Uint8ActPerTensorFloat
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from brevitas.quant.scaled_int import TruncTo8bit
from onnx import TensorProto, helper, numpy_helper
from torch import nn

QONNX_DOMAIN = "qonnx.custom_op.general"

# The node types of issue 4, item 1; the union over COVERAGE_MODELS must contain all of them.
REQUIRED_OPS = (
    "Quant",
    "BipolarQuant",
    "Trunc",
    "MatMul",
    "Gemm",
    "Add",
    "Mul",
    "Div",
    "Sub",
    "Transpose",
    "Reshape",
    "Flatten",
    "BatchNormalization",
    "Relu",
    "Conv",
    "MaxPool",
    "AveragePool",
    "Softmax",
)


# ---------------------------------------------------------------------------------------------
# Brevitas quantizers: per-tensor, float (statistics-derived, so not power-of-two) scales.


def _wq(bits: int):
    """Signed narrow-range weights with a float scale (2 bits: ternary -1, 0, +1)."""
    return type(f"W{bits}", (Int8WeightPerTensorFloat,), {"bit_width": bits})


def _uact(bits: int):
    """Unsigned activation quantizer with a float scale."""
    return type(f"U{bits}", (Uint8ActPerTensorFloat,), {"bit_width": bits})


def _sact(bits: int, narrow: bool = False):
    """Signed activation quantizer with a float scale (2 bits + narrow: ternary)."""
    return type(f"S{bits}", (Int8ActPerTensorFloat,), {"bit_width": bits, "narrow_range": narrow})


# Brevitas' binary quantizers have constant scales; pick ones that are not powers of two.
BinaryWeight = type("BinaryWeight", (SignedBinaryWeightPerTensorConst,), {"scaling_const": 0.3})
# The activation's constant scale comes from its clamp range.
BipolarAct = type("BipolarAct", (SignedBinaryActPerTensorConst,), {"min_val": -0.7, "max_val": 0.7})
Trunc4 = type("Trunc4", (TruncTo8bit,), {"bit_width": 4})


def _qid(quant) -> QuantIdentity:
    return QuantIdentity(act_quant=quant, return_quant_tensor=True)


def _qrelu(bits: int) -> QuantReLU:
    return QuantReLU(act_quant=_uact(bits), return_quant_tensor=True)


def _prepare(model: nn.Module, in_shape: tuple[int, ...], seed: int) -> nn.Module:
    """Prune, set BatchNorm statistics and calibrate activation scales, all seeded.

    Order matters: BatchNorm's running statistics come from a first train-mode pass (so
    normalised values are of sensible size), then are perturbed and given random gamma / beta
    (channel 0 negative); the activation quantizers then see a few more forwards with BatchNorm
    frozen in eval mode, so their scales fit the BatchNorm the export will contain."""
    gen = torch.Generator().manual_seed(seed)
    layers = (QuantConv1d, QuantConv2d, QuantLinear)
    with torch.no_grad():
        for m in model.modules():
            # Binary weights have no zero; pruning cannot show in them.
            if isinstance(m, layers) and m.weight_quant.bit_width() > 1:
                frac = 0.3 + 0.3 * torch.rand((), generator=gen)
                m.weight.mul_((torch.rand(m.weight.shape, generator=gen) >= frac).float())
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(32, *in_shape, generator=gen))
        for bn in bns:
            c = bn.num_features
            bn.running_mean.add_(0.3 * torch.randn(c, generator=gen) * bn.running_var.sqrt())
            bn.running_var.mul_(0.5 + 1.5 * torch.rand(c, generator=gen))
            bn.weight.copy_(0.5 + torch.rand(c, generator=gen))
            bn.weight[0] = -bn.weight[0]
            bn.bias.copy_(0.4 * torch.randn(c, generator=gen))
            bn.eval()
        for _ in range(4):
            model(torch.rand(32, *in_shape, generator=gen))
    return model.eval()


def _export(model: nn.Module, in_shape: tuple[int, ...], path: Path) -> Path:
    """Brevitas QONNX export of ``model`` for a (1, *in_shape) input, cleaned by qonnx."""
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    raw = path.with_suffix(".raw.onnx")
    # torch.onnx prints progress lines and warnings that say nothing about the model.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.zeros(1, *in_shape), export_path=str(raw))
    cleanup_model(ModelWrapper(str(raw))).save(str(path))
    raw.unlink()
    return path


def mlp_bn_module(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    """Quant input (1, 12) -> Gemm -> BN -> ReLU-quant -> ternary bias-free Gemm -> BN ->
    ternary act -> Gemm -> Softmax. (Brevitas exports a bias-free Linear as Gemm too; MatMul
    comes from the hand-written models.)"""
    torch.manual_seed(seed)
    m = nn.Sequential(
        _qid(_uact(4)),
        QuantLinear(12, 10, bias=True, weight_quant=_wq(4), return_quant_tensor=True),
        nn.BatchNorm1d(10),
        _qrelu(3),
        QuantLinear(10, 8, bias=False, weight_quant=_wq(2), return_quant_tensor=True),
        nn.BatchNorm1d(8),
        _qid(_sact(2, narrow=True)),
        QuantLinear(8, 4, bias=True, weight_quant=_wq(5)),
        nn.Softmax(dim=-1),
    )
    return _prepare(m, (12,), seed), (12,)


def cnn2d_module(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    """The small CNN: Quant input (1, 1, 8, 8) -> Conv2d -> BN -> ReLU-quant -> MaxPool 2x2 ->
    Conv2d -> ReLU-quant -> AvgPool 2x2 -> quant -> Flatten -> Linear -> Softmax."""
    torch.manual_seed(seed)
    m = nn.Sequential(
        _qid(_uact(4)),
        QuantConv2d(1, 4, 3, padding=1, bias=False, weight_quant=_wq(4)),
        nn.BatchNorm2d(4),
        _qrelu(4),
        nn.MaxPool2d(2),  # 8x8 -> 4x4
        QuantConv2d(4, 4, 3, padding=1, bias=True, weight_quant=_wq(3)),
        _qrelu(3),
        nn.AvgPool2d(2),  # 4x4 -> 2x2
        _qid(_uact(4)),
        nn.Flatten(),
        QuantLinear(16, 5, bias=True, weight_quant=_wq(4)),
        nn.Softmax(dim=-1),
    )
    return _prepare(m, (1, 8, 8), seed), (1, 8, 8)


def conv1d_bipolar_module(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    """Quant input (1, 2, 16) -> Conv1d -> BN -> bipolar act (scale 0.7) -> MaxPool1d 2 ->
    Flatten -> binary-weight Linear (scale 0.3)."""
    torch.manual_seed(seed)
    m = nn.Sequential(
        _qid(_uact(5)),
        QuantConv1d(2, 4, 3, padding=1, bias=False, weight_quant=_wq(3)),
        nn.BatchNorm1d(4),
        _qid(BipolarAct),
        nn.MaxPool1d(2),  # 16 -> 8
        nn.Flatten(),
        QuantLinear(32, 3, bias=True, weight_quant=BinaryWeight),
    )
    return _prepare(m, (2, 16), seed), (2, 16)


def trunc_avgpool_module(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    """Quant input (1, 2, 6, 6) -> Conv2d -> BN -> ReLU-quant -> TruncAvgPool2d 2x2 (exported
    as AveragePool + Trunc to 4 bits) -> Flatten -> Linear."""
    torch.manual_seed(seed)
    m = nn.Sequential(
        _qid(_uact(4)),
        QuantConv2d(2, 3, 3, padding=1, bias=False, weight_quant=_wq(4)),
        nn.BatchNorm2d(3),
        _qrelu(4),
        TruncAvgPool2d(2, stride=2, trunc_quant=Trunc4, return_quant_tensor=True),  # 6x6 -> 3x3
        nn.Flatten(),
        QuantLinear(27, 4, bias=True, weight_quant=_wq(4)),
    )
    return _prepare(m, (2, 6, 6), seed), (2, 6, 6)


def _brevitas_builder(module_fn: Callable[[int], tuple[nn.Module, tuple[int, ...]]]):
    """``build_<name>(path, seed)`` from a ``<name>_module(seed)`` factory."""

    def build(path: Path, seed: int) -> Path:
        return _export(*module_fn(seed), path)

    build.__doc__ = f"Export ``{module_fn.__name__}(seed)`` to ``path``: {module_fn.__doc__}"
    return build


build_mlp_bn = _brevitas_builder(mlp_bn_module)
build_cnn2d = _brevitas_builder(cnn2d_module)
build_conv1d_bipolar = _brevitas_builder(conv1d_bipolar_module)
build_trunc_avgpool = _brevitas_builder(trunc_avgpool_module)

# The Brevitas models behind the exported ones, for checking the export against them.
BREVITAS_MODULES: dict[str, Callable[[int], tuple[nn.Module, tuple[int, ...]]]] = {
    "mlp_bn": mlp_bn_module,
    "cnn2d": cnn2d_module,
    "conv1d_bipolar": conv1d_bipolar_module,
    "trunc_avgpool": trunc_avgpool_module,
}


# ---------------------------------------------------------------------------------------------
# Hand-written graphs, for nodes Brevitas does not emit on activations by itself.


def _c(name: str, value) -> TensorProto:
    """FLOAT32 initializer."""
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _quant(
    x: str,
    y: str,
    scale: float,
    bits: int,
    signed: bool,
    narrow: bool = False,
    mode: str = "ROUND",
):
    """A qonnx Quant node (zero point 0) and its three parameter initializers."""
    inits = [_c(f"{y}_s", scale), _c(f"{y}_z", 0.0), _c(f"{y}_b", bits)]
    node = helper.make_node(
        "Quant",
        [x, f"{y}_s", f"{y}_z", f"{y}_b"],
        [y],
        domain=QONNX_DOMAIN,
        signed=int(signed),
        narrow=int(narrow),
        rounding_mode=mode,
    )
    return node, inits


def _pruned(rng: np.random.Generator, shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    """Random integers in [lo, hi] with 30-60 % of them zero."""
    w = rng.integers(lo, hi + 1, size=shape)
    return np.where(rng.random(shape) < rng.uniform(0.3, 0.6), 0, w)


def _save(nodes, inits, x_shape, y_shape, in_dt: str | None, path: Path) -> Path:
    """Make, clean and save a graph with input ``x`` and output ``y``; annotate the input."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model
    from qonnx.util.cleanup import cleanup_model

    graph = helper.make_graph(
        nodes,
        "coverage",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y_shape))],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)]
    model = cleanup_model(ModelWrapper(qonnx_make_model(graph, opset_imports=opsets)))
    if in_dt is not None:
        from qonnx.core.datatype import DataType

        # cleanup renamed the tensors (the input is now global_in).
        model.set_tensor_datatype(model.graph.input[0].name, DataType[in_dt])
    model.save(str(path))
    return path


def build_elementwise(path: Path, seed: int) -> Path:
    """UINT4-annotated input (1, 3, 4) -> Mul -> Sub -> Div (input normalisation) -> Quant ->
    Transpose -> Flatten -> MatMul (Quant weights) -> Mul (scale) -> Add (bias) -> Relu ->
    Quant."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def add(node_inits):
        nodes.append(node_inits[0])
        inits.extend(node_inits[1])

    inits += [_c("k_mul", 1 / 15), _c("k_sub", 0.37), _c("k_div", 0.29)]
    nodes += [
        helper.make_node("Mul", ["x", "k_mul"], ["t_mul"]),
        helper.make_node("Sub", ["t_mul", "k_sub"], ["t_sub"]),
        helper.make_node("Div", ["t_sub", "k_div"], ["t_div"]),
    ]
    add(_quant("t_div", "q_in", 0.41, 4, signed=True))
    nodes += [
        helper.make_node("Transpose", ["q_in"], ["t_tr"], perm=[0, 2, 1]),  # (1, 4, 3)
        helper.make_node("Flatten", ["t_tr"], ["t_flat"], axis=1),  # (1, 12)
    ]
    w = _pruned(rng, (12, 6), -3, 3) * 0.23  # 3-bit narrow grid of scale 0.23
    inits.append(_c("w_f", w + rng.uniform(-0.08, 0.08, w.shape) * (w != 0)))
    add(_quant("w_f", "w_q", 0.23, 3, signed=True, narrow=True))
    inits += [_c("k_scale", 0.83), _c("bias", rng.normal(0, 0.4, 6))]
    nodes += [
        helper.make_node("MatMul", ["t_flat", "w_q"], ["t_mm"]),
        helper.make_node("Mul", ["t_mm", "k_scale"], ["t_sc"]),
        helper.make_node("Add", ["t_sc", "bias"], ["t_add"]),
        helper.make_node("Relu", ["t_add"], ["t_relu"]),
    ]
    add(_quant("t_relu", "y", 0.19, 3, signed=False))
    return _save(nodes, inits, (1, 3, 4), (1, 6), "UINT4", path)


def build_bipolar_mlp(path: Path, seed: int) -> Path:
    """BIPOLAR-annotated input (1, 10) -> MatMul (BipolarQuant weights, scale 0.35) -> BN ->
    BipolarQuant act -> MatMul (ternary Quant weights) -> BN -> Relu -> Quant (3 bits)."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def bn(x: str, y: str, c: int, mean_sd: float) -> None:
        gamma = rng.uniform(0.5, 1.5, c)
        gamma[0] = -gamma[0]
        inits.extend(
            [
                _c(f"{y}_g", gamma),
                _c(f"{y}_b", rng.normal(0, 0.5, c)),
                _c(f"{y}_m", rng.normal(0, mean_sd, c)),
                _c(f"{y}_v", rng.uniform(0.5, 2.0, c) * mean_sd**2),
            ]
        )
        nodes.append(
            helper.make_node(
                "BatchNormalization",
                [x, f"{y}_g", f"{y}_b", f"{y}_m", f"{y}_v"],
                [y],
                epsilon=1e-5,
            )
        )

    inits += [_c("w1_f", rng.normal(0, 1, (10, 8))), _c("w1_s", 0.35)]
    nodes += [
        helper.make_node("BipolarQuant", ["w1_f", "w1_s"], ["w1_q"], domain=QONNX_DOMAIN),
        helper.make_node("MatMul", ["x", "w1_q"], ["t_mm1"]),
    ]
    bn("t_mm1", "t_bn1", 8, 1.0)
    inits.append(_c("a1_s", 1.0))
    nodes.append(helper.make_node("BipolarQuant", ["t_bn1", "a1_s"], ["t_a1"], domain=QONNX_DOMAIN))
    w2 = _pruned(rng, (8, 5), -1, 1) * 0.45  # ternary, scale 0.45
    inits.append(_c("w2_f", w2 + rng.uniform(-0.1, 0.1, w2.shape)))
    q = _quant("w2_f", "w2_q", 0.45, 2, signed=True, narrow=True)
    nodes.append(q[0])
    inits.extend(q[1])
    nodes.append(helper.make_node("MatMul", ["t_a1", "w2_q"], ["t_mm2"]))
    bn("t_mm2", "t_bn2", 5, 1.0)
    nodes.append(helper.make_node("Relu", ["t_bn2"], ["t_relu"]))
    q = _quant("t_relu", "y", 0.27, 3, signed=False)
    nodes.append(q[0])
    inits.extend(q[1])
    return _save(nodes, inits, (1, 10), (1, 5), "BIPOLAR", path)


COVERAGE_MODELS: dict[str, Callable[[Path, int], Path]] = {
    "mlp_bn": build_mlp_bn,
    "cnn2d": build_cnn2d,
    "conv1d_bipolar": build_conv1d_bipolar,
    "trunc_avgpool": build_trunc_avgpool,
    "elementwise": build_elementwise,
    "bipolar_mlp": build_bipolar_mlp,
}


def input_datatype(path: Path) -> str:
    """Name of the graph input's qonnx datatype (FLOAT32 means: draw from [0, 1))."""
    from qonnx.core.modelwrapper import ModelWrapper

    m = ModelWrapper(str(path))
    return m.get_tensor_datatype(m.graph.input[0].name).name


def sample_inputs(path: Path, n: int, seed: int) -> np.ndarray:
    """``n`` seeded inputs of shape (n, *input shape without batch) drawn from the input's
    datatype: [0, 1) for FLOAT32, {-1, +1} for BIPOLAR, the integer range otherwise."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    m = ModelWrapper(str(path))
    name = m.graph.input[0].name
    shape = (n, *m.get_tensor_shape(name)[1:])
    dt = m.get_tensor_datatype(name)
    rng = np.random.default_rng(seed)
    if dt == DataType["FLOAT32"]:
        x = rng.random(shape)
    elif dt == DataType["BIPOLAR"]:
        x = rng.choice([-1.0, 1.0], size=shape)
    else:
        x = rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape)
    return x.astype(np.float32)


def op_types(path: Path) -> set[str]:
    """Node op types of a saved model."""
    import onnx

    return {n.op_type for n in onnx.load(str(path)).graph.node}
