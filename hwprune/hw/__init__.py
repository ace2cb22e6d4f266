"""Lowering: IR layers become one netlist of constants, constant products, adders and
registers with exact ranges and pipeline stages. The Verilog emitter writes the netlist and
the estimator costs it; neither walks the IR's arithmetic again.

    csd.py          canonical signed digits (the one place)
    netlist.py      the nodes, a kernel's netlist of a Dense, a whole layer's netlist
    tree.py         balanced trees with register banks (mac, Max, Threshold)
    mac.py          the ``mac`` and ``mac-dsp`` kernels
    adder_graph.py  the ``adder-graph`` kernel (alkaid's constant-matrix solver)
    pipeline.py     register banks for a netlist given by adder levels (adder-graph)
    kernels.py      kernel name -> lowering of a Dense (KERNELS, lower_dense)
    layers.py       op kind -> lowering of a whole layer (LOWERINGS, lower_layer)
    schedule.py     the pipeline: register banks and latency of every layer
"""
