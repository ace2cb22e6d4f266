"""hwprune's integer intermediate representation.

A graph is an immutable, topologically ordered tuple of ops. Every op produces one vector
value whose elements are integers with an exact range; the real number an element stands for
is ``integer * 2**exp``. Bit widths are never stored: they are derived from ranges, so nothing
can overflow. A Dense row stores only its nonzero terms.

Op kinds are classes registered in ``OP_KINDS``; ``verify`` checks a graph's invariants and is
run after every pass in the tests.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from hwprune.errors import HwpruneError

# Accumulators are simulated in int64 by the golden interpreter; keep a margin for products.
MAX_BITS = 62


class cached_bits:
    """A lazily computed attribute stored in the instance's ``__dict__`` on first read (as
    functools.cached_property, without the lock Python 3.11's takes on every first read: the
    estimator reads thousands of fresh ranges' widths)."""

    def __init__(self, fn: Callable[[Any], int]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


@dataclass(frozen=True, init=False)
class IntRange:
    """A closed integer interval [lo, hi]."""

    lo: int
    hi: int

    # Written out: a frozen dataclass's own __init__ sets each field through
    # object.__setattr__, and lowering and costing a 16-64-32-32-5 MLP makes 13,000 ranges.
    # Still frozen: assignment raises FrozenInstanceError.
    def __init__(self, lo: int, hi: int) -> None:
        if lo > hi:
            raise ValueError(f"empty range [{lo}, {hi}]")
        d = self.__dict__
        d["lo"], d["hi"] = lo, hi

    @property
    def signed(self) -> bool:
        return self.lo < 0

    # Cached: the estimator reads it for every netlist node on every fabric (a frozen
    # dataclass keeps no slots, so the width can be stored in the instance's __dict__).
    @cached_bits
    def bits(self) -> int:
        """Width of the smallest two's-complement (signed) or plain binary type holding it."""
        lo, hi = self.lo, self.hi
        if lo < 0:  # hi may be negative too: only its magnitude above 0 needs bits
            return 1 + max((-lo - 1).bit_length(), max(hi, 0).bit_length())
        return max(1, hi.bit_length())

    def union(self, other: IntRange) -> IntRange:
        return IntRange(min(self.lo, other.lo), max(self.hi, other.hi))

    def scaled(self, w: int) -> IntRange:
        """The range of w * x for x in self."""
        a, b = w * self.lo, w * self.hi
        return IntRange(min(a, b), max(a, b))

    def __add__(self, other: IntRange) -> IntRange:
        return IntRange(self.lo + other.lo, self.hi + other.hi)


@dataclass(frozen=True)
class Value:
    """The vector an op produces: one exact range per element and a power-of-two scale."""

    ranges: tuple[IntRange, ...]
    exp: int

    @property
    def size(self) -> int:
        return len(self.ranges)

    @property
    def range(self) -> IntRange:
        """The union of all element ranges: what one shared bus type must hold."""
        out = self.ranges[0]
        for r in self.ranges[1:]:
            out = out.union(r)
        return out


class Rounding(enum.Enum):
    """How a right shift drops bits. FLOOR is truncation; HALF_EVEN is round-half-to-even."""

    FLOOR = "floor"
    HALF_EVEN = "half_even"


@dataclass(frozen=True)
class Op:
    """Base of all op kinds: a name (unique in the graph) and the names of its inputs."""

    name: str
    inputs: tuple[str, ...]

    def infer(self, args: tuple[Value, ...]) -> Value:
        """The output value given the input values."""
        raise NotImplementedError


@dataclass(frozen=True)
class Input(Op):
    """A graph input: ``size`` integers in ``range``, standing for ``int * 2**exp``."""

    size: int
    range: IntRange
    exp: int

    def infer(self, args: tuple[Value, ...]) -> Value:
        return Value((self.range,) * self.size, self.exp)


@dataclass(frozen=True)
class Row:
    """One Dense output neuron: an integer bias and its nonzero (column, weight) terms."""

    bias: int
    cols: tuple[int, ...]
    weights: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.cols) != len(self.weights):
            raise ValueError("cols and weights differ in length")


