"""The kernel table: kernel name -> lowering of a Dense layer into a DenseNetlist.

A graph names its kernel in ``meta["kernel"]`` (compile writes it; absent means ``mac``).
A new kernel is one lowering function and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable

from hwprune.errors import HwpruneError
from hwprune.hw.mac import lower_mac
from hwprune.hw.netlist import DenseNetlist
from hwprune.ir.graph import Dense, Graph, Value

# A lowering takes the layer, its input value and the most adder levels per stage.
KERNELS: dict[str, Callable[[Dense, Value, int], DenseNetlist]] = {"mac": lower_mac}


def lower_dense(g: Graph, op: Dense) -> DenseNetlist:
    """The netlist of Dense ``op`` of ``g`` under the graph's kernel."""
    kernel = g.meta.get("kernel", "mac")
    if kernel not in KERNELS:
        raise HwpruneError(f"unknown kernel {kernel!r}; choose one of: {', '.join(KERNELS)}")
    from hwprune.hw.schedule import levels_per_stage

    return KERNELS[kernel](op, g.values[op.inputs[0]], levels_per_stage(g))
