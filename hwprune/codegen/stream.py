"""Verilog of a streaming design: the network's convolutional front as stream stages, one
pixel per cycle, then its dense head as the usual pipeline (``codegen.verilog``).

The top ``{top}`` takes one input pixel per beat (``in_valid`` / ``in_ready``, raster order,
all channels of a pixel in one word) and gives one output vector per image (``out_valid``,
``out_data``, as the plain top does). Inside:

* a stage per ``hw.stream.Stage``: position counters walk the *padded* input grid; at a
  padding position the stage shifts in the padding value itself and holds its input
  (``in_ready`` low), at a real one it waits for a pixel. The window is a shift register of
  (kh - 1) * dilation rows of the padded width plus a row's taps; when the newest pixel
  completes a window of an output position, the window goes to the stage's kernel, the
  layer's own modules (``codegen.verilog``) with a clock enable, all filters at once;
* back-pressure is one enable per stage: a stage holds (every register of it) only while
  its output is valid and the next stage cannot take it (``en = !out_valid ||
  next.in_ready``); a stage that pads, or waits out its reuse factor, stalls the one before
  it only once that one has a pixel for it;
* a collector stores the last stage's pixels into the head's input vector and starts the
  head when the image's last pixel is in.

Latency and throughput follow from the padded grids (``hw.stream`` states them).
"""

from __future__ import annotations

from hwprune.codegen.axis import axis_top_name, emit_stream_axis_top
from hwprune.codegen.reuse import phase_bits
from hwprune.codegen.verilog import (
    _file,
    _lit,
    _sanitise,
    chain_lines,
    layer_modules,
    layers,
)
from hwprune.hw.reuse import kernel_cycles, shared_dense
from hwprune.hw.stream import WINDOW, Plan, Stage
from hwprune.ir.graph import Graph, IntRange


def _bits(n: int) -> int:
    """Width of a counter holding 0 .. n - 1."""
    return max(1, (n - 1).bit_length())


def _convert(src: str, i: int, wi: int, signed: bool, wo: int) -> str:
    """Element i of bus ``src`` (``wi`` bits each, two's complement when ``signed``) as ``wo``
    bits: extended, or truncated (exact: the value fits the narrower range)."""
    lo = i * wi
    if wo <= wi:
        return f"{src}[{lo + wo - 1}:{lo}]"
    fill = f"{src}[{lo + wi - 1}]" if signed else "1'b0"
    return f"{{{{{wo - wi}{{{fill}}}}}, {src}[{lo + wi - 1}:{lo}]}}"


def _mask(n: int, ok) -> str:
    """A constant of n bits, bit i set when ok(i)."""
    return f"{n}'b" + "".join("1" if ok(i) else "0" for i in reversed(range(n)))


