"""The HLS project emitter: hwprune's integer IR to an hls4ml project (Vitis, io_parallel).

It lives at the package's edge, not in codegen/: DESIGN.md keeps ir/, codegen/, estimate/ and
boards free of torch and hls4ml imports.

hwprune does not hand hls4ml a QONNX model (DESIGN.md: hls4ml's own Dense kernels keep zero
weights in the emitted C++ and its QONNX path is not bit-exact). It builds hls4ml's
``ModelGraph`` directly from the IR, with two layer kinds of its own registered through
hls4ml's extension API:

- ``HwpruneDense`` receives the full integer weight matrix and bias, as hls4ml's Dense does.
  Our optimizer pass ``hwprune_remove_zero_terms``, registered in the backend's optimize flow,
  replaces them with the list of nonzero (row, column, weight) terms; the config template then
  writes a ``compute`` function with exactly one product per nonzero term, weights as literals.
  The kernel ``hls/nnet_utils/hwprune_dense.h`` pipelines it with II = reuse factor and caps
  the multipliers at ceil(nonzero / reuse factor).
- ``HwpruneRequant`` is y = clip(round(x * 2**-shift), lo, hi) with FLOOR or HALF_EVEN,
  implemented by ``hls/nnet_utils/hwprune_requant.h``.
- ``HwpruneMax`` is max pooling over the IR's explicit index groups (a constant index array,
  a balanced comparison tree per output), ``hls/nnet_utils/hwprune_max.h``.
- ``HwpruneThreshold`` is y = base + step * #{t : x >= t} per element (a constant threshold
  array), ``hls/nnet_utils/hwprune_threshold.h``.

Every C++ type is an ``ap_int``/``ap_uint`` derived from the IR's exact ranges and given to
hls4ml per layer name (granularity 'name'), so nothing can overflow and the input is not
rounded. hls4ml is imported only when a project is written: the parser
``count_product_terms`` works without it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from hwprune.builddir import write_atomic
from hwprune.errors import HwpruneError
from hwprune.ir import golden
from hwprune.ir.graph import (
    Dense,
    Graph,
    Input,
    IntRange,
    Max,
    Op,
    Requant,
    Rounding,
    Threshold,
    Value,
    to_json,
    verify,
)
from hwprune.resources import banner, data_dir

BACKEND = "Vitis"
DENSE_HEADER = "nnet_utils/hwprune_dense.h"
REQUANT_HEADER = "nnet_utils/hwprune_requant.h"
MAX_HEADER = "nnet_utils/hwprune_max.h"
THRESHOLD_HEADER = "nnet_utils/hwprune_threshold.h"
# Headers hls4ml copies into every project (register_source). The kernels of layer kinds added
# later are copied only into projects that use them (_copy_used_headers): a project of a graph
# without them then stays byte-identical, library stamp included, to what earlier versions
# wrote.
ALWAYS_COPIED = (DENSE_HEADER, REQUANT_HEADER)
ZERO_TERM_PASS = "hwprune_remove_zero_terms"
# IR op name <-> hls4ml layer name, per op in graph order, written into every project so that
# hwprune.sim.csim.trace_csim can key the bridge's layer traces by IR name without the IR.
NAMES_FILE = "hwprune_names.json"
NAMES_FORMAT = 1
# The files hls4ml's C++ test bench (<project>_test.cpp, run by build_prj.tcl's csim and cosim)
# reads from the directory it runs in; without them it simulates a few all-zero inputs.
TB_INPUTS = "tb_data/tb_input_features.dat"
TB_OUTPUTS = "tb_data/tb_output_predictions.dat"
# That test bench parses every value with atof into a std::vector<float> before copying it
# into input_t: an integer is exact through it only up to 2**24 in magnitude. Projects whose
# input range goes beyond get a test bench that reads doubles (_double_test_bench), exact up
# to 2**53 like the C-simulation bridge; the others keep hls4ml's test bench unchanged.
_FLOAT_EXACT = 2**24
_DOUBLE_EXACT = 2**53

# Markers around each generated Dense, Max and Threshold config in parameters.h; the op name is
# JSON-quoted so any IR name survives the round trip through the C++ comment.
_DENSE_MARK = "// hwprune-dense "
_MAX_MARK = "// hwprune-max "
_THRESHOLD_MARK = "// hwprune-threshold "
_END_MARK = "// hwprune-end"
_PRODUCT = re.compile(r"acc(\d+)\s*\+=\s*x\[(\d+)\]\s*\*\s*weight_t\((-?\d+)(?:LL)?\)\s*;")

# Global identifiers of the generated C++ that an op name must not take ('input' is refused
# by hls4ml itself); an op's name becomes a C++ name for the input port and for types.
_RESERVED = {"input", "output", "nnet", "std", "ap_int", "ap_uint", "ap_fixed", "ap_ufixed"}
_GENERATED = re.compile(r"(layer\d+_out|layer\d+_t|config\d+|[wb]\d+|\w+_t)", re.ASCII)
_CXX_KEYWORDS = frozenset(
    """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char16_t
    char32_t class compl const constexpr const_cast continue decltype default delete do double
    dynamic_cast else enum explicit export extern false float for friend goto if inline int long
    mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public
    register reinterpret_cast return short signed sizeof static static_assert static_cast struct
    switch template this thread_local throw true try typedef typeid typename union unsigned using
    virtual void volatile wchar_t while xor xor_eq""".split()
)


def reuse_factor_fits(n_in: int, n_out: int, rf: int) -> bool:
    """hls4ml's rule for a Dense layer's reuse factor (FPGABackend._validate_reuse_factor):
    ``rf`` divides the layer's n_in * n_out weights; below n_in, the multipliers it leaves
    (ceil(n_in * n_out / rf)) are a whole number per output; from n_in up, a multiple of n_in.
    """
    size = n_in * n_out
    if rf < 1 or size % rf:
        return False
    if rf >= n_in:
        return rf % n_in == 0
    return -(-size // rf) % n_out == 0


def check_reuse_factor(g: Graph, rf: int) -> None:
    """Refuse a reuse factor hls4ml would not accept for every Dense layer of ``g`` (hls4ml
    itself would silently pick another one per layer), naming the layer and what fits."""
    dense = [(op.name, op.n_in, op.n_out) for op in g.dense_ops()]
    if rf < 1:
        raise HwpruneError(f"reuse factor {rf}: use 1 or more")
    if not dense:
        return
    largest = max(n_in * n_out for _, n_in, n_out in dense)
    common = [
        r for r in range(1, largest + 1) if all(reuse_factor_fits(i, o, r) for _, i, o in dense)
    ]
    shown = ", ".join(map(str, common[:12])) + (", ..." if len(common) > 12 else "")
    if rf > largest:
        raise HwpruneError(
            f"reuse factor {rf} exceeds every layer's size (the largest has {largest} weights); "
            f"reuse factors every layer accepts: {shown}"
        )
    for name, n_in, n_out in dense:
        if not reuse_factor_fits(n_in, n_out, rf):
            fits = [r for r in range(1, n_in * n_out + 1) if reuse_factor_fits(n_in, n_out, r)]
            near = sorted(fits, key=lambda r: (abs(r - rf), r))[:4]
            raise HwpruneError(
                f"reuse factor {rf} does not fit layer {name!r} ({n_in} inputs x {n_out} "
                f"outputs after pruning) as hls4ml requires (it must divide the {n_in * n_out} "
                f"weights into whole multipliers per output); nearest for this layer: "
                f"{', '.join(map(str, sorted(near)))}; reuse factors every layer accepts: {shown}"
            )


def ap_type(r: IntRange) -> str:
    """The exact ap_int/ap_uint type string of an integer range."""
    return f"ap_int<{r.bits}>" if r.signed else f"ap_uint<{r.bits}>"


def _cxx_int(v: int) -> str:
    # Above 32 bits a plain literal would still be fine in C++11 (it widens to long), but
    # the suffix makes the intent visible to readers of the generated code.
    return f"{v}LL" if not -(2**31) <= v < 2**31 else str(v)


# --- the hls4ml layer list --------------------------------------------------------------------


def _hls_names(g: Graph) -> dict[str, str]:
    """A C identifier per op, unique ignoring case (hls4ml lower-cases names for type lookup)."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for op in g.ops:
        base = re.sub(r"\W", "_", op.name, flags=re.ASCII).strip("_") or "op"
        if (
            base[0].isdigit()
            or base.lower() in _RESERVED
            or base in _CXX_KEYWORDS
            or _GENERATED.fullmatch(base)
        ):
            base = f"op_{base}"
        name, k = base, 1
        while name.lower() in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name.lower())
        names[op.name] = name
    return names


