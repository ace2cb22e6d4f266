"""Thresholds as an exact integer multiply-add, shift and clip.

A Threshold element counts the thresholds its input x reaches, c(x) = #{k : x >= t_k}, with
t_1 <= ... <= t_N. The affine form

    c'(x) = clip(floor((m * x + b) / 2**s), 0, N)          (m > 0)

is itself a threshold function: c'(x) >= k exactly when m * x + b >= k * 2**s, that is when
x >= T_k = ceil((k * 2**s - b) / m). So c' equals c on every integer of x's range [lo, hi]
if and only if, for every k, T_k and t_k are on the same side of the range or equal:

    t_k <= lo:       T_k <= lo        <=>  b >= k * 2**s - m * lo
    lo < t_k <= hi:  T_k == t_k       <=>  k * 2**s - m * t_k <= b <= k * 2**s - m * t_k + m - 1
    t_k > hi:        T_k > hi         <=>  b <= k * 2**s - m * hi - 1

(the middle line: (t_k - 1) * m < k * 2**s - b <= t_k * m). Every condition bounds b, so for
given (m, s) the feasible offsets are one interval, found in O(N); ``prove`` re-derives the
T_k and compares them, which is the proof on every integer x in [lo, hi] (a test also
checks it by exhaustion). An element whose range decides every threshold is the constant
c(lo): m = 0, b = c(lo) * 2**s.

The search takes the smallest s for which some m is feasible, and a few larger ones, and
keeps the m with the fewest canonical signed digits (the cheapest constant multiplier),
then the smallest s. The feasible m at a shift form one interval (``slope_interval``).
Not every threshold layer has an affine form (a chain that is not linear, such as a
non-uniform quantizer, gives thresholds no floor of a line reaches): ``fit_element`` returns
None then.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwprune.hw.csd import csd_digits
from hwprune.ir.graph import Dense, Graph, IntRange, Requant, Rounding, Row, Threshold

# Shifts tried beyond the smallest that works: a larger shift can give a multiplier with
# fewer signed digits (1.125 = 9/8 has 2, 1.1 = 17/16 + ... more), never fewer bits of slope.
EXTRA_SHIFTS = 3
MAX_SHIFT = 40  # beyond 2**40 the accumulator would exceed any width the emitter allows
MAX_CANDIDATES = 4096  # multipliers looked at per shift for the fewest signed digits


@dataclass(frozen=True)
class AffineFit:
    """c(x) = clip(floor((m * x + b) / 2**s), 0, n) on the element's range."""

    m: int
    b: int
    s: int
    n: int


def offset_interval(ts: tuple[int, ...], r: IntRange, m: int, s: int) -> tuple[int, int]:
    """The offsets b for which (m, b, s) reproduces thresholds ``ts`` on range r (module
    docstring); empty when lo > hi."""
    lo, hi = -(1 << 62), 1 << 62
    for k, t in enumerate(ts, start=1):
        base = (k << s) - m * t
        if t <= r.lo:
            lo = max(lo, (k << s) - m * r.lo)
        elif t <= r.hi:
            lo, hi = max(lo, base), min(hi, base + m - 1)
        else:
            hi = min(hi, (k << s) - m * r.hi - 1)
    return lo, hi


