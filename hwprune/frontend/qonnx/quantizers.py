"""Quantizers: Quant, BipolarQuant and Trunc, on constants and on activations.

On a constant (weights, biases) a quantizer is run with qonnx's own functions, so the integers
are exactly the ones qonnx execution uses. On an activation it becomes an IR op: a Requant
(shift and clip) when every scale is a power of two, a sign Threshold for 1-bit signed, and
otherwise exact integer thresholds found by exhausting every integer the input can take
(chains.py). A quantizer reading the float graph input is the hardware input port
(boundary.input_quant).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from hwprune.errors import HwpruneError
from hwprune.frontend.qonnx.state import Act, Const, FloatInput, ImportState, attrs, size
from hwprune.ir.graph import Dense, IntRange, Requant, Rounding, Row, Threshold, shift_round

# Input integers per element up to which a quantizer's levels are evaluated on every one
# (proof by exhaustion); wider inputs of monotonic chains are bisected (chains.py).
EXHAUSTIVE_RANGE = 2**16

ROUNDING = {"FLOOR": Rounding.FLOOR, "ROUND": Rounding.HALF_EVEN, "HALF_EVEN": Rounding.HALF_EVEN}


def try_pow2(scale: np.ndarray) -> int | None:
    """The exponent of a per-tensor power-of-two scale, else None (a float or per-channel
    scale, handled exactly by chains.py)."""
    s = np.asarray(scale, dtype=np.float64)
    if s.size != 1:
        return None
    v = float(s.reshape(()))
    e = math.log2(v) if v > 0 else float("nan")
    return int(round(e)) if v > 0 and e == round(e) else None


def quant(st: ImportState, node) -> None:
    """qonnx Quant: on a constant, its integers; on the graph input, the input port; on an
    activation, a Requant, a sign or exact thresholds."""
    from qonnx.custom_op.general.intquant import int_quant, max_int, min_int

    from hwprune.frontend.qonnx.boundary import input_quant

    a = attrs(node)
    x_name, s_name, z_name, b_name = node.input
    for n in (s_name, z_name, b_name):
        if n not in st.inits:
            raise HwpruneError(
                f"{st.where(node)}: scale, zero point and bit width must be constants"
            )
    scale, zp, bits = st.inits[s_name], st.inits[z_name], st.inits[b_name]
    bw = float(np.asarray(bits).reshape(-1)[0])
    if bw != int(bw) or bw < 1:
        raise HwpruneError(
            f"{st.where(node)}: bit width {bw} is not supported (1 or more integer bits)"
        )
    bw = int(bw)
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    mode = a.get("rounding_mode", "ROUND").upper()
    if mode not in ROUNDING:
        raise HwpruneError(
            f"{st.where(node)}: rounding mode {mode} is not supported; "
            f"use one of {sorted(ROUNDING)}"
        )
    lo, hi = int(min_int(signed, narrow, bw)), int(max_int(signed, narrow, bw))
    src = st.get(x_name)
    z = np.asarray(zp, dtype=np.float64)
    if not isinstance(src, Const) and np.any(z != 0):
        # round(x / s + z) - z = round(x / s) for an integer z: the zero point only moves the
        # clip range, so the levels stay exact integers (qonnx outputs (level - z) * s).
        if z.size != 1 or z.reshape(()) != np.round(z.reshape(())) or (signed and bw == 1):
            raise HwpruneError(
                f"{st.where(node)}: zero point {z.reshape(-1)[:4].tolist()} is not one integer "
                "for the tensor; use a per-tensor integer zero point or a symmetric quantizer"
            )
        lo, hi = lo - int(z.reshape(())), hi - int(z.reshape(()))
    if isinstance(src, Const):
        # The node's own arrays, so the integers are exactly those qonnx execution uses.
        q = int_quant(src.raw, scale, zp, bits, signed, narrow, mode)
        st.env[node.output[0]] = const_ints(st, node, q, scale)
        return
    exp = try_pow2(scale)
    if isinstance(src, FloatInput):  # quantizer of a graph input: the hardware input port
        sgn = signed and bw == 1  # qonnx's 1-bit signed Quant is the sign function
        input_quant(st, node, src, scale, exp, IntRange(-1, 1) if sgn else IntRange(lo, hi), sgn)
        return
    src = st.dyn(x_name, node)
    if signed and bw == 1:  # qonnx's int_quant: a 1-bit signed Quant is the sign function
        lo, hi = -1, 1
    st.no_perm(src, node)
    if exp is None or not src.exact:
        step = 2 if signed and bw == 1 else 1
        st.env[node.output[0]] = threshold_quant(st, node, src, scale, lo, hi, step)
        return
    if signed and bw == 1:
        st.env[node.output[0]] = sign(st, node, src, exp)
        return
    if src.relu:
        lo = max(lo, 0)  # ReLU then monotonic rounding == rounding then clip at 0
    op = Requant(st.fresh("act"), (src.op,), exp - src.exp, lo, hi, ROUNDING[mode])
    st.env[node.output[0]] = replace(st.emit(op, src.shape, exp), perm=src.perm)


def trunc(st: ImportState, node) -> None:
    """qonnx Trunc (v2: x, scale, zero point, input bits, output scale, output bits), as
    Brevitas exports after an average pool: level = clip(round(x / scale) / 2**k,
    output range), rounded (floor) to an integer, times the output scale.

    Exact integer op: a Requant (right shift by k, clip) when that reproduces qonnx's
    levels on every integer the input can take, else a Threshold; both proven by the
    exhaustive qonnx evaluation of chains.py."""
    from qonnx.custom_op.general.quant import max_int, min_int

    if len(node.input) != 6:
        raise HwpruneError(
            f"{st.where(node)}: Trunc with {len(node.input)} inputs (v1) is not "
            "supported; export Trunc v2 (x, scale, zeropt, in bits, out scale, out bits)"
        )
    for n in node.input[1:]:
        if n not in st.inits:
            raise HwpruneError(
                f"{st.where(node)}: scales, zero point and bit widths must be constants"
            )
    scale, zp, _, out_scale, out_bits = (st.inits[n] for n in node.input[1:])
    if np.any(zp != 0):
        raise HwpruneError(
            f"{st.where(node)}: nonzero zero point is not supported; use a zero zero-point"
        )
    a = attrs(node)
    bw = int(np.asarray(out_bits).reshape(-1)[0])
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    lo, hi = int(min_int(signed, narrow, bw)), int(max_int(signed, narrow, bw))
    if not isinstance(st.get(node.input[0]), Act):
        raise HwpruneError(
            f"{st.where(node)}: input {st.tensor(node.input[0])!r} must be a quantized activation"
        )
    src = st.dyn(node.input[0], node)
    st.no_perm(src, node)
    # qonnx's own truncation factor: 2**round(log2(output scale / scale)), per channel.
    ratio = np.asarray(out_scale, dtype=np.float64) / np.asarray(scale, dtype=np.float64)
    ks = np.unique(np.round(np.log2(ratio)))
    mode = a.get("rounding_mode", "FLOOR").upper()
    # A plain shift only when every channel shifts alike (else: thresholds, still exact).
    shift = (int(ks[0]), ROUNDING[mode]) if mode in ROUNDING and ks.size == 1 else None
    d = threshold_quant(st, node, src, out_scale, lo, hi, 1, shift)
    st.env[node.output[0]] = d


def bipolar_quant(st: ImportState, node) -> None:
    """qonnx BipolarQuant: binary weights (+-1 on the scale) or a sign activation."""
    from qonnx.custom_op.general.bipolar_quant import binary_quant

    x_name, s_name = node.input[:2]
    if s_name not in st.inits:
        raise HwpruneError(f"{st.where(node)}: the scale must be a constant")
    scale = st.inits[s_name]
    src = st.get(x_name)
    if isinstance(src, Const):  # binary weights: integers +-1 on the scale
        q = binary_quant(src.raw, scale)
        st.env[node.output[0]] = const_ints(st, node, q, scale)
        return
    exp = try_pow2(scale)
    if isinstance(src, FloatInput):  # the sign of the graph input, taken on the host
        from hwprune.frontend.qonnx.boundary import input_quant

        input_quant(st, node, src, scale, exp, IntRange(-1, 1), True)
        return
    src = st.dyn(x_name, node)
    if exp is None or not src.exact or src.perm is not None:
        st.no_perm(src, node)
        st.env[node.output[0]] = threshold_quant(st, node, src, scale, -1, 1, 2)
        return
    st.env[node.output[0]] = sign(st, node, src, exp)


def const_ints(st: ImportState, node, q: np.ndarray, scale: np.ndarray) -> Const:
    """Integers of quantized constants ``q`` = ints * scale, proven exact."""
    exp = try_pow2(scale)
    if exp is not None:
        ints = np.round(np.asarray(q, dtype=np.float64) / 2.0**exp).astype(np.int64)
        return Const(ints, exp, q)
    s = np.asarray(scale, dtype=np.float32)
    ints = np.round(np.asarray(q, dtype=np.float64) / s.astype(np.float64))
    if not np.array_equal(ints.astype(np.float32) * s, np.asarray(q, dtype=np.float32)):
        raise HwpruneError(
            f"{st.where(node)}: quantized constants are not integer multiples of the "
            "scale; use a zero zero-point"
        )
    full = np.broadcast_to(s.astype(np.float64), np.shape(q)).copy()
    return Const(ints.astype(np.int64), 0, q, full)


def threshold_quant(
    st: ImportState,
    node,
    src: Act,
    scale,
    qmin: int,
    qmax: int,
    step: int,
    shift: tuple[int, Rounding] | None = None,
) -> Act:
    """A quantizer reading a float map: exact integer thresholds by exhaustion.

    The quantizer's output level is evaluated with qonnx for every integer each element
    can take; a non-increasing element negates its Dense row (weights and bias) so that
    every element's thresholds ascend. Output: levels base qmin, ``step``; the real value
    is level * quantizer scale, carried as the value's float scale (IR exp: the scale's
    exponent if it is a power of two, else 0, nominal).

    ``shift`` (a Trunc's right shift and rounding): if clip(round(int * 2**-shift)) equals
    the evaluated level of every candidate of every element, a Requant is emitted instead
    of a Threshold (cheaper, and proven equal by the same exhaustion).
    """
    from hwprune.frontend.qonnx import chains

    where = st.where(node)
    s = np.asarray(scale, dtype=np.float64)
    if s.size != 1 and src.perm is not None:
        raise HwpruneError(
            f"{where}: a per-channel quantizer reads a transposed activation; quantize "
            "before the Transpose"
        )
    if np.any(s <= 0):
        raise HwpruneError(f"{where}: quantizer scale {s.reshape(-1)[:4]} is not positive")
    # One float scale per flat element (C order): per-tensor or per-channel quantizers alike.
    try:
        qs = np.broadcast_to(s, (1, *src.shape)).reshape(-1).copy()
    except ValueError:
        raise HwpruneError(
            f"{where}: scale of shape {tuple(s.shape)} does not broadcast to the activation's "
            f"shape {(1, *src.shape)}"
        ) from None
    qscale = float(qs[0]) if s.size == 1 else qs
    src = st.floated(node.input[0], src, node)
    ranges = [(r.lo, r.hi) for r in st.vals[src.op].ranges]
    nodes = src.nodes + (node,)
    consts = st.consts(nodes, src.start)
    opsets = st.model.model.opset_import
    exp = try_pow2(s)
    n_thr = (qmax - qmin) // step
    widest = max(hi - lo + 1 for lo, hi in ranges)
    dirs = None
    if widest > EXHAUSTIVE_RANGE:
        dirs = chains.directions(nodes, src.start, src.scale, consts, src.shape)
    if dirs is not None:
        # Too many integers to evaluate each, and every node is monotonic: bisection.
        ts_all = chains.search_thresholds(
            nodes,
            src.start,
            ranges,
            dirs,
            src.scale,
            qscale,
            qmin,
            step,
            n_thr,
            consts,
            opsets,
            where,
            src.shape,
        )
        flips = [c for c in range(len(ranges)) if dirs[c] < 0]
    else:
        cand = chains.candidates(ranges, where)
        levels = chains.quant_levels(
            nodes, src.start, cand, src.scale, qscale, consts, opsets, where, src.shape
        )
        if shift is not None:
            d = shift_if_exact(st, node, src, ranges, levels, qmin, qmax, shift, exp)
            if d is not None:
                if exp is None:
                    d = replace(d, scale=qs, start=node.output[0])
                return replace(d, perm=src.perm)
        ts_all, flips = [], []
        for c, (lo, hi) in enumerate(ranges):
            lv = levels[: hi - lo + 1, c]
            direction = chains.monotone_direction(lv)
            if direction == 0:
                raise HwpruneError(
                    f"{where}: the output level of element {c} is not monotonic in its integer "
                    "input, so it has no thresholds; only monotonic scale/BatchNorm chains are "
                    "supported"
                )
            if direction < 0:  # negate the integer: -x runs through the levels ascending
                flips.append(c)
                lo, lv = -hi, lv[::-1]
            try:
                ts_all.append(chains.thresholds_for(lo, lv, qmin, step, n_thr))
            except ValueError:
                raise HwpruneError(
                    f"{where}: element {c}'s levels are off the quantizer's grid; the "
                    "threshold reconstruction failed"
                ) from None
    if flips:
        negate_rows(st, node, src, flips)
    out_exp = 0 if exp is None else exp
    op = Threshold(st.fresh("thr"), (src.op,), tuple(ts_all), qmin, step, out_exp)
    d = st.emit(op, src.shape, out_exp)
    if exp is None:
        d = replace(d, scale=qs, start=node.output[0])
    return replace(d, perm=src.perm)


def shift_if_exact(st: ImportState, node, src: Act, ranges, levels, qmin, qmax, shift, exp):
    """A Requant (right shift, clip) if it reproduces ``levels`` on every candidate and
    its output exponent is the quantizer's (when that is a power of two); else None."""
    k, rounding = shift
    in_exp = st.vals[src.op].exp
    if exp is not None and in_exp + k != exp:
        return None
    for c, (lo, hi) in enumerate(ranges):
        ints = range(lo, hi + 1)
        recon = [min(max(shift_round(v, k, rounding), qmin), qmax) for v in ints]
        if not np.array_equal(np.array(recon, dtype=np.int64), levels[: hi - lo + 1, c]):
            return None
    op = Requant(st.fresh("trunc"), (src.op,), k, qmin, qmax, rounding)
    return st.emit(op, src.shape, in_exp + k)


def negate_rows(st: ImportState, node, src: Act, flips: list[int]) -> None:
    """Negate the weights and bias of Dense rows ``flips`` (their elements' levels fall
    as the integer rises). Allowed only when the Dense and the chain feed only this
    quantizer, so no other reader sees the negated integers."""
    k = next(i for i, op in enumerate(st.ops) if op.name == src.op)
    op = st.ops[k]
    tensors = [src.start] + [n.output[0] for n in src.nodes]
    shared = any(len(st.model.find_consumers(t) or []) > 1 for t in tensors)
    read = any(src.op in o.inputs for o in st.ops[k + 1 :])
    if not isinstance(op, Dense) or shared or read:
        raise HwpruneError(
            f"{st.where(node)}: the output level falls as the integer input rises and "
            "the producer is not a Dense feeding only this quantizer, so its rows cannot "
            "be negated; use a positive BatchNorm gamma / scale"
        )
    rows = list(op.rows)
    for c in flips:
        r = rows[c]
        rows[c] = Row(-r.bias, r.cols, tuple(-w for w in r.weights))
    new = replace(op, rows=tuple(rows))
    st.ops[k] = new
    st.vals[new.name] = new.infer(tuple(st.vals[i] for i in new.inputs))


def sign(st: ImportState, node, src, exp: int) -> Act:
    """y = +1 if x >= 0 else -1 on the scale 2**exp (qonnx's binary_quant)."""
    # Real x >= 0 exactly when its integer is >= 0 (scales are positive).
    v = st.value(node.input[0], node)
    n = size(v.shape)
    op = Threshold(st.fresh("sign"), (v.op,), ((0,),) * n, -1, 2, exp)
    return replace(st.emit(op, v.shape, exp), perm=v.perm)
