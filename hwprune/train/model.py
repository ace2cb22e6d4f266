"""Models from the config's layer list (or a user's Python function), built from Brevitas layers
with power-of-two (fixed-point) quantizers throughout, so the integer IR can be exact.

Quantizers, per layer (``LAYER_KEYS`` in config.py names the keys):

- input: unsigned ``input_bits`` fixed point, constant scale 2**-input_bits (max 1.0), FLOOR;
- weights: per tensor, power-of-two scale from the weight statistics. 3..8 bits: narrow signed
  fixed point, scale from max |w|. 2 bits (ternary, -1/0/+1 times scale): narrow signed 2-bit,
  scale ~1.4 x mean |w| over the nonzero weights (Li & Liu 2016, ternary weight networks: a
  weight becomes zero below ~0.7 mean |w|), so pruned zeros do not drag the scale down.
  1 bit (binary, +-scale): sign, scale ~mean |w| (Rastegari et al. 2016, XNOR-Net), exported
  as BipolarQuant. Weight rounding stays Brevitas' default (round half to even): a weight
  quantizer set to FLOOR is exported to QONNX as ROUND by brevitas 0.13.4 (measured), so
  Brevitas and QONNX would disagree. Weights are constants, so their rounding never affects
  hardware exactness;
- biases: 32-bit integers on the accumulator scale (input scale x weight scale);
- relu: QuantReLU, unsigned ``bits`` fixed point; act: QuantIdentity, signed ``bits`` (2 bits =
  ternary, narrow); both FLOOR or half-even, scale learned from runtime statistics;
- bipolar: sign, +1 if x >= 0 else -1 (scale 1), exported as BipolarQuant;
- avgpool: the average of a 2**k window (exact in fixed point), then a requantizer.

Every model takes a FLAT float input (N, features); a conv model starts with nn.Unflatten.
BatchNorm trains as a float layer after a linear/conv and is folded into it before export
(``fold_batchnorm``); zero weights stay exactly zero. The folded weights are quantized afresh
with ONE power-of-two scale per tensor, recomputed from the folded weights, while BatchNorm
scaled each channel by its own factor: low-bit layers lose precision. Measured on digits
(test accuracy before -> after folding, seeds 0/1/2, 15 QAT epochs): examples/digits_cnn.toml
(4-bit conv) 98.2/98.0/96.9 -> 92.0/96.7/95.3 %; examples/digits_binary.toml (binary weights,
where folding keeps only the sign of each channel's factor) 95.3/95.1/95.6 -> 86.9/94.9/96.4 %.
Three fine-tuning epochs of the folded model (lr / 10) recover 96.2/96.4/97.8 % and
92.7/95.8/96.2 %. tests/train/test_model.py::test_fold_batchnorm_accuracy guards a 4-bit MLP.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import math
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from brevitas.core.function_wrapper import RoundSte, TensorClamp
from brevitas.core.scaling import ScalingImplType
from brevitas.core.stats import StatsOp
from brevitas.inject.enum import FloatToIntImplType, RestrictValueType
from brevitas.nn import QuantConv1d, QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8WeightPerTensorFixedPoint,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFixedPoint,
)
from brevitas.quant.scaled_int import Int32Bias
from torch import nn

from hwprune.config import PRUNABLE_KINDS, LayerConfig, ModelConfig
from hwprune.errors import HwpruneError

_ROUNDING = {"floor": FloatToIntImplType.FLOOR, "half_even": FloatToIntImplType.ROUND}
_WEIGHT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)  # Brevitas' Quant* layers subclass these
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
# Names of the modules build_model adds around the config's layers.
UNFLATTEN, INPUT_QUANT, REQUANT_SUFFIX = "unflatten", "input_quant", "_quant"


# --- quantizers -------------------------------------------------------------------------------


class _NonzeroAbsMean(nn.Module):
    """Ternary threshold statistic: 2.8 x mean |w| over the nonzero weights (max |w| if none).
    Brevitas divides a narrow 2-bit threshold by 2 (measured), so the scale is ~1.4 mean |w|."""

    def __init__(self) -> None:  # no *args: Brevitas' injector resolves __init__ by name
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x.abs()
        nz = (a > 0).sum()
        return torch.where(nz > 0, 2.8 * a.sum() / nz.clamp(min=1), a.max())


def input_quant(bits: int):
    """Unsigned fixed point with the constant scale 2**-bits: [0, 1) in 2**bits steps, FLOOR."""
    return Uint8ActPerTensorFixedPoint.let(
        bit_width=bits,
        scaling_impl_type=ScalingImplType.CONST,
        max_val=1.0,  # Brevitas divides the power-of-two max by 2**bits
        float_to_int_impl_type=FloatToIntImplType.FLOOR,
    )


def relu_quant(bits: int, rounding: str):
    """Unsigned ``bits`` fixed point, scale learned from runtime statistics (initialized from
    the 99.999th percentile; for 1 bit from the 90th, as a scale at the maximum would floor
    nearly every activation to 0)."""
    q = Uint8ActPerTensorFixedPoint.let(bit_width=bits, float_to_int_impl_type=_ROUNDING[rounding])
    return q.let(high_percentile_q=90.0) if bits == 1 else q


def act_quant(bits: int, rounding: str):
    """Signed ``bits`` (>= 2) fixed point; 2 bits is ternary (narrow: -1, 0, +1 x scale)."""
    return Int8ActPerTensorFixedPoint.let(
        bit_width=bits, float_to_int_impl_type=_ROUNDING[rounding], narrow_range=bits == 2
    )


# Sign activation: +1 if x >= 0 else -1, constant scale 1 (a power of two).
BIPOLAR_ACT = SignedBinaryActPerTensorConst


def weight_quant(bits: int):
    """Per-tensor power-of-two weight quantizer: 1 = binary, 2 = ternary, 3..8 = narrow int."""
    if bits == 1:
        # Not the in-place clamp of SignedBinaryWeightPerTensorConst: with a statistics-based
        # scale it would shrink the latent weights on every forward pass.
        return SignedBinaryWeightPerTensorConst.let(
            scaling_impl_type=ScalingImplType.STATS,
            scaling_stats_op=StatsOp.AVE,  # mean |w|: the L2-optimal scale of sign(w)
            scaling_min_val=1e-10,
            restrict_scaling_type=RestrictValueType.POWER_OF_TWO,
            restrict_value_float_to_int_impl=RoundSte,
            tensor_clamp_impl=TensorClamp,
        )
    if bits == 2:
        return Int8WeightPerTensorFixedPoint.let(
            bit_width=2,
            scaling_stats_impl=_NonzeroAbsMean,
            restrict_value_float_to_int_impl=RoundSte,
        )
    return Int8WeightPerTensorFixedPoint.let(bit_width=bits)


# --- float stand-ins --------------------------------------------------------------------------


class _SignSte(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)  # straight-through, hardtanh's gradient


class Sign(nn.Module):
    """Float bipolar activation: +1 if x >= 0 else -1, straight-through gradient in [-1, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _SignSte.apply(x)


# --- building from the layer list -------------------------------------------------------------


@dataclass
class _Build:
    """The builder's state while it walks the layer list: the modules so far and what it knows
    about the tensor between two layers."""

    layers: tuple[LayerConfig, ...]
    n_classes: int
    fold_bn: bool
    quantized: bool
    width_factor: int
    dims: tuple[int, ...]  # per sample: (F,), (C, L) or (C, H, W)
    mods: OrderedDict = field(default_factory=OrderedDict)
    is_quantized: bool = False  # produced by a quantizer (a weight layer needs that)
    signed: bool = False  # may be negative (decides the avgpool requantizer)


def _input_dims(cfg: ModelConfig, layers, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape the flat input is unflattened to, or None for a flat (MLP) model."""
    features = math.prod(shape)
    first = next((ly.kind for ly in layers if ly.kind in PRUNABLE_KINDS), None)
    if cfg.input_shape:
        dims = tuple(cfg.input_shape)
        if math.prod(dims) != features:
            raise HwpruneError(
                f"model.input_shape = {list(dims)} holds {math.prod(dims)} values but the data "
                f"set has {features} features per sample (shape {list(shape)}); fix input_shape"
            )
        return dims
    if first == "conv2d":
        return tuple(shape)
    if first == "conv1d":
        return (shape[0], math.prod(shape[1:]))
    return None


def _out_len(n: int, k: int, s: int, p: int, name: str) -> int:
    out = (n + 2 * p - k) // s + 1
    if out < 1:
        raise HwpruneError(
            f"layer {name!r}: its input (length {n}) is smaller than the kernel ({k}); "
            "use a smaller kernel or more padding"
        )
    return out


def _signed_bits(ly: LayerConfig) -> None:
    if ly.bits < 2:
        raise HwpruneError(
            f"layer {ly.name!r} quantizes a signed value to {ly.bits} bit; use bits >= 2, or "
            "kind = 'bipolar' for a 1-bit sign"
        )


def _weight_layer(b: _Build, ly: LayerConfig, i: int) -> None:
    """linear / conv1d / conv2d, quantized (Brevitas) or float."""
    rank = {"linear": 1, "conv1d": 2, "conv2d": 3}[ly.kind]
    if len(b.dims) != rank:
        fix = "add a flatten layer before it" if ly.kind == "linear" else "set model.input_shape"
        raise HwpruneError(
            f"layer {ly.name!r} ({ly.kind}) needs a {rank}-d input per sample, got shape "
            f"{list(b.dims)}; {fix}"
        )
    if not b.is_quantized:
        raise HwpruneError(
            f"layer {ly.name!r} ({ly.kind}) takes an unquantized input; put a relu, act, "
            "bipolar or avgpool layer before it"
        )
    last = max(k for k, x in enumerate(b.layers) if x.kind in PRUNABLE_KINDS)
    out = ly.out or b.n_classes
    if i != last:
        out *= b.width_factor
    # A folded BatchNorm leaves a bias behind, so the layer before it needs one.
    nxt = b.layers[i + 1].kind if i + 1 < len(b.layers) else None
    bias = ly.bias or (b.fold_bn and nxt == "batchnorm")
    quant = {"weight_quant": weight_quant(ly.weight_bits), "bias_quant": Int32Bias}
    if ly.kind == "linear":
        cls = QuantLinear if b.quantized else nn.Linear
        args: tuple = (b.dims[0], out)
        b.dims = (out,)
    else:
        cls = {"conv1d": (nn.Conv1d, QuantConv1d), "conv2d": (nn.Conv2d, QuantConv2d)}
        cls = cls[ly.kind][b.quantized]
        s = ly.stride or 1
        args = (b.dims[0], out, ly.kernel, s, ly.padding)
        b.dims = (out, *(_out_len(n, ly.kernel, s, ly.padding, ly.name) for n in b.dims[1:]))
    b.mods[ly.name] = cls(*args, bias=bias, **(quant if b.quantized else {}))
    b.is_quantized, b.signed = False, True


def _batchnorm(b: _Build, ly: LayerConfig, i: int) -> None:
    """BatchNorm1d/2d by the preceding layer's rank; nn.Identity when built folded."""
    prev = b.layers[i - 1].kind if i else None
    if prev not in PRUNABLE_KINDS:
        raise HwpruneError(
            f"layer {ly.name!r} (batchnorm) must directly follow a linear or conv layer, "
            f"which it is folded into before export; it follows {prev or 'the input'}"
        )
    bn = nn.BatchNorm2d if len(b.dims) == 3 else nn.BatchNorm1d
    b.mods[ly.name] = nn.Identity() if b.fold_bn else bn(b.dims[0])


def _activation(b: _Build, ly: LayerConfig, i: int) -> None:
    """relu (unsigned), act (signed; float: identity) or bipolar (sign)."""
    if ly.kind == "relu":
        q, flt = relu_quant(ly.bits, ly.rounding), nn.ReLU()
        b.signed = False
    else:
        if ly.kind == "act":
            _signed_bits(ly)
        q = act_quant(ly.bits, ly.rounding) if ly.kind == "act" else BIPOLAR_ACT
        flt = nn.Identity() if ly.kind == "act" else Sign()
        b.signed = True
    quant = QuantReLU if ly.kind == "relu" else QuantIdentity
    b.mods[ly.name] = quant(act_quant=q, return_quant_tensor=True) if b.quantized else flt
    b.is_quantized = True


def _pool(b: _Build, ly: LayerConfig, i: int) -> None:
    """maxpool / avgpool over a 1-d or 2-d input; the average is requantized after it."""
    if len(b.dims) not in (2, 3):
        raise HwpruneError(
            f"layer {ly.name!r} ({ly.kind}) needs a (C, L) or (C, H, W) input, got shape "
            f"{list(b.dims)}; pool before the flatten layer"
        )
    d = len(b.dims) - 1
    s = ly.stride or ly.kernel
    if ly.kind == "avgpool" and not math.log2(ly.kernel**d).is_integer():
        raise HwpruneError(
            f"layer {ly.name!r}: an average over {ly.kernel**d} elements is not a power-of-two "
            "division, which fixed point cannot do exactly; use kernel 2, 4 or 8"
        )
    cls = {"maxpool": (nn.MaxPool1d, nn.MaxPool2d), "avgpool": (nn.AvgPool1d, nn.AvgPool2d)}
    b.mods[ly.name] = cls[ly.kind][d - 1](ly.kernel, s)
    b.dims = (b.dims[0], *(_out_len(n, ly.kernel, s, 0, ly.name) for n in b.dims[1:]))
    if ly.kind == "avgpool":
        # The average has more fraction bits than its input: requantize it.
        requant = ly.name + REQUANT_SUFFIX
        if requant in {x.name for x in b.layers}:
            raise HwpruneError(f"layer name {requant!r} is taken by {ly.name}'s requantizer")
        if b.signed:
            _signed_bits(ly)
        q = (act_quant if b.signed else relu_quant)(ly.bits, ly.rounding)
        if b.quantized:
            b.mods[requant] = QuantIdentity(act_quant=q, return_quant_tensor=True)
        b.is_quantized = True


def _flatten(b: _Build, ly: LayerConfig, i: int) -> None:
    b.mods[ly.name] = nn.Flatten()
    b.dims = (math.prod(b.dims),)


# Layer kind (config.LAYER_KEYS) -> builder; tests check that every kind has one.
LAYER_BUILDERS = {
    "linear": _weight_layer,
    "conv1d": _weight_layer,
    "conv2d": _weight_layer,
    "relu": _activation,
    "act": _activation,
    "bipolar": _activation,
    "batchnorm": _batchnorm,
    "maxpool": _pool,
    "avgpool": _pool,
    "flatten": _flatten,
}


def _from_layers(cfg, shape, n_classes, fold_bn, quantized, width_factor) -> nn.Sequential:
    layers = cfg.layer_list()
    for ly in layers:
        if "." in ly.name or ly.name in (UNFLATTEN, INPUT_QUANT):
            raise HwpruneError(
                f"layer name {ly.name!r} is not allowed (no '.', not {UNFLATTEN!r} or "
                f"{INPUT_QUANT!r}); rename the layer"
            )
    b = _Build(layers, n_classes, fold_bn, quantized, width_factor, (math.prod(shape),))
    dims = _input_dims(cfg, layers, shape)
    if dims is not None:
        b.mods[UNFLATTEN] = nn.Unflatten(1, dims)
        b.dims = dims
    b.mods[INPUT_QUANT] = (
        QuantIdentity(act_quant=input_quant(cfg.input_bits), return_quant_tensor=True)
        if quantized
        else nn.Identity()
    )
    b.is_quantized = True
    for i, ly in enumerate(layers):
        LAYER_BUILDERS[ly.kind](b, ly, i)
    return nn.Sequential(b.mods)


# --- user modules -----------------------------------------------------------------------------


def load_module_fn(spec: str):
    """The function named by model.module: "path/to/file.py:fn" (relative to the current
    directory, or absolute) or "package.module:fn"."""
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise HwpruneError(
            f"model.module = {spec!r} must be 'file.py:function' or 'package.module:function'"
        )
    try:
        if where.endswith(".py") or "/" in where:
            path = Path(where)
            if not path.is_file():
                raise HwpruneError(
                    f"model.module = {spec!r}: no such file {path.resolve()}; give the path "
                    "relative to the config file (or absolute)"
                )
            key = f"hwprune_user_model_{abs(hash(str(path.resolve())))}"
            imp = importlib.util.spec_from_file_location(key, path)
            mod = importlib.util.module_from_spec(imp)
            sys.modules[key] = mod  # dataclasses and pickling look the module up here
            imp.loader.exec_module(mod)
        else:
            mod = importlib.import_module(where)
    except HwpruneError:
        raise
    except Exception as e:  # the user's code: any import-time error, reported in one line
        first = str(e).splitlines()[0] if str(e) else ""
        raise HwpruneError(
            f"model.module = {spec!r}: importing {where} failed ({type(e).__name__}: {first}); "
            "fix that module"
        ) from e
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise HwpruneError(
            f"model.module = {spec!r}: {where} has no function {name!r}; define "
            f"{name}(shape, n_classes) returning a torch.nn.Sequential"
        )
    return fn


def _from_module(cfg, shape, n_classes, fold_bn, quantized, width_factor) -> nn.Module:
    if width_factor != 1:
        raise HwpruneError(
            "a wider teacher (distill.teacher = 'larger') needs a layer-list model; with "
            "model.module use distill.teacher = 'dense' or 'none'"
        )
    fn = load_module_fn(cfg.module)
    try:
        model = fn(tuple(shape), n_classes)
    except Exception as e:  # the user's code: report in one line, keep the cause chained
        first = str(e).splitlines()[0] if str(e) else ""
        raise HwpruneError(
            f"model.module = {cfg.module!r}: calling it as fn(shape={tuple(shape)}, "
            f"n_classes={n_classes}) failed ({type(e).__name__}: {first}); fix that function"
        ) from e
    if not isinstance(model, nn.Module):
        raise HwpruneError(
            f"model.module = {cfg.module!r} returned {type(model).__name__}, not a torch module; "
            "return a torch.nn.Sequential of Brevitas layers"
        )
    if fold_bn:
        for layer, parent, attr, _ in _batchnorm_pairs(model):
            setattr(parent, attr, nn.Identity())
            if layer.bias is None:
                _add_bias(layer, torch.zeros(layer.weight.shape[0]), attr)
    if not quantized:
        model = _float_copy(model)
    return model


def _float_copy(model: nn.Module) -> nn.Module:
    """The same network with plain torch layers in place of Brevitas' (for a float baseline)."""
    model = copy.deepcopy(model)
    for name, parent, attr, m in list(_layers(model)):
        new = _float_layer(m, name)
        if new is not None:
            setattr(parent, attr, new)
    return model


def _float_layer(m: nn.Module, name: str) -> nn.Module | None:
    """A plain torch stand-in for a Brevitas layer, None to keep ``m`` as it is."""
    if isinstance(m, (QuantLinear, QuantConv1d, QuantConv2d)):
        if isinstance(m, QuantLinear):
            new = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        else:
            cls = nn.Conv1d if isinstance(m, QuantConv1d) else nn.Conv2d
            new = cls(
                m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                m.groups, bias=m.bias is not None,
            )  # fmt: skip
        new.load_state_dict({k: v for k, v in m.state_dict().items() if k in ("weight", "bias")})
        return new
    if isinstance(m, QuantReLU):
        return nn.ReLU()
    if isinstance(m, QuantIdentity):
        q = m.act_quant
        bipolar = q.is_quant_enabled and q.is_signed and int(q.bit_width()) == 1
        return Sign() if bipolar else nn.Identity()
    if type(m).__module__.startswith("brevitas.nn"):
        raise HwpruneError(
            f"layer {name!r} is a {type(m).__name__}, which has no float stand-in here; use "
            "QuantLinear, QuantConv1d/2d, QuantReLU or QuantIdentity"
        )
    return None


# --- public API -------------------------------------------------------------------------------


def build_model(
    cfg: ModelConfig,
    shape: tuple[int, ...],
    n_classes: int,
    *,
    fold_bn: bool = False,
    quantized: bool = True,
    width_factor: int = 1,
) -> nn.Module:
    """The model ``cfg`` describes, for samples of natural ``shape`` (e.g. (1, 8, 8)) and
    ``n_classes`` outputs. It takes a flat input (N, prod(shape)).

    Children are named by the config's layer names, plus ``unflatten`` (conv models),
    ``input_quant`` and ``<avgpool name>_quant`` (the average's requantizer).
    ``fold_bn``: BatchNorm replaced by nn.Identity (the layer before it gets a bias), the
    architecture ``fold_batchnorm``'s state_dict loads into. ``quantized=False``: plain torch
    layers, no quantizers. ``width_factor``: every hidden layer's ``out`` times this (the last
    layer's stays). A ``model.module`` function is called as fn(shape, n_classes)."""
    if cfg.module:
        return _from_module(cfg, shape, n_classes, fold_bn, quantized, width_factor)
    return _from_layers(cfg, shape, n_classes, fold_bn, quantized, width_factor)


def _layers(model: nn.Module, prefix: str = ""):
    """(name, parent, attribute, module) for every layer in forward (registration) order: leaf
    modules, but a Brevitas layer, linear, conv or BatchNorm counts as one layer (Brevitas
    layers hold their quantizers as child modules)."""
    for attr, m in model.named_children():
        name = f"{prefix}{attr}"
        atomic = isinstance(m, (*_WEIGHT_TYPES, *_BATCHNORMS))
        if atomic or type(m).__module__.startswith("brevitas.nn") or not list(m.children()):
            yield name, model, attr, m
        else:
            yield from _layers(m, name + ".")


def _batchnorm_pairs(model: nn.Module):
    """(weight layer, BN parent, BN attribute, BN) for every BatchNorm; each must directly
    follow the linear/conv layer it is folded into."""
    pairs, prev = [], None
    for _, parent, attr, m in _layers(model):
        if isinstance(m, _BATCHNORMS):
            if not isinstance(prev, _WEIGHT_TYPES):
                raise HwpruneError(
                    f"BatchNorm {attr!r} does not directly follow a linear or conv layer, so it "
                    "cannot be folded; move it right after one"
                )
            pairs.append((prev, parent, attr, m))
        prev = m
    return pairs


def _add_bias(layer: nn.Module, value: torch.Tensor, bn_name: str) -> None:
    """Give a layer built without bias one (folding BatchNorm creates it). A Brevitas layer's
    bias quantizer starts only once the bias exists, so it is started here."""
    layer.bias = nn.Parameter(value)
    bias_quant = getattr(layer, "bias_quant", None)
    if bias_quant is not None:
        bias_quant.init_tensor_quant()
        if not bias_quant.is_quant_enabled:  # a float bias would leave the integer grid
            raise HwpruneError(
                f"the layer before BatchNorm {bn_name!r} gets a bias from folding but has no "
                "bias quantizer; build it with bias_quant=Int32Bias (brevitas.quant.scaled_int)"
            )


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every BatchNorm folded (eval statistics) into the linear
    or conv layer before it and replaced by nn.Identity; its state_dict loads into
    ``build_model(..., fold_bn=True)``. w' = w * g / sqrt(var + eps), b' = (b - mean) * g /
    sqrt(var + eps) + beta per output channel, so a zero weight stays exactly zero."""
    model = copy.deepcopy(model)
    for layer, parent, attr, bn in _batchnorm_pairs(model):
        if bn.running_var is None:
            raise HwpruneError(
                f"BatchNorm {attr!r} keeps no running statistics (track_running_stats=False); "
                "it cannot be folded"
            )
        with torch.no_grad():
            k = bn.weight.double() if bn.affine else 1.0
            k = k / torch.sqrt(bn.running_var.double() + bn.eps)
            beta = bn.bias.double() if bn.affine else 0.0
            w = layer.weight.double()
            w = w * k.view(-1, *([1] * (w.dim() - 1)))
            b = layer.bias.double() if layer.bias is not None else 0.0
            b = (b - bn.running_mean.double()) * k + beta
            layer.weight.copy_(w.to(layer.weight.dtype))
            if layer.bias is None:
                _add_bias(layer, b.to(layer.weight.dtype), attr)
            else:
                layer.bias.copy_(b.to(layer.bias.dtype))
        setattr(parent, attr, nn.Identity())
    return model


def prunable(model: nn.Module) -> dict[str, nn.Module]:
    """The layers pruning acts on (linear and conv, quantized or float), by module name, in
    forward order: the last one is the output layer."""
    return {n: m for n, m in model.named_modules() if n and isinstance(m, _WEIGHT_TYPES)}


# Modules whose output is a layer's "unit activation" (after its nonlinearity).
_ACTIVATIONS = (QuantReLU, QuantIdentity, nn.ReLU, nn.Hardtanh, Sign)


def unit_activations(
    model: nn.Module, x: np.ndarray, names, batch_size: int = 1024
) -> dict[str, np.ndarray]:
    """For each named prunable layer, its units' outputs (N, units) after the activation that
    follows it (the next relu / act / bipolar before the next linear/conv; the layer's own
    output when there is none, as for the output layer); conv channels are averaged over
    positions. Eval mode, no gradients. For the redundancy-based (mRMR) pruning criterion."""
    leaves = [(n, m) for n, _, _, m in _layers(model)]
    taps: dict[str, nn.Module] = {}
    for want in names:
        idx = next((i for i, (n, _) in enumerate(leaves) if n == want), None)
        if idx is None or not isinstance(leaves[idx][1], _WEIGHT_TYPES):
            known = ", ".join(prunable(model))
            raise HwpruneError(f"{want!r} is not a prunable layer of the model; known: {known}")
        tap = leaves[idx][1]
        for _, m in leaves[idx + 1 :]:
            if isinstance(m, _WEIGHT_TYPES):
                break
            if isinstance(m, _ACTIVATIONS):
                tap = m
                break
        taps[want] = tap
    got: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def hook_for(name):
        def hook(_m, _inp, out):
            v = getattr(out, "value", out)
            if v.dim() > 2:
                v = v.flatten(2).mean(2)
            got[name].append(v.detach().double().numpy())

        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in taps.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                model(torch.as_tensor(np.asarray(x[i : i + batch_size], dtype=np.float32)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {n: np.concatenate(v) for n, v in got.items()}


def forward_numpy(model: nn.Module, x) -> np.ndarray:
    """Forward in eval mode on a float numpy batch; returns float64 outputs (N, outputs)."""
    model.eval()
    with torch.no_grad():
        y = model(torch.as_tensor(np.asarray(x, dtype=np.float32)))
    y = getattr(y, "value", y)
    return y.reshape(len(y), -1).numpy().astype(np.float64)
