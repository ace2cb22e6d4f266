"""The io_stream project of a streaming design (``hw.stream.Plan``): the hls4ml layer list,
the parameters.h config of each stream stage and of the collector, and where the pixels of
the input stream and of each stage's trace sit in the IR's vectors.

The project mirrors the Verilog of ``codegen.stream``: the top function reads the image as an
``hls::stream`` of pixels (raster order, one pixel = its channels, ``hw.stream.pixels``); each
stage (``hls/nnet_utils/hwprune_stream.h``) walks its padded grid, shifts every pixel (or the
padding value, and a 'real pixel' flag) into a window shift register and, where a window is
complete, calls its kernel once: the stage's small graph (``Stage.kernel``) as the layer
structs of the unrolled project, so the kernel's Dense holds one product per nonzero kernel
weight (flag terms included), between the markers ``readback`` counts. A collector gathers
the last stage's pixels into the head's input vector, and the head's layers run as in the
unrolled project, each reading and writing one vector per image.

Plain data: this module does not import hls4ml.
"""

from __future__ import annotations

import json

import numpy as np

from hwprune.hlsgen.config import (
    _END_MARK,
    _cxx_int,
    _requant_struct,
    dense_struct,
    max_struct,
    threshold_struct,
)
from hwprune.hlsgen.layers import LAYER_BUILDERS, _hls_names, ap_type
from hwprune.hw.stream import WINDOW, PixelMap, Plan, Stage
from hwprune.ir.graph import Dense, Graph, Input, Max, Requant, Threshold
from hwprune.resources import banner

_STREAM_MARK = "// hwprune-stream "
_COLLECT_MARK = "// hwprune-collect "


def pixel_order(m: PixelMap) -> tuple[int, ...]:
    """Per element of the map's pixel stream (raster order, then channel), the map value's
    element it carries, -1 where the passes removed it (the stream carries 0 there, as
    ``hw.stream.pixels`` does)."""
    _, h, w = m.shape
    return tuple(m.at(c, y, x) for y in range(h) for x in range(w) for c in m.channels)


def trace_order(m: PixelMap) -> tuple[int, ...]:
    """Per element of the map's value, its place in the map's pixel stream: the inverse of
    ``pixel_order`` over the elements that exist."""
    order = pixel_order(m)
    where = {e: k for k, e in enumerate(order) if e >= 0}
    return tuple(where[e] for e in range(len(where)))


def stream_inputs(p: Plan, x: np.ndarray) -> np.ndarray:
    """IR input vectors ``x`` (batch, input size) as the project's input streams (batch,
    pixels * channels): pixel after pixel, raster order."""
    order = np.array(pixel_order(p.stages[0].in_map), dtype=np.int64)
    x = np.asarray(x)
    return np.where(order >= 0, x[:, np.maximum(order, 0)], 0)


# --- parameters.h -----------------------------------------------------------------------------


def _kernel_structs(struct: str, k: Graph, reuse: int) -> tuple[list[str], list[str]]:
    """The layer structs of a stage's kernel graph (``{struct}_{i}`` for its op i) and the
    body of the stage's ``kernel`` function that chains them, window ``x`` to output ``y``;
    its Dense at reuse factor ``reuse`` (at most ceil(terms / R) multipliers)."""
    names = _hls_names(k)
    texts, body = [], []
    src, src_t = "x", "window_t"
    ops = [op for op in k.ops if not isinstance(op, Input)]
    for i, op in enumerate(ops, 1):
        layer, prec = LAYER_BUILDERS[type(op)](op, k, names[op.name], [])
        sub = f"{struct}_{i}"
        last = i == len(ops)
        dst, dst_t = ("y", "out_t") if last else (f"v{i}", prec["result"])
        if not last:
            body.append(f"        {dst_t} {dst}[{k.values[op.name].size}];")
            body.append(f"        #pragma HLS ARRAY_PARTITION variable={dst} complete")
        if isinstance(op, Dense):
            w, b = layer["weight_data"], layer["bias_data"]
            # As the zero-term pass does for an unrolled layer: the nonzero entries, row-major.
            terms = tuple((int(r), int(c), int(w[r, c])) for r, c in zip(*w.nonzero(), strict=True))
            texts.append(
                dense_struct(
                    sub,
                    op.name,
                    terms,
                    tuple(int(v) for v in b),
                    op.n_in,
                    op.n_out,
                    reuse,
                    prec["accum"],
                    prec["weight"],
                )
            )
            body.append(f"        {sub}::compute<{src_t}, {dst_t} >({src}, {dst});")
            call = None
        elif isinstance(op, Requant):
            keys = ("shift_left", "shift_right", "half_even", "half", "lo", "hi", "clip_lo")
            params = {kk: layer[kk] for kk in (*keys, "clip_hi")}
            texts.append(_requant_struct(sub, op.name, layer["n_in"], params, prec["work"]))
            call = "hwprune_requant"
        elif isinstance(op, Max):
            keys = ("n_in", "n_out", "group_size", "groups")
            texts.append(max_struct(sub, op.name, *(layer[kk] for kk in keys)))
            call = "hwprune_max"
        elif isinstance(op, Threshold):
            keys = ("n_in", "n_thresholds", "base", "step")
            args = (prec["threshold"], prec["work"], layer["thresholds"])
            texts.append(threshold_struct(sub, op.name, *(layer[kk] for kk in keys), *args))
            call = "hwprune_threshold"
        else:  # hw.stream builds kernels of these kinds only
            raise AssertionError(f"a stream kernel holds a {type(op).__name__}")
        if call is not None:
            body.append(f"        nnet::{call}<{src_t}, {dst_t}, {sub}>({src}, {dst});")
        src, src_t = dst, dst_t
    return texts, body


