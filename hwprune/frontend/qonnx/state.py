"""The import state: what every handler reads and writes while the graph is walked.

Every ONNX tensor the walk has seen is one of three things in ``ImportState.env``:

- ``Const``: an initializer, or a Quant / BipolarQuant applied to one (weights, biases);
- ``FloatInput``: the float graph input (possibly reshaped or mapped by float nodes that stay
  on the host) before it reaches its quantizer;
- ``Act``: an activation computed by the IR, an integer vector standing for ``int * 2**exp``
  (or, with a float scale, a pending float map of the integers: see ``Act``).

The handlers (one per ONNX op type, ``handlers.HANDLERS``) append IR ops through ``emit``,
which also infers each op's value at once: later handlers need the exact ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import numpy_helper

from hwprune.errors import HwpruneError
from hwprune.frontend.precision import FixedType
from hwprune.frontend.qonnx.names import UserNames
from hwprune.ir.graph import HostInput, Op, Requant, Value, Window


@dataclass
class Act:
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
class Const:
    """A constant tensor: integer values and a power-of-two scale exponent (None: raw float).

    ``scale`` is the quantizer's float scale when it is not a power of two (``exp`` is then 0).
    """

    ints: np.ndarray | None
    exp: int | None
    raw: np.ndarray
    scale: np.ndarray | None = None


@dataclass
class FloatInput:
    """The float graph input, possibly reshaped, before its input quantizer; ``nodes`` is the
    float preprocessing (Mul/Sub/... by constants) that stays on the host."""

    name: str
    shape: tuple[int, ...]
    nodes: tuple = ()


def attrs(node) -> dict:
    """The node's attributes as Python values (bytes decoded)."""
    a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in a.items()}


def size(shape: tuple[int, ...]) -> int:
    """Number of elements of a shape."""
    return int(np.prod(shape, dtype=np.int64))