def _input_layer(op: Input, g: Graph, name: str, inputs: list[str]) -> tuple[dict, dict]:
    layer = {"class_name": "Input", "name": name, "input_shape": [op.size]}
    return layer, {"result": ap_type(op.range)}


def _dense_layer(op: Dense, g: Graph, name: str, inputs: list[str]) -> tuple[dict, dict]:
    w, b = golden.dense_matrix(op)
    x = g.values[op.inputs[0]].ranges
    # The accumulator must hold every partial sum, whatever order the terms are added in:
    # bias plus any subset of the products lies in [bias + sum of negative parts,
    # bias + sum of positive parts]. Usually this is exactly the output range.
    acc = IntRange(0, 0)
    for row in op.rows:
        lo = hi = row.bias
        for c, wt in zip(row.cols, row.weights, strict=True):
            t = x[c].scaled(wt)
            lo, hi = lo + min(t.lo, 0), hi + max(t.hi, 0)
        acc = acc.union(IntRange(lo, hi))
    nonzero = [wt for row in op.rows for wt in row.weights]
    w_range = IntRange(min(nonzero, default=0), max(nonzero, default=0))
    b_range = IntRange(int(b.min()), int(b.max()))
    layer = {
        "class_name": "HwpruneDense",
        "name": name,
        "inputs": inputs,
        "ir_name": op.name,
        "n_in": op.n_in,
        "n_out": op.n_out,
        "weight_data": w,
        "bias_data": b,
    }
    precision = {
        "result": ap_type(g.values[op.name].range),
        "accum": ap_type(acc),
        "weight": ap_type(w_range),
        "bias": ap_type(b_range),
    }
    return layer, precision


def requant_params(op: Requant, x: IntRange) -> tuple[dict, IntRange]:
    """The constants of hwprune_requant.h's CONFIG_T for ``op`` on inputs in ``x``, and the
    range its work_t must hold so that no intermediate value wraps."""
    shift_left, shift_right = max(0, -op.shift), max(0, op.shift)
    half_even = op.rounding is Rounding.HALF_EVEN and shift_right > 0
    v = IntRange(x.lo << shift_left, x.hi << shift_left)
    floor = IntRange(v.lo >> shift_right, v.hi >> shift_right)
    # Rounding never goes below the floor quotient nor more than one above it.
    q = IntRange(floor.lo, floor.hi + int(half_even))
    out = IntRange(min(max(q.lo, op.lo), op.hi), min(max(q.hi, op.lo), op.hi))
    work = v.union(q).union(out)
    if half_even:
        # The kernel also forms q * 2^s and the remainder in [0, 2^s) and compares it with
        # 2^(s-1); with a narrow input (2^s above its magnitude) these need the extra bits.
        work = work.union(IntRange(floor.lo << shift_right, floor.hi << shift_right))
        work = work.union(IntRange(0, (1 << shift_right) - 1))
    params = {
        "shift_left": shift_left,
        "shift_right": shift_right,
        "half_even": half_even,
        "half": 1 << (shift_right - 1) if half_even else 0,
        "lo": op.lo,
        "hi": op.hi,
        # A clip is emitted only where the range says it can fire; where it can, lo (or hi)
        # lies in the work range, so the kernel compares in work_t.
        "clip_lo": q.lo < op.lo,
        "clip_hi": q.hi > op.hi,
    }
    return params, work


