"""Lowering: IR layers become the hardware the Verilog emitter writes and the estimator
costs, with exact ranges and pipeline stages.

    schedule.py  the pipeline: adder trees, register banks, latency
    csd.py       canonical signed digits (the one place)
"""
