"""The simulation harness: a Verilog module around the plain top that streams vectors from a
file and writes every layer's results to files, so that the simulator runs a whole vector set
at its own speed, with no Python in the loop.

``{top}_bench`` (written to ``rtl/tb/``, outside the synthesizable sources) has three ports:
``clk`` (driven by cocotb's clock), ``start`` and ``done``. Built with ``OWN_CLOCK`` defined
(Icarus: ``rtl.run_rtl`` does), it runs its own clock instead and ``clk`` is unused: cocotb's
clock is a callback per edge. On the first falling edge with ``start`` high it opens its
files in the simulator's working folder; then, one falling edge per cycle:

    hwprune_in.hex          read: one line per cycle, "<valid> <hex in_data>" (a line with
                            valid 0 is a bubble: in_valid low, random data)
    hwprune_out.hex         written: "<hex cycle>" (32 bits) for every cycle out_valid is high
                            (the data is the last layer's register, in its own file)
    hwprune_layer<k>.hex    written: "<hex>" of layer k's output register for every vector,
                            on the cycle that vector is in it (``Layer.end_cycle`` after it
                            was driven)

Cycle 0 is the falling edge that reads the first input line, so a vector's drive cycle is its
line number. ``rst`` is held for ``RESET_CYCLES`` falling edges before; after the last line
the harness drains the pipeline (``LATENCY + 1`` more cycles), closes the files and raises
``done``. Only constructs both Icarus and Verilator (without ``--timing``) accept: one
clocked always block, file tasks, hierarchical reads of the top's layer wires.
"""

from __future__ import annotations

from hwprune.codegen.verilog import Layer, top_layers
from hwprune.ir.graph import Graph
from hwprune.resources import banner

OWN_CLOCK = "HWPRUNE_OWN_CLOCK"  # the define under which the harness runs its own clock

RESET_CYCLES = 3
IN_FILE = "hwprune_in.hex"
OUT_FILE = "hwprune_out.hex"


def layer_file(k: int) -> str:
    return f"hwprune_layer{k}.hex"


def bench_name(top: str) -> str:
    return f"{top}_bench"


def emit_harness(g: Graph, top: str = "hwprune_top") -> dict[str, str]:
    """``{"tb/{top}_bench.v": text}`` for the plain top ``emit_verilog(g, top)``."""
    lays = top_layers(g, top)
    (inp,) = g.inputs
    xv, yv = g.values[inp.name], g.values[g.outputs[0]]
    w_in, w_out = xv.size * xv.range.bits, yv.size * yv.range.bits
    latency = lays[-1].end_cycle
    hist = max(lay.end_cycle for lay in lays)
    name = bench_name(top)
    files = [(k, lay, _width(g, lay)) for k, lay in enumerate(lays)]
    lines = [
        f"// {name}: streams the vectors of {IN_FILE} through {top} and writes every layer's",
        "// results (hwprune/codegen/harness.py says the file formats). Simulation only.",
        f"module {name} (",
        "    // public: cocotb's only access (Verilator keeps everything else private)",
        "    input wire clk /* verilator public_flat_rw */,",
        "    input wire start /* verilator public_flat_rw */,",
        "    output reg done /* verilator public_flat_rw */",
        ");",
        f"    localparam integer LATENCY = {latency};",
        f"    localparam integer RESET_CYCLES = {RESET_CYCLES};",
        "    reg rst;",
        "    reg in_valid;",
        f"    reg [{w_in - 1}:0] in_data;",
        "    wire out_valid;",
        f"    wire [{w_out - 1}:0] out_data;",
        f"`ifdef {OWN_CLOCK}",
        "    reg clk_i = 1'b0;",
        "    always #5 clk_i = ~clk_i;",
        "`else",
        "    wire clk_i = clk;",
        "`endif",
        f"    {top} u_top (",
        "        .clk(clk_i), .rst(rst), .in_valid(in_valid), .in_data(in_data),",
        "        .out_valid(out_valid), .out_data(out_data)",
        "    );",
        "    // vh[k]: in_valid as driven k + 1 falling edges ago (vh[0] is the current one)",
        f"    reg [{hist - 1}:0] hist;",
        f"    wire [{hist}:0] vh = {{hist, in_valid}};",
        "    reg v_in;",
        f"    reg [{w_in - 1}:0] d_in;",
        "    integer phase, count, got, f_in, f_out;",
        "    reg [31:0] cycle;",
        *(f"    integer f_l{k};" for k, _, _ in files),
        "    initial begin",
        "        phase = 0;",
        "        done = 1'b0;",
        "        rst = 1'b1;",
        "        in_valid = 1'b0;",
        f"        in_data = {w_in}'d0;",
        f"        hist = {hist}'d0;",
        "    end",
        "    always @(negedge clk_i) begin",
        "        if (phase == 0) begin  // wait for start, open the files",
        "            if (start) begin",
        f'                f_in = $fopen("{IN_FILE}", "r");',
        f'                f_out = $fopen("{OUT_FILE}", "w");',
        *(f'                f_l{k} = $fopen("{layer_file(k)}", "w");' for k, _, _ in files),
        "                count = 0;",
        "                phase = 1;",
        "            end",
        "        end else if (phase == 1) begin  // reset",
        "            count = count + 1;",
        "            if (count == RESET_CYCLES) begin",
        "                rst <= 1'b0;",
        "                cycle = 0;",
        "                phase = 2;",
        "            end",
        "        end else if (phase == 2 || phase == 3) begin  // run, then drain",
        "            if (out_valid) begin",
        '                $fwrite(f_out, "%h\\n", cycle);',
        "            end",
        *(
            line
            for k, lay, _ in files
            for line in (
                f"            if (vh[{lay.end_cycle - 1}]) begin",
                f'                $fwrite(f_l{k}, "%h\\n", u_top.{lay.signal});',
                "            end",
            )
        ),
        f"            hist <= vh[{hist - 1}:0];",
        "            if (phase == 2) begin",
        '                got = $fscanf(f_in, "%h %h\\n", v_in, d_in);',
        "                if (got == 2) begin",
        "                    in_valid <= v_in;",
        "                    in_data <= d_in;",
        "                end else begin",
        "                    in_valid <= 1'b0;",
        "                    count = 0;",
        "                    phase = 3;",
        "                end",
        "            end else begin",
        "                count = count + 1;",
        "                if (count > LATENCY) begin",
        "                    $fclose(f_in);",
        "                    $fclose(f_out);",
        *(f"                    $fclose(f_l{k});" for k, _, _ in files),
        "                    done <= 1'b1;",
        "                    phase = 4;",
        "                end",
        "            end",
        "            if (cycle[11:0] == 12'd0) begin  // progress: readable while it runs",
        "                $fflush(f_out);",
        "            end",
        "            cycle = cycle + 1;",
        "        end",
        "    end",
        "endmodule",
    ]
    text = (
        banner("//")
        + "`timescale 1ns / 1ps\n`default_nettype none\n\n"
        + "\n".join(lines)
        + "\n\n`default_nettype wire\n"
    )
    return {f"tb/{name}.v": text}


def _width(g: Graph, lay: Layer) -> int:
    v = g.values[lay.value]
    return v.size * v.range.bits