def requant_struct(index: int, ir_name: str, n_in: int, params: dict, work_t: str) -> str:
    """The C++ config struct ``config<index>`` that hwprune_requant.h reads."""
    shift = params["shift_right"] - params["shift_left"]
    rounding = "round_half_even" if params["half_even"] else "floor"
    flag = {True: "true", False: "false"}
    lines = [
        banner("//").rstrip("\n"),
        f"// hwprune-requant {json.dumps(ir_name)}",
        f"// y = clip({rounding}(x * 2^{-shift}), {params['lo']}, {params['hi']})",
        f"struct config{index} {{",
        f"    static const unsigned n_in = {n_in};",
        f"    static const int shift_left = {params['shift_left']};",
        f"    static const int shift_right = {params['shift_right']};",
        f"    static const bool half_even = {flag[params['half_even']]};",
        f"    static const long long half = {_cxx_int(params['half'])};",
        f"    static const bool clip_lo = {flag[params['clip_lo']]};",
        f"    static const bool clip_hi = {flag[params['clip_hi']]};",
        f"    static const long long lo = {_cxx_int(params['lo'])};",
        f"    static const long long hi = {_cxx_int(params['hi'])};",
        f"    typedef {work_t} work_t;",
        "};",
    ]
    return "\n".join(lines)


def _requant_layer(op: Requant, g: Graph, name: str, inputs: list[str]) -> tuple[dict, dict]:
    params, work = requant_params(op, g.values[op.inputs[0]].range)
    layer = {
        "class_name": "HwpruneRequant",
        "name": name,
        "inputs": inputs,
        "ir_name": op.name,
        "n_in": g.values[op.name].size,
        **params,
    }
    return layer, {"result": ap_type(g.values[op.name].range), "work": ap_type(work)}


def _max_layer(op: Max, g: Graph, name: str, inputs: list[str]) -> tuple[dict, dict]:
    size = max(len(grp) for grp in op.groups)
    # Short windows are padded with their own first index (max(a, a) = a): one window size
    # gives every output the same comparison tree and the index array a rectangular shape.
    groups = tuple(tuple(grp) + (grp[0],) * (size - len(grp)) for grp in op.groups)
    layer = {
        "class_name": "HwpruneMax",
        "name": name,
        "inputs": inputs,
        "ir_name": op.name,
        "n_in": g.values[op.inputs[0]].size,
        "n_out": len(groups),
        "group_size": size,
        "groups": groups,
    }
    # The comparisons run in the input type; every maximum is one of the inputs of its window,
    # inside the output's exact range.
    return layer, {"result": ap_type(g.values[op.name].range)}


def threshold_params(op: Threshold, x: Value) -> tuple[dict, IntRange, IntRange]:
    """The constants of hwprune_threshold.h's CONFIG_T for ``op`` on the input value ``x``,
    and the ranges its threshold_t and work_t must hold.

    Only thresholds that some input in an element's range passes and another fails, lo < t
    <= hi, need a comparator. Those every input passes (t <= lo) count a constant: the
    number all elements share, c0, is folded into base (base + step * c0), the rest stay as
    the threshold lo, still passed by every input. Those no input reaches (t > hi) are
    dropped, and short lists padded with hi + 1. So the count is unchanged for every input
    of the range, thresholds need at most one bit more than the input, and every constant
    fits the output's range even when the IR's base or thresholds lie far outside it.
    A layer left without comparisons keeps one column of hi + 1, as C++ has no empty arrays.
    """
    always = [
        sum(1 for t in ts if t <= r.lo) for r, ts in zip(x.ranges, op.thresholds, strict=True)
    ]
    c0 = min(always)
    lists = [
        [r.lo] * (a - c0) + [t for t in ts if r.lo < t <= r.hi]
        for r, ts, a in zip(x.ranges, op.thresholds, always, strict=True)
    ]
    used = max(len(ts) for ts in lists)
    n = max(1, used)
    rows = tuple(
        tuple(ts + [r.hi + 1] * (n - len(ts))) for r, ts in zip(x.ranges, lists, strict=True)
    )
    t_range = IntRange(min(min(row) for row in rows), max(max(row) for row in rows))
    base = op.base + op.step * c0  # the output of an element with c0 at its lowest input
    # Without comparisons the step never matters (and may not fit a long long); otherwise
    # some output moves by it, so it fits the output's range.
    step = op.step if used else 1
    # The kernel adds step once per threshold passed, multiplying nothing: work_t holds every
    # partial sum base + step * j, j = 0..n (base + step * used is an output value), and step.
    work = IntRange(base, base + step * n).union(IntRange(step, step))
    params = {"n_thresholds": n, "thresholds": rows, "base": base, "step": step}
    return params, t_range, work


def _threshold_layer(op: Threshold, g: Graph, name: str, inputs: list[str]) -> tuple[dict, dict]:
    params, t_range, work = threshold_params(op, g.values[op.inputs[0]])
    layer = {
        "class_name": "HwpruneThreshold",
        "name": name,
        "inputs": inputs,
        "ir_name": op.name,
        "n_in": g.values[op.name].size,
        **params,
    }
    precision = {
        "result": ap_type(g.values[op.name].range),
        "threshold": ap_type(t_range),
        "work": ap_type(work),
    }
    return layer, precision