@dataclass(frozen=True)
class Window:
    """Where a layer's elements sit on a map, for a layer that slides a window over one: a
    convolution (a Dense), a pooling (a Max, or an average pooling's Dense).

    The input is a (C, H, W) map, the output (F, OH, OW); ``kernel``, ``strides``,
    ``dilations`` are (rows, columns) and ``pads`` (top, left, bottom, right), as ONNX has
    them (a 1-D layer is one row: H = 1). ``groups`` splits the channels as ONNX Conv's
    group does (a pooling is depthwise: groups = C = F). ``in_index[(c * H + y) * W + x]`` is
    the input element at (c, y, x) and ``out_index[(f * OH + y) * OW + x]`` the output element
    (row, or window) at (f, y, x); -1 where the passes removed the element (a constant folded
    into its readers, or one nothing reads). The rows themselves stay the truth: the window
    only says where they sit, and the streaming lowering checks every row against it.
    ``consts`` are (input position, value) of the input elements folded into the rows'
    biases as constants (``passes.fold_constant_inputs``).
    """

    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    groups: int
    in_index: tuple[int, ...]
    out_index: tuple[int, ...]
    consts: tuple[tuple[int, int], ...] = ()

    def renumbered(self, src: dict[int, int], dst: dict[int, int]) -> Window:
        """The window after the passes renumbered its input (``src``, old -> new) and its
        output elements (``dst``); an element missing from a map is gone (-1)."""
        return replace(
            self,
            in_index=tuple(src.get(i, -1) if i >= 0 else -1 for i in self.in_index),
            out_index=tuple(dst.get(i, -1) if i >= 0 else -1 for i in self.out_index),
        )

    def to_dict(self) -> dict:
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in _fields(self).items()}
        d["consts"] = [list(kv) for kv in self.consts]
        return d

    def with_consts(self, known: dict[int, int]) -> Window:
        """The window after the input elements ``known`` (element -> value) were folded."""
        new = {q: known[e] for q, e in enumerate(self.in_index) if e in known}
        if not new:
            return self
        return replace(self, consts=tuple(sorted({**dict(self.consts), **new}.items())))

    @classmethod
    def from_dict(cls, d: dict) -> Window:
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**{**d, "consts": tuple(tuple(kv) for kv in d.get("consts", ()))})


def _fields(obj) -> dict:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}


@dataclass(frozen=True)
class Dense(Op):
    """y[i] = bias[i] + sum(w * x[col]) over the row's terms; output exp = input exp + w_exp.

    The bias is already on the accumulator's scale (2**(input exp + w_exp)). ``window`` says
    where the rows sit on a map when the Dense is a convolution or an average pooling.
    """

    n_in: int
    rows: tuple[Row, ...]
    w_exp: int
    window: Window | None = None

    def infer(self, args: tuple[Value, ...]) -> Value:
        (x,) = args
        ranges = []
        xr = x.ranges
        for row in self.rows:
            # The bias plus each product's range (IntRange.scaled, summed), in plain ints.
            lo = hi = row.bias
            for c, w in zip(row.cols, row.weights):
                r = xr[c]
                if w >= 0:
                    lo, hi = lo + w * r.lo, hi + w * r.hi
                else:
                    lo, hi = lo + w * r.hi, hi + w * r.lo
            ranges.append(IntRange(lo, hi))
        return Value(tuple(ranges), x.exp + self.w_exp)

    @property
    def n_out(self) -> int:
        return len(self.rows)

    @property
    def n_terms(self) -> int:
        return sum(len(r.cols) for r in self.rows)


def shift_round(v: int, shift: int, rounding: Rounding) -> int:
    """Exact integer v * 2**-shift rounded as asked (Python ints: no overflow)."""
    if shift <= 0:
        return v << -shift
    q = v >> shift  # floor, also for negative v
    if rounding is Rounding.HALF_EVEN:
        rem = v - (q << shift)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and q & 1):
            q += 1
    return q


@dataclass(frozen=True)
class Requant(Op):
    """y = clip(round(x * 2**-shift), lo, hi), elementwise; output exp = input exp + shift.

    A quantized ReLU is the case lo = 0: rounding is monotonic, so clipping at 0 after the
    shift equals applying the ReLU first.
    """

    shift: int
    lo: int
    hi: int
    rounding: Rounding = Rounding.FLOOR

    def infer(self, args: tuple[Value, ...]) -> Value:
        (x,) = args
        ranges = []
        for r in x.ranges:
            a = min(max(shift_round(r.lo, self.shift, self.rounding), self.lo), self.hi)
            b = min(max(shift_round(r.hi, self.shift, self.rounding), self.lo), self.hi)
            ranges.append(IntRange(a, b))
        return Value(tuple(ranges), x.exp + self.shift)


