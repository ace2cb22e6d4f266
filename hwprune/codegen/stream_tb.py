"""The testbench of a streaming design (``codegen.stream``): its harness, its cocotb tests
and its vectors file; the counterpart of ``harness`` and ``cocotb_tb`` for pixel input.

The harness ``{top}_bench`` reads one pixel per line of ``hwprune_in.hex`` ("<valid> <hex
pixel>"; a line with valid 0 is one cycle without a pixel), holds each pixel until the design
takes it (``in_ready``), and writes:

    hwprune_out.hex         "<hex cycle>" for every cycle out_valid is high
    hwprune_first.hex       "<hex cycle>" of the cycle each image's first pixel went in
    hwprune_layer<k>.hex    stream stage k: every pixel it hands on, one line each, in order;
                            a head layer: its register for every image (as ``harness``)

The cocotb test compares every stage's every pixel (against the stage kernels chained pixel
by pixel, ``hw.stream``; tests prove those equal the golden interpreter) and every head
layer's every vector with the golden values, then checks the first image's latency (it is
streamed without gaps) against the cycle model ``hw.stream.timing``. The AXI-Stream test
sends each image as one frame of pixel beats (TLAST on its last pixel) under random pauses
and back-pressure, and receives one beat per image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwprune.codegen.axis import axis_top_name, byte_width
from hwprune.codegen.cocotb_tb import (
    _AXIS_BODY,
    _BUBBLE_PROB,
    _FILES,
    _PAUSE_PROB,
    _SEED,
    _SUMMARY,
    AXIS_MAX_VECTORS,
    VECTORS_FORMAT,
    _py,
    axis_test_head,
    save_vectors,
    vector_test_head,
)
from hwprune.codegen.harness import (
    IN_FILE,
    OUT_FILE,
    OWN_CLOCK,
    RESET_CYCLES,
    bench_name,
    layer_file,
)
from hwprune.codegen.verilog import layers
from hwprune.hw import stream
from hwprune.hw.stream import Plan
from hwprune.ir import golden
from hwprune.ir.graph import Graph
from hwprune.resources import banner

FIRST_FILE = "hwprune_first.hex"


def probes(plan: Plan, top: str) -> list[dict]:
    """One entry per layer the harness writes: the stream stages, then the head's layers."""
    out = []
    for k, st in enumerate(plan.stages):
        v = st.kernel.values[st.kernel.outputs[0]]
        _, oh, ow = st.out_map.shape
        out.append(
            {
                "label": "+".join(st.ops),
                "key": f"pixels/{st.ops[-1]}",
                "signal": f"s{k}",
                "bits": v.range.bits,
                "signed": v.range.signed,
                "pixels": oh * ow,
                "channels": len(st.out_map.channels),
            }
        )
    if len(plan.head.ops) > 1:
        for lay in layers(plan.head, top):
            v = plan.head.values[lay.value]
            out.append(
                {
                    "label": lay.label,
                    "key": f"expected/{lay.value}",
                    "signal": lay.signal,
                    "bits": v.range.bits,
                    "signed": v.range.signed,
                    "end_cycle": lay.end_cycle,
                    "pixels": 1,
                }
            )
    return out


def pixel_index(plan: Plan) -> list[list[int]]:
    """Per input pixel (raster order), the input element of each of its channels."""
    m = plan.stages[0].in_map
    _, h, w = m.shape
    return [[m.at(c, y, x) for c in m.channels] for y in range(h) for x in range(w)]