# IR op kind -> hls4ml layer description and its exact precisions. A test checks that every
# kind in hwprune.ir.graph.OP_KINDS has an entry.
LAYER_BUILDERS: dict[type[Op], Callable[..., tuple[dict, dict]]] = {
    Input: _input_layer,
    Dense: _dense_layer,
    Requant: _requant_layer,
    Max: _max_layer,
    Threshold: _threshold_layer,
}


def _layer_list(g: Graph) -> tuple[list[dict], dict[str, dict]]:
    names = _hls_names(g)
    layers, precisions = [], {}
    for op in g.ops:
        build = LAYER_BUILDERS.get(type(op))
        if build is None:
            known = sorted(cls.__name__ for cls in LAYER_BUILDERS)
            raise HwpruneError(
                f"op {op.name!r} is a {type(op).__name__}, which the HLS emitter cannot "
                f"write; it handles {known}"
            )
        layer, precision = build(op, g, names[op.name], [names[i] for i in op.inputs])
        layers.append(layer)
        precisions[names[op.name]] = {"Precision": precision}
        if not isinstance(op, Input):  # an Input layer has no C++ function whose output to save
            precisions[names[op.name]]["Trace"] = True
    return layers, precisions


# --- hls4ml extension: layers, templates, the zero-term pass ----------------------------------


def _dense_config(node) -> str:
    """The parameters.h config of one HwpruneDense node: constants, types and compute()."""
    if node.get_attr("nonzero_terms") is None:
        raise HwpruneError(
            f"layer {node.name}: the {ZERO_TERM_PASS} pass did not run, so the weight matrix "
            f"was not reduced to its nonzero terms; is it still in the {BACKEND} optimize flow?"
        )
    terms = node.get_attr("nonzero_terms")
    bias = node.get_attr("bias_values")
    n_in, n_out = node.get_attr("n_in"), node.get_attr("n_out")
    reuse = int(node.get_attr("reuse_factor"))
    by_row: list[list[tuple[int, int]]] = [[] for _ in range(n_out)]
    for r, c, w in terms:
        by_row[r].append((c, w))
    out = [
        banner("//").rstrip("\n"),
        f"{_DENSE_MARK}{json.dumps(node.get_attr('ir_name'))}",
        f"// {len(terms)} nonzero weights of {n_out}x{n_in}, reuse factor {reuse}",
        f"struct config{node.index} {{",
        f"    static const unsigned n_in = {n_in};",
        f"    static const unsigned n_out = {n_out};",
        f"    static const unsigned n_nonzero = {len(terms)};",
        f"    static const unsigned reuse_factor = {reuse};",
        f"    static const unsigned multiplier_limit = {max(1, -(-len(terms) // reuse))};",
        f"    typedef {node.get_attr('accum_t').name} accum_t;",
        f"    typedef {node.get_attr('weight_t').name} weight_t;",
    ]
    # One inlined function per output row rather than one function for the layer: the same
    # statements for HLS, but g++ compiles many small functions far faster than one with
    # every product of the layer (tfc_2w2a's 15720-term layer: 175 s at -O3 in one function).
    signature = "(const data_T x[n_in], res_T y[n_out]) {"
    for r in range(n_out):
        out += [
            "",
            "    template <class data_T, class res_T>",
            f"    static void row{r}{signature}",
        ]
        out += ["        #pragma HLS INLINE", f"        accum_t acc{r} = {_cxx_int(bias[r])};"]
        out += [f"        acc{r} += x[{c}] * weight_t({_cxx_int(w)});" for c, w in by_row[r]]
        out += [f"        y[{r}] = acc{r};", "    }"]
    out += ["", "    template <class data_T, class res_T>", f"    static void compute{signature}"]
    out += ["        #pragma HLS INLINE"]
    out += [f"        row{r}<data_T, res_T>(x, y);" for r in range(n_out)]
    out += ["    }", "};", _END_MARK]
    return "\n".join(out)


def _requant_config(node) -> str:
    """The parameters.h config of one HwpruneRequant node."""
    keys = ("shift_left", "shift_right", "half_even", "half", "lo", "hi", "clip_lo", "clip_hi")
    params = {k: node.get_attr(k) for k in keys}
    name, n_in, work_t = node.get_attr("ir_name"), node.get_attr("n_in"), node.get_attr("work_t")
    return requant_struct(node.index, name, n_in, params, work_t.name)


def _const_array(decl: str, rows: tuple[tuple[int, ...], ...]) -> list[str]:
    """The out-of-class definition of a static const 2-D member array, one row per line.

    Defined after the struct, as hls4ml defines its convolution ``pixels`` arrays: a C++11
    in-class initializer would need constexpr, and parameters.h is included by the top
    function's file only, so the definition is not duplicated.
    """
    lines = [f"{decl} = {{"]
    lines += ["    {" + ", ".join(_cxx_int(v) for v in row) + "}," for row in rows]
    return [*lines, "};"]


def _max_config(node) -> str:
    """The parameters.h config of one HwpruneMax node: sizes and the window index array."""
    n_in, n_out, size = node.get_attr("n_in"), node.get_attr("n_out"), node.get_attr("group_size")
    lines = [
        banner("//").rstrip("\n"),
        f"{_MAX_MARK}{json.dumps(node.get_attr('ir_name'))}",
        f"// y[i] = max(x[j] for j in groups[i]), windows of {size}",
        f"struct config{node.index} {{",
        f"    static const unsigned n_in = {n_in};",
        f"    static const unsigned n_out = {n_out};",
        f"    static const unsigned group_size = {size};",
        "    static const unsigned groups[n_out][group_size];",
        "};",
        *_const_array(
            f"const unsigned config{node.index}::groups[{n_out}][{size}]", node.get_attr("groups")
        ),
        _END_MARK,
    ]
    return "\n".join(lines)


