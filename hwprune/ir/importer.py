"""Import a QONNX model into hwprune's integer IR.

The model is cleaned with qonnx first (shape inference, constant folding, unique names), then
walked in topological order. Every tensor becomes one of three things:

- a constant: an initializer, or a Quant / BipolarQuant node applied to one (weights, biases),
  quantized with qonnx's own functions so the integers are exactly the ones qonnx execution uses;
- the float graph input (possibly reshaped), which only a Quant may read: it becomes the Input;
- an IR value: the output of an IR op, an integer vector standing for ``int * 2**exp``. IR
  values are flat; the importer keeps each one's tensor shape (without the batch dimension,
  from qonnx shape inference) and reads it in C order, so Reshape and Flatten cost nothing.

Lowering: Gemm / MatMul / Conv / AveragePool become Dense ops (a convolution's rows are its
(output channel, output position) pairs in C order, with terms that would read zero padding
dropped); MaxPool becomes Max with each window listed; Quant becomes Requant (or Threshold for
1-bit signed, as BipolarQuant). ``SUPPORTED_OPS`` lists what is accepted; anything else raises
``HwpruneError`` naming the node, its op type and what is supported, before anything is written.

Float (non power-of-two, per-tensor or per-output-channel) scales, BatchNormalization and
Mul / Div / Add / Sub by constants become a pending float map of an integer value, compiled
at the next quantizer into an exact Threshold (chains.py); such values carry their float
scale and have IR exp 0 (nominal). Float preprocessing before the first quantizer, or of an
integer-annotated input (e.g. BIPOLAR), stays on the host: ``meta["host_input"]`` names the
tensor whose values / scale are the IR input; so does an input quantizer with a float scale
(its integer levels are the IR input). A float tail after the last layer stays on the host
too: ``meta["host_output"]`` names the tensor the output integers are (times its scale, plus
``offset``: a last layer's off-grid float bias), the tail's node names and a final Softmax
(``softmax``; taken as argmax of the integer logits, softmax being monotonic).

Trunc (after an average pool) is an exact right shift (Requant) when that reproduces qonnx's
levels on every input integer, else a Threshold. A Transpose of an activation is a pending
permutation the next layer or pooling reads through (renumbered columns / windows).

``Graph.meta`` records ``input_name``, ``input_shape`` (the graph input's shape without batch),
``output_name``, ``output_exp`` and ``layers``: for every Dense the importer creates, its kind
(conv1d, conv2d, linear, avgpool) and kernel-level counts, so reports can show both the kernel
and the unrolled rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import numpy_helper

from hwprune.errors import HwpruneError
from hwprune.ir.graph import (
    Dense,
    Graph,
    Input,
    IntRange,
    Max,
    Op,
    Requant,
    Rounding,
    Row,
    Threshold,
    Value,
    shift_round,
    verify,
)

SUPPORTED_OPS = (
    "Quant",
    "BipolarQuant",
    "Gemm",
    "MatMul",
    "Conv",
    "Add",
    "Relu",
    "MaxPool",
    "AveragePool",
    "Reshape",
    "Flatten",
    "Identity",
    "Mul",
    "Div",
    "Sub",
    "BatchNormalization",
    "Transpose",
    "Trunc",
    "Softmax",
)

# Ops a raw export may hold that qonnx cleanup folds away (shape arithmetic on constants).
_FOLDED_BY_CLEANUP = ("Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast")

_ROUNDING = {"FLOOR": Rounding.FLOOR, "ROUND": Rounding.HALF_EVEN, "HALF_EVEN": Rounding.HALF_EVEN}


@dataclass
class _Dyn:
    """A tensor computed by the IR: op name, scale exponent, tensor shape without the batch
    dimension (the op's flat vector read in C order), and a ReLU not yet applied.

    A float-scaled value (``scale`` set) stands for ``g(int)``: tensor ``start`` holds
    ``int * scale`` (scale: float64 per flat element) and the ONNX ``nodes`` (elementwise:
    Mul/Div/Add/Sub by constants, BatchNormalization, Relu) map it on; ``exp`` is then 0,
    nominal. The next quantizer turns the whole map into an exact Threshold (chains.py).
    """

    op: str
    exp: int
    shape: tuple[int, ...]
    relu: bool = False
    scale: np.ndarray | None = None
    start: str | None = None
    nodes: tuple = ()
    # A pending Transpose: logical (C-order) element i of ``shape`` is IR element perm[i].
    # The next layer or pooling reads through it, so the permutation costs no hardware.
    perm: np.ndarray | None = None

    @property
    def exact(self) -> bool:
        """True when the value is plainly int * 2**exp (the power-of-two path applies)."""
        return self.scale is None and not self.nodes


@dataclass
class _Const:
    """A constant tensor: integer values and a power-of-two scale exponent (None: raw float).

    ``scale`` is the quantizer's float scale when it is not a power of two (``exp`` is then 0).
    """

    ints: np.ndarray | None
    exp: int | None
    raw: np.ndarray
    scale: np.ndarray | None = None


@dataclass
class _FloatInput:
    """The float graph input, possibly reshaped, before its input quantizer; ``nodes`` is the
    float preprocessing (Mul/Sub/... by constants) that stays on the host."""

    name: str
    shape: tuple[int, ...]
    nodes: tuple = ()


def load_model(path: str | Path):
    """Load and clean a QONNX file; one-line HwpruneError if it is missing or not ONNX."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    p = Path(path)
    if not p.is_file():
        raise HwpruneError(f"{p}: no such file; pass the path of a QONNX .onnx model")
    try:
        proto = onnx.load(str(p))
    except Exception as e:  # onnx raises DecodeError and others for non-ONNX bytes
        raise HwpruneError(
            f"{p}: not an ONNX model ({type(e).__name__}); pass a QONNX .onnx file such as the "
            "model.onnx written by 'hwprune train'"
        ) from None
    if not proto.graph.node:
        raise HwpruneError(f"{p}: ONNX graph has no nodes; pass a QONNX model of a network")
    # Checked before cleanup, which renames nodes: the message names the node as the user did.
    # A node whose inputs are all constant (e.g. a Pow computing a scale) is folded by cleanup.
    const = {i.name for i in proto.graph.initializer}
    for node in proto.graph.node:
        if all(i in const for i in node.input if i) or node.op_type in _FOLDED_BY_CLEANUP:
            const.update(node.output)
            continue
        if node.op_type not in SUPPORTED_OPS:
            name = node.name or f"producing {node.output[0]!r}"
            raise HwpruneError(
                f"{p}: node {name!r} has op type {node.op_type}, which is not supported; "
                f"supported: {', '.join(SUPPORTED_OPS)}"
            )
    try:
        return cleanup_model(ModelWrapper(proto))
    except Exception as e:
        raise HwpruneError(
            f"{p}: qonnx cleanup failed ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
            "check that the file is a valid QONNX export"
        ) from None


def _pow2_exp(scale: np.ndarray, where: str) -> int:
    s = np.asarray(scale, dtype=np.float64)
    if s.size != 1:
        raise HwpruneError(
            f"{where}: per-channel scales (shape {tuple(s.shape)}) are not supported yet; "
            "use a per-tensor quantizer (e.g. Brevitas *PerTensorFixedPoint)"
        )
    v = float(s.reshape(()))
    e = math.log2(v) if v > 0 else float("nan")
    if not (v > 0 and e == round(e)):
        raise HwpruneError(
            f"{where}: scale {v!r} is not a power of two; use fixed-point (power-of-two) "
            "quantizers such as Brevitas *FixedPoint (binary: a power-of-two scaling_const)"
        )
    return int(round(e))


def _try_pow2(scale: np.ndarray) -> int | None:
    """The exponent of a per-tensor power-of-two scale, else None (a float or per-channel
    scale, handled exactly by chains.py)."""
    s = np.asarray(scale, dtype=np.float64)
    if s.size != 1:
        return None
    v = float(s.reshape(()))
    e = math.log2(v) if v > 0 else float("nan")
    return int(round(e)) if v > 0 and e == round(e) else None


def _per_output(scale: np.ndarray, shape: tuple[int, ...], axis: int, where: str) -> np.ndarray:
    """A weight scale broadcast to the weights' ``shape``, one value per index of ``axis``
    (the output axis); the scale may not vary along any other axis."""
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64), shape)
    s = np.moveaxis(s, axis, 0).reshape(shape[axis], -1)
    if not np.all(s == s[:, :1]):
        raise HwpruneError(
            f"{where}: the weight scale varies within an output channel; use per-tensor or "
            "per-output-channel weight scales"
        )
    return s[:, 0].copy()