def windows(
    shape: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    pads: tuple[int, ...],
    dilations: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Flat C-order indices of a (C, *spatial) tensor under every kernel window.

    Returns (C, positions, kernel elements) indices, -1 where the window reads padding, and
    the output's spatial shape. ONNX pads list all begins, then all ends; a dilated kernel
    reads every d-th element of its extent (k - 1) * d + 1.
    """
    nd = len(kernel)
    dil = dilations or (1,) * nd
    # Pad an index tensor, not the data: -1 marks padding, so a Conv drops those terms and a
    # MaxPool leaves them out of its window (ONNX pads MaxPool with -inf, Conv with 0).
    idx = np.arange(size(shape)).reshape(shape)
    widths = [(0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)]
    padded = np.pad(idx, widths, constant_values=-1)
    extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dil))
    win = sliding_window_view(padded, extent, axis=tuple(range(1, nd + 1)))
    win = win[(slice(None),) + tuple(slice(None, None, s) for s in strides)]
    win = win[(Ellipsis,) + tuple(slice(None, None, d) for d in dil)]
    out_sp = tuple(int(d) for d in win.shape[1 : 1 + nd])
    return win.reshape(shape[0], size(out_sp), size(kernel)), out_sp


class ImportState:
    """The walk's state: tensors seen so far, the IR ops emitted and their values."""

    def __init__(self, model, input_type: FixedType | None = None) -> None:
        self.model = model
        # The precision the host quantizes a float graph input to (--input-type), if stated.
        self.input_type = input_type
        self.inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.env: dict[str, Act | Const | FloatInput] = {}
        self.ops: list[Op] = []
        self.vals: dict[str, Value] = {}
        self.layers: dict[str, dict] = {}
        self.graph_inputs = {i.name for i in model.graph.input if i.name not in self.inits}
        self.counter: dict[str, int] = {}
        # Where the IR input's integers come from when the host prepares the model input.
        self.host_input: HostInput | None = None
        # A final Softmax / LogSoftmax / ArgMax, left to the host (see boundary.final).
        self.final_node = None
        # Messages name nodes and tensors as the user's file does, not as cleanup renamed them.
        self.names = UserNames(model.graph)

    def fresh(self, kind: str) -> str:
        """A new IR op name: kind followed by a per-kind counter."""
        k = self.counter.get(kind, 0)
        self.counter[kind] = k + 1
        return f"{kind}{k}"

    def where(self, node) -> str:
        """The node as every message names it: its name and op type in the user's file
        (``names.UserNames.node``), never the name qonnx cleanup gave it."""
        return self.names.node(node)

    def tensor(self, name: str) -> str:
        """A tensor's name in the user's file, for messages (``names.UserNames.tensor``)."""
        return self.names.tensor(name)

    def emit(self, op: Op, shape: tuple[int, ...], exp: int, relu: bool = False) -> Act:
        """Append an op and infer its value now (ranges are needed by later ReLUs)."""
        self.ops.append(op)
        self.vals[op.name] = op.infer(tuple(self.vals[i] for i in op.inputs))
        return Act(op.name, exp, shape, relu)

    def get(self, name: str):
        if name in self.env:
            return self.env[name]
        if name in self.inits:
            raw = self.inits[name]
            return Const(None, None, raw)
        raise HwpruneError(
            f"tensor {self.tensor(name)!r} is used before it is produced; re-export the model"
        )

    def dyn(self, name: str, node) -> Act:
        """A dynamic operand as is (a pending ReLU stays pending).

        The float graph input read without a quantizer becomes the IR input here, if its
        datatype is a small integer one (e.g. BIPOLAR) or its type is stated (--input-type):
        see ``boundary.float_input``.
        """
        from hwprune.frontend.qonnx.boundary import float_input

        v = self.get(name)
        if isinstance(v, FloatInput):
            v = self.env[name] = float_input(self, name, v, node)
        if not isinstance(v, Act):
            raise HwpruneError(
                f"{self.where(node)}: input {self.tensor(name)!r} must be a quantized "
                "activation; put a Quant (e.g. QuantIdentity / QuantReLU) in front of it"
            )
        return v

    def value(self, name: str, node) -> Act:
        """A dynamic operand, with any pending ReLU materialised as a clip at 0.

        A float map (BatchNorm, scaling) must be re-quantized before integer arithmetic.
        """
        v = self.dyn(name, node)
        if v.nodes:
            ops = ", ".join(n.op_type for n in v.nodes)
            raise HwpruneError(
                f"{self.where(node)}: input {self.tensor(name)!r} is a float map ({ops}) of "
                "integers that is not re-quantized; put a Quant (activation quantizer) before "
                "this node"
            )
        if v.relu:
            hi = self.vals[v.op].range.hi
            op = Requant(self.fresh("relu"), (v.op,), 0, 0, max(hi, 0))
            v = replace(self.emit(op, v.shape, v.exp), perm=v.perm)
        return v

    def no_perm(self, d: Act, node) -> None:
        """Refuse a float map / quantizer chain on a transposed activation (its per-channel
        constants would be read in the wrong order)."""
        if d.perm is not None and (d.nodes or node.op_type not in ("Quant", "BipolarQuant")):
            raise HwpruneError(
                f"{self.where(node)}: reads a transposed activation; a Transpose is supported "
                "only before Reshape / Flatten and a layer (Gemm, MatMul, Conv) or pooling"
            )

    def cols(self, d: Act, idx: np.ndarray) -> np.ndarray:
        """IR element indices of logical indices ``idx`` of ``d`` (-1, padding, stays -1)."""
        if d.perm is None:
            return idx
        return np.where(idx >= 0, d.perm[np.maximum(idx, 0)], -1)

    def window(self, x: Act, kernel, strides, pads, dil, groups: int, out_shape) -> Window:
        """Where a sliding-window layer's elements sit (``ir.graph.Window``): the input's
        elements through a pending Transpose, the output in C order; a 1-D layer is one row."""
        nd = len(kernel)

        def two(t) -> tuple[int, int]:
            return (1, *t) if nd == 1 else tuple(t)

        pad = (0, pads[0], 0, pads[1]) if nd == 1 else tuple(pads)
        n_out = size(out_shape)
        return Window(
            (x.shape[0], *two(x.shape[1:])),
            (out_shape[0], *two(out_shape[1:])),
            two(kernel),
            two(strides),
            tuple(int(p) for p in pad),
            two(dil),
            groups,
            tuple(int(i) for i in self.cols(x, np.arange(size(x.shape)))),
            tuple(range(n_out)),
        )

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
                    if not isinstance(c, Const):
                        raise HwpruneError(
                            f"{self.where(n)}: input {self.tensor(i)!r} must be a constant"
                        )
                    out[i] = c.raw
            produced.update(n.output)
        return out

    def floated(self, name: str, d: Act, node) -> Act:
        """``d`` as a float map whose start is tensor ``name`` (int * 2**exp so far)."""
        if not d.exact:
            return d
        if d.relu:  # materialise the clip: the chain then starts at the ReLU's output
            d = self.value(name, node)
        return replace(d, scale=np.full(size(d.shape), 2.0**d.exp), start=name, exp=0)

    def append(self, node, name: str, d: Act) -> Act:
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

    def geometry(self, node, x: Act, kernel: tuple[int, ...]):
        """Strides, pads and dilations of a Conv / pooling node, checked; the spatial rank
        must be 1 or 2. ceil_mode (MaxPool) becomes extra end padding, which a max ignores,
        sized so the window count is the model's output shape."""
        a = attrs(node)
        nd = len(kernel)
        if len(x.shape) - 1 != nd or nd not in (1, 2):
            raise HwpruneError(
                f"{self.where(node)}: input shape {x.shape} with a {nd}-D kernel is not "
                "supported; 1-D (C, L) and 2-D (C, H, W) inputs are"
            )
        dil = tuple(a.get("dilations", [1] * nd))
        if any(d < 1 for d in dil):
            raise HwpruneError(f"{self.where(node)}: dilations {list(dil)} must be 1 or more")
        auto = a.get("auto_pad", "NOTSET")
        if auto not in ("NOTSET", "VALID"):
            raise HwpruneError(
                f"{self.where(node)}: auto_pad {auto} is not supported; use explicit pads"
            )
        strides = tuple(a.get("strides", [1] * nd))
        pads = list(a.get("pads", [0] * 2 * nd)) if auto == "NOTSET" else [0] * 2 * nd
        extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dil))
        for s, k, p0, p1 in zip(x.shape[1:], extent, pads[:nd], pads[nd:]):
            if s + p0 + p1 < k:
                raise HwpruneError(
                    f"{self.where(node)}: kernel {kernel} is larger than the padded input "
                    f"{x.shape[1:]}"
                )
        if a.get("ceil_mode", 0):
            if node.op_type != "MaxPool":
                raise HwpruneError(
                    f"{self.where(node)}: ceil_mode 1 averages partial windows over a count "
                    "that is not a power of two, so it is not exact; use ceil_mode 0"
                )
            out = self.out_shape(node)[1:]
            for i, (n, s, k, o) in enumerate(zip(x.shape[1:], strides, extent, out)):
                need = (o - 1) * s + k - (n + pads[i] + pads[i + nd])
                pads[i + nd] += max(need, 0)
        return strides, tuple(pads), dil