def _threshold_config(node) -> str:
    """The parameters.h config of one HwpruneThreshold node: constants, types, thresholds."""
    i, n_in, n = node.index, node.get_attr("n_in"), node.get_attr("n_thresholds")
    base, step = node.get_attr("base"), node.get_attr("step")
    lines = [
        banner("//").rstrip("\n"),
        f"{_THRESHOLD_MARK}{json.dumps(node.get_attr('ir_name'))}",
        f"// y = {base} + {step} * #{{k : x >= thresholds[k]}}, {n} per element "
        "(out-of-range thresholds folded)",
        f"struct config{i} {{",
        f"    static const unsigned n_in = {n_in};",
        f"    static const unsigned n_thresholds = {n};",
        f"    static const long long base = {_cxx_int(base)};",
        f"    static const long long step = {_cxx_int(step)};",
        f"    typedef {node.get_attr('threshold_t').name} threshold_t;",
        f"    typedef {node.get_attr('work_t').name} work_t;",
        "    static const threshold_t thresholds[n_in][n_thresholds];",
        "};",
        *_const_array(
            f"const config{i}::threshold_t config{i}::thresholds[{n_in}][{n}]",
            node.get_attr("thresholds"),
        ),
        _END_MARK,
    ]
    return "\n".join(lines)


# hls4ml layer class name -> (kernel function in namespace nnet, its header, the formatter of
# the layer's parameters.h config). The extension registers one config template and one
# function call template per entry.
KERNELS: dict[str, tuple[str, str, Callable]] = {
    "HwpruneDense": ("hwprune_dense", DENSE_HEADER, _dense_config),
    "HwpruneRequant": ("hwprune_requant", REQUANT_HEADER, _requant_config),
    "HwpruneMax": ("hwprune_max", MAX_HEADER, _max_config),
    "HwpruneThreshold": ("hwprune_threshold", THRESHOLD_HEADER, _threshold_config),
}


def header_source(header: str) -> Path:
    """The hand-written kernel header that a project's ``firmware/<header>`` is a copy of."""
    return (data_dir("hls") / "nnet_utils" / Path(header).name).resolve()


def _copy_used_headers(model, firmware: Path) -> None:
    """Copy into ``firmware`` the kernel headers of the model's layers that hls4ml does not
    copy into every project (see ALWAYS_COPIED)."""
    used = {
        KERNELS[layer.class_name][1] for layer in model.get_layers() if layer.class_name in KERNELS
    }
    for header in sorted(used - set(ALWAYS_COPIED)):
        shutil.copyfile(header_source(header), firmware / header)


@functools.cache
def _extension() -> SimpleNamespace:
    """Define hwprune's hls4ml layers, templates and pass, and register them once per process.

    Defined here rather than at module level so that importing this module does not import
    hls4ml (DESIGN.md keeps heavy frameworks out of codegen/ imports).
    """
    import hls4ml
    from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
    from hls4ml.model.attributes import Attribute, TypeAttribute, WeightAttribute
    from hls4ml.model.layers import Layer, register_layer
    from hls4ml.model.optimizer import OptimizerPass, get_available_passes

    class HwpruneDense(Layer):
        """y = bias + W x on integers; W arrives whole and leaves as its nonzero terms."""

        _expected_attributes = [
            Attribute("n_in"),
            Attribute("n_out"),
            Attribute("ir_name", value_type=str),
            WeightAttribute("weight"),
            WeightAttribute("bias"),
            TypeAttribute("weight"),
            TypeAttribute("bias"),
            TypeAttribute("accum"),
        ]

        def initialize(self) -> None:
            self.add_output_variable([self.get_attr("n_out")])
            self.add_weights_variable(name="weight", var_name="w{index}")
            self.add_weights_variable(name="bias", var_name="b{index}")

    class HwpruneRequant(Layer):
        """y = clip(round(x * 2**-shift), lo, hi) elementwise on integers."""

        _expected_attributes = [
            Attribute("n_in"),
            Attribute("ir_name", value_type=str),
            Attribute("shift_left"),
            Attribute("shift_right"),
            Attribute("half_even", value_type=bool),
            Attribute("half"),
            Attribute("lo"),
            Attribute("hi"),
            Attribute("clip_lo", value_type=bool),
            Attribute("clip_hi", value_type=bool),
            TypeAttribute("work"),
        ]

        def initialize(self) -> None:
            self.add_output_variable([self.get_attr("n_in")])
            self._set_type_t("work")

    class HwpruneMax(Layer):
        """y[i] = max(x[j] for j in groups[i]) on integers; windows padded to one size."""

        _expected_attributes = [
            Attribute("n_in"),
            Attribute("n_out"),
            Attribute("group_size"),
            Attribute("ir_name", value_type=str),
            Attribute("groups", value_type=tuple),
        ]

        def initialize(self) -> None:
            self.add_output_variable([self.get_attr("n_out")])

    class HwpruneThreshold(Layer):
        """y = base + step * #{k : x >= thresholds[k]} elementwise on integers."""

        _expected_attributes = [
            Attribute("n_in"),
            Attribute("n_thresholds"),
            Attribute("ir_name", value_type=str),
            Attribute("thresholds", value_type=tuple),
            Attribute("base"),
            Attribute("step"),
            TypeAttribute("threshold"),
            TypeAttribute("work"),
        ]

        def initialize(self) -> None:
            self.add_output_variable([self.get_attr("n_in")])
            self._set_type_t("threshold")
            self._set_type_t("work")

    class RemoveZeroTerms(OptimizerPass):
        """Invariant established: no HwpruneDense node holds a weight or bias array; its
        ``nonzero_terms`` lists (row, column, weight) for exactly the nonzero matrix entries,
        row-major, and ``bias_values`` the biases. Nothing downstream can emit a zero term.
        """

        name = ZERO_TERM_PASS

        def match(self, node) -> bool:
            return node.class_name == "HwpruneDense" and "weight" in node.weights

        def transform(self, model, node) -> bool:
            w = node.weights["weight"].data
            b = node.weights["bias"].data
            terms = tuple((int(r), int(c), int(w[r, c])) for r, c in zip(*w.nonzero(), strict=True))
            node.set_attr("nonzero_terms", terms)
            node.set_attr("bias_values", tuple(int(v) for v in b))
            # weight_t stays: compute() casts the weight literals to it. The biases become
            # accum_t literals, so bias_t would be an unused typedef.
            del node.weights["weight"]
            del node.weights["bias"]
            del node.types["bias_t"]
            return False  # the graph's structure is unchanged

    def templates(layer: str) -> tuple[type, type]:
        """The config and function call templates of one KERNELS entry."""
        kernel, header, config = KERNELS[layer]
        layer_class = layer_classes[layer]

        class Config(LayerConfigTemplate):
            def __init__(self) -> None:
                super().__init__(layer_class)

            def format(self, node) -> str:
                return config(node)

        class Call(FunctionCallTemplate):
            def __init__(self) -> None:
                super().__init__(layer_class, include_header=[header])

            def format(self, node) -> str:
                params = self._default_function_params(node)
                types = "{input_t}, {output_t}, {config}".format(**params)
                return f"nnet::{kernel}<{types}>({params['input']}, {params['output']});"

        return Config, Call

    layer_classes = {
        cls.__name__: cls for cls in (HwpruneDense, HwpruneRequant, HwpruneMax, HwpruneThreshold)
    }
    for name, cls in layer_classes.items():
        register_layer(name, cls)
    backend = hls4ml.backends.get_backend(BACKEND)
    prefix = backend.name.lower() + ":"
    # hls4ml refuses a second registration of a name and would append a pass to a flow twice;
    # skip what an earlier load of this module (importlib.reload) already registered.
    # Templates and the pass match nodes by class name, so earlier registrations still apply.
    registered = set(get_available_passes())
    for layer in KERNELS:
        for template in templates(layer):
            if prefix + template().get_name() not in registered:
                backend.register_template(template)
    if prefix + ZERO_TERM_PASS not in registered:
        ip_flow = hls4ml.model.flow.get_flow(backend.get_default_flow())
        optimize_flow = [f for f in ip_flow.requires if ":optimize" in f][0]
        backend.register_pass(ZERO_TERM_PASS, RemoveZeroTerms, flow=optimize_flow)
    for header in ALWAYS_COPIED:
        backend.register_source(header_source(header))
    return SimpleNamespace(hls4ml=hls4ml, backend=backend)