def _attrs(node) -> dict:
    a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in a.items()}


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _windows(
    shape: tuple[int, ...], kernel: tuple[int, ...], strides: tuple[int, ...], pads: tuple[int, ...]
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Flat C-order indices of a (C, *spatial) tensor under every kernel window.

    Returns (C, positions, kernel elements) indices, -1 where the window reads padding, and
    the output's spatial shape. ONNX pads list all begins, then all ends.
    """
    nd = len(kernel)
    # Pad an index tensor, not the data: -1 marks padding, so a Conv drops those terms and a
    # MaxPool leaves them out of its window (ONNX pads MaxPool with -inf, Conv with 0).
    idx = np.arange(_size(shape)).reshape(shape)
    widths = [(0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)]
    padded = np.pad(idx, widths, constant_values=-1)
    win = sliding_window_view(padded, kernel, axis=tuple(range(1, nd + 1)))
    win = win[(slice(None),) + tuple(slice(None, None, s) for s in strides)]
    out_sp = tuple(int(d) for d in win.shape[1 : 1 + nd])
    return win.reshape(shape[0], _size(out_sp), _size(kernel)), out_sp


class _Importer:
    def __init__(self, model) -> None:
        self.model = model
        self.inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.env: dict[str, _Dyn | _Const | _FloatInput] = {}
        self.ops: list[Op] = []
        self.vals: dict[str, Value] = {}
        self.layers: dict[str, dict] = {}
        self.graph_inputs = {i.name for i in model.graph.input if i.name not in self.inits}
        self.counter: dict[str, int] = {}
        # Where the IR input's integers come from when the model input is preprocessed on the
        # host: {"tensor": name whose values are int * scale, "scale": float}.
        self.host_input: dict | None = None
        # A final Softmax, left to the host (see ``softmax``).
        self.softmax_node = None

    def fresh(self, kind: str) -> str:
        k = self.counter.get(kind, 0)
        self.counter[kind] = k + 1
        return f"{kind}{k}"

    def where(self, node) -> str:
        return f"node {node.name!r} ({node.op_type})"

    def emit(self, op: Op, shape: tuple[int, ...], exp: int, relu: bool = False) -> _Dyn:
        """Append an op and infer its value now (ranges are needed by later ReLUs)."""
        self.ops.append(op)
        self.vals[op.name] = op.infer(tuple(self.vals[i] for i in op.inputs))
        return _Dyn(op.name, exp, shape, relu)

    def get(self, name: str):
        if name in self.env:
            return self.env[name]
        if name in self.inits:
            raw = self.inits[name]
            return _Const(None, None, raw)
        raise HwpruneError(f"tensor {name!r} is used before it is produced; re-export the model")

    def dyn(self, name: str, node) -> _Dyn:
        """A dynamic operand as is (a pending ReLU stays pending).

        The float graph input read without a quantizer becomes the IR input here, if its
        datatype is a small integer one (e.g. BIPOLAR): see ``int_input``.
        """
        v = self.get(name)
        if isinstance(v, _FloatInput):
            v = self.env[name] = self.int_input(name, v, node)
        if not isinstance(v, _Dyn):
            raise HwpruneError(
                f"{self.where(node)}: input {name!r} must be a quantized activation; put a "
                "Quant (e.g. QuantIdentity / QuantReLU) in front of it"
            )
        return v

    def value(self, name: str, node) -> _Dyn:
        """A dynamic operand, with any pending ReLU materialised as a clip at 0.

        A float map (BatchNorm, scaling) must be re-quantized before integer arithmetic.
        """
        v = self.dyn(name, node)
        if v.nodes:
            ops = ", ".join(n.op_type for n in v.nodes)
            raise HwpruneError(
                f"{self.where(node)}: input {name!r} is a float map ({ops}) of integers that is "
                "not re-quantized; put a Quant (activation quantizer) before this node"
            )
        if v.relu:
            hi = self.vals[v.op].range.hi
            op = Requant(self.fresh("relu"), (v.op,), 0, 0, max(hi, 0))
            v = replace(self.emit(op, v.shape, v.exp), perm=v.perm)
        return v

    def no_perm(self, d: _Dyn, node) -> None:
        """Refuse a float map / quantizer chain on a transposed activation (its per-channel
        constants would be read in the wrong order)."""
        if d.perm is not None and (d.nodes or node.op_type not in ("Quant", "BipolarQuant")):
            raise HwpruneError(
                f"{self.where(node)}: reads a transposed activation; a Transpose is supported "
                "only before Reshape / Flatten and a layer (Gemm, MatMul, Conv) or pooling"
            )

    def cols(self, d: _Dyn, idx: np.ndarray) -> np.ndarray:
        """IR element indices of logical indices ``idx`` of ``d`` (-1, padding, stays -1)."""
        if d.perm is None:
            return idx
        return np.where(idx >= 0, d.perm[np.maximum(idx, 0)], -1)

    def out_shape(self, node) -> tuple[int, ...]:
        """The shape qonnx shape inference gave the node's output, without the batch of 1."""
        shape = self.model.get_tensor_shape(node.output[0])
        if not shape or shape[0] != 1 or not all(isinstance(d, int) and d >= 1 for d in shape):
            raise HwpruneError(
                f"{self.where(node)}: output shape {shape} is unknown or has no batch of 1; "
                "export with a (1, ...) example input"
            )
        return tuple(shape[1:])

    def consts(self, nodes, start: str) -> dict[str, np.ndarray]:
        """The constant inputs of ``nodes`` (everything they read but do not produce)."""
        produced, out = {start}, {}
        for n in nodes:
            for i in n.input:
                if i and i not in produced and i not in out:
                    c = self.get(i)
                    if not isinstance(c, _Const):
                        raise HwpruneError(
                            f"node {n.name!r} ({n.op_type}): input {i!r} must be a constant"
                        )
                    out[i] = c.raw
            produced.update(n.output)
        return out

    def int_input(self, name: str, src: _FloatInput, node) -> _Dyn:
        """The graph input with an integer datatype, through its host-side affine chain, as
        the IR input: the chain is evaluated with qonnx on every value of the datatype, and
        the IR input ranges over the (integer) image."""
        from hwprune.ir.chains import run_nodes

        dt = self.model.get_tensor_datatype(src.name)
        if not dt.is_integer() or dt.get_num_possible_values() > 2**16:
            raise HwpruneError(
                f"{self.where(node)}: reads the float graph input {src.name!r} ({dt.name}) "
                "without a Quant; put an input quantizer (Quant) in front of it or annotate an "
                "integer datatype (e.g. BIPOLAR, INT8)"
            )
        in_shape = (1, *self.model.get_tensor_shape(src.name)[1:])
        vals = [v for v in range(int(dt.min()), int(dt.max()) + 1) if dt.allowed(v)]
        image = []
        for v in vals:
            x = np.full(in_shape, v, dtype=np.float32)
            if src.nodes:
                consts = self.consts(src.nodes, src.name)
                opsets = self.model.model.opset_import
                x = run_nodes(src.nodes, src.name, x, consts, opsets)
            image.append(np.asarray(x, dtype=np.float64).reshape(-1))
        img = np.stack(image)
        if not np.all(img == np.round(img)):
            raise HwpruneError(
                f"{self.where(node)}: the input preprocessing maps {dt.name} values to "
                "non-integers; quantize the input with a Quant node instead"
            )
        op = Input(src.name, (), _size(src.shape), IntRange(int(img.min()), int(img.max())), 0)
        self.host_input = {"tensor": name, "scale": 1.0}
        return self.emit(op, src.shape, 0)

    def floated(self, name: str, d: _Dyn, node) -> _Dyn:
        """``d`` as a float map whose start is tensor ``name`` (int * 2**exp so far)."""
        if not d.exact:
            return d
        if d.relu:  # materialise the clip: the chain then starts at the ReLU's output
            d = self.value(name, node)
        return replace(d, scale=np.full(_size(d.shape), 2.0**d.exp), start=name, exp=0)

    def append(self, node, name: str, d: _Dyn) -> _Dyn:
        """Append an elementwise ONNX node to the pending float map of ``d`` (read as
        tensor ``name``); the node must not change the shape."""
        if self.out_shape(node) != d.shape:
            raise HwpruneError(
                f"{self.where(node)}: output shape {self.out_shape(node)} differs from the input "
                f"shape {d.shape}; only elementwise maps by constants are supported"
            )
        self.no_perm(d, node)
        d = self.floated(name, d, node)
        return replace(d, nodes=d.nodes + (node,))

    def weights(self, node) -> _Const:
        """The node's quantized constant weights (its second input)."""
        w = self.get(node.input[1])
        if not isinstance(w, _Const):
            raise HwpruneError(f"{self.where(node)}: weights must be constant")
        if w.ints is None:
            raise HwpruneError(
                f"{self.where(node)}: weights are not quantized; use a quantized layer "
                "(e.g. Brevitas QuantLinear / QuantConv2d with a fixed-point weight quantizer)"
            )
        return w

    def geometry(self, node, x: _Dyn, kernel: tuple[int, ...]):
        """Strides and pads of a Conv / pooling node, checked; the spatial rank must be 1 or 2."""
        a = _attrs(node)
        nd = len(kernel)
        if len(x.shape) - 1 != nd or nd not in (1, 2):
            raise HwpruneError(
                f"{self.where(node)}: input shape {x.shape} with a {nd}-D kernel is not "
                "supported; 1-D (C, L) and 2-D (C, H, W) inputs are"
            )
        if any(d != 1 for d in a.get("dilations", [1] * nd)):
            raise HwpruneError(
                f"{self.where(node)}: dilations {a['dilations']} are not supported; use dilation 1"
            )
        if a.get("ceil_mode", 0):
            raise HwpruneError(f"{self.where(node)}: ceil_mode 1 is not supported; use ceil_mode 0")
        auto = a.get("auto_pad", "NOTSET")
        if auto not in ("NOTSET", "VALID"):
            raise HwpruneError(
                f"{self.where(node)}: auto_pad {auto} is not supported; use explicit pads"
            )
        strides = tuple(a.get("strides", [1] * nd))
        pads = tuple(a.get("pads", [0] * 2 * nd)) if auto == "NOTSET" else (0,) * 2 * nd
        for s, k, p0, p1 in zip(x.shape[1:], kernel, pads[:nd], pads[nd:]):
            if s + p0 + p1 < k:
                raise HwpruneError(
                    f"{self.where(node)}: kernel {kernel} is larger than the padded input "
                    f"{x.shape[1:]}"
                )
        return strides, pads

    def check_shape(self, node, shape: tuple[int, ...]) -> None:
        """The lowered output shape must be the one qonnx shape inference found."""
        # A disagreement means an attribute was read differently from onnxruntime's: refuse
        # rather than emit hardware that computes something else.
        want = self.out_shape(node)
        if shape != want:
            raise HwpruneError(
                f"{self.where(node)}: lowered output shape {shape} differs from the model's "
                f"{want}; re-export the model"
            )

    # --- node handlers ---------------------------------------------------------------------

    def quant(self, node) -> None:
        from qonnx.custom_op.general.intquant import int_quant, max_int, min_int

        a = _attrs(node)
        x_name, s_name, z_name, b_name = node.input
        for n in (s_name, z_name, b_name):
            if n not in self.inits:
                raise HwpruneError(
                    f"{self.where(node)}: scale, zero point and bit width must be constants"
                )
        scale, zp, bits = self.inits[s_name], self.inits[z_name], self.inits[b_name]
        if np.any(zp != 0):
            raise HwpruneError(
                f"{self.where(node)}: nonzero zero point is not supported; use symmetric quantizers"
            )
        bw = float(np.asarray(bits).reshape(-1)[0])
        if bw != int(bw) or bw < 1:
            raise HwpruneError(
                f"{self.where(node)}: bit width {bw} is not supported (1 or more integer bits)"
            )
        bw = int(bw)
        signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
        mode = a.get("rounding_mode", "ROUND").upper()
        if mode not in _ROUNDING:
            raise HwpruneError(
                f"{self.where(node)}: rounding mode {mode} is not supported; "
                f"use one of {sorted(_ROUNDING)}"
            )
        lo, hi = int(min_int(signed, narrow, bw)), int(max_int(signed, narrow, bw))
        src = self.get(x_name)
        if isinstance(src, _Const):
            # The node's own arrays, so the integers are exactly those qonnx execution uses.
            q = int_quant(src.raw, scale, zp, bits, signed, narrow, mode)
            self.env[node.output[0]] = self._const_ints(node, q, scale)
            return
        exp = _try_pow2(scale)
        if isinstance(src, _FloatInput):  # quantizer of a graph input: the hardware input port
            self.input_quant(node, src, scale, exp, IntRange(lo, hi), signed and bw == 1)
            return
        src = self.dyn(x_name, node)
        if signed and bw == 1:  # qonnx's int_quant: a 1-bit signed Quant is the sign function
            lo, hi = -1, 1
        self.no_perm(src, node)
        if exp is None or not src.exact:
            step = 2 if signed and bw == 1 else 1
            self.env[node.output[0]] = self._threshold_quant(node, src, scale, lo, hi, step)
            return
        if signed and bw == 1:
            self.env[node.output[0]] = self._sign(node, src, exp)
            return
        if src.relu:
            lo = max(lo, 0)  # ReLU then monotonic rounding == rounding then clip at 0
        op = Requant(self.fresh("act"), (src.op,), exp - src.exp, lo, hi, _ROUNDING[mode])
        self.env[node.output[0]] = replace(self.emit(op, src.shape, exp), perm=src.perm)

    def input_quant(self, node, src: _FloatInput, scale, exp, rng: IntRange, sign: bool) -> None:
        """The graph input's quantizer: its integer levels are the IR Input.

        A float (non power-of-two) scale, or float preprocessing before the quantizer, stays on
        the host: the host computes the levels (``meta["host_input"]``), and a float scale
        joins the value's pending float map like any other float scale."""
        if np.asarray(scale).size != 1:
            _pow2_exp(scale, self.where(node))  # raises: per-channel input scales
        if sign:
            self._sign(node, src, 0)  # raises: a bipolar input quantizer
        size = _size(src.shape)
        op = Input(src.name, (), size, rng, 0 if exp is None else exp)
        if exp is None:
            qs = float(np.asarray(scale, dtype=np.float64).reshape(()))
            self.host_input = {"tensor": node.output[0], "scale": qs}
            d = self.emit(op, src.shape, 0)
            self.env[node.output[0]] = replace(d, scale=np.full(size, qs), start=node.output[0])
            return
        if src.nodes:  # float preprocessing stays on the host: the IR input is the levels
            self.host_input = {"tensor": node.output[0], "scale": 2.0**exp}
        self.env[node.output[0]] = self.emit(op, src.shape, exp)

    def trunc(self, node) -> None:
        """qonnx Trunc (v2: x, scale, zero point, input bits, output scale, output bits), as
        Brevitas exports after an average pool: level = clip(round(x / scale) / 2**k,
        output range), rounded (floor) to an integer, times the output scale.

        Exact integer op: a Requant (right shift by k, clip) when that reproduces qonnx's
        levels on every integer the input can take, else a Threshold; both proven by the
        exhaustive qonnx evaluation of chains.py."""
        from qonnx.custom_op.general.quant import max_int, min_int

        if len(node.input) != 6:
            raise HwpruneError(
                f"{self.where(node)}: Trunc with {len(node.input)} inputs (v1) is not "
                "supported; export Trunc v2 (x, scale, zeropt, in bits, out scale, out bits)"
            )
        for n in node.input[1:]:
            if n not in self.inits:
                raise HwpruneError(
                    f"{self.where(node)}: scales, zero point and bit widths must be constants"
                )
        scale, zp, _, out_scale, out_bits = (self.inits[n] for n in node.input[1:])
        if np.any(zp != 0):
            raise HwpruneError(
                f"{self.where(node)}: nonzero zero point is not supported; use a zero zero-point"
            )
        if np.asarray(out_scale).size != 1 or np.asarray(scale).size != 1:
            raise HwpruneError(
                f"{self.where(node)}: per-channel Trunc scales are not supported; use per-tensor"
            )
        a = _attrs(node)
        bw = int(np.asarray(out_bits).reshape(-1)[0])
        signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
        lo, hi = int(min_int(signed, narrow, bw)), int(max_int(signed, narrow, bw))
        if not isinstance(self.get(node.input[0]), _Dyn):
            raise HwpruneError(
                f"{self.where(node)}: input {node.input[0]!r} must be a quantized activation"
            )
        src = self.dyn(node.input[0], node)
        self.no_perm(src, node)
        # qonnx's own truncation factor: 2**round(log2(output scale / scale)).
        ratio = float(np.asarray(out_scale, dtype=np.float64).reshape(()))
        ratio /= float(np.asarray(scale, dtype=np.float64).reshape(()))
        k = int(np.round(np.log2(ratio)))
        mode = a.get("rounding_mode", "FLOOR").upper()
        shift = (k, _ROUNDING[mode]) if mode in _ROUNDING else None
        d = self._threshold_quant(node, src, out_scale, lo, hi, 1, shift)
        self.env[node.output[0]] = d

    def softmax(self, node) -> None:
        """A final Softmax stays on the host: the hardware outputs the integer logits; softmax
        is monotonic, so argmax of the logits is argmax of the softmax (meta host_output)."""
        outs = {o.name for o in self.model.graph.output}
        shape = self.model.get_tensor_shape(node.input[0])
        axis = _attrs(node).get("axis", -1)
        if node.output[0] not in outs or not shape or len(shape) != 2 or axis not in (-1, 1):
            raise HwpruneError(
                f"{self.where(node)}: only a final Softmax over the last axis of a (1, N) "
                "tensor is supported (taken as argmax on the host); remove it or move it last"
            )
        if not isinstance(self.get(node.input[0]), _Dyn):
            raise HwpruneError(f"{self.where(node)}: input must be a layer's output")
        self.softmax_node = node
        self.env[node.output[0]] = self.get(node.input[0])

    def _const_ints(self, node, q: np.ndarray, scale: np.ndarray) -> _Const:
        """Integers of quantized constants ``q`` = ints * scale, proven exact."""
        exp = _try_pow2(scale)
        if exp is not None:
            ints = np.round(np.asarray(q, dtype=np.float64) / 2.0**exp).astype(np.int64)
            return _Const(ints, exp, q)
        s = np.asarray(scale, dtype=np.float32)
        ints = np.round(np.asarray(q, dtype=np.float64) / s.astype(np.float64))
        if not np.array_equal(ints.astype(np.float32) * s, np.asarray(q, dtype=np.float32)):
            raise HwpruneError(
                f"{self.where(node)}: quantized constants are not integer multiples of the "
                "scale; use a zero zero-point"
            )
        full = np.broadcast_to(s.astype(np.float64), np.shape(q)).copy()
        return _Const(ints.astype(np.int64), 0, q, full)

    def _threshold_quant(
        self,
        node,
        src: _Dyn,
        scale,
        qmin: int,
        qmax: int,
        step: int,
        shift: tuple[int, Rounding] | None = None,
    ) -> _Dyn:
        """A quantizer reading a float map: exact integer thresholds by exhaustion.

        The quantizer's output level is evaluated with qonnx for every integer each element
        can take; a non-increasing element negates its Dense row (weights and bias) so that
        every element's thresholds ascend. Output: levels base qmin, ``step``; the real value
        is level * quantizer scale, carried as the value's float scale (IR exp: the scale's
        exponent if it is a power of two, else 0, nominal).

        ``shift`` (a Trunc's right shift and rounding): if clip(round(int * 2**-shift)) equals
        the evaluated level of every candidate of every element, a Requant is emitted instead
        of a Threshold (cheaper, and proven equal by the same exhaustion).
        """
        from hwprune.ir import chains

        where = self.where(node)
        s = np.asarray(scale, dtype=np.float64)
        if s.size != 1:
            raise HwpruneError(
                f"{where}: per-channel activation scales (shape {tuple(s.shape)}) are not "
                "supported; use a per-tensor activation quantizer"
            )
        qs = float(s.reshape(()))
        src = self.floated(node.input[0], src, node)
        ranges = [(r.lo, r.hi) for r in self.vals[src.op].ranges]
        cand = chains.candidates(ranges, where)
        nodes = src.nodes + (node,)
        levels = chains.quant_levels(
            nodes,
            src.start,
            cand,
            src.scale,
            qs,
            self.consts(nodes, src.start),
            self.model.model.opset_import,
            where,
            src.shape,
        )
        exp = _try_pow2(s)
        if shift is not None:
            d = self._shift_if_exact(node, src, ranges, levels, qmin, qmax, shift, exp)
            if d is not None:
                if exp is None:
                    d = replace(d, scale=np.full(_size(src.shape), qs), start=node.output[0])
                return replace(d, perm=src.perm)
        ts_all, flips = [], []
        for c, (lo, hi) in enumerate(ranges):
            lv = levels[: hi - lo + 1, c]
            direction = chains.monotone_direction(lv)
            if direction == 0:
                raise HwpruneError(
                    f"{where}: the output level of element {c} is not monotonic in its integer "
                    "input, so it has no thresholds; only monotonic scale/BatchNorm chains are "
                    "supported"
                )
            if direction < 0:  # negate the integer: -x runs through the levels ascending
                flips.append(c)
                lo, lv = -hi, lv[::-1]
            try:
                ts_all.append(chains.thresholds_for(lo, lv, qmin, step, (qmax - qmin) // step))
            except ValueError:
                raise HwpruneError(
                    f"{where}: element {c}'s levels are off the quantizer's grid; the "
                    "threshold reconstruction failed"
                ) from None
        if flips:
            self._negate_rows(node, src, flips)
        out_exp = 0 if exp is None else exp
        op = Threshold(self.fresh("thr"), (src.op,), tuple(ts_all), qmin, step, out_exp)
        d = self.emit(op, src.shape, out_exp)
        if exp is None:
            d = replace(d, scale=np.full(_size(src.shape), qs), start=node.output[0])
        return replace(d, perm=src.perm)

    def _shift_if_exact(self, node, src: _Dyn, ranges, levels, qmin, qmax, shift, exp):
        """A Requant (right shift, clip) if it reproduces ``levels`` on every candidate and
        its output exponent is the quantizer's (when that is a power of two); else None."""
        k, rounding = shift
        in_exp = self.vals[src.op].exp
        if exp is not None and in_exp + k != exp:
            return None
        for c, (lo, hi) in enumerate(ranges):
            ints = range(lo, hi + 1)
            recon = [min(max(shift_round(v, k, rounding), qmin), qmax) for v in ints]
            if not np.array_equal(np.array(recon, dtype=np.int64), levels[: hi - lo + 1, c]):
                return None
        op = Requant(self.fresh("trunc"), (src.op,), k, qmin, qmax, rounding)
        return self.emit(op, src.shape, in_exp + k)

    def _negate_rows(self, node, src: _Dyn, flips: list[int]) -> None:
        """Negate the weights and bias of Dense rows ``flips`` (their elements' levels fall
        as the integer rises). Allowed only when the Dense and the chain feed only this
        quantizer, so no other reader sees the negated integers."""
        k = next(i for i, op in enumerate(self.ops) if op.name == src.op)
        op = self.ops[k]
        tensors = [src.start] + [n.output[0] for n in src.nodes]
        shared = any(len(self.model.find_consumers(t) or []) > 1 for t in tensors)
        read = any(src.op in o.inputs for o in self.ops[k + 1 :])
        if not isinstance(op, Dense) or shared or read:
            raise HwpruneError(
                f"{self.where(node)}: the output level falls as the integer input rises and "
                "the producer is not a Dense feeding only this quantizer, so its rows cannot "
                "be negated; use a positive BatchNorm gamma / scale"
            )
        rows = list(op.rows)
        for c in flips:
            r = rows[c]
            rows[c] = Row(-r.bias, r.cols, tuple(-w for w in r.weights))
        new = replace(op, rows=tuple(rows))
        self.ops[k] = new
        self.vals[new.name] = new.infer(tuple(self.vals[i] for i in new.inputs))

    def _sign(self, node, src, exp: int) -> _Dyn:
        """y = +1 if x >= 0 else -1 on the scale 2**exp (qonnx's binary_quant)."""
        if isinstance(src, _FloatInput):
            raise HwpruneError(
                f"{self.where(node)}: a bipolar (1-bit signed) input quantizer is not supported; "
                "quantize the graph input with an unsigned or 2-bit or wider quantizer"
            )
        # Real x >= 0 exactly when its integer is >= 0 (scales are positive).
        v = self.value(node.input[0], node)
        n = _size(v.shape)
        op = Threshold(self.fresh("sign"), (v.op,), ((0,),) * n, -1, 2, exp)
        return replace(self.emit(op, v.shape, exp), perm=v.perm)

    def bipolar_quant(self, node) -> None:
        from qonnx.custom_op.general.bipolar_quant import binary_quant

        x_name, s_name = node.input[:2]
        if s_name not in self.inits:
            raise HwpruneError(f"{self.where(node)}: the scale must be a constant")
        scale = self.inits[s_name]
        src = self.get(x_name)
        if isinstance(src, _Const):  # binary weights: integers +-1 on the scale
            q = binary_quant(src.raw, scale)
            self.env[node.output[0]] = self._const_ints(node, q, scale)
            return
        exp = _try_pow2(scale)
        if isinstance(src, _FloatInput):
            self._sign(node, src, 0)  # raises: a bipolar input quantizer
        src = self.dyn(x_name, node)
        if exp is None or not src.exact or src.perm is not None:
            self.no_perm(src, node)
            self.env[node.output[0]] = self._threshold_quant(node, src, scale, -1, 1, 2)
            return
        self.env[node.output[0]] = self._sign(node, src, exp)

    def _dense(self, node, x: _Dyn, w: _Const, transposed: bool) -> _Dyn:
        mat = w.ints.T if transposed else w.ints  # (n_in, n_out)
        if mat.ndim != 2:
            raise HwpruneError(f"{self.where(node)}: weights must be 2-D, got shape {mat.shape}")
        if len(x.shape) != 1:
            raise HwpruneError(
                f"{self.where(node)}: input shape {x.shape} is not flat; put a Flatten "
                "(nn.Flatten) before the linear layer"
            )
        n_in = x.shape[0]
        if mat.shape[0] != n_in:
            raise HwpruneError(
                f"{self.where(node)}: weight shape {mat.shape} does not match {n_in} inputs"
            )
        rows = []
        for j in range(mat.shape[1]):
            col = mat[:, j]
            nz = np.flatnonzero(col)
            # A pending Transpose renumbers the columns; terms stay sorted by IR column.
            order = np.argsort(self.cols(x, nz), kind="stable")
            cols, ws = self.cols(x, nz)[order], col[nz][order]
            rows.append(Row(0, tuple(cols.tolist()), tuple(ws.tolist())))
        out_scale = None
        if x.scale is not None or w.scale is not None:
            ws = w.scale.T if (w.scale is not None and transposed) else w.scale
            ws = 2.0**w.exp if ws is None else _per_output(ws, mat.shape, 1, self.where(node))
            out_scale = np.broadcast_to(self.in_scale(x, node) * ws, (mat.shape[1],)).copy()
        w_exp = w.exp if out_scale is None else -x.exp  # float: output exp 0, nominal
        op = Dense(self.fresh("dense"), (x.op,), n_in, tuple(rows), w_exp)
        self.layers[op.name] = {
            "kind": "linear",
            "kernel_weights": int(mat.size),
            "kernel_nonzeros": int(np.count_nonzero(mat)),
            "positions": 1,
        }
        d = self.emit(op, (mat.shape[1],), x.exp + w_exp)
        if out_scale is not None:
            d = replace(d, scale=out_scale, start=node.output[0])
        return d

    def in_scale(self, x: _Dyn, node) -> float:
        """The one real scale of a layer's integer input (per-element scales are refused)."""
        if x.scale is None:
            return 2.0**x.exp
        if not np.all(x.scale == x.scale[0]):
            raise HwpruneError(
                f"{self.where(node)}: the input has per-channel scales; use a per-tensor "
                "activation quantizer before this layer"
            )
        return float(x.scale[0])

    def _add_bias(self, node, acc: _Dyn, b: _Const) -> bool:
        """Fold a constant bias into the Dense producing ``acc``, exactly or not at all.

        The bias broadcasts (ONNX rules) against the accumulator's shape with its batch of 1.
        Returns False (nothing changed) when it is not on the accumulator's power-of-two grid
        or not directly after the Dense: the caller then keeps it in the float map.
        """
        op = self.ops[-1]
        if not (isinstance(op, Dense) and op.name == acc.op) or not acc.exact or acc.relu:
            return False
        if b.ints is not None:
            ints = b.ints.astype(np.float64) * 2.0 ** (b.exp - acc.exp)
        else:
            ints = np.asarray(b.raw, dtype=np.float64) / 2.0**acc.exp  # exact: 2**k scales
        try:
            ints = np.broadcast_to(ints, (1, *acc.shape)).reshape(-1)
        except ValueError:
            raise HwpruneError(
                f"{self.where(node)}: bias of shape {ints.shape} does not broadcast to the "
                f"output shape {acc.shape}"
            ) from None
        if not np.all(ints == np.round(ints)) or np.any(np.abs(ints) >= 2.0**52):
            return False  # off the grid: the next quantizer takes it exactly (thresholds)
        rows = tuple(replace(r, bias=r.bias + int(v)) for r, v in zip(op.rows, ints))
        self.ops.pop()
        self.emit(replace(op, rows=rows), acc.shape, acc.exp)
        return True

    def _bias_chain(self, node, acc: _Dyn, b_name: str) -> _Dyn:
        """A Gemm / Conv bias off the integer grid: the layer's accumulator (a tensor the
        model does not name, ``<output>__hwprune_acc``) plus an Add of the bias joins the
        float map, so the next quantizer's thresholds take it exactly."""
        start = node.output[0] + "__hwprune_acc"
        add = onnx.helper.make_node(
            "Add", [start, b_name], [node.output[0]], name=node.name + "__hwprune_bias"
        )
        acc = self.floated(start, acc, node)
        return replace(acc, start=start, nodes=acc.nodes + (add,))

    def gemm(self, node) -> None:
        a = _attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) not in (0.0, 1.0):
            raise HwpruneError(
                f"{self.where(node)}: only Gemm with transA=0, alpha=1, beta=1 is supported"
            )
        x = self.value(node.input[0], node)
        acc = self._dense(node, x, self.weights(node), transposed=bool(a.get("transB", 0)))
        if len(node.input) > 2 and node.input[2] and a.get("beta", 1.0) != 0.0:
            b = self.get(node.input[2])
            if not isinstance(b, _Const):
                raise HwpruneError(f"{self.where(node)}: bias must be constant")
            if not self._add_bias(node, acc, b):
                acc = self._bias_chain(node, acc, node.input[2])
        self.env[node.output[0]] = acc

    def matmul(self, node) -> None:
        x = self.value(node.input[0], node)
        if not isinstance(self.get(node.input[1]), _Const):
            raise HwpruneError(f"{self.where(node)}: only a constant right-hand side is supported")
        self.env[node.output[0]] = self._dense(node, x, self.weights(node), transposed=False)

    def conv(self, node) -> None:
        """Conv as a Dense: one row per (output channel, output position), C order."""
        a = _attrs(node)
        x = self.value(node.input[0], node)
        w = self.weights(node)
        if a.get("group", 1) != 1:
            raise HwpruneError(
                f"{self.where(node)}: group {a['group']} convolution is not supported; use groups=1"
            )
        kernel = tuple(int(k) for k in w.ints.shape[2:])
        strides, pads = self.geometry(node, x, kernel)
        if w.ints.shape[1] != x.shape[0]:
            raise HwpruneError(
                f"{self.where(node)}: weights {w.ints.shape} do not match {x.shape[0]} channels"
            )
        win, out_sp = _windows(x.shape, kernel, strides, pads)
        win = self.cols(x, win)
        n_pos = win.shape[1]
        cols_of = win.transpose(1, 0, 2).reshape(n_pos, -1)  # (position, (c, kernel) C order)
        mat = w.ints.reshape(w.ints.shape[0], -1)
        rows = []
        for o in range(mat.shape[0]):
            wo = mat[o]
            for p in range(n_pos):
                # Terms reading padding are dropped (the padding is zero); so are zero weights.
                keep = (cols_of[p] >= 0) & (wo != 0)
                cs, ws = cols_of[p][keep], wo[keep]
                order = np.argsort(cs, kind="stable")  # a pending Transpose renumbers columns
                rows.append(Row(0, tuple(cs[order].tolist()), tuple(ws[order].tolist())))
        shape = (mat.shape[0], *out_sp)
        self.check_shape(node, shape)
        op = Dense(self.fresh("conv"), (x.op,), _size(x.shape), tuple(rows), w.exp)
        self.layers[op.name] = {
            "kind": f"conv{len(kernel)}d",
            "kernel_weights": int(mat.size),
            "kernel_nonzeros": int(np.count_nonzero(mat)),
            "positions": n_pos,
        }
        if x.scale is not None or w.scale is not None:
            ws = (
                2.0**w.exp
                if w.scale is None
                else _per_output(w.scale, w.ints.shape, 0, self.where(node))
            )
            per_ch = np.broadcast_to(self.in_scale(x, node) * ws, (mat.shape[0],))
            op = replace(op, w_exp=-x.exp)  # float scale: output exp 0, nominal
            acc = self.emit(op, shape, 0)
            acc = replace(acc, scale=np.repeat(per_ch, n_pos), start=node.output[0])
        else:
            acc = self.emit(op, shape, x.exp + w.exp)
        if len(node.input) > 2 and node.input[2]:
            b = self.get(node.input[2])
            if not isinstance(b, _Const):
                raise HwpruneError(f"{self.where(node)}: bias must be constant")
            # ONNX Conv's B is one value per output channel: give it the channel axis.
            per_ch = (-1,) + (1,) * len(kernel)
            ints = None if b.ints is None else b.ints.reshape(per_ch)
            raw = np.asarray(b.raw).reshape(per_ch)
            if not self._add_bias(node, acc, _Const(ints, b.exp, raw)):
                name = node.input[2] + "__hwprune_ch"
                self.env[name] = _Const(ints, b.exp, raw)
                acc = self._bias_chain(node, acc, name)
        self.env[node.output[0]] = acc

    def maxpool(self, node) -> None:
        """MaxPool as Max; windows hold only the valid (unpadded) elements."""
        a = _attrs(node)
        if len([o for o in node.output if o]) != 1:
            raise HwpruneError(
                f"{self.where(node)}: the Indices output is not supported; use MaxPool "
                "without return_indices"
            )
        # max(relu(x)) == relu(max(x)): a pending ReLU stays pending through the pooling.
        x = self.dyn(node.input[0], node)
        if x.nodes or (x.scale is not None and not np.all(x.scale == x.scale[0])):
            raise HwpruneError(
                f"{self.where(node)}: max pooling of a float map (BatchNorm / scaling) or of "
                "per-channel scales is not supported; quantize before the MaxPool"
            )
        kernel = tuple(a["kernel_shape"])
        strides, pads = self.geometry(node, x, kernel)
        win, out_sp = _windows(x.shape, kernel, strides, pads)
        win = self.cols(x, win)
        groups = []
        for w in win.reshape(-1, win.shape[2]):
            grp = tuple(sorted(w[w >= 0].tolist()))
            if not grp:
                raise HwpruneError(
                    f"{self.where(node)}: a window reads only padding; use pads smaller than "
                    "the kernel"
                )
            groups.append(grp)
        shape = (x.shape[0], *out_sp)
        self.check_shape(node, shape)
        op = Max(self.fresh("maxpool"), (x.op,), tuple(groups))
        y = self.emit(op, shape, x.exp, x.relu)
        if x.scale is not None:  # a positive per-tensor scale commutes with max
            y = replace(y, scale=np.full(len(groups), x.scale[0]), start=node.output[0])
        self.env[node.output[0]] = y

    def avgpool(self, node) -> None:
        """AveragePool over 2**k elements as a Dense of ones with w_exp = -k (exact)."""
        a = _attrs(node)
        x = self.value(node.input[0], node)
        kernel = tuple(a["kernel_shape"])
        strides, pads = self.geometry(node, x, kernel)
        if any(pads):
            raise HwpruneError(
                f"{self.where(node)}: pads {list(pads)} are not supported; use AvgPool "
                "without padding"
            )
        n = _size(kernel)
        if n & (n - 1):
            raise HwpruneError(
                f"{self.where(node)}: window {'x'.join(map(str, kernel))} holds {n} elements, "
                "not a power of two, so the average is not exact; power-of-two windows "
                "(2, 4, 2x2, 4x4) are supported"
            )
        win, out_sp = _windows(x.shape, kernel, strides, pads)
        win = self.cols(x, win)
        ones = (1,) * n
        rows = tuple(Row(0, tuple(sorted(w.tolist())), ones) for w in win.reshape(-1, n))
        shape = (x.shape[0], *out_sp)
        self.check_shape(node, shape)
        # sum * 2**-k is the average exactly; the next Quant requantizes it as usual.
        k = n.bit_length() - 1
        op = Dense(self.fresh("avgpool"), (x.op,), _size(x.shape), rows, -k)
        # Depthwise: each channel has its own all-ones window, so the kernel is C x window.
        self.layers[op.name] = {
            "kind": "avgpool",
            "kernel_weights": x.shape[0] * n,
            "kernel_nonzeros": x.shape[0] * n,
            "positions": win.shape[1],
        }
        y = self.emit(op, shape, x.exp - k)
        if x.scale is not None:  # sum * 2**-k on the input's float scale
            sc = self.in_scale(x, node) * 2.0**-k
            y = replace(y, scale=np.full(_size(shape), sc), start=node.output[0])
        self.env[node.output[0]] = y

    def reshape(self, node) -> None:
        """Reshape / Flatten: the flat C-order vector is unchanged, only the shape moves."""
        src = self.get(node.input[0])
        # Constants are reshaped by qonnx cleanup's constant folding, never here.
        if isinstance(src, _Const):
            raise HwpruneError(
                f"{self.where(node)}: reshaping a constant is not supported; run qonnx cleanup"
            )
        shape = self.out_shape(node)
        if _size(shape) != _size(src.shape):
            raise HwpruneError(
                f"{self.where(node)}: reshape from {src.shape} to {shape} changes the size"
            )
        if isinstance(src, _FloatInput):  # host-side preprocessing
            self.env[node.output[0]] = replace(src, shape=shape, nodes=src.nodes + (node,))
            return
        if src.nodes:
            raise HwpruneError(
                f"{self.where(node)}: reshaping a float map (BatchNorm / scaling) is not "
                "supported; quantize before the reshape"
            )
        start = None if src.scale is None else node.output[0]
        self.env[node.output[0]] = replace(src, shape=shape, start=start)

    def transpose(self, node) -> None:
        """Transpose: folded on constants, host-side before the input quantizer, and on an
        activation a pending permutation (``_Dyn.perm``) that the next layer or pooling reads
        through (its columns / windows are renumbered): no hardware."""
        src = self.get(node.input[0])
        perm = _attrs(node).get("perm")
        if isinstance(src, _Const):
            t = lambda a: None if a is None else np.transpose(a, perm)  # noqa: E731
            self.env[node.output[0]] = _Const(t(src.ints), src.exp, t(src.raw), t(src.scale))
            return
        shape = self.out_shape(node)
        if isinstance(src, _FloatInput):  # host-side preprocessing
            self.env[node.output[0]] = replace(src, shape=shape, nodes=src.nodes + (node,))
            return
        src = self.dyn(node.input[0], node)
        rank = len(src.shape) + 1
        perm = list(range(rank))[::-1] if perm is None else list(perm)
        if perm[0] != 0 or sorted(perm) != list(range(rank)):
            raise HwpruneError(
                f"{self.where(node)}: perm {perm} moves the batch axis; keep axis 0 first"
            )
        if src.nodes:
            raise HwpruneError(
                f"{self.where(node)}: transposing a float map (BatchNorm / scaling) is not "
                "supported; quantize before the Transpose"
            )
        idx = np.arange(_size(src.shape)) if src.perm is None else src.perm
        new = np.transpose(idx.reshape(src.shape), [p - 1 for p in perm[1:]]).reshape(-1)
        if tuple(src.shape[p - 1] for p in perm[1:]) != shape:
            raise HwpruneError(f"{self.where(node)}: output shape {shape} differs from perm")
        keep = None if np.array_equal(new, np.arange(new.size)) else new
        start = None if src.scale is None else node.output[0]
        self.env[node.output[0]] = replace(src, shape=shape, perm=keep, start=start)

    def elementwise(self, node) -> None:
        """Mul / Div / Add / Sub with one constant operand: host-side preprocessing on the
        graph input, a folded bias (Add on the integer grid), or part of a float map."""
        names = list(node.input)
        ops = [self.get(n) for n in names]
        k = 0 if not isinstance(ops[0], _Const) else 1
        if isinstance(ops[k], _Const) or not isinstance(ops[1 - k], _Const):
            raise HwpruneError(
                f"{self.where(node)}: only {node.op_type} of an activation and a constant is "
                "supported"
            )
        if node.op_type == "Div" and k != 0:
            raise HwpruneError(
                f"{self.where(node)}: dividing a constant by an activation is not supported"
            )
        src, name = ops[k], names[k]
        if isinstance(src, _FloatInput):
            shape = self.out_shape(node)
            self.env[node.output[0]] = replace(src, shape=shape, nodes=src.nodes + (node,))
            return
        src = self.dyn(name, node)
        if node.op_type == "Add" and self._add_bias(node, src, ops[1 - k]):
            self.env[node.output[0]] = src
            return
        self.env[node.output[0]] = self.append(node, name, src)

    def batchnorm(self, node) -> None:
        """BatchNormalization (inference) joins the float map; its parameters are constants."""
        if _attrs(node).get("training_mode", 0):
            raise HwpruneError(f"{self.where(node)}: training_mode 1 is not supported")
        for n in node.input[1:]:
            if not isinstance(self.get(n), _Const):
                raise HwpruneError(f"{self.where(node)}: parameters must be constants")
        src = self.get(node.input[0])
        if isinstance(src, _FloatInput):
            self.env[node.output[0]] = replace(src, nodes=src.nodes + (node,))
            return
        self.env[node.output[0]] = self.append(node, node.input[0], self.dyn(node.input[0], node))

    def relu(self, node) -> None:
        src = self.get(node.input[0])
        if isinstance(src, _FloatInput):
            self.env[node.output[0]] = replace(src, nodes=src.nodes + (node,))
            return
        v = self.dyn(node.input[0], node)
        if v.exact:
            self.env[node.output[0]] = replace(v, relu=True)
        else:  # a float map: the ReLU is one more elementwise node
            self.env[node.output[0]] = self.append(node, node.input[0], v)

    def identity(self, node) -> None:
        self.env[node.output[0]] = self.get(node.input[0])

    HANDLERS = {
        "Quant": quant,
        "BipolarQuant": bipolar_quant,
        "Gemm": gemm,
        "MatMul": matmul,
        "Conv": conv,
        "Add": elementwise,
        "Sub": elementwise,
        "Mul": elementwise,
        "Div": elementwise,
        "BatchNormalization": batchnorm,
        "Transpose": transpose,
        "Relu": relu,
        "MaxPool": maxpool,
        "AveragePool": avgpool,
        "Reshape": reshape,
        "Flatten": reshape,
        "Identity": identity,
        "Trunc": trunc,
        "Softmax": softmax,
    }

    def run(self) -> Graph:
        nodes = list(self.model.graph.node)
        for node in nodes:
            if node.op_type not in self.HANDLERS:
                raise HwpruneError(
                    f"{self.where(node)}: op type {node.op_type} is not supported; supported: "
                    f"{', '.join(SUPPORTED_OPS)}"
                )
        # The float input becomes an Input op at its quantizer; its size is the product of the
        # shape, read in C order like every other tensor.
        in_name = self.graph_input_name()
        in_shape = self.model.get_tensor_shape(in_name)
        if (
            not in_shape
            or len(in_shape) not in (2, 3, 4)
            or in_shape[0] != 1
            or not all(isinstance(d, int) and d >= 1 for d in in_shape)
        ):
            raise HwpruneError(
                f"input {in_name!r} has shape {in_shape}; (1, N), (1, C, L) and (1, C, H, W) "
                "inputs are supported"
            )
        self.env[in_name] = _FloatInput(in_name, tuple(in_shape[1:]))
        for node in nodes:
            self.HANDLERS[node.op_type](self, node)
        outs = [o.name for o in self.model.graph.output]
        if len(outs) != 1:
            raise HwpruneError(
                f"model has {len(outs)} outputs; only single-output models are supported"
            )
        out = self.dyn(outs[0], nodes[-1])
        if out.perm is not None:
            raise HwpruneError(
                f"{self.where(nodes[-1])}: the model ends in a transposed activation; only a "
                "Transpose read by a later layer is supported"
            )
        host_output = self.host_output(out, outs[0], nodes[-1])
        if out.exact:
            out = self.value(outs[0], nodes[-1])
        meta = {
            "input_name": in_name,
            "input_shape": list(in_shape[1:]),
            "output_name": outs[0],
            "output_exp": out.exp,
            "layers": self.layers,
        }
        if self.host_input is not None:
            meta["host_input"] = self.host_input
        if host_output is not None:
            meta["host_output"] = host_output
        g = Graph(tuple(self.ops), (out.op,), meta)
        verify(g)
        return g

    def host_output(self, out: _Dyn, name: str, last) -> dict | None:
        """What the host does after the hardware, or None (the output is int * 2**exp).

        The hardware's integers k are qonnx tensor ``tensor`` = k * scale + offset (offset: a
        layer's off-grid float bias, else absent); the ``tail`` nodes (elementwise, by
        constants) map that tensor on, and a final Softmax (``softmax``: its node) is taken as
        argmax of the logits on the host."""
        sm = self.softmax_node
        if out.exact:
            if sm is None:
                return None
            v = self.value(name, last)
            return {"tensor": sm.input[0], "scale": 2.0**v.exp, "tail": [], "softmax": sm.name}
        sc = out.scale
        ho: dict = {
            "tensor": out.start,
            "scale": float(sc[0]) if np.all(sc == sc[0]) else [float(v) for v in sc],
        }
        nodes = list(out.nodes)
        if out.start not in self.model.get_all_tensor_names():
            # The layer's accumulator is unnamed in the model (a bias chain): the host tensor
            # is the layer's output, the accumulator plus the bias (``offset``).
            add = nodes.pop(0)
            b = np.asarray(self.get(add.input[1]).raw, dtype=np.float32)
            off = np.broadcast_to(b, (1, *out.shape)).reshape(-1)
            ho["tensor"] = add.output[0]
            ho["offset"] = [float(v) for v in off]
        ho["tail"] = [n.name for n in nodes]
        if sm is not None:
            ho["softmax"] = sm.name
        return ho

    def graph_input_name(self) -> str:
        names = sorted(self.graph_inputs)
        if len(names) != 1:
            raise HwpruneError(
                f"model has {len(names)} inputs; only single-input models are supported"
            )
        return names[0]


def import_model(model) -> Graph:
    """Convert a cleaned qonnx ModelWrapper into a verified integer IR graph."""
    return _Importer(model).run()


def import_qonnx(path: str | Path) -> Graph:
    """Load, clean and import a QONNX file; raises HwpruneError on anything unsupported."""
    return import_model(load_model(path))