def prove(ts: tuple[int, ...], r: IntRange, fit: AffineFit) -> bool:
    """True when the fit's thresholds T_k agree with ``ts`` on every integer of r."""
    if fit.n != len(ts):
        return False
    if fit.m == 0:
        c = sum(1 for t in ts if t <= r.lo)
        return all(t <= r.lo or t > r.hi for t in ts) and fit.b >> fit.s == c
    for k, t in enumerate(ts, start=1):
        big = -(-((k << fit.s) - fit.b) // fit.m)  # ceil
        if t <= r.lo:
            ok = big <= r.lo
        elif t <= r.hi:
            ok = big == t
        else:
            ok = big > r.hi
        if not ok:
            return False
    return True


def slope_interval(ts: tuple[int, ...], r: IntRange, s: int) -> tuple[int, int]:
    """The multipliers m >= 1 for which some offset b works at shift s: exact.

    Each condition of the module docstring is a lower bound alpha + beta * m or an upper
    bound gamma + delta * m on b; an integer b exists exactly when every lower bound is at
    most every upper bound (Fourier-Motzkin elimination of b; both bounds are integers for
    integer m). Each such pair bounds m on one side; the interval is their intersection.
    """
    k = np.arange(1, len(ts) + 1, dtype=np.int64) << s
    t = np.asarray(ts, dtype=np.int64)
    below, inside, above = t <= r.lo, (t > r.lo) & (t <= r.hi), t > r.hi
    # lower bounds of b: alpha + beta * m; upper bounds: gamma + delta * m
    alpha = np.concatenate([k[below], k[inside]])
    beta = np.concatenate([np.full(below.sum(), -r.lo), -t[inside]])
    gamma = np.concatenate([k[inside] - 1, k[above] - 1])
    delta = np.concatenate([1 - t[inside], np.full(above.sum(), -r.hi)])
    lo, hi = 1, 1 << 62
    if len(alpha) and len(gamma):
        coef = beta[:, None] - delta[None, :]  # coef * m <= rhs
        rhs = gamma[None, :] - alpha[:, None]
        if np.any((coef == 0) & (rhs < 0)):
            return 1, 0
        pos, neg = coef > 0, coef < 0
        if pos.any():
            hi = int(np.min(rhs[pos] // coef[pos]))
        if neg.any():
            lo = max(lo, int(np.max(-(rhs[neg] // -coef[neg]))))  # ceil(rhs / coef)
    return lo, hi


def _cheapest(lo: int, hi: int) -> int:
    """The integer in [lo, hi] with the fewest canonical signed digits (the smallest on a tie)."""
    best = lo
    for m in range(lo, min(hi, lo + MAX_CANDIDATES - 1) + 1):
        if len(csd_digits(m)) < len(csd_digits(best)):
            best = m
    return best


def fit_element(ts: tuple[int, ...], r: IntRange) -> AffineFit | None:
    """The cheapest (m, b, s) reproducing thresholds ``ts`` (ascending) on range r, or None."""
    n = len(ts)
    if all(t <= r.lo or t > r.hi for t in ts):
        return AffineFit(0, sum(1 for t in ts if t <= r.lo), 0, n)
    found: list[AffineFit] = []
    first = None
    for s in range(MAX_SHIFT + 1):
        if first is not None and s > first + EXTRA_SHIFTS:
            break
        lo_m, hi_m = slope_interval(ts, r, s)
        if lo_m <= hi_m:
            m = _cheapest(lo_m, hi_m)
            found.append(AffineFit(m, offset_interval(ts, r, m, s)[0], s, n))
            first = s if first is None else first
    if not found:
        return None
    best = min(found, key=lambda f: (len(csd_digits(f.m)), f.s, f.m))
    assert prove(ts, r, best), (ts, r, best)
    return best


def common_shift(fits: list[AffineFit]) -> list[AffineFit]:
    """The fits rescaled to one shift (the largest): m and b times 2**(s_max - s), exact."""
    s = max(f.s for f in fits)
    return [AffineFit(f.m << (s - f.s), f.b << (s - f.s), s, f.n) for f in fits]


# --- graph rewrites -------------------------------------------------------------------------
#
# A Threshold with step 1 becomes a Requant (shift s, clip [base, base + N], FLOOR) after an
# integer multiply-add per element. Two forms:
#
#   separate  a new Dense reads the Threshold's input, one term per element (m_i * x_i) and
#             the bias b_i + base * 2**s; the Requant is fused into it;
#   folded    when the input is a Dense that only this Threshold reads, the multiply-add is
#             folded into it: row i's weights times m_i, its bias m_i * bias_i + b_i + ...;
#             the Threshold's layer disappears (the constant-matrix kernels see m_i * W).
#
# Both keep the Threshold's name on the Requant (its readers and the graph outputs are
# unchanged) and give every downstream value the same range: the Requant of a monotonic
# line is exactly the count on the range's ends.

FORMS = ("thresholds", "multiply-add-shift-clip", "folded")


def layer_fit(g: Graph, op: Threshold) -> list[AffineFit] | None:
    """Per element the fit at one common shift, or None when the layer has no affine form
    (a step other than 1, or an element no floor of a line reproduces)."""
    if op.step != 1:
        return None
    x = g.values[op.inputs[0]]
    n = max((len(ts) for ts in op.thresholds), default=0)
    fits = []
    for ts, r in zip(op.thresholds, x.ranges, strict=True):
        # A shorter list gets thresholds no x in range reaches, so every element counts to n.
        padded = tuple(ts) + (r.hi + 1,) * (n - len(ts))
        f = fit_element(padded, r)
        if f is None:
            return None
        fits.append(f)
    return common_shift(fits) if fits else None


def _requant(op: Threshold, src: str, fits: list[AffineFit]) -> Requant:
    n = fits[0].n
    return Requant(op.name, (src,), fits[0].s, op.base, op.base + n, Rounding.FLOOR)


def _unique(g: Graph, name: str) -> str:
    names = {o.name for o in g.ops}
    out, k = name, 2
    while out in names:
        out, k = f"{name}_{k}", k + 1
    return out


def split_threshold(g: Graph, name: str) -> Graph | None:
    """``g`` with Threshold ``name`` as a multiply-add layer and a fused Requant, or None."""
    op = g.op(name)
    assert isinstance(op, Threshold)
    fits = layer_fit(g, op)
    if fits is None:
        return None
    x = g.values[op.inputs[0]]
    s = fits[0].s
    rows = tuple(
        Row(f.b + (op.base << s), (i,), (f.m,)) if f.m else Row(f.b + (op.base << s), (), ())
        for i, f in enumerate(fits)
    )
    mul = Dense(_unique(g, f"{name}_mul"), op.inputs, x.size, rows, op.exp - s - x.exp)
    ops = []
    for o in g.ops:
        ops.extend([mul, _requant(op, mul.name, fits)] if o.name == name else [o])
    return replace(g, ops=tuple(ops))


def fold_threshold(g: Graph, name: str) -> Graph | None:
    """``g`` with Threshold ``name`` folded into the Dense it reads, or None when it reads
    something else, or a Dense that another op also reads, or has no affine form."""
    op = g.op(name)
    assert isinstance(op, Threshold)
    src = g.op(op.inputs[0])
    if not isinstance(src, Dense) or len(g.consumers(src.name)) != 1 or src.name in g.outputs:
        return None
    fits = layer_fit(g, op)
    if fits is None:
        return None
    s = fits[0].s
    rows = tuple(
        Row(f.m * r.bias + f.b + (op.base << s), r.cols, tuple(f.m * w for w in r.weights))
        if f.m
        else Row(f.b + (op.base << s), (), ())
        for r, f in zip(src.rows, fits, strict=True)
    )
    x = g.values[src.inputs[0]]
    dense = replace(src, rows=rows, w_exp=op.exp - s - x.exp)
    ops = []
    for o in g.ops:
        if o.name == src.name:
            ops.append(dense)
        elif o.name == name:
            ops.append(_requant(op, src.name, fits))
        else:
            ops.append(o)
    return replace(g, ops=tuple(ops))


REWRITES = {"multiply-add-shift-clip": split_threshold, "folded": fold_threshold}