# --- writing ----------------------------------------------------------------------------------


def _check_target(out_dir: Path) -> None:
    if out_dir.exists() and (
        not out_dir.is_dir()
        or (any(out_dir.iterdir()) and not (out_dir / "hls4ml_config.yml").exists())
    ):
        raise HwpruneError(
            f"{out_dir} exists and is not an hls4ml project; give an empty or new directory"
        )


def graph_digest(g: Graph) -> str:
    """A hash of the graph's ops and outputs (not its meta data), recorded in NAMES_FILE so
    that a trace is never compared with the golden values of another graph."""
    return hashlib.sha256(to_json(Graph(g.ops, g.outputs)).encode()).hexdigest()[:16]


def _write_trace_names(g: Graph, model, path: Path) -> None:
    """Write NAMES_FILE: the graph's digest and, per op in graph order, its IR name, hls4ml
    layer name, output size and whether hls4ml saves its output when tracing (every op but
    the Input)."""
    names = _hls_names(g)
    layers = {layer.name: layer for layer in model.get_layers()}
    if set(layers) != set(names.values()):
        raise HwpruneError(
            f"hls4ml's layers {sorted(layers)} are not the graph's ops {sorted(names.values())}; "
            f"did an hls4ml optimizer pass add or remove a layer?"
        )
    ops = []
    for op in g.ops:
        layer = layers[names[op.name]]
        traced = bool(layer.get_attr("function_cpp", None) and layer.get_attr("trace", False))
        if traced == isinstance(op, Input):
            raise HwpruneError(
                f"layer {layer.name} (op {op.name!r}) is {'' if traced else 'not '}traced; "
                f"every op but the Input must be"
            )
        ops.append(
            {"ir": op.name, "hls": layer.name, "size": g.values[op.name].size, "traced": traced}
        )
    doc = {"format": NAMES_FORMAT, "graph": graph_digest(g), "ops": ops}
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _untrace_test_bench(path: Path) -> None:
    """Switch tracing off in hls4ml's C++ test bench (the Vitis csim/cosim one).

    hls4ml's test bench starts with ``trace_enabled = true`` and would then append every
    layer's output to a tb_data/<layer>_output.log text file per vector. hwprune traces only
    on request, through the bridge (``hwprune.sim.csim.trace_csim``); set it back to true here
    to get the logs from a Vitis C-simulation.
    """
    on = "bool trace_enabled = true;"
    text = path.read_text()
    if text.count(on) != 1:
        raise HwpruneError(f"{path} has no '{on}' line: this hls4ml version is not supported")
    path.write_text(text.replace(on, "bool trace_enabled = false;"))


def _tb_exact(g: Graph) -> int:
    """The largest input magnitude the project's test bench reads exactly."""
    r = g.inputs[0].range
    return _FLOAT_EXACT if max(-r.lo, r.hi) <= _FLOAT_EXACT else _DOUBLE_EXACT


def _double_test_bench(path: Path) -> None:
    """Make hls4ml's test bench keep the inputs it parses as double instead of float, so that
    every integer input up to 2**53 in magnitude reaches input_t exactly (atof returns a
    double; the std::vector<float> rounded it)."""
    text = path.read_text()
    edits = (
        ("std::vector<float> in;", "std::vector<double> in;"),
        ("nnet::copy_data<float, ", "nnet::copy_data<double, "),
    )
    for old, new in edits:
        if text.count(old) != 1:
            raise HwpruneError(f"{path} has no '{old}' line: this hls4ml version is not supported")
        text = text.replace(old, new)
    path.write_text(text)


