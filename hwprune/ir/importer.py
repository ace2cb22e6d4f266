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
)

# Ops a raw export may hold that qonnx cleanup folds away (shape arithmetic on constants).
_FOLDED_BY_CLEANUP = ("Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast")

_ROUNDING = {"FLOOR": Rounding.FLOOR, "ROUND": Rounding.HALF_EVEN, "HALF_EVEN": Rounding.HALF_EVEN}


@dataclass
class _Dyn:
    """A tensor computed by the IR: op name, scale exponent, tensor shape without the batch
    dimension (the op's flat vector read in C order), and a ReLU not yet applied."""

    op: str
    exp: int
    shape: tuple[int, ...]
    relu: bool = False


@dataclass
class _Const:
    """A constant tensor: integer values and a power-of-two scale exponent (None: raw float)."""

    ints: np.ndarray | None
    exp: int | None
    raw: np.ndarray


@dataclass
class _FloatInput:
    """The float graph input, possibly reshaped, before its input quantizer."""

    name: str
    shape: tuple[int, ...]


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
    for node in proto.graph.node:
        if node.op_type not in SUPPORTED_OPS + _FOLDED_BY_CLEANUP:
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
        """A dynamic operand as is (a pending ReLU stays pending)."""
        v = self.get(name)
        if not isinstance(v, _Dyn):
            raise HwpruneError(
                f"{self.where(node)}: input {name!r} must be a quantized activation; put a "
                "Quant (e.g. QuantIdentity / QuantReLU) in front of it"
            )
        return v

    def value(self, name: str, node) -> _Dyn:
        """A dynamic operand, with any pending ReLU materialised as a clip at 0."""
        v = self.dyn(name, node)
        if v.relu:
            hi = self.vals[v.op].range.hi
            v = self.emit(Requant(self.fresh("relu"), (v.op,), 0, 0, max(hi, 0)), v.shape, v.exp)
        return v

    def out_shape(self, node) -> tuple[int, ...]:
        """The shape qonnx shape inference gave the node's output, without the batch of 1."""
        shape = self.model.get_tensor_shape(node.output[0])
        if not shape or shape[0] != 1 or not all(isinstance(d, int) and d >= 1 for d in shape):
            raise HwpruneError(
                f"{self.where(node)}: output shape {shape} is unknown or has no batch of 1; "
                "export with a (1, ...) example input"
            )
        return tuple(shape[1:])

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
        exp = _pow2_exp(scale, self.where(node))
        if isinstance(src, _Const):
            # The node's own arrays, so the integers are exactly those qonnx execution uses.
            q = int_quant(src.raw, scale, zp, bits, signed, narrow, mode)
            ints = np.round(np.asarray(q, dtype=np.float64) / 2.0**exp).astype(np.int64)
            self.env[node.output[0]] = _Const(ints, exp, q)
            return
        if signed and bw == 1:  # qonnx's int_quant: a 1-bit signed Quant is the sign function
            self.env[node.output[0]] = self._sign(node, src, exp)
            return
        if isinstance(src, _FloatInput):  # quantizer of a graph input: the hardware input port
            op = Input(src.name, (), _size(src.shape), IntRange(lo, hi), exp)
            self.env[node.output[0]] = self.emit(op, src.shape, exp)
            return
        src = self.dyn(x_name, node)
        if src.relu:
            lo = max(lo, 0)  # ReLU then monotonic rounding == rounding then clip at 0
        op = Requant(self.fresh("act"), (src.op,), exp - src.exp, lo, hi, _ROUNDING[mode])
        self.env[node.output[0]] = self.emit(op, src.shape, exp)

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
        return self.emit(op, v.shape, exp)

    def bipolar_quant(self, node) -> None:
        from qonnx.custom_op.general.bipolar_quant import binary_quant

        x_name, s_name = node.input[:2]
        if s_name not in self.inits:
            raise HwpruneError(f"{self.where(node)}: the scale must be a constant")
        scale = self.inits[s_name]
        exp = _pow2_exp(scale, self.where(node))
        src = self.get(x_name)
        if isinstance(src, _Const):  # binary weights: integers +-1 on the scale 2**exp
            q = binary_quant(src.raw, scale)
            ints = np.round(np.asarray(q, dtype=np.float64) / 2.0**exp).astype(np.int64)
            self.env[node.output[0]] = _Const(ints, exp, q)
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
            rows.append(Row(0, tuple(nz.tolist()), tuple(col[nz].tolist())))
        op = Dense(self.fresh("dense"), (x.op,), n_in, tuple(rows), w.exp)
        self.layers[op.name] = {
            "kind": "linear",
            "kernel_weights": int(mat.size),
            "kernel_nonzeros": int(np.count_nonzero(mat)),
            "positions": 1,
        }
        return self.emit(op, (mat.shape[1],), x.exp + w.exp)

    def _add_bias(self, node, acc: _Dyn, b: _Const) -> None:
        """Fold a constant bias into the Dense producing ``acc``, exactly or not at all.

        The bias broadcasts (ONNX rules) against the accumulator's shape with its batch of 1.
        """
        op = self.ops[-1]
        if not (isinstance(op, Dense) and op.name == acc.op) or acc.relu:
            raise HwpruneError(
                f"{self.where(node)}: only a bias directly after Gemm/MatMul/Conv is supported"
            )
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
        if not np.all(ints == np.round(ints)):
            raise HwpruneError(
                f"{self.where(node)}: bias is not on the accumulator grid 2**{acc.exp}; quantize "
                "it with the input scale times the weight scale (Brevitas bias_quant=Int32Bias)"
            )
        rows = tuple(replace(r, bias=r.bias + int(v)) for r, v in zip(op.rows, ints))
        self.ops.pop()
        self.emit(replace(op, rows=rows), acc.shape, acc.exp)

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
            self._add_bias(node, acc, b)
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
        n_pos = win.shape[1]
        cols_of = win.transpose(1, 0, 2).reshape(n_pos, -1)  # (position, (c, kernel) C order)
        mat = w.ints.reshape(w.ints.shape[0], -1)
        rows = []
        for o in range(mat.shape[0]):
            wo = mat[o]
            for p in range(n_pos):
                # Terms reading padding are dropped (the padding is zero); so are zero weights.
                keep = (cols_of[p] >= 0) & (wo != 0)
                rows.append(Row(0, tuple(cols_of[p][keep].tolist()), tuple(wo[keep].tolist())))
        shape = (mat.shape[0], *out_sp)
        self.check_shape(node, shape)
        op = Dense(self.fresh("conv"), (x.op,), _size(x.shape), tuple(rows), w.exp)
        self.layers[op.name] = {
            "kind": f"conv{len(kernel)}d",
            "kernel_weights": int(mat.size),
            "kernel_nonzeros": int(np.count_nonzero(mat)),
            "positions": n_pos,
        }
        acc = self.emit(op, shape, x.exp + w.exp)
        if len(node.input) > 2 and node.input[2]:
            b = self.get(node.input[2])
            if not isinstance(b, _Const):
                raise HwpruneError(f"{self.where(node)}: bias must be constant")
            # ONNX Conv's B is one value per output channel: give it the channel axis.
            per_ch = (-1,) + (1,) * len(kernel)
            ints = None if b.ints is None else b.ints.reshape(per_ch)
            self._add_bias(node, acc, _Const(ints, b.exp, np.asarray(b.raw).reshape(per_ch)))
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
        kernel = tuple(a["kernel_shape"])
        strides, pads = self.geometry(node, x, kernel)
        win, out_sp = _windows(x.shape, kernel, strides, pads)
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
        self.env[node.output[0]] = self.emit(op, shape, x.exp, x.relu)

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
        self.env[node.output[0]] = self.emit(op, shape, x.exp - k)

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
        self.env[node.output[0]] = replace(src, shape=shape)

    def add(self, node) -> None:
        lhs, rhs = (self.get(n) for n in node.input)
        if isinstance(lhs, _Const):
            lhs, rhs = rhs, lhs
        if not (isinstance(lhs, _Dyn) and isinstance(rhs, _Const)):
            raise HwpruneError(f"{self.where(node)}: only adding a constant bias is supported yet")
        self._add_bias(node, lhs, rhs)
        self.env[node.output[0]] = lhs

    def relu(self, node) -> None:
        v = self.dyn(node.input[0], node)
        self.env[node.output[0]] = replace(v, relu=True)

    def identity(self, node) -> None:
        self.env[node.output[0]] = self.get(node.input[0])

    HANDLERS = {
        "Quant": quant,
        "BipolarQuant": bipolar_quant,
        "Gemm": gemm,
        "MatMul": matmul,
        "Conv": conv,
        "Add": add,
        "Relu": relu,
        "MaxPool": maxpool,
        "AveragePool": avgpool,
        "Reshape": reshape,
        "Flatten": reshape,
        "Identity": identity,
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
        out = self.value(outs[0], nodes[-1])
        meta = {
            "input_name": in_name,
            "input_shape": list(in_shape[1:]),
            "output_name": outs[0],
            "output_exp": out.exp,
            "layers": self.layers,
        }
        g = Graph(tuple(self.ops), (out.op,), meta)
        verify(g)
        return g

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
