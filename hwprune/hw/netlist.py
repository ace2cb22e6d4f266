"""The lowered form of a layer: named nodes with exact ranges, in emission order.

A node is what the emitted Verilog declares (a wire or a register) or reads (a constant):

    const     an integer constant (a row's bias, or 0 for a row with nothing to add)
    input     x[col], the layer's input element (a wire declared up front for the layer's
              ``inputs``, else where the node stands)
    product   x[col] * value for a constant value != 0, by shift-and-add over its CSD digits
    mult      x[col] * value as one multiplier for a DSP slice (the ``mac-dsp`` kernel)
    add       args[0] + args[1]
    shiftadd  (args[0] << shifts[0]) + (args[1] << shifts[1]), or minus when ``sub``
    shift     args[0] * 2**shifts[0] (a negative shift drops low bits known to be zero)
    reg       a register of args[0], in register bank ``stage`` (banks close pipeline stages)
    max       max(args[0], args[1]): a signed compare and a 2:1 mux
    cmp       args[0] >= value: one bit
    count     args[0] + args[1] over compare bits: a node of a row's popcount
    requant   clip(round(args[0] * 2**-shifts[0]), *clip) with ``rounding`` (a shift, a
              rounding increment, a clip)
    scale     offset + value * args[0]: a constant multiply and add

``tz`` is the number of low bits known to be zero (a product by w has trailing_zeros(w),
a sum the fewer of its operands', a register its source's): the carry chain of an adder
starts above them. The estimator costs exactly these nodes; the emitter writes exactly them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from hwprune.ir.graph import IntRange, Rounding


@dataclass(frozen=True, init=False)
class Node:
    name: str
    kind: str
    range: IntRange
    tz: int = 0
    args: tuple[str, ...] = ()
    col: int = -1  # product: the input element it reads
    value: int = 0  # const: the constant; product: the weight
    row: int = -1  # the output element (row) it belongs to
    stage: int = -1  # reg: the register bank
    shifts: tuple[int, ...] = ()  # shiftadd: (shift of a, shift of b); shift: (k,)
    sub: bool = False  # shiftadd: subtract b
    clip: tuple[int, ...] = ()  # requant: (lo, hi)
    rounding: Rounding | None = None  # requant
    offset: int = 0  # scale: the constant added

    # Written out, with the fields' names and defaults (a test holds them equal): a frozen
    # dataclass's own __init__ sets each of the 14 fields through object.__setattr__, 3x the
    # time, and lowering a 16-64-32-32-5 MLP makes 9,100 nodes. One store per statement:
    # a tuple assignment builds and unpacks a tuple first (15 % slower). Still frozen:
    # assignment raises FrozenInstanceError.
    def __init__(
        self,
        name: str,
        kind: str,
        range: IntRange,
        tz: int = 0,
        args: tuple[str, ...] = (),
        col: int = -1,
        value: int = 0,
        row: int = -1,
        stage: int = -1,
        shifts: tuple[int, ...] = (),
        sub: bool = False,
        clip: tuple[int, ...] = (),
        rounding: Rounding | None = None,
        offset: int = 0,
    ) -> None:
        d = self.__dict__
        d["name"] = name
        d["kind"] = kind
        d["range"] = range
        d["tz"] = tz
        d["args"] = args
        d["col"] = col
        d["value"] = value
        d["row"] = row
        d["stage"] = stage
        d["shifts"] = shifts
        d["sub"] = sub
        d["clip"] = clip
        d["rounding"] = rounding
        d["offset"] = offset


def _by_kind(nodes: tuple[Node, ...]) -> dict[str, tuple[Node, ...]]:
    out: dict[str, list[Node]] = {}
    for n in nodes:
        out.setdefault(n.kind, []).append(n)
    return {k: tuple(v) for k, v in out.items()}


@dataclass(frozen=True)
class DenseNetlist:
    """One Dense layer lowered by a kernel.

    ``tops[i]`` is the node holding row i's sum when the last adder level is done; the
    layer's final register bank takes it (after a fused Requant, which the emitter and the
    estimator handle as they handle a stand-alone one). ``bank_levels[s]`` is the adder level
    register bank s closes; the last is ``depth``, the final bank.
    """

    op: str
    kernel: str
    cols: tuple[int, ...]
    nodes: tuple[Node, ...]
    tops: tuple[str, ...]
    depth: int
    bank_levels: tuple[int, ...]
    solve: str = ""  # how a solver's kernel solved the matrix (whole, split; its bounds)

    @cached_property
    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @cached_property
    def by_kind(self) -> dict[str, tuple[Node, ...]]:
        """The nodes of each kind present, in order."""
        return _by_kind(self.nodes)

    def of_kind(self, kind: str) -> tuple[Node, ...]:
        return self.by_kind.get(kind, ())

    def bank_bits(self, stage: int) -> tuple[int, ...]:
        """Register widths of intermediate bank ``stage``, in emission order."""
        return tuple(n.range.bits for n in self.of_kind("reg") if n.stage == stage)


@dataclass(frozen=True)
class LayerNetlist:
    """One pipelined layer lowered whole (``hw.layers.lower_layer``): what the Verilog emitter
    writes as a module and the estimator costs.

    ``op`` is the layer's first op and ``fused`` the Requant folded into a Dense's last stage.
    ``inputs`` are the input elements read, declared as wires up front, each ``input_range``
    wide when that is set (a Dense reads every element at the width of the whole input) or
    else its own range's. ``outs[i]`` is the node the final register bank takes for output
    element i; ``bank_levels[s]`` is the level register bank s closes, the last one ``depth``.
    """

    op: str
    kind: str
    kernel: str
    fused: str | None
    inputs: tuple[Node, ...]
    input_range: IntRange | None
    nodes: tuple[Node, ...]
    outs: tuple[str, ...]
    depth: int
    bank_levels: tuple[int, ...]

    @cached_property
    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in (*self.inputs, *self.nodes)}

    @cached_property
    def by_kind(self) -> dict[str, tuple[Node, ...]]:
        """The nodes (not inputs) of each kind present, in order."""
        return _by_kind(self.nodes)

    def of_kind(self, kind: str) -> tuple[Node, ...]:
        return self.by_kind.get(kind, ())

    def bank_bits(self, stage: int) -> tuple[int, ...]:
        """Register widths of intermediate bank ``stage``, in emission order."""
        return tuple(n.range.bits for n in self.of_kind("reg") if n.stage == stage)
