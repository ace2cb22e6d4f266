"""The kernel table: kernel name -> lowering of a Dense layer into a DenseNetlist.

A graph names its kernel in ``meta["kernel"]`` (compile writes it; absent means ``mac``), and
``meta["layer_kernels"]`` may name one per layer: compile's ``auto`` writes there, per layer,
the kernel the estimator found cheaper. A new kernel is one lowering function and one entry
here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from hwprune.errors import HwpruneError
from hwprune.hw.adder_graph import lower_adder_graph
from hwprune.hw.mac import lower_mac, lower_mac_dsp
from hwprune.hw.netlist import DenseNetlist
from hwprune.ir.graph import Dense, Graph, Value

# A lowering takes the layer, its input value and the most adder levels per stage.
KERNELS: dict[str, Callable[[Dense, Value, int], DenseNetlist]] = {
    "mac": lower_mac,
    "mac-dsp": lower_mac_dsp,
    "adder-graph": lower_adder_graph,
}


def kernel_of(g: Graph, op: Dense) -> str:
    """The kernel that lowers ``op``: the layer's own choice, else the graph's."""
    return g.meta.get("layer_kernels", {}).get(op.name) or g.meta.get("kernel", "mac")


def lower_dense(g: Graph, op: Dense, kernel: str | None = None) -> DenseNetlist:
    """The netlist of Dense ``op`` of ``g`` under ``kernel`` (default: ``kernel_of``)."""
    kernel = kernel or kernel_of(g, op)
    if kernel not in KERNELS:
        raise HwpruneError(f"unknown kernel {kernel!r}; choose one of: {', '.join(KERNELS)}")
    from hwprune.hw.schedule import levels_per_stage

    return lower_kernel(kernel, op, g.values[op.inputs[0]], levels_per_stage(g))


@functools.lru_cache(maxsize=256)
def lower_kernel(kernel: str, op: Dense, x: Value, per_stage: int) -> DenseNetlist:
    """The netlist ``kernel`` makes of Dense ``op`` reading ``x``, ``per_stage`` levels per
    register bank."""
    # The schedule, the emitter, the estimator and the manifest each ask for a layer's
    # netlist; a solver's answer is computed once per layer (ops and values are immutable).
    return KERNELS[kernel](op, x, per_stage)
