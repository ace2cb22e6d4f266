"""A stream stage's Dense kernel shared over R cycles (``--reuse-factor R``, hls4ml's
meaning: each multiplier is used R times, once per cycle).

A stage with reuse factor R takes one grid position per R cycles (``hw.stream.timing``), so
its kernel may spend those R cycles on one window. Each row's nonzero terms (the IR stores
nothing else: zero weights stay absent) are dealt into ``ceil(terms / R)`` multiplier slots;
slot j of a row computes, in phase p = 0 .. R-1, term ``j * R + p``: the window element it
reads is chosen by a mux on the phase and its weight by a constant table. A phase with no
term left multiplies by 0. Per row, the slots' products are summed each cycle into an
accumulator (loaded at phase 0, added to after); at phase R-1 the row's sum plus its bias,
and the fused Requant's clip and shift, go to the output register, which the stage's next
layer reads one cycle later. The layer therefore takes R cycles from the window to its
output where the unshared kernel takes its register banks'.

Exactness: every sum is formed modulo 2^W with W the bits of the widest prefix sum a row can
hold (``SharedRow.acc``); the value each register keeps lies in that range, so the
wrap-around never shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwprune.ir.graph import Dense, Graph, IntRange, Requant, Value

Term = tuple[int, int]  # (input column, weight)


@dataclass(frozen=True)
class SharedRow:
    """One output of a shared Dense: ``slots[j][p]`` the term slot j multiplies in phase p
    (None: no term, the slot's product is 0), the bias, the range of the finished sum
    (``total``, bias included) and the hull of every value the accumulator or the sum takes
    (``acc``)."""

    slots: tuple[tuple[Term | None, ...], ...]
    bias: int
    total: IntRange
    acc: IntRange

    @property
    def n_terms(self) -> int:
        return sum(1 for s in self.slots for t in s if t is not None)


@dataclass(frozen=True)
class SharedDense:
    """A Dense layer of a stage kernel shared over ``reuse`` cycles, with the Requant fused
    after it (or None)."""

    op: str
    reuse: int
    rows: tuple[SharedRow, ...]
    fused: Requant | None

    @property
    def multipliers(self) -> int:
        return sum(len(r.slots) for r in self.rows)

    @property
    def n_terms(self) -> int:
        return sum(r.n_terms for r in self.rows)


def share(op: Dense, x: Value, reuse: int, fused: Requant | None) -> SharedDense:
    """``op`` (reading ``x``) dealt into slots of ``reuse`` phases, as the module docstring
    says."""
    rows = []
    for row in op.rows:
        terms = list(zip(row.cols, row.weights, strict=True))
        n_slots = math.ceil(len(terms) / reuse)
        slots = tuple(
            tuple(
                terms[j * reuse + p] if j * reuse + p < len(terms) else None for p in range(reuse)
            )
            for j in range(n_slots)
        )
        acc = IntRange(0, 0)
        hull = acc
        for p in range(reuse):
            for s in slots:
                if s[p] is not None:
                    c, w = s[p]
                    acc = acc + x.ranges[c].scaled(w)
            hull = hull.union(acc)
        total = acc + IntRange(row.bias, row.bias)
        rows.append(SharedRow(slots, row.bias, total, hull.union(total)))
    return SharedDense(op.name, reuse, tuple(rows), fused)


def reuse_of(g: Graph) -> int:
    """The graph's reuse factor (compile's ``--reuse-factor``, ``meta["reuse_factor"]``)."""
    return int(g.meta.get("reuse_factor", 1))


def is_shared(g: Graph, op: object) -> bool:
    """Whether layer ``op`` of ``g`` is built shared over R cycles: every Dense at R > 1."""
    return isinstance(op, Dense) and reuse_of(g) > 1


def input_hold(g: Graph) -> int:
    """Cycles the plain top spends registering its input before the first layer: 1 at R > 1
    (the shared layers read their input for R cycles; the sender holds it for one)."""
    return 1 if reuse_of(g) > 1 else 0


def shared_layer(g: Graph, op: Dense) -> SharedDense:
    """Dense ``op`` of ``g`` shared at the graph's reuse factor, its fusable Requant fused."""
    from hwprune.hw.schedule import fusable_requant

    return share(op, g.values[op.inputs[0]], reuse_of(g), fusable_requant(g, op))


def shared_dense(k: Graph) -> Dense | None:
    """The Dense of stage kernel ``k`` that is shared (None at R = 1 or for a pooling)."""
    dense = k.dense_ops()
    return dense[0] if dense and reuse_of(k) > 1 else None


def layer_cycles(g: Graph, op: str, cycles: int) -> int:
    """Cycles of the layer starting at ``op`` whose unshared pipeline takes ``cycles``: R
    when it is shared."""
    return reuse_of(g) if is_shared(g, g.op(op)) else cycles


def kernel_cycles(g: Graph) -> int:
    """Cycles from the input of chain graph ``g`` (a stage kernel's window, a head's vector,
    a whole unrolled design less its input register) to its output: its layers' register
    banks, a shared Dense (and its fused Requant) counting R."""
    from hwprune.hw.schedule import schedule

    return sum(layer_cycles(g, ls.op, ls.cycles) for ls in schedule(g))
