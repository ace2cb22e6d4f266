"""Import a QONNX model into hwprune's integer IR.

The model is cleaned with qonnx first (shape inference, constant folding, unique names), then
walked in topological order. Every tensor becomes one of two things:

- a constant: an initializer, or a Quant node applied to one (weights, biases), quantized with
  qonnx's own ``int_quant`` so the integers are exactly the ones qonnx execution uses;
- an IR value: the output of an IR op, an integer vector standing for ``int * 2**exp``.

Supported now: Quant (power-of-two scalar scale, zero point 0), Gemm, MatMul, Add of a
constant bias, Relu, Identity. Anything else raises ``HwpruneError`` naming the node, its op
type and what is supported, before anything is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from hwprune.errors import HwpruneError
from hwprune.ir.graph import Dense, Graph, Input, IntRange, Op, Requant, Rounding, Row, verify

SUPPORTED_OPS = ("Quant", "Gemm", "MatMul", "Add", "Relu", "Identity")

# Ops a raw export may hold that qonnx cleanup folds away (shape arithmetic on constants).
_FOLDED_BY_CLEANUP = ("Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast")

_ROUNDING = {"FLOOR": Rounding.FLOOR, "ROUND": Rounding.HALF_EVEN, "HALF_EVEN": Rounding.HALF_EVEN}


@dataclass
class _Dyn:
    """A tensor computed by the IR: op name, scale exponent, and a ReLU not yet applied."""

    op: str
    exp: int
    relu: bool = False


@dataclass
class _Const:
    """A constant tensor: integer values and a power-of-two scale exponent (None: raw float)."""

    ints: np.ndarray | None
    exp: int | None
    raw: np.ndarray


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
            "quantizers such as Brevitas *FixedPoint"
        )
    return int(round(e))


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class _Importer:
    def __init__(self, model) -> None:
        self.model = model
        self.inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.env: dict[str, _Dyn | _Const] = {}
        self.ops: list[Op] = []
        self.graph_inputs = {i.name for i in model.graph.input if i.name not in self.inits}
        self.counter: dict[str, int] = {}

    def fresh(self, kind: str) -> str:
        k = self.counter.get(kind, 0)
        self.counter[kind] = k + 1
        return f"{kind}{k}"

    def where(self, node) -> str:
        return f"node {node.name!r} ({node.op_type})"

    def get(self, name: str):
        if name in self.env:
            return self.env[name]
        if name in self.inits:
            raw = self.inits[name]
            return _Const(None, None, raw)
        if name in self.graph_inputs:
            return None  # a float graph input: only a Quant may read it
        raise HwpruneError(f"tensor {name!r} is used before it is produced; re-export the model")

    def value(self, name: str, node) -> _Dyn:
        """A dynamic operand, with any pending ReLU materialised as a clip at 0."""
        v = self.get(name)
        if not isinstance(v, _Dyn):
            raise HwpruneError(
                f"{self.where(node)}: input {name!r} must be a quantized activation; put a "
                "Quant (e.g. QuantIdentity / QuantReLU) in front of it"
            )
        if v.relu:
            hi = self._values()[v.op].range.hi
            op = Requant(self.fresh("relu"), (v.op,), 0, 0, max(hi, 0))
            self.ops.append(op)
            v = _Dyn(op.name, v.exp)
        return v

    def _values(self):
        return Graph(tuple(self.ops), ()).values

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
        if bw != int(bw) or bw < 2:
            raise HwpruneError(
                f"{self.where(node)}: bit width {bw} is not supported (2 or more integer bits)"
            )
        bw = int(bw)
        signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
        mode = a.get("rounding_mode", b"ROUND")
        mode = (mode.decode() if isinstance(mode, bytes) else mode).upper()
        if mode not in _ROUNDING:
            raise HwpruneError(
                f"{self.where(node)}: rounding mode {mode} is not supported; "
                f"use one of {sorted(_ROUNDING)}"
            )
        lo, hi = int(min_int(signed, narrow, bw)), int(max_int(signed, narrow, bw))
        src = self.get(x_name)
        if isinstance(src, _Const):
            exp = _pow2_exp(scale, self.where(node))
            # The node's own arrays, so the integers are exactly those qonnx execution uses.
            q = int_quant(src.raw, scale, zp, bits, signed, narrow, mode)
            ints = np.round(np.asarray(q, dtype=np.float64) / 2.0**exp).astype(np.int64)
            self.env[node.output[0]] = _Const(ints, exp, q)
            return
        exp = _pow2_exp(scale, self.where(node))
        if src is None:  # quantizer of a graph input: the hardware input port
            shape = self.model.get_tensor_shape(x_name)
            size = int(np.prod(shape[1:])) if shape and len(shape) >= 2 else 0
            if not shape or shape[0] != 1 or len(shape) != 2 or size < 1:
                raise HwpruneError(
                    f"{self.where(node)}: input {x_name!r} has shape {shape}; only (1, N) inputs "
                    "are supported yet (flatten the input)"
                )
            op = Input(x_name, (), size, IntRange(lo, hi), exp)
            self.ops.append(op)
            self.env[node.output[0]] = _Dyn(op.name, exp)
            return
        assert isinstance(src, _Dyn)
        if src.relu:
            lo = max(lo, 0)  # ReLU then monotonic rounding == rounding then clip at 0
        op = Requant(self.fresh("act"), (src.op,), exp - src.exp, lo, hi, _ROUNDING[mode])
        self.ops.append(op)
        self.env[node.output[0]] = _Dyn(op.name, exp)

    def _dense(self, node, x: _Dyn, w: _Const, transposed: bool) -> _Dyn:
        if w.ints is None:
            raise HwpruneError(
                f"{self.where(node)}: weights are not quantized; use a quantized layer "
                "(e.g. Brevitas QuantLinear with a fixed-point weight quantizer)"
            )
        mat = w.ints.T if transposed else w.ints  # (n_in, n_out)
        if mat.ndim != 2:
            raise HwpruneError(f"{self.where(node)}: weights must be 2-D, got shape {mat.shape}")
        n_in = self._values()[x.op].size
        if mat.shape[0] != n_in:
            raise HwpruneError(
                f"{self.where(node)}: weight shape {mat.shape} does not match {n_in} inputs"
            )
        rows = []
        for j in range(mat.shape[1]):
            col = mat[:, j]
            nz = np.flatnonzero(col)
            rows.append(Row(0, tuple(int(c) for c in nz), tuple(int(col[c]) for c in nz)))
        op = Dense(self.fresh("dense"), (x.op,), n_in, tuple(rows), w.exp)
        self.ops.append(op)
        return _Dyn(op.name, x.exp + w.exp)

    def _add_bias(self, node, acc: _Dyn, b: _Const) -> None:
        """Fold a constant bias into the Dense producing ``acc``, exactly or not at all."""
        op = self.ops[-1]
        if not (isinstance(op, Dense) and op.name == acc.op) or acc.relu:
            raise HwpruneError(
                f"{self.where(node)}: only a bias directly after Gemm/MatMul is supported"
            )
        raw = np.asarray(b.raw, dtype=np.float64).reshape(-1)
        if raw.size == 1:
            raw = np.full(op.n_out, raw[0])
        if raw.size != op.n_out:
            raise HwpruneError(
                f"{self.where(node)}: bias has {raw.size} values for {op.n_out} outputs"
            )
        ints = raw / 2.0**acc.exp  # exact in float64: scales are powers of two
        if b.ints is not None:
            ints = b.ints.reshape(-1).astype(np.float64) * 2.0 ** (b.exp - acc.exp)
        if not np.all(ints == np.round(ints)):
            raise HwpruneError(
                f"{self.where(node)}: bias is not on the accumulator grid 2**{acc.exp}; quantize "
                "it with the input scale times the weight scale (Brevitas bias_quant=Int32Bias)"
            )
        rows = tuple(replace(r, bias=r.bias + int(v)) for r, v in zip(op.rows, ints))
        self.ops[-1] = replace(op, rows=rows)

    def gemm(self, node) -> None:
        a = _attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) not in (0.0, 1.0):
            raise HwpruneError(
                f"{self.where(node)}: only Gemm with transA=0, alpha=1, beta=1 is supported"
            )
        x = self.value(node.input[0], node)
        w = self.get(node.input[1])
        if not isinstance(w, _Const):
            raise HwpruneError(f"{self.where(node)}: weights must be constant")
        acc = self._dense(node, x, w, transposed=bool(a.get("transB", 0)))
        if len(node.input) > 2 and node.input[2] and a.get("beta", 1.0) != 0.0:
            b = self.get(node.input[2])
            if not isinstance(b, _Const):
                raise HwpruneError(f"{self.where(node)}: bias must be constant")
            self._add_bias(node, acc, b)
        self.env[node.output[0]] = acc

    def matmul(self, node) -> None:
        x = self.value(node.input[0], node)
        w = self.get(node.input[1])
        if not isinstance(w, _Const):
            raise HwpruneError(f"{self.where(node)}: only a constant right-hand side is supported")
        self.env[node.output[0]] = self._dense(node, x, w, transposed=False)

    def add(self, node) -> None:
        lhs, rhs = (self.get(n) for n in node.input)
        if isinstance(lhs, _Const):
            lhs, rhs = rhs, lhs
        if not (isinstance(lhs, _Dyn) and isinstance(rhs, _Const)):
            raise HwpruneError(f"{self.where(node)}: only adding a constant bias is supported yet")
        self._add_bias(node, lhs, rhs)
        self.env[node.output[0]] = lhs

    def relu(self, node) -> None:
        v = self.get(node.input[0])
        if not isinstance(v, _Dyn):
            raise HwpruneError(f"{self.where(node)}: Relu of a constant is not supported")
        self.env[node.output[0]] = _Dyn(v.op, v.exp, relu=True)

    def identity(self, node) -> None:
        self.env[node.output[0]] = self.get(node.input[0])

    HANDLERS = {
        "Quant": quant,
        "Gemm": gemm,
        "MatMul": matmul,
        "Add": add,
        "Relu": relu,
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
        for node in nodes:
            self.HANDLERS[node.op_type](self, node)
        outs = [o.name for o in self.model.graph.output]
        if len(outs) != 1:
            raise HwpruneError(
                f"model has {len(outs)} outputs; only single-output models are supported"
            )
        out = self.value(outs[0], nodes[-1])
        g = Graph(
            tuple(self.ops),
            (out.op,),
            {"input_name": self.graph_input_name(), "output_name": outs[0], "output_exp": out.exp},
        )
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