@dataclass(frozen=True)
class Max(Op):
    """y[i] = max(x[j] for j in groups[i]): max pooling, with the window of each output listed
    explicitly (the importer lowers any MaxPool geometry to this); output exp = input exp."""

    groups: tuple[tuple[int, ...], ...]
    window: Window | None = None

    def infer(self, args: tuple[Value, ...]) -> Value:
        (x,) = args
        ranges = []
        for grp in self.groups:
            ranges.append(
                IntRange(max(x.ranges[j].lo for j in grp), max(x.ranges[j].hi for j in grp))
            )
        return Value(tuple(ranges), x.exp)


@dataclass(frozen=True)
class Threshold(Op):
    """y[i] = base + step * #{t in thresholds[i] : x[i] >= t}, elementwise; output exp is
    ``exp`` (the thresholds absorb every scale, so it does not follow from the input).

    A bipolar (sign) activation is thresholds ((0,), ...), base -1, step 2: y = +1 if x >= 0
    else -1, as qonnx's BipolarQuant. FINN-style multi-thresholds (BatchNorm + float scale +
    activation quantizer folded into integer thresholds) are the general case. Each element's
    thresholds are sorted ascending, so the count is monotonic in x.
    """

    thresholds: tuple[tuple[int, ...], ...]
    base: int
    step: int
    exp: int

    def infer(self, args: tuple[Value, ...]) -> Value:
        (x,) = args
        ranges = []
        for r, ts in zip(x.ranges, self.thresholds):
            lo_n = sum(1 for t in ts if r.lo >= t)  # fewest thresholds any x in r passes
            hi_n = sum(1 for t in ts if r.hi >= t)
            ranges.append(IntRange(self.base + self.step * lo_n, self.base + self.step * hi_n))
        return Value(tuple(ranges), self.exp)


# The table of op kinds: JSON tag -> class. Every emitter, cost model and the golden
# interpreter has a table keyed the same way; a test checks they are complete.
OP_KINDS: dict[str, type[Op]] = {
    "input": Input,
    "dense": Dense,
    "requant": Requant,
    "max": Max,
    "threshold": Threshold,
}
KIND_OF: dict[type[Op], str] = {cls: tag for tag, cls in OP_KINDS.items()}


@dataclass(frozen=True)
class HostInput:
    """What the host computes before the hardware. The IR input's integers are the model's
    tensor ``tensor`` divided by ``scale`` (one float, or one per element; exactly: the
    tensor is read from qonnx execution
    of the model on the host's own inputs). ``input_type`` is the stated precision (hls4ml
    spelling, e.g. ``fixed<16,6>``) the host quantizes a float graph input to, when the model
    has no input quantizer; ``how`` says in words what the host does (for the manifest)."""

    tensor: str
    scale: float | tuple[float, ...]
    input_type: str | None = None
    how: str = ""


@dataclass(frozen=True)
class HostOutput:
    """What the host computes after the hardware. The output integers k are the model's
    tensor ``tensor`` = k * scale + offset (``scale``: one float, or one per element;
    ``offset``: a last layer's off-grid float bias, per element, or None); the ``tail`` nodes
    (element-wise, by constants; names in the cleaned model) map that tensor on; ``final`` is
    the node of a final Softmax, LogSoftmax or ArgMax (``final_op``), which the host takes as
    argmax of the integers (all three are monotonic in the logits)."""

    tensor: str
    scale: float | tuple[float, ...]
    tail: tuple[str, ...] = ()
    offset: tuple[float, ...] | None = None
    final: str | None = None
    final_op: str | None = None