def emit_stream_harness(g: Graph, plan: Plan, top: str) -> dict[str, str]:
    """``{"tb/{top}_bench.v": text}`` for the streaming top ``{top}``."""
    (inp,) = g.inputs
    nc = len(plan.stages[0].in_map.channels)
    w_in = nc * inp.range.bits
    hv = plan.head.values[plan.head.outputs[0]]
    w_out = hv.size * hv.range.bits
    name = bench_name(top)
    prb = probes(plan, top)
    drain = plan.latency + plan.interval + 16
    dumps = []
    for k, p in enumerate(prb):
        if p["pixels"] > 1 or "end_cycle" not in p:
            cond = f"u_top.{p['signal']}_valid && u_top.{p['signal']}_en"
            sig = f"u_top.{p['signal']}_data"
        else:
            cond = f"u_top.head_vp[{p['end_cycle'] - 1}]"
            sig = f"u_top.{p['signal']}"
        dumps += [
            f"            if ({cond}) begin",
            f'                $fwrite(f_l{k}, "%h\\n", {sig});',
            "            end",
        ]
    lines = [
        f"// {name}: streams the pixels of {IN_FILE} through {top} and writes every stage's",
        "// pixels and every head layer's results (hwprune/codegen/stream_tb.py says the file",
        "// formats). Simulation only.",
        f"module {name} (",
        "    // public: cocotb's only access (Verilator keeps everything else private)",
        "    input wire clk /* verilator public_flat_rw */,",
        "    input wire start /* verilator public_flat_rw */,",
        "    output reg done /* verilator public_flat_rw */",
        ");",
        f"    localparam integer NPIX = {plan.n_pixels};",
        f"    localparam integer DRAIN = {drain};",
        f"    localparam integer RESET_CYCLES = {RESET_CYCLES};",
        "    reg rst;",
        "    reg in_valid;",
        f"    reg [{w_in - 1}:0] in_data;",
        "    wire in_ready;",
        "    wire out_valid;",
        f"    wire [{w_out - 1}:0] out_data;",
        f"`ifdef {OWN_CLOCK}",
        "    reg clk_i = 1'b0;",
        "    always #5 clk_i = ~clk_i;",
        "`else",
        "    wire clk_i = clk;",
        "`endif",
        f"    {top} u_top (",
        "        .clk(clk_i), .rst(rst), .in_valid(in_valid), .in_ready(in_ready),",
        "        .in_data(in_data), .out_valid(out_valid), .out_data(out_data)",
        "    );",
        "    reg v_in;",
        f"    reg [{w_in - 1}:0] d_in;",
        "    reg took;",
        "    integer phase, count, got, sent, f_in, f_out, f_first;",
        "    reg [31:0] cycle;",
        *(f"    integer f_l{k};" for k in range(len(prb))),
        "    initial begin",
        "        phase = 0;",
        "        done = 1'b0;",
        "        rst = 1'b1;",
        "        in_valid = 1'b0;",
        f"        in_data = {w_in}'d0;",
        "        took = 1'b0;",
        "    end",
        "    always @(negedge clk_i) begin",
        "        if (phase == 0) begin  // wait for start, open the files",
        "            if (start) begin",
        f'                f_in = $fopen("{IN_FILE}", "r");',
        f'                f_out = $fopen("{OUT_FILE}", "w");',
        f'                f_first = $fopen("{FIRST_FILE}", "w");',
        *(f'                f_l{k} = $fopen("{layer_file(k)}", "w");' for k in range(len(prb))),
        "                count = 0;",
        "                sent = 0;",
        "                phase = 1;",
        "            end",
        "        end else if (phase == 1) begin  // reset",
        "            count = count + 1;",
        "            if (count == RESET_CYCLES) begin",
        "                rst = 1'b0;",
        "                cycle = 0;",
        "                phase = 2;",
        "            end",
        "        end else if (phase == 2 || phase == 3) begin  // run, then drain",
        "            if (out_valid) begin",
        '                $fwrite(f_out, "%h\\n", cycle);',
        "            end",
        *dumps,
        "            if (phase == 2 && (!in_valid || took)) begin  // the next line",
        '                got = $fscanf(f_in, "%h %h\\n", v_in, d_in);',
        "                if (got == 2) begin",
        "                    in_valid = v_in;",
        "                    in_data = d_in;",
        "                end else begin",
        "                    in_valid = 1'b0;",
        "                    count = 0;",
        "                    phase = 3;",
        "                end",
        "            end",
        "            // in_ready does not depend on in_valid: as it is now, it is at the edge",
        "            took = in_valid && in_ready;",
        "            if (took) begin",
        "                if (sent == 0) begin",
        '                    $fwrite(f_first, "%h\\n", cycle);',
        "                end",
        "                sent = (sent == NPIX - 1) ? 0 : sent + 1;",
        "            end",
        "            if (phase == 3) begin",
        "                count = count + 1;",
        "                if (count > DRAIN) begin",
        "                    $fclose(f_in);",
        "                    $fclose(f_out);",
        "                    $fclose(f_first);",
        *(f"                    $fclose(f_l{k});" for k in range(len(prb))),
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


_STREAM_BODY = (
    _SUMMARY
    + _FILES
    + '''

def _line_bad(exp_rows, got, xs, bits, signed, layer, line, image, pixels, channels, inputs):
    """The mismatch at pixel line ``line`` of a stage (its first differing element)."""
    p = line % pixels
    if xs[line]:
        return _mismatch("value", image, layer, p * channels, int(exp_rows[line][0]), None,
                         inputs[image])
    for c in range(channels):
        e = int(exp_rows[line][c])
        g = _element(got[line], bits, c, signed)
        if g != e:
            return _mismatch("value", image, layer, p * channels + c, e, g, inputs[image])
    return None


@cocotb.test()
async def test_vectors(dut):
    """Stream every image pixel by pixel (seeded gaps, none in the first image) through the
    harness, then compare every stage's pixels and every head layer's vectors bit-exactly."""
    t0 = time.perf_counter()
    doc = np.load(os.environ["HWPRUNE_VECTORS"])
    inputs = doc["inputs"]
    assert inputs.shape[1] == IN_SIZE, f"vectors must have {IN_SIZE} elements"
    n_vec = len(inputs)
    idx = np.array(PIXEL_INDEX, dtype=np.int64)  # (pixels, channels)
    pix = inputs[:, idx].reshape(n_vec * NPIX, -1)
    rng = np.random.default_rng(SEED)
    n_px = len(pix)
    gaps = rng.geometric(1.0 - BUBBLE_PROB, n_px) - 1 if BUBBLE_PROB > 0 else np.zeros(n_px)
    gaps[:NPIX] = 0  # the first image at full rate: its latency is the stated one
    drive = np.cumsum(gaps + 1) - 1
    n_lines = int(drive[-1]) + 1 if n_px else 0
    noise = rng.integers(0, 1 << IN_BITS, size=(n_lines, pix.shape[1]))
    noise[drive] = pix
    valid = np.zeros(n_lines, dtype=bool)
    valid[drive] = True
    _write_stimulus("hwprune_in.hex", valid, noise, IN_BITS)

    t1 = time.perf_counter()
    if os.environ.get(OWN_CLOCK) != "1":  # else the harness clocks itself
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.start.value = 0
    await Timer(20, unit="ns")
    dut.start.value = 1
    # Generous: every pixel stalled by every padding position would still finish.
    budget = 2 * (n_lines + n_vec * INTERVAL + LATENCY + RESET_CYCLES + 100) * 10
    try:
        await with_timeout(RisingEdge(dut.done), budget, "ns")
    except SimTimeoutError:
        pass
    t2 = time.perf_counter()

    first = None
    bad_any = np.zeros(n_vec, dtype=bool)
    checked = []
    for k, lay in enumerate(LAYERS):
        exp = doc[lay["key"]]
        px = lay["pixels"]
        width = exp.shape[1] // px * lay["bits"]
        got, xs = _read_hex(f"hwprune_layer{k}.hex", width)
        if len(got) != n_vec * px:
            first = first or _mismatch("count", min(len(got) // px, n_vec), lay["label"], None,
                                       n_vec, len(got) // px)
            break
        rows = exp.reshape(n_vec * px, -1)
        wrong = ((got != _bus_bytes(rows, lay["bits"])).any(axis=1) | xs).reshape(n_vec, px)
        checked.append((lay, rows, got, xs, wrong))
        bad_any |= wrong.any(axis=1)
    cyc, _ = _read_hex("hwprune_out.hex", 32)
    outs = cyc.view("<u4").ravel().astype(np.int64)
    fc, _ = _read_hex("hwprune_first.hex", 32)
    firsts = fc.view("<u4").ravel().astype(np.int64)
    if first is None and len(outs) != n_vec:
        first = _mismatch("count", min(len(outs), n_vec), None, None, n_vec, len(outs))
    n_bad = int(bad_any.sum())
    if first is None and n_vec and outs[0] - firsts[0] != LATENCY:
        took = int(outs[0] - firsts[0])
        first = _mismatch("latency", 0, None, None, LATENCY, took, inputs[0].tolist())
    if first is None and n_bad:
        v = int(np.flatnonzero(bad_any)[0])
        for lay, rows, got, xs, wrong in checked:
            if wrong[v].any():
                line = v * lay["pixels"] + int(np.flatnonzero(wrong[v])[0])
                first = _line_bad(rows, got, xs, lay["bits"], lay["signed"], lay["label"], line,
                                  v, lay["pixels"], rows.shape[1], inputs.tolist())
                break

    n_checked = 0 if first is not None and first["reason"] == "count" else n_vec
    t3 = time.perf_counter()
    seconds = dict(stimulus=t1 - t0, simulate=t2 - t1, compare=t3 - t2)
    _write_summary(n_vec, len(outs), n_checked, n_bad, first, seconds)

    if first is not None:
        if first["reason"] == "count":
            where = f" from layer {first['layer']}" if first["layer"] else ""
            msg = f"{first['got']} results{where} for {first['expected']} input images"
        elif first["reason"] == "latency":
            msg = f"image 0: came out {first['got']} cycles after its first pixel went in, "
            msg += f"expected {first['expected']}"
        else:
            v, layer, i, exp = first["vector"], first["layer"], first["index"], first["expected"]
            got = "X" if first["got"] is None else first["got"]
            msg = f"image {v}: layer {layer} element {i}: expected {exp}, got {got}"
            msg += f" ({n_bad} of {n_vec} images wrong)"
        raise AssertionError(msg)
'''
)


def emit_stream_testbench(g: Graph, plan: Plan, top: str) -> dict[str, str]:
    """``test_{top}.py`` (the harness test), the harness, and ``test_{top}_axis.py``."""
    (inp,) = g.inputs
    yv = plan.head.values[plan.head.outputs[0]]
    head = [
        *vector_test_head(top, "every image in $HWPRUNE_VECTORS, pixel by pixel, every layer"),
        f"TOP = {_py(top)}",
        f"IN_BITS = {inp.range.bits}",
        f"IN_SIZE = {inp.size}",
        f"NPIX = {plan.n_pixels}",
        f"OUT_VALUE = {_py(g.outputs[0])}",
        f"OUT_BITS = {yv.range.bits}",
        f"OUT_SIGNED = {yv.range.signed}",
        f"LATENCY = {plan.latency}",
        f"INTERVAL = {plan.interval}",
        f"SEED = {_SEED}",
        f"BUBBLE_PROB = {_BUBBLE_PROB}",
        f"RESET_CYCLES = {RESET_CYCLES}",
        f"OWN_CLOCK = {_py(OWN_CLOCK)}  # set to 1 when the harness runs its own clock",
        "# Per input pixel (raster order), the input element of each channel.",
        f"PIXEL_INDEX = {pixel_index(plan)!r}",
        "# One entry per layer the harness writes: stream stages (pixels), then head layers.",
        "LAYERS = [",
        *(f"    {_py(p)}," for p in probes(plan, top)),
        "]",
    ]
    return {
        f"test_{top}.py": "\n".join(head) + "\n" + _STREAM_BODY,
        **emit_stream_harness(g, plan, top),
        **emit_stream_axis_testbench(g, plan, top),
    }


def emit_stream_axis_testbench(g: Graph, plan: Plan, top: str) -> dict[str, str]:
    """``test_{top}_axis.py``: the plain AXI-Stream test with one frame per image, a beat
    per pixel (``PIXEL_INDEX`` picks each beat's channels)."""
    (inp,) = g.inputs
    yv = plan.head.values[plan.head.outputs[0]]
    nc = len(plan.stages[0].in_map.channels)
    name = axis_top_name(top)
    head = [
        *axis_test_head(name, "image"),
        f"TOP = {_py(name)}",
        f"IN_BITS = {inp.range.bits}",
        f"IN_BYTES = {byte_width(nc * inp.range.bits) // 8}",
        f"OUT_VALUE = {_py(g.outputs[0])}",
        f"OUT_BITS = {yv.range.bits}",
        f"OUT_BYTES = {byte_width(yv.size * yv.range.bits) // 8}",
        f"OUT_SIGNED = {yv.range.signed}",
        f"LATENCY = {plan.latency + plan.interval * 4}  # generous: images wait for pixels",
        f"SEED = {_SEED}",
        f"PAUSE_PROB = {_PAUSE_PROB}",
        "MAX_FRAME = 1  # one image per frame",
        f"MAX_VECTORS = {AXIS_MAX_VECTORS // plan.n_pixels + 1}",
        f"RESET_CYCLES = {RESET_CYCLES}",
        f"PIXEL_INDEX = {pixel_index(plan)!r}",
    ]
    body = _AXIS_BODY.replace(
        'data = b"".join(_pack(inputs[j], IN_BITS).to_bytes(IN_BYTES, "little") for j in fr)',
        'data = b"".join(\n'
        '            _pack([inputs[j][i] for i in pix], IN_BITS).to_bytes(IN_BYTES, "little")\n'
        "            for j in fr\n"
        "            for pix in PIXEL_INDEX\n"
        "        )",
    ).replace(
        "budget = (n_vec * 4 + LATENCY + 100) * 10",
        "budget = (n_vec * 4 * len(PIXEL_INDEX) + LATENCY + 100) * 10",
    )
    return {f"test_{name}.py": "\n".join(head) + "\n" + body}


def write_stream_vectors(path: Path, g: Graph, plan: Plan, inputs: np.ndarray) -> None:
    """The vectors file of a streaming design: ``inputs``; per stage its pixels (the kernels
    chained pixel by pixel), ``pixels/<value>`` (n, pixels * channels) in raster order; per
    head layer and the output, the golden values (``expected/<value>``)."""
    inputs = np.asarray(inputs, dtype=np.int64)
    vals = golden.run(g, inputs)
    arrays = {"format": np.array(VECTORS_FORMAT), "inputs": inputs}
    px = stream.pixels(plan.stages[0].in_map, inputs)
    for st in plan.stages:
        wv = stream.window_vectors(st, px)
        b, oh, ow, n = wv.shape
        px = golden.outputs(st.kernel, wv.reshape(-1, n)).reshape(b, oh, ow, -1)
        arrays[f"pixels/{st.ops[-1]}"] = px.reshape(b, -1)
    if len(plan.head.ops) > 1:
        hv = golden.run(plan.head, vals[plan.head.inputs[0].name])
        for lay in layers(plan.head):
            arrays[f"expected/{lay.value}"] = hv[lay.value]
    arrays[f"expected/{g.outputs[0]}"] = vals[g.outputs[0]]
    save_vectors(path, arrays)
