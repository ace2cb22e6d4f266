"""The AXI4-Stream top: ``{top}_axis`` around the fixed-latency ``{top}``, for a Vivado block
design or any AXI-Stream fabric (AMBA 4 AXI4-Stream Protocol Specification, ARM IHI 0051A:
a transfer happens on a rising edge where TVALID and TREADY are both high; TVALID must not
wait for TREADY).

One input vector per s_axis beat, one output vector per m_axis beat, in order; a vector's
TLAST comes out with its result. TDATA is the plain top's bus, zero-padded to whole bytes
(the specification's TDATA widths are multiples of 8). Back-pressure: the datapath has no
stall, so every vector it accepts must have a place to land. ``pending`` counts the vectors
accepted and not yet delivered (in the pipeline or in the output FIFO); s_axis_tready is high
while pending < DEPTH, and the FIFO has DEPTH entries, so it never overflows. DEPTH = latency
+ 3 keeps one vector per cycle when m_axis_tready stays high (a vector enters at edge 0, is
in the FIFO after edge latency + 1, leaves at edge latency + 2). aresetn is active low and
synchronous (the AXI convention); it clears pending and the FIFO, and the datapath's valid
chain through ``rst``.
"""

from __future__ import annotations

from hwprune.ir.graph import Graph


def axis_top_name(top: str) -> str:
    return f"{top}_axis"


