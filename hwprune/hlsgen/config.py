"""The parameters.h config of each of hwprune's hls4ml layers: the C++ structs (constants,
types, the Dense layers' product terms as literals) that the extension's config templates
write, between the markers ``hwprune.hlsgen.readback`` parses back.

Also the names of the hls4ml backend and of the zero-term optimizer pass, which the
extension registers and the Dense config requires. This module does not import hls4ml.
"""

from __future__ import annotations

import json

from hwprune.errors import HwpruneError
from hwprune.resources import banner

BACKEND = "Vitis"
ZERO_TERM_PASS = "hwprune_remove_zero_terms"

# Markers around each generated Dense, Max and Threshold config in parameters.h; the op name is
# JSON-quoted so any IR name survives the round trip through the C++ comment.
_DENSE_MARK = "// hwprune-dense "
_MAX_MARK = "// hwprune-max "
_THRESHOLD_MARK = "// hwprune-threshold "
_END_MARK = "// hwprune-end"


def _cxx_int(v: int) -> str:
    # Above 32 bits a plain literal would still be fine in C++11 (it widens to long), but
    # the suffix makes the intent visible to readers of the generated code.
    return f"{v}LL" if not -(2**31) <= v < 2**31 else str(v)


def requant_struct(index: int, ir_name: str, n_in: int, params: dict, work_t: str) -> str:
    """The C++ config struct ``config<index>`` that hwprune_requant.h reads."""
    return _requant_struct(f"config{index}", ir_name, n_in, params, work_t)


def _requant_struct(struct: str, ir_name: str, n_in: int, params: dict, work_t: str) -> str:
    shift = params["shift_right"] - params["shift_left"]
    rounding = "round_half_even" if params["half_even"] else "floor"
    flag = {True: "true", False: "false"}
    lines = [
        banner("//").rstrip("\n"),
        f"// hwprune-requant {json.dumps(ir_name)}",
        f"// y = clip({rounding}(x * 2^{-shift}), {params['lo']}, {params['hi']})",
        f"struct {struct} {{",
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


def _dense_config(node) -> str:
    """The parameters.h config of one HwpruneDense node: constants, types and compute()."""
    if node.get_attr("nonzero_terms") is None:
        raise HwpruneError(
            f"layer {node.name}: the {ZERO_TERM_PASS} pass did not run, so the weight matrix "
            f"was not reduced to its nonzero terms; is it still in the {BACKEND} optimize flow?"
        )
    return dense_struct(
        f"config{node.index}",
        node.get_attr("ir_name"),
        node.get_attr("nonzero_terms"),
        node.get_attr("bias_values"),
        node.get_attr("n_in"),
        node.get_attr("n_out"),
        int(node.get_attr("reuse_factor")),
        node.get_attr("accum_t").name,
        node.get_attr("weight_t").name,
    )


def dense_struct(
    struct: str,
    ir_name: str,
    terms: tuple[tuple[int, int, int], ...],
    bias: tuple[int, ...],
    n_in: int,
    n_out: int,
    reuse: int,
    accum_t: str,
    weight_t: str,
) -> str:
    """The C++ config struct ``struct`` of a Dense layer with the nonzero (row, column, weight)
    ``terms``: constants, types and compute(), one product per term, between the markers
    ``hwprune.hlsgen.readback`` parses back."""
    by_row: list[list[tuple[int, int]]] = [[] for _ in range(n_out)]
    for r, c, w in terms:
        by_row[r].append((c, w))
    out = [
        banner("//").rstrip("\n"),
        f"{_DENSE_MARK}{json.dumps(ir_name)}",
        f"// {len(terms)} nonzero weights of {n_out}x{n_in}, reuse factor {reuse}",
        f"struct {struct} {{",
        f"    static const unsigned n_in = {n_in};",
        f"    static const unsigned n_out = {n_out};",
        f"    static const unsigned n_nonzero = {len(terms)};",
        f"    static const unsigned reuse_factor = {reuse};",
        f"    static const unsigned multiplier_limit = {max(1, -(-len(terms) // reuse))};",
        f"    typedef {accum_t} accum_t;",
        f"    typedef {weight_t} weight_t;",
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
    keys = ("ir_name", "n_in", "n_out", "group_size", "groups")
    return max_struct(f"config{node.index}", *(node.get_attr(k) for k in keys))


def max_struct(
    struct: str, ir_name: str, n_in: int, n_out: int, size: int, groups: tuple[tuple[int, ...], ...]
) -> str:
    """The C++ config struct ``struct`` that hwprune_max.h reads, with its index array."""
    lines = [
        banner("//").rstrip("\n"),
        f"{_MAX_MARK}{json.dumps(ir_name)}",
        f"// y[i] = max(x[j] for j in groups[i]), windows of {size}",
        f"struct {struct} {{",
        f"    static const unsigned n_in = {n_in};",
        f"    static const unsigned n_out = {n_out};",
        f"    static const unsigned group_size = {size};",
        "    static const unsigned groups[n_out][group_size];",
        "};",
        *_const_array(f"const unsigned {struct}::groups[{n_out}][{size}]", groups),
        _END_MARK,
    ]
    return "\n".join(lines)


def _threshold_config(node) -> str:
    """The parameters.h config of one HwpruneThreshold node: constants, types, thresholds."""
    keys = ("ir_name", "n_in", "n_thresholds", "base", "step")
    return threshold_struct(
        f"config{node.index}",
        *(node.get_attr(k) for k in keys),
        node.get_attr("threshold_t").name,
        node.get_attr("work_t").name,
        node.get_attr("thresholds"),
    )


def threshold_struct(
    struct: str,
    ir_name: str,
    n_in: int,
    n: int,
    base: int,
    step: int,
    threshold_t: str,
    work_t: str,
    thresholds: tuple[tuple[int, ...], ...],
) -> str:
    """The C++ config struct ``struct`` that hwprune_threshold.h reads, with its thresholds."""
    lines = [
        banner("//").rstrip("\n"),
        f"{_THRESHOLD_MARK}{json.dumps(ir_name)}",
        f"// y = {base} + {step} * #{{k : x >= thresholds[k]}}, {n} per element "
        "(out-of-range thresholds folded)",
        f"struct {struct} {{",
        f"    static const unsigned n_in = {n_in};",
        f"    static const unsigned n_thresholds = {n};",
        f"    static const long long base = {_cxx_int(base)};",
        f"    static const long long step = {_cxx_int(step)};",
        f"    typedef {threshold_t} threshold_t;",
        f"    typedef {work_t} work_t;",
        "    static const threshold_t thresholds[n_in][n_thresholds];",
        "};",
        *_const_array(f"const {struct}::threshold_t {struct}::thresholds[{n_in}][{n}]", thresholds),
        _END_MARK,
    ]
    return "\n".join(lines)