def _host_to_dict(h) -> dict | None:
    if h is None:
        return None
    d = {k: getattr(h, k) for k in h.__dataclass_fields__}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _host_from_dict(cls, d: dict | None):
    if d is None:
        return None
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class Graph:
    """A topologically ordered tuple of ops and the names of the graph outputs.

    ``host_input`` / ``host_output`` are the contract with the host around the hardware
    (None: the hardware reads and writes the model's own integers directly)."""

    ops: tuple[Op, ...]
    outputs: tuple[str, ...]
    meta: dict = field(default_factory=dict, compare=False, hash=False)
    host_input: HostInput | None = field(default=None, compare=False, hash=False)
    host_output: HostOutput | None = field(default=None, compare=False, hash=False)

    @cached_property
    def values(self) -> dict[str, Value]:
        """Every op's output value, inferred in order."""
        vals: dict[str, Value] = {}
        for op in self.ops:
            vals[op.name] = op.infer(tuple(vals[i] for i in op.inputs))
        return vals

    @property
    def inputs(self) -> tuple[Input, ...]:
        return tuple(op for op in self.ops if isinstance(op, Input))

    def op(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(name)

    def consumers(self, name: str) -> tuple[Op, ...]:
        return tuple(op for op in self.ops if name in op.inputs)

    def dense_ops(self) -> tuple[Dense, ...]:
        return tuple(op for op in self.ops if isinstance(op, Dense))


def verify(g: Graph) -> None:
    """Check a graph's invariants; raise ValueError naming the first broken one.

    Invariants: unique names; inputs defined before use; one input per non-Input op and
    sizes that agree; every Dense term in range, columns strictly increasing, weight nonzero;
    every value fits the golden interpreter's int64 (MAX_BITS); outputs exist.
    """
    seen: set[str] = set()
    for op in g.ops:
        if op.name in seen:
            raise ValueError(f"duplicate op name {op.name!r}")
        for i in op.inputs:
            if i not in seen:
                raise ValueError(f"{op.name}: input {i!r} used before it is defined")
        seen.add(op.name)
        if not isinstance(op, Input) and len(op.inputs) != 1:
            raise ValueError(f"{op.name}: expects one input, has {len(op.inputs)}")
        if isinstance(op, Dense):
            n_in = g.values[op.inputs[0]].size
            if op.n_in != n_in:
                raise ValueError(f"{op.name}: n_in {op.n_in} but input has {n_in}")
            for k, row in enumerate(op.rows):
                if any(w == 0 for w in row.weights):
                    raise ValueError(f"{op.name}: row {k} stores a zero weight")
                if list(row.cols) != sorted(set(row.cols)):
                    raise ValueError(f"{op.name}: row {k} columns not strictly increasing")
                if row.cols and not (0 <= row.cols[0] and row.cols[-1] < n_in):
                    raise ValueError(f"{op.name}: row {k} column out of range")
        if isinstance(op, (Dense, Max)) and op.window is not None:
            n_out = op.n_out if isinstance(op, Dense) else len(op.groups)
            _check_window(op.name, op.window, g.values[op.inputs[0]].size, n_out)
        if isinstance(op, Requant) and op.lo > op.hi:
            raise ValueError(f"{op.name}: clip range [{op.lo}, {op.hi}] is empty")
        if isinstance(op, Max):
            n_in = g.values[op.inputs[0]].size
            for k, grp in enumerate(op.groups):
                if not grp or min(grp) < 0 or max(grp) >= n_in:
                    raise ValueError(f"{op.name}: group {k} is empty or out of range")
        if isinstance(op, Threshold):
            if len(op.thresholds) != g.values[op.inputs[0]].size:
                raise ValueError(f"{op.name}: one threshold list per input element is needed")
            if op.step < 1:
                raise ValueError(f"{op.name}: step {op.step} must be 1 or more")
            for k, ts in enumerate(op.thresholds):
                if list(ts) != sorted(ts):
                    raise ValueError(f"{op.name}: thresholds of element {k} are not ascending")
    for name, v in g.values.items():
        if v.size == 0:
            raise ValueError(f"{name}: empty value")
        if v.range.bits > MAX_BITS:
            raise ValueError(f"{name}: needs {v.range.bits} bits, more than {MAX_BITS}")
    for o in g.outputs:
        if o not in seen:
            raise ValueError(f"output {o!r} is not an op")


def _check_window(name: str, w: Window, n_in: int, n_out: int) -> None:
    """A window places every output element once and names input elements that exist."""
    c, h, wd = w.in_shape
    f, oh, ow = w.out_shape
    if len(w.in_index) != c * h * wd or len(w.out_index) != f * oh * ow:
        raise ValueError(f"{name}: window index lengths do not match its map shapes")
    if c % w.groups or f % w.groups:
        raise ValueError(f"{name}: {w.groups} groups do not divide {c} -> {f} channels")
    placed = sorted(i for i in w.out_index if i >= 0)
    if placed != list(range(n_out)):
        raise ValueError(f"{name}: window does not place each of its {n_out} outputs once")
    read = [i for i in w.in_index if i >= 0]
    if len(set(read)) != len(read) or any(i >= n_in for i in read):
        raise ValueError(f"{name}: window input index repeats or is out of range")


# --- JSON (ir.json) -----------------------------------------------------------------------

# 2: the host boundary moved from meta to typed fields (host_input, host_output).
FORMAT_VERSION = 2


def _op_to_dict(op: Op) -> dict:
    d: dict = {"kind": KIND_OF[type(op)], "name": op.name, "inputs": list(op.inputs)}
    if isinstance(op, Input):
        d.update(size=op.size, lo=op.range.lo, hi=op.range.hi, exp=op.exp)
    elif isinstance(op, Dense):
        d.update(
            n_in=op.n_in,
            w_exp=op.w_exp,
            rows=[
                {"bias": r.bias, "cols": list(r.cols), "weights": list(r.weights)} for r in op.rows
            ],
        )
        if op.window is not None:
            d["window"] = op.window.to_dict()
    elif isinstance(op, Requant):
        d.update(shift=op.shift, lo=op.lo, hi=op.hi, rounding=op.rounding.value)
    elif isinstance(op, Max):
        d.update(groups=[list(grp) for grp in op.groups])
        if op.window is not None:
            d["window"] = op.window.to_dict()
    elif isinstance(op, Threshold):
        d.update(
            thresholds=[list(ts) for ts in op.thresholds], base=op.base, step=op.step, exp=op.exp
        )
    return d


def _op_from_dict(d: dict) -> Op:
    kind = d["kind"]
    if kind not in OP_KINDS:
        raise HwpruneError(f"ir.json has unknown op kind {kind!r}; known: {sorted(OP_KINDS)}")
    name, inputs = d["name"], tuple(d["inputs"])
    if kind == "input":
        return Input(name, (), size=d["size"], range=IntRange(d["lo"], d["hi"]), exp=d["exp"])
    if kind == "dense":
        rows = tuple(Row(r["bias"], tuple(r["cols"]), tuple(r["weights"])) for r in d["rows"])
        return Dense(name, inputs, d["n_in"], rows, d["w_exp"], _window(d))
    if kind == "max":
        return Max(name, inputs, tuple(tuple(grp) for grp in d["groups"]), _window(d))
    if kind == "threshold":
        ts = tuple(tuple(t) for t in d["thresholds"])
        return Threshold(name, inputs, ts, d["base"], d["step"], d["exp"])
    return Requant(name, inputs, d["shift"], d["lo"], d["hi"], Rounding(d["rounding"]))


def _window(d: dict) -> Window | None:
    return Window.from_dict(d["window"]) if "window" in d else None


def to_json(g: Graph) -> str:
    """Deterministic JSON text of a graph (with each value's derived range, for readers)."""
    doc = {
        "format": FORMAT_VERSION,
        "meta": g.meta,
        "host_input": _host_to_dict(g.host_input),
        "host_output": _host_to_dict(g.host_output),
        "outputs": list(g.outputs),
        "ops": [_op_to_dict(op) for op in g.ops],
        "values": {
            n: {
                "size": v.size,
                "lo": v.range.lo,
                "hi": v.range.hi,
                "bits": v.range.bits,
                "signed": v.range.signed,
                "exp": v.exp,
            }
            for n, v in g.values.items()
        },
    }
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def from_json(text: str) -> Graph:
    """Parse ir.json text written by ``to_json``."""
    doc = json.loads(text)
    if doc.get("format") != FORMAT_VERSION:
        raise HwpruneError(
            f"ir.json format {doc.get('format')} is not {FORMAT_VERSION}; re-run hwprune compile"
        )
    g = Graph(
        tuple(_op_from_dict(d) for d in doc["ops"]),
        tuple(doc["outputs"]),
        doc["meta"],
        _host_from_dict(HostInput, doc.get("host_input")),
        _host_from_dict(HostOutput, doc.get("host_output")),
    )
    verify(g)
    return g