def byte_width(bits: int) -> int:
    """``bits`` rounded up to whole bytes (at least one)."""
    return max(8, -(-bits // 8) * 8)


def _lit(v: int, width: int) -> str:
    return f"{width}'d{v}"


def emit_axis_top(g: Graph, top: str, latency: int) -> str:
    """The Verilog module ``{top}_axis`` (body only; the caller adds the file header). At
    reuse factor R > 1 the core takes a vector when its ``in_ready`` is high too."""
    from hwprune.hw.reuse import reuse_of

    shared = reuse_of(g) > 1
    (inp,) = g.inputs
    xv, yv = g.values[inp.name], g.values[g.outputs[0]]
    n_in, n_out = xv.size * xv.range.bits, yv.size * yv.range.bits
    w_in, w_out = byte_width(n_in), byte_width(n_out)
    depth = latency + 3
    cw = depth.bit_length()  # holds 0..depth
    pw = max(1, (depth - 1).bit_length())  # holds 0..depth-1
    name = axis_top_name(top)
    lines = [
        f"// {name}: AXI4-Stream around {top} (latency {latency} cycle(s)); one vector per",
        "// beat each way, in order, TLAST kept with its vector; back-pressure is absorbed by",
        f"// a {depth}-entry output FIFO (latency + 3), so s_axis_tready stays high while",
        "// m_axis_tready does.",
        *_ports(name, w_in, w_out),
        f"    reg [{cw - 1}:0] pending;  // accepted, not yet delivered",
        f"    reg [{cw - 1}:0] stored;  // in the FIFO",
        f"    reg [{pw - 1}:0] wr_ptr;",
        f"    reg [{pw - 1}:0] rd_ptr;",
        f"    reg [{n_out}:0] fifo [0:{depth - 1}];  // {{tlast, data}}",
        f"    reg [{latency - 1}:0] last_pipe;  // s_axis_tlast, aligned with out_valid",
        "    wire out_valid;",
        f"    wire [{n_out - 1}:0] out_data;",
        *(["    wire core_ready;"] * shared),
        f"    assign s_axis_tready = pending != {_lit(depth, cw)}"
        + (" && core_ready;" if shared else ";"),
        "    wire in_fire = s_axis_tvalid && s_axis_tready;",
        f"    assign m_axis_tvalid = stored != {_lit(0, cw)};",
        "    wire out_fire = m_axis_tvalid && m_axis_tready;",
        f"    wire [{n_out}:0] head = fifo[rd_ptr];",
        (
            f"    assign m_axis_tdata = {{{w_out - n_out}'d0, head[{n_out - 1}:0]}};"
            if w_out > n_out
            else f"    assign m_axis_tdata = head[{n_out - 1}:0];"
        ),
        f"    assign m_axis_tlast = head[{n_out}];",
        f"    {top} u_core (",
        "        .clk(aclk),",
        "        .rst(!aresetn),",
        "        .in_valid(in_fire),",
        *(["        .in_ready(core_ready),"] * shared),
        f"        .in_data(s_axis_tdata[{n_in - 1}:0]),",
        "        .out_valid(out_valid),",
        "        .out_data(out_data)",
        "    );",
        "    always @(posedge aclk) begin",
        (
            "        last_pipe <= s_axis_tlast;"
            if latency == 1
            else f"        last_pipe <= {{last_pipe[{latency - 2}:0], s_axis_tlast}};"
        ),
        "        if (out_valid)",
        f"            fifo[wr_ptr] <= {{last_pipe[{latency - 1}], out_data}};",
        "        if (!aresetn) begin",
        f"            pending <= {_lit(0, cw)};",
        f"            stored <= {_lit(0, cw)};",
        f"            wr_ptr <= {_lit(0, pw)};",
        f"            rd_ptr <= {_lit(0, pw)};",
        "        end else begin",
        "            if (in_fire && !out_fire)",
        f"                pending <= pending + {_lit(1, cw)};",
        "            else if (out_fire && !in_fire)",
        f"                pending <= pending - {_lit(1, cw)};",
        "            if (out_valid && !out_fire)",
        f"                stored <= stored + {_lit(1, cw)};",
        "            else if (out_fire && !out_valid)",
        f"                stored <= stored - {_lit(1, cw)};",
        "            if (out_valid)",
        f"                wr_ptr <= {_wrap('wr_ptr', depth, pw)};",
        "            if (out_fire)",
        f"                rd_ptr <= {_wrap('rd_ptr', depth, pw)};",
        "        end",
        "    end",
    ]
    if w_in > n_in:
        lines.append(f"    wire _unused_ok = &{{1'b0, s_axis_tdata[{w_in - 1}:{n_in}], 1'b0}};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _ports(name: str, w_in: int, w_out: int) -> list[str]:
    """The module header of an AXI-Stream top: clock, reset, one slave and one master port."""
    return [
        f"module {name} (",
        "    input wire aclk,",
        "    input wire aresetn,",
        f"    input wire [{w_in - 1}:0] s_axis_tdata,",
        "    input wire s_axis_tvalid,",
        "    output wire s_axis_tready,",
        "    input wire s_axis_tlast,",
        f"    output wire [{w_out - 1}:0] m_axis_tdata,",
        "    output wire m_axis_tvalid,",
        "    input wire m_axis_tready,",
        "    output wire m_axis_tlast",
        ");",
    ]


def _wrap(ptr: str, depth: int, width: int) -> str:
    return f"({ptr} == {_lit(depth - 1, width)}) ? {_lit(0, width)} : {ptr} + {_lit(1, width)}"


# Images a streaming design may hold at once (accepted, result not yet delivered): the output
# FIFO's depth. A new image starts only while fewer are pending; within an image the pixels
# flow as the design takes them.
STREAM_FIFO = 4


def emit_stream_axis_top(top: str, pixel_bits: int, npix: int, out_bits: int) -> str:
    """``{top}_axis`` around a streaming top (``codegen.stream``): one pixel per input beat
    (TLAST is not needed: an image is ``npix`` pixels), one output beat per image with TLAST
    set; back-pressure on the output is absorbed by a STREAM_FIFO-image FIFO."""
    w_in, w_out = byte_width(pixel_bits), byte_width(out_bits)
    depth = STREAM_FIFO
    cw = depth.bit_length()
    pw = max(1, (depth - 1).bit_length())
    nw = max(1, (npix - 1).bit_length())
    name = axis_top_name(top)
    lines = [
        f"// {name}: AXI4-Stream around the streaming {top}: one pixel per input beat, in",
        f"// raster order, {npix} per image; one result per output beat, TLAST on each. Up to",
        f"// {depth} images may be in flight; a FIFO of {depth} results absorbs back-pressure.",
        *_ports(name, w_in, w_out),
        f"    reg [{cw - 1}:0] pending;  // images started, results not yet delivered",
        f"    reg [{cw - 1}:0] stored;  // results in the FIFO",
        f"    reg [{pw - 1}:0] wr_ptr;",
        f"    reg [{pw - 1}:0] rd_ptr;",
        f"    reg [{nw - 1}:0] pix;  // the next input pixel's position in its image",
        f"    reg [{out_bits - 1}:0] fifo [0:{depth - 1}];",
        "    wire in_ready, out_valid;",
        f"    wire [{out_bits - 1}:0] out_data;",
        f"    wire room = pix != {_lit(0, nw)} || pending != {_lit(depth, cw)};",
        "    assign s_axis_tready = in_ready && room;",
        "    wire in_fire = s_axis_tvalid && s_axis_tready;",
        f"    wire start = in_fire && pix == {_lit(0, nw)};",
        f"    assign m_axis_tvalid = stored != {_lit(0, cw)};",
        "    wire out_fire = m_axis_tvalid && m_axis_tready;",
        (
            f"    assign m_axis_tdata = {{{w_out - out_bits}'d0, fifo[rd_ptr]}};"
            if w_out > out_bits
            else "    assign m_axis_tdata = fifo[rd_ptr];"
        ),
        "    assign m_axis_tlast = 1'b1;",
        f"    {top} u_core (",
        "        .clk(aclk),",
        "        .rst(!aresetn),",
        "        .in_valid(s_axis_tvalid && room),",
        "        .in_ready(in_ready),",
        f"        .in_data(s_axis_tdata[{pixel_bits - 1}:0]),",
        "        .out_valid(out_valid),",
        "        .out_data(out_data)",
        "    );",
        "    always @(posedge aclk) begin",
        "        if (out_valid)",
        "            fifo[wr_ptr] <= out_data;",
        "        if (!aresetn) begin",
        f"            pending <= {_lit(0, cw)};",
        f"            stored <= {_lit(0, cw)};",
        f"            wr_ptr <= {_lit(0, pw)};",
        f"            rd_ptr <= {_lit(0, pw)};",
        f"            pix <= {_lit(0, nw)};",
        "        end else begin",
        "            if (in_fire)",
        f"                pix <= {_wrap('pix', npix, nw)};",
        "            if (start && !out_fire)",
        f"                pending <= pending + {_lit(1, cw)};",
        "            else if (out_fire && !start)",
        f"                pending <= pending - {_lit(1, cw)};",
        "            if (out_valid && !out_fire)",
        f"                stored <= stored + {_lit(1, cw)};",
        "            else if (out_fire && !out_valid)",
        f"                stored <= stored - {_lit(1, cw)};",
        "            if (out_valid)",
        f"                wr_ptr <= {_wrap('wr_ptr', depth, pw)};",
        "            if (out_fire)",
        f"                rd_ptr <= {_wrap('rd_ptr', depth, pw)};",
        "        end",
        "    end",
        "    wire _unused_ok = &{1'b0, s_axis_tlast"
        + (f", s_axis_tdata[{w_in - 1}:{pixel_bits}]" if w_in > pixel_bits else "")
        + ", 1'b0};",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"