def _finish(staging: Path, out_dir: Path, random_stamp: str) -> None:
    """Make the written project deterministic, then move it into place.

    hls4ml stamps each write with a random id (the name of the compiled library) and records
    the output directory; the stamp becomes a hash of the generated sources instead and the
    directory the final one. The old project is replaced only once the new one is complete.
    """
    import yaml  # an hls4ml dependency, like everything that writes projects

    digest = hashlib.sha256()
    stamped = {"build_lib.sh", "hls4ml_config.yml"}
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        rel = path.relative_to(staging).as_posix()
        # Test vectors are no source of the library: with or without them, the same stamp.
        if rel not in stamped and not rel.startswith("tb_data/"):
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    stamp = digest.hexdigest()[:8]
    build = staging / "build_lib.sh"
    text = build.read_text()
    if f"LIB_STAMP={random_stamp}\n" not in text:
        raise HwpruneError(f"{build} has no LIB_STAMP line: this hls4ml version is not supported")
    build.write_text(text.replace(f"LIB_STAMP={random_stamp}\n", f"LIB_STAMP={stamp}\n"))
    # Re-dumped as hls4ml dumps it (yaml.dump of plain data), with the final values.
    yml = staging / "hls4ml_config.yml"
    doc = yaml.safe_load(yml.read_text())
    doc.update(Stamp=stamp, OutputDir=str(out_dir))
    yml.write_text(yaml.dump(doc))
    old = out_dir.with_name(f".{out_dir.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def write_hls_project(
    g: Graph,
    out_dir: Path,
    part: str,
    clock_period_ns: float = 10.0,
    reuse_factor: int = 1,
    project_name: str = "myproject",
    vectors: np.ndarray | None = None,
) -> None:
    """Write an hls4ml Vitis (io_parallel) project for graph ``g`` into ``out_dir``.

    Every Dense layer's C++ holds exactly one product per nonzero weight at any reuse factor;
    ``reuse_factor`` R > 1 shares multipliers (pipeline II = R, at most ceil(nonzero / R)
    multipliers per layer). All types are exact integer types from the IR's ranges. The
    project is written with hls4ml's ``ModelGraph.write`` (no compilation: see
    ``hwprune.sim.csim.run_csim``), deterministically, and replaces an earlier hls4ml project
    in ``out_dir`` only once complete.

    hls4ml tracing is enabled for every layer but the input: the generated C++ saves each
    layer's output under ``#ifndef __SYNTHESIS__`` (synthesis and the product terms are
    unchanged), only while the bridge's ``allocate_trace_storage`` has switched tracing on
    (the test bench leaves it off). ``NAMES_FILE`` maps the IR op names to the layer names
    for ``hwprune.sim.csim.trace_csim`` and ``first_failing_layer``.

    ``vectors``, integer IR inputs of shape (n, input size), become the test bench's
    ``tb_data`` files with the golden outputs (see ``tb_data_files``); without them tb_data/
    stays empty and the test bench simulates a few all-zero inputs.
    """
    try:
        verify(g)
    except ValueError as e:
        raise HwpruneError(f"the graph is not valid IR ({e}); run the IR passes first") from e
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise HwpruneError(
            f"the HLS emitter handles one input and one output, the graph has "
            f"{len(g.inputs)} and {len(g.outputs)}"
        )
    if len(g.ops) < 2:
        raise HwpruneError("the graph has only its input op: there is nothing to emit")
    if not isinstance(reuse_factor, int) or reuse_factor < 1:
        raise HwpruneError(f"reuse_factor must be an integer >= 1, got {reuse_factor!r}")
    if not clock_period_ns > 0:
        raise HwpruneError(f"clock_period_ns must be positive, got {clock_period_ns!r}")
    if not re.fullmatch(r"[A-Za-z_]\w*", project_name, flags=re.ASCII):
        raise HwpruneError(f"project_name {project_name!r} must be a C identifier")
    if not part.strip():
        raise HwpruneError("part is empty; give an FPGA part string such as xc7z020clg400-1")
    tb_files = tb_data_files(g, vectors) if vectors is not None else {}

    out_dir = Path(out_dir).resolve()
    _check_target(out_dir)
    layers, precisions = _layer_list(g)
    names = _hls_names(g)
    ext = _extension()
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    config = ext.hls4ml.utils.config.create_config(
        output_dir=str(staging),
        project_name=project_name,
        backend=BACKEND,
        part=part,
        clock_period=clock_period_ns,
        io_type="io_parallel",
    )
    # The model-wide precision is never used (every layer has its own exact types) but
    # hls4ml requires one; a 1-bit type would make any fallback visible in the C-simulation.
    config["HLSConfig"] = {
        "Model": {
            "Precision": "ap_uint<1>",
            "ReuseFactor": reuse_factor,
            "Strategy": "Latency",
            "PipelineStyle": "pipeline",
            "PipelineInterval": reuse_factor,
        },
        "LayerName": precisions,
    }
    # Every layer's output is saved for trace_csim; the calls are under #ifndef __SYNTHESIS__
    # and return at once unless the bridge's allocate_trace_storage switched tracing on.
    config["TraceOutput"] = True
    try:
        model = ext.hls4ml.model.graph.ModelGraph.from_layer_list(
            config,
            layers,
            inputs=[names[g.inputs[0].name]],
            outputs=[names[g.outputs[0]]],
        )
        model.write()
        _copy_used_headers(model, staging / "firmware")
        _write_trace_names(g, model, staging / NAMES_FILE)
        _untrace_test_bench(staging / f"{project_name}_test.cpp")
        if _tb_exact(g) > _FLOAT_EXACT:
            _double_test_bench(staging / f"{project_name}_test.cpp")
        for rel, text in tb_files.items():
            (staging / rel).write_text(text)
        _finish(staging, out_dir, model.config.get_config_value("Stamp"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # only left if something failed


# --- test bench data --------------------------------------------------------------------------


def _tb_lines(rows: np.ndarray) -> str:
    # Every value followed by one space, one vector per line: what nnet::print_result writes
    # into tb_data/csim_results.log (ap_int in decimal), so a correct simulation's log equals
    # the predictions file byte for byte. No banner: the test bench would read it as a vector.
    return "".join("".join(f"{v} " for v in row) + "\n" for row in rows.tolist())


def tb_data_files(g: Graph, x: np.ndarray) -> dict[str, str]:
    """The test bench's input and expected-output files for inputs ``x``: {path: text}.

    ``x`` holds integer IR inputs, shape (n, input size), n >= 1, inside the input's range.
    The project's ports are the IR's integer levels as ap_int/ap_uint (no scale), so both
    files hold plain decimal integers, one vector per line, space-separated: the inputs
    and their golden outputs (``golden.outputs``). hls4ml's test bench reads them with atof
    into floats, then into input_t: exact for inputs up to 2**24 in magnitude; a project
    whose input range goes beyond reads doubles (exact up to 2**53, larger inputs are
    refused). Predictions it only prints, rounded to 6 digits; its results log holds the
    outputs exactly, in the predictions file's format.
    """
    (inp,) = g.inputs
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != inp.size:
        raise HwpruneError(
            f"test bench vectors must have shape (n >= 1, {inp.size}), got {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.integer):
        if not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
            raise HwpruneError("test bench vectors must be integers: the IR input levels")
    limit = _tb_exact(g)
    if np.abs(x).max() > limit:
        raise HwpruneError(
            f"a test bench input reaches {int(np.abs(x).max())}; the project's test bench "
            f"reads inputs exactly only up to 2**{limit.bit_length() - 1} in magnitude"
        )
    x = x.astype(np.int64)
    try:
        y = golden.outputs(g, x)
    except ValueError as e:
        raise HwpruneError(f"test bench vectors: {e}") from e
    return {TB_INPUTS: _tb_lines(x), TB_OUTPUTS: _tb_lines(y)}


def write_tb_data(hls_dir: Path, g: Graph, x: np.ndarray) -> None:
    """Write ``tb_data_files(g, x)`` into a project written from ``g`` by
    ``write_hls_project``, each file atomically, replacing earlier vectors.

    Vitis' C-simulation and co-simulation (build_prj.tcl) then run the test bench on ``x``;
    each writes its outputs to tb_data/csim_results.log or rtl_cosim_results.log, which for a
    correct design equal tb_data/tb_output_predictions.dat byte for byte.
    """
    hls_dir = Path(hls_dir)
    names = hls_dir / NAMES_FILE
    if not names.is_file():
        raise HwpruneError(f"{names} is missing; write the project with write_hls_project")
    if json.loads(names.read_text()).get("graph") != graph_digest(g):
        raise HwpruneError(
            f"{hls_dir} was not written from this graph (its {NAMES_FILE} records another "
            f"graph digest); give the graph the project was written from, or rewrite it"
        )
    files = tb_data_files(g, x)
    benches = sorted(hls_dir.glob("*_test.cpp"))
    if _tb_exact(g) > _FLOAT_EXACT and not all(
        "std::vector<double> in;" in b.read_text() for b in benches
    ):
        raise HwpruneError(
            f"the test bench of {hls_dir} reads its inputs as float, which rounds this graph's "
            f"wide inputs; rewrite the project with write_hls_project"
        )
    for rel, text in files.items():
        write_atomic(hls_dir / rel, text)


# --- reading the emitted C++ back -------------------------------------------------------------


def emitted_dense_terms(hls_dir: Path) -> dict[str, tuple[tuple[int, int, int], ...]]:
    """The (row, column, weight) product terms per Dense op, parsed from the emitted C++.

    Reads ``firmware/parameters.h`` of a project written by ``write_hls_project``. Raises
    ``HwpruneError`` if a Dense config holds a multiplication that is not a recognised term,
    so that a count can never silently miss products.
    """
    params = Path(hls_dir) / "firmware" / "parameters.h"
    if not params.is_file():
        raise HwpruneError(f"{params} is missing; write the project with write_hls_project")
    result: dict[str, tuple[tuple[int, int, int], ...]] = {}
    name, body = None, []
    for line in params.read_text().splitlines():
        if line.startswith(_DENSE_MARK):
            name, body = json.loads(line[len(_DENSE_MARK) :]), []
        elif line.startswith(_END_MARK) and name is not None:
            code = "\n".join(ln.split("//", 1)[0] for ln in body)
            terms = tuple((int(r), int(c), int(w)) for r, c, w in _PRODUCT.findall(code))
            if code.count("*") != len(terms):
                raise HwpruneError(
                    f"{params}: Dense {name!r} has {code.count('*')} multiplications but only "
                    f"{len(terms)} are recognised product terms; was the file edited by hand?"
                )
            result[name] = terms
            name = None
        elif name is not None:
            body.append(line)
    if name is not None:
        raise HwpruneError(f"{params}: the config of Dense {name!r} is not terminated")
    return result


def count_product_terms(hls_dir: Path) -> dict[str, int]:
    """Per Dense op name, the number of product terms in the emitted C++ (not the IR).

    Only Dense ops multiply: Max compares and Threshold compares and adds, so neither is
    listed (they have no weights and no product terms).
    """
    return {name: len(terms) for name, terms in emitted_dense_terms(hls_dir).items()}
