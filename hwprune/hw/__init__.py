"""Lowering: IR layers become one netlist of constants, constant products, adders and
registers with exact ranges and pipeline stages. The Verilog emitter writes the netlist and
the estimator costs it; neither walks the IR's arithmetic again.

    csd.py       canonical signed digits (the one place)
    netlist.py   the nodes and a layer's netlist
    mac.py       the ``mac`` kernel
    kernels.py   kernel name -> lowering (KERNELS, lower_dense)
    schedule.py  the pipeline: register banks and latency of every layer
"""
