"""hwprune's IR ops as hls4ml layers: the layer list handed to hls4ml's
``ModelGraph.from_layer_list``, each layer with its exact ap_int/ap_uint precisions, a C
identifier per op, the constants of the Requant and Threshold kernels (``requant_params``,
``threshold_params``) and hls4ml's reuse-factor rule for Dense layers.

Plain data: this module does not import hls4ml.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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
)

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
