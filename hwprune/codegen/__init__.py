"""Verilog, testbench and manifest from the IR and its netlists."""

from __future__ import annotations

from hwprune.ir.graph import Graph


def rtl_files(g: Graph, top: str) -> dict[str, str]:
    """Every file of rtl/ for compiled graph ``g``: the Verilog (a streaming design when
    ``g`` streams, ``hw.stream.plan``), its harness and its cocotb tests."""
    from hwprune.hw.stream import plan

    p = plan(g)
    if p is None:
        from hwprune.codegen.cocotb_tb import emit_testbench
        from hwprune.codegen.verilog import emit_verilog

        return {**emit_verilog(g, top), **emit_testbench(g, top)}
    from hwprune.codegen.stream import emit_stream_verilog
    from hwprune.codegen.stream_tb import emit_stream_testbench

    return {**emit_stream_verilog(g, p, top), **emit_stream_testbench(g, p, top)}