def stage_struct(struct: str, st: Stage, reuse: int = 1) -> str:
    """The parameters.h config of stream stage ``st`` that hwprune_stream.h reads: its
    kernel's layer structs, then ``struct`` with the geometry, the window's tap offsets in the
    shift register and ``kernel``, the per-pixel function; ``reuse``: the stage takes a grid
    position per that many cycles (its pipeline's II), its Dense sharing multipliers."""
    w, k = st.window, st.kernel
    nc, nco = len(st.in_map.channels), len(st.out_map.channels)
    _, h, wd = w.in_shape
    _, oh, ow = w.out_shape
    (kh, kw), (sh, sw), (dh, dw) = w.kernel, w.strides, w.dilations
    pt, pl, pb, pr = w.pads
    hp, wp = st.grid
    taps = st.taps  # (the newest pixel at 0: Stage.taps)
    length = taps[0] + 1
    xv = k.values[WINDOW]
    yv = k.values[k.outputs[0]]
    texts, body = _kernel_structs(struct, k, reuse)
    lines = [
        banner("//").rstrip("\n"),
        f"{_STREAM_MARK}{json.dumps('+'.join(st.ops))}",
        f"// a {h}x{wd} map of {nc} channel(s), padded to {hp}x{wp} with {st.pad}, window "
        f"{kh}x{kw} (stride {sh}x{sw}, dilation {dh}x{dw}) -> {oh}x{ow} of {nco} channel(s)"
        + (", a 'real pixel' flag per tap" if st.flag else ""),
        f"struct {struct} {{",
        f"    static const unsigned in_height = {h};",
        f"    static const unsigned in_width = {wd};",
        f"    static const unsigned n_chan = {nc};",
        f"    static const unsigned pad_top = {pt};",
        f"    static const unsigned pad_left = {pl};",
        f"    static const unsigned padded_height = {hp};",
        f"    static const unsigned padded_width = {wp};",
        f"    static const unsigned first_row = {(kh - 1) * dh};",
        f"    static const unsigned first_col = {(kw - 1) * dw};",
        f"    static const unsigned stride_height = {sh};",
        f"    static const unsigned stride_width = {sw};",
        f"    static const unsigned out_height = {oh};",
        f"    static const unsigned out_width = {ow};",
        f"    static const unsigned n_out = {nco};",
        f"    static const unsigned n_taps = {kh * kw};",
        f"    static const unsigned length = {length};",
        f"    static const unsigned n_flags = {kh * kw if st.flag else 0};",
        f"    static const unsigned n_window = {xv.size};",
        f"    static const unsigned reuse_factor = {reuse};",
        f"    static const long long pad = {_cxx_int(st.pad)};",
        f"    typedef {ap_type(xv.range)} window_t;",
        f"    typedef {ap_type(yv.range)} out_t;",
        "    static const unsigned taps[n_taps];",
        "",
        "    // The stage's kernel on one window: every output channel of one output pixel.",
        "    static void kernel(window_t x[n_window], out_t y[n_out]) {",
        "        #pragma HLS INLINE",
        *body,
        "    }",
        "};",
        f"const unsigned {struct}::taps[{kh * kw}] = {{{', '.join(map(str, taps))}}};",
        _END_MARK,
    ]
    return "\n\n".join(texts) + "\n\n" + "\n".join(lines)


