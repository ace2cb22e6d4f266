"""The names a configuration or the command line may choose from, in one light module.

Validating a config or parsing the command line must not import torch, cocotb or hls4ml, so
the choices live here; the modules that implement them import their names from here (or, for
registries that hold functions, tests/test_config.py checks each table against its names).
"""

from __future__ import annotations

TOP = "hwprune_top"  # the generated Verilog's top module
HLS_PROJECT = "myproject"  # the hls4ml project name (hls4ml's own default)

# Dense kernels: hwprune.hw.kernels.KERNELS, and auto (per layer, the cheaper by estimate).
KERNELS = ("mac", "mac-dsp", "adder-graph", "auto")
# How convolutions become hardware: unroll (an adder tree per output pixel), stream (one
# kernel per layer fed a pixel per cycle through line buffers: hwprune.hw.stream), auto (by
# the estimate against the board).
CONV_MODES = ("unroll", "stream", "auto")
SIMULATORS = ("icarus", "verilator")  # RTL simulators cocotb drives (hwprune.sim.rtl)
SYNTH_TOOLS = ("yosys",)  # hwprune estimate --synth

DATASETS = ("digits", "fashion-mnist")  # hwprune.train.data.DATASETS
PRUNE_CRITERIA = (  # hwprune.prune.criteria.CRITERIA
    "magnitude",
    "global-magnitude",
    "random",
    "l1-neuron",
    "l2-neuron",
    "l1-channel",
    "l2-channel",
    "mrmr",
)
PRUNE_SCHEDULES = ("one-shot", "iterative", "agp", "constant")  # hwprune.prune.schedules
PRUNE_METHODS = ("standard", "lottery-ticket", "dns")  # hwprune.train.loop.METHODS
TEACHERS = ("none", "dense", "larger")  # hwprune.train.loop.TEACHERS
ROUNDINGS = ("floor", "half_even")
# How data pruning ([data] keep_by) scores training samples: hwprune.train.data_prune.SCORES.
KEEP_BY = ("el2n", "forgetting", "random")
INIT_MASKS = ("keep", "reopen")  # train --init: the checkpoint's zeros stay pruned or reopen
SEARCHES = ("greedy", "rl", "uniform")  # train --fit --search: hwprune.auto.search