def stage_module(
    st: Stage, name: str, in_bits: int, in_signed: bool, modules: list, reuse: int = 1
) -> str:
    """The Verilog of stream stage ``st`` as module ``name``; its kernel's layer modules are
    appended to ``modules`` as (filename, text)."""
    w = st.window
    k = st.kernel
    nc = len(st.in_map.channels)
    _, h, wd = w.in_shape
    _, oh, ow = w.out_shape
    (kh, kw), (sh, sw), (dh, dw) = w.kernel, w.strides, w.dilations
    pt, pl, pb, pr = w.pads
    hp, wp = st.grid
    length = st.taps[0] + 1  # pixels the window spans in the stream
    xv = k.values[WINDOW]
    b = xv.range.bits
    pw = nc * b
    lays = layers(k, name)
    modules += [(f"{lay.module}.v", text) for lay, text in layer_modules(k, lays, ce=True)]
    shared = shared_dense(k)
    kl = kernel_cycles(k)
    yv = k.values[k.outputs[0]]
    n_out = yv.size * yv.range.bits
    yb, xb = _bits(hp), _bits(wp)
    y0, x0 = (kh - 1) * dh, (kw - 1) * dw  # the newest pixel's offset from the window's corner

    def row_ok(py: int) -> bool:
        return py >= y0 and (py - y0) % sh == 0 and (py - y0) // sh < oh

    def col_ok(px: int) -> bool:
        return px >= x0 and (px - x0) % sw == 0 and (px - x0) // sw < ow

    pads = []
    if pt:
        pads.append(f"py < {_lit(pt, yb, False)}")
    if pb:
        pads.append(f"py >= {_lit(pt + h, yb, False)}")
    if pl:
        pads.append(f"px < {_lit(pl, xb, False)}")
    if pr:
        pads.append(f"px >= {_lit(pl + wd, xb, False)}")
    pad_expr = " || ".join(pads) if pads else "1'b0"
    idle = " && idle" if reuse > 1 else ""
    pad_pix = (
        "{" + ", ".join([_lit(st.pad, b, False)] * nc) + "}" if nc > 1 else _lit(st.pad, b, False)
    )
    chans = [_convert("in_data", j, in_bits, in_signed, b) for j in reversed(range(nc))]
    elems = [
        f"win[{(s * nc + j) * b + b - 1}:{(s * nc + j) * b}]" for s in st.taps for j in range(nc)
    ]
    if st.flag:
        elems += [f"{{{b - 1}'d0, flags[{s}]}}" if b > 1 else f"flags[{s}]" for s in st.taps]
    lines = [
        f"// Stream stage {'+'.join(st.ops)}: a {h}x{wd} map of {nc} channel(s), padded to "
        f"{hp}x{wp}, window {kh}x{kw}",
        f"// (stride {sh}x{sw}, dilation {dh}x{dw}) -> {oh}x{ow}; kernel {kl} cycle(s).",
        f"module {name} (",
        "    input wire clk,",
        "    input wire rst,",
        "    input wire en,  // the next stage takes out_data this cycle if out_valid",
        "    input wire in_valid,",
        f"    input wire [{nc * in_bits - 1}:0] in_data,",
        "    output wire in_ready,",
        "    output wire out_valid,",
        f"    output wire [{n_out - 1}:0] out_data",
        ");",
        f"    reg [{yb - 1}:0] py;  // the padded grid position the next pixel goes to",
        f"    reg [{xb - 1}:0] px;",
        f"    wire pad = {pad_expr};",
        *(
            [
                f"    reg [{_bits(reuse) - 1}:0] busy;  // cycles before the next position",
                "    wire idle = busy == " + _lit(0, _bits(reuse), False) + ";",
                *(
                    [
                        f"    wire [{phase_bits(reuse) - 1}:0] phase = "
                        f"{_lit(reuse - 1, phase_bits(reuse), False)} - busy;"
                        "  // the shared kernel's cycle of the window"
                    ]
                    if shared is not None
                    else []
                ),
            ]
            if reuse > 1
            else []
        ),
        f"    assign in_ready = en && !pad{idle};",
        f"    wire adv = en{idle} && (pad || in_valid);",
        f"    wire [{hp - 1}:0] rows_ok = {_mask(hp, row_ok)};",
        f"    wire [{wp - 1}:0] cols_ok = {_mask(wp, col_ok)};",
        f"    wire [{pw - 1}:0] pix = pad ? {pad_pix} : {{{', '.join(chans)}}};",
        f"    reg [{length * pw - 1}:0] win;  // pixel s of the window at [s * {pw} +: {pw}]",
    ]
    if st.flag:
        lines.append(f"    reg [{length - 1}:0] flags;  // 1: that pixel is real, 0: padding")
    lines += [
        "    reg wv;  // win holds a whole window of an output position",
        f"    reg [{kl - 1}:0] vp;  // wv through the kernel's {kl} register bank(s)",
        "    always @(posedge clk) begin",
        "        if (rst) begin",
        f"            py <= {_lit(0, yb, False)};",
        f"            px <= {_lit(0, xb, False)};",
        "            wv <= 1'b0;",
        f"            vp <= {kl}'d0;",
        *([f"            busy <= {_lit(0, _bits(reuse), False)};"] if reuse > 1 else []),
        "        end else if (en) begin",
        "            wv <= adv && rows_ok[py] && cols_ok[px];",
        *(
            [
                f"            busy <= adv ? {_lit(reuse - 1, _bits(reuse), False)} : "
                f"(idle ? busy : busy - {_lit(1, _bits(reuse), False)});"
            ]
            if reuse > 1
            else []
        ),
        f"            vp <= {'wv' if kl == 1 else f'{{vp[{kl - 2}:0], wv}}'};",
        "            if (adv) begin",
        f"                px <= (px == {_lit(wp - 1, xb, False)}) ? {_lit(0, xb, False)} : "
        f"px + {_lit(1, xb, False)};",
        f"                if (px == {_lit(wp - 1, xb, False)})",
        f"                    py <= (py == {_lit(hp - 1, yb, False)}) ? {_lit(0, yb, False)} : "
        f"py + {_lit(1, yb, False)};",
        "            end",
        "        end",
        "        if (adv) begin",
        "            win <= "
        + (f"{{win[{(length - 1) * pw - 1}:0], pix}};" if length > 1 else "pix;"),
    ]
    if st.flag:
        lines.append(
            "            flags <= "
            + (f"{{flags[{length - 2}:0], !pad}};" if length > 1 else "!pad;")
        )
    lines += ["        end", "    end"]
    lines.append(f"    wire [{xv.size * b - 1}:0] kx = {{{', '.join(reversed(elems))}}};")
    prev = "kx"
    for lay in lays:
        v = k.values[lay.value]
        sig = _sanitise(lay.value) + "_y"
        lines += [
            f"    wire [{v.size * v.range.bits - 1}:0] {sig};",
        ]
        ph = ".phase(phase), " if shared is not None and lay.dense == shared.name else ""
        lines.append(
            f"    {lay.module} u_{lay.module} (.clk(clk), .ce(en), {ph}.x({prev}), .y({sig}));"
        )
        prev = sig
    lines += [
        f"    assign out_valid = vp[{kl - 1}];",
        f"    assign out_data = {prev};",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"


def pixel_bits(g: Graph, st: Stage) -> tuple[int, bool]:
    """Width and signedness of one channel of the pixels a stage writes."""
    v = st.kernel.values[st.kernel.outputs[0]]
    return v.range.bits, v.range.signed


def collector_lines(st: Stage, src: str, src_bits: int, src_signed: bool, r: IntRange) -> list[str]:
    """Registers ``m_<e>`` taking each element e of the last stage's map as its pixel goes
    by, and ``hv``, high the cycle after the image's last pixel came (the head's input)."""
    _, oh, ow = st.out_map.shape
    npix = oh * ow
    pb = _bits(npix)
    chans = st.out_map.channels
    wb = r.bits
    at: dict[int, list[tuple[int, int]]] = {}
    n = 0
    for j, c in enumerate(chans):
        for p in range(npix):
            e = st.out_map.index[c * npix + p]
            if e >= 0:
                at.setdefault(p, []).append((e, j))
                n = max(n, e + 1)
    lines = [
        f"    reg [{pb - 1}:0] ppos;  // the position of the last stage's next pixel",
        "    reg hv;",
        f"    wire hv_next = {src}_valid && ppos == {_lit(npix - 1, pb, False)};",
        *(f"    reg [{wb - 1}:0] m_{e};" for e in range(n)),
        "    always @(posedge clk) begin",
        "        if (rst) begin",
        f"            ppos <= {_lit(0, pb, False)};",
        "            hv <= 1'b0;",
        "        end else begin",
        "            hv <= hv_next;",
        f"            if ({src}_valid)",
        f"                ppos <= (ppos == {_lit(npix - 1, pb, False)}) ? {_lit(0, pb, False)} : "
        f"ppos + {_lit(1, pb, False)};",
        "        end",
        f"        if ({src}_valid) begin",
        "            case (ppos)",
    ]
    for p in sorted(at):
        lines.append(f"                {_lit(p, pb, False)}: begin")
        for e, j in at[p]:
            lines.append(
                f"                    m_{e} <= "
                f"{_convert(f'{src}_data', j, src_bits, src_signed, wb)};"
            )
        lines.append("                end")
    lines += [
        "                default: ;",
        "            endcase",
        "        end",
        "    end",
        f"    wire [{n * wb - 1}:0] hx = {{{', '.join(f'm_{e}' for e in reversed(range(n)))}}};",
    ]
    return lines


def emit_stream_verilog(g: Graph, plan: Plan, top: str = "hwprune_top") -> dict[str, str]:
    """The files of the streaming design (see the module docstring), ``{filename: text}``,
    with its AXI-Stream top ``{top}_axis`` (``codegen.axis``)."""
    stages, head = plan.stages, plan.head
    files: dict[str, str] = {}
    modules: list[tuple[str, str]] = []
    (inp,) = g.inputs
    in_bits, in_signed = inp.range.bits, inp.range.signed
    nc0 = len(stages[0].in_map.channels)
    body = [
        f"// {top}: {len(stages)} stream stage(s) then {len(head.ops) - 1} layer(s); one pixel "
        "per beat in, one vector per image out.",
        f"module {top} (",
        "    input wire clk,",
        "    input wire rst,",
        "    input wire in_valid,",
        "    output wire in_ready,",
        f"    input wire [{nc0 * in_bits - 1}:0] in_data,",
        "    output wire out_valid,",
    ]
    hv_out = head.values[head.outputs[0]]
    body += [f"    output wire [{hv_out.size * hv_out.range.bits - 1}:0] out_data", ");"]
    src, src_bits, src_signed = "in_data", in_bits, in_signed
    for i, st in enumerate(stages):
        name = f"{top}_s{i}"
        files[f"{name}.v"] = _file(
            stage_module(st, name, src_bits, src_signed, modules, plan.reuse)
        )
        ob, osg = pixel_bits(g, st)
        n_out = len(st.out_map.channels) * ob
        body += [
            f"    wire s{i}_en, s{i}_ready, s{i}_valid;",
            f"    wire [{n_out - 1}:0] s{i}_data;",
            f"    {name} u_s{i} (",
            f"        .clk(clk), .rst(rst), .en(s{i}_en),",
            f"        .in_valid({'in_valid' if i == 0 else f's{i - 1}_valid'}), .in_data({src}),",
            f"        .in_ready(s{i}_ready), .out_valid(s{i}_valid), .out_data(s{i}_data)",
            "    );",
        ]
        if i > 0:
            body.append(f"    assign s{i - 1}_en = !s{i - 1}_valid || s{i}_ready;")
        src, src_bits, src_signed = f"s{i}_data", ob, osg
    last = len(stages) - 1
    body += [
        "    assign in_ready = s0_ready;",
        f"    assign s{last}_en = 1'b1;  // the collector takes a pixel every cycle",
    ]
    hin = head.inputs[0]
    body += collector_lines(stages[-1], f"s{last}", src_bits, src_signed, hin.range)
    head_ops = [op for op in head.ops if op is not hin]
    if not head_ops:
        body += ["    assign out_valid = hv;", "    assign out_data = hx;"]
    else:
        lays = layers(head, top)
        for lay, text in layer_modules(head, lays):
            files[f"{lay.module}.v"] = text

        def valid_at(j: int) -> str:  # hv is high the cycle the head's input is valid
            return "hv_next" if j < 0 else "hv" if j == 0 else f"head_vp[{j - 1}]"

        lines, prev = chain_lines(head, lays, "hx", valid_at)
        body += lines
        hl = lays[-1].end_cycle
        shift = "hv" if hl == 1 else f"{{head_vp[{hl - 2}:0], hv}}"
        body += [
            f"    reg [{hl - 1}:0] head_vp;  // hv through the head's {hl} register bank(s)",
            "    always @(posedge clk) begin",
            "        if (rst)",
            f"            head_vp <= {hl}'d0;",
            "        else",
            f"            head_vp <= {shift};",
            "    end",
            f"    assign out_valid = head_vp[{hl - 1}];",
            f"    assign out_data = {prev};",
        ]
    body.append("endmodule")
    files[f"{top}.v"] = _file("\n".join(body) + "\n")
    out_bits = hv_out.size * hv_out.range.bits
    axis = emit_stream_axis_top(top, nc0 * in_bits, plan.n_pixels, out_bits)
    files[f"{axis_top_name(top)}.v"] = _file(axis)
    for fname, text in modules:
        files[fname] = text
    return files