def collect_struct(struct: str, st: Stage, n_out: int) -> str:
    """The parameters.h config of the collector after the last stage ``st``: per pixel and
    channel, the element of the head's input vector it is (-1: none, removed by the passes)."""
    _, oh, ow = st.out_map.shape
    order = pixel_order(st.out_map)
    nc = len(st.out_map.channels)
    rows = [order[p * nc : (p + 1) * nc] for p in range(oh * ow)]
    lines = [
        banner("//").rstrip("\n"),
        f"{_COLLECT_MARK}{json.dumps(st.ops[-1])}",
        f"// the {oh}x{ow} pixels of {nc} channel(s) as one vector of {n_out}",
        f"struct {struct} {{",
        f"    static const unsigned n_pixels = {oh * ow};",
        f"    static const unsigned n_chan = {nc};",
        f"    static const unsigned n_out = {n_out};",
        "    static const int index[n_pixels][n_chan];",
        "};",
        f"const int {struct}::index[{oh * ow}][{nc}] = {{",
        *("    {" + ", ".join(map(str, r)) + "}," for r in rows),
        "};",
        _END_MARK,
    ]
    return "\n".join(lines)


# --- the hls4ml layer list --------------------------------------------------------------------


def _unique(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name.lower() in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def stream_layer_list(g: Graph, p: Plan) -> tuple[list[dict], dict[str, dict], list[dict]]:
    """The hls4ml layer list of the streaming project of ``g``, the per-layer config
    (precisions, tracing) and the ``NAMES_FILE`` entry of every op.

    Layers: the input (a stream of pixels), one ``HwpruneStreamStage`` per stage (named after
    its last op: it writes that op's value, as pixels), the ``HwpruneCollect`` collector, and
    the head's ops as in the unrolled project. A stage's trace is its pixel stream: the entry
    of its last op has the stream's ``size`` (pixels x channels) and ``order``, where each
    element of the op's IR value sits in it; the stage's other ops are not traced.
    """
    names = _hls_names(g)
    inp = g.inputs[0]
    st0 = p.stages[0]
    _, h, w = st0.window.in_shape
    layers = [
        {
            "class_name": "Input",
            "name": names[inp.name],
            "input_shape": [h * w, len(st0.in_map.channels)],
        }
    ]
    precisions = {names[inp.name]: {"Precision": {"result": ap_type(inp.range)}}}
    ops = [{"ir": inp.name, "hls": names[inp.name], "size": inp.size, "traced": False}]
    prev = names[inp.name]
    for st in p.stages:
        name = names[st.ops[-1]]
        _, oh, ow = st.window.out_shape
        k = st.kernel
        nco = len(st.out_map.channels)
        layers.append(
            {
                "class_name": "HwpruneStreamStage",
                "name": name,
                "inputs": [prev],
                "ir_name": "+".join(st.ops),
                "n_pixels": oh * ow,
                "n_chan": nco,
                "stage": st,
                "reuse": p.reuse,
            }
        )
        precisions[name] = {
            "Precision": {"result": ap_type(k.values[k.outputs[0]].range)},
            "Trace": True,
        }
        for op in st.ops[:-1]:  # inside the stage's kernel: no stream of their own
            ops.append({"ir": op, "hls": name, "size": g.values[op].size, "traced": False})
        ops.append(
            {
                "ir": st.ops[-1],
                "hls": name,
                "size": oh * ow * nco,
                "traced": True,
                "order": list(trace_order(st.out_map)),
            }
        )
        prev = name
    last = p.stages[-1]
    collector = _unique("collect", {n.lower() for n in names.values()})
    n_head = g.values[last.ops[-1]].size
    layers.append(
        {
            "class_name": "HwpruneCollect",
            "name": collector,
            "inputs": [prev],
            "ir_name": last.ops[-1],
            "n_out": n_head,
            "stage": last,
        }
    )
    # Not traced: its output is the last stage's op's value, which that stage's trace holds.
    precisions[collector] = {"Precision": {"result": ap_type(g.values[last.ops[-1]].range)}}
    hls_of = {last.ops[-1]: collector}
    for op in g.ops[g.ops.index(g.op(last.ops[-1])) + 1 :]:
        build = LAYER_BUILDERS[type(op)]
        inputs = [hls_of.get(i, names[i]) for i in op.inputs]
        layer, precision = build(op, g, names[op.name], inputs)
        layers.append(layer)
        precisions[names[op.name]] = {"Precision": precision, "Trace": True}
        ops.append({"ir": op.name, "hls": names[op.name], "size": g.values[op.name].size})
        ops[-1]["traced"] = True
    return layers, precisions, ops


def stream_names_entry(g: Graph, p: Plan) -> dict:
    """The ``stream`` entry of a streaming project's ``NAMES_FILE``: the IR input element of
    each input stream element (-1: reads 0) and the IR vector sizes, for the C-simulation."""
    return {
        "input": list(pixel_order(p.stages[0].in_map)),
        "ir_inputs": g.inputs[0].size,
        "outputs": g.values[g.outputs[0]].size,
    }
