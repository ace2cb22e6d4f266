"""Float-scale / BatchNorm / affine chains compiled exactly into integer thresholds.

An IR value holds integers; the real tensor a QONNX model computes from them is
``g(int)``, where g starts as ``int * scale`` (a float scale, per tensor or per element) and
grows by the elementwise nodes the importer passes (Mul, Div, Add, Sub by constants,
BatchNormalization in inference mode, Relu). These nodes are kept as the model's own ONNX
nodes. When a quantizer (Quant / BipolarQuant) reads such a value, its integer output level is
a function of the integer input alone, element by element. This module evaluates that function
on EVERY integer each element can take (its IR range), by executing the chain and the
quantizer with qonnx itself (``execute_onnx`` on a small extracted model), so the semantics
are qonnx's own float32 arithmetic, then turns it into ascending integer thresholds and proves
them equal to the evaluated levels on every candidate (proof by exhaustion).

The one approximation is the chain's start value ``int * scale``: it is rounded once to
float32, while qonnx's MatMul/Gemm sums float32 products in its own order. Both are the same
whenever the products and partial sums are exact (small integer scales, as in tfc_2w2a);
otherwise they can differ by a few ulps, which matters only for an input within a few ulps of
a quantizer's decision boundary. flow's qonnx level measures this on real inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hwprune.errors import HwpruneError

# Candidates per element beyond which exhaustion is refused (memory and time stay bounded).
MAX_CANDIDATES = 2**22
# Candidates evaluated per qonnx execution (rows of the (N, C) batch).
_BATCH_ELEMS = 2**22


def run_nodes(
    nodes: Sequence[onnx.NodeProto],
    start: str,
    x: np.ndarray,
    consts: Mapping[str, np.ndarray],
    opset_imports: Sequence,
) -> np.ndarray:
    """Execute ``nodes`` with qonnx on the float32 batch ``x`` fed as tensor ``start``.

    Every node input that is neither ``start`` nor produced by an earlier node must be in
    ``consts``. Returns the last node's first output.
    """
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    produced = {start}
    inits: dict[str, onnx.TensorProto] = {}
    for n in nodes:
        for i in n.input:
            if i and i not in produced and i not in inits:
                inits[i] = numpy_helper.from_array(np.asarray(consts[i]), i)
        produced.update(n.output)
    out = nodes[-1].output[0]
    x = np.ascontiguousarray(x, dtype=np.float32)
    graph = helper.make_graph(
        [onnx.NodeProto.FromString(n.SerializeToString()) for n in nodes],
        "hwprune_chain",
        [helper.make_tensor_value_info(start, onnx.TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, None)],
        list(inits.values()),
    )
    model = ModelWrapper(helper.make_model(graph, opset_imports=list(opset_imports)))
    model = model.transform(InferShapes())
    return np.asarray(execute_onnx(model, {start: x})[out])


def start_values(ints: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float32(int * scale), rounded once: long double holds the product of a 64-bit-safe
    integer and a float64 scale (itself a product of two float32 scales) exactly on x86."""
    prod = ints.astype(np.longdouble) * np.asarray(scale, dtype=np.longdouble)
    return prod.astype(np.float32)


def candidates(ranges: Sequence[tuple[int, int]], where: str) -> np.ndarray:
    """(N, C) int64: column c lists lo_c .. hi_c, padded with hi_c to the longest range."""
    sizes = np.array([hi - lo + 1 for lo, hi in ranges], dtype=np.int64)
    if sizes.max() > MAX_CANDIDATES:
        raise HwpruneError(
            f"{where}: an input element takes {int(sizes.max())} integer values, more than "
            f"{MAX_CANDIDATES} to enumerate; lower the accumulator width (fewer bits upstream)"
        )
    lo = np.array([r[0] for r in ranges], dtype=np.int64)
    n = np.arange(int(sizes.max()), dtype=np.int64)[:, None]
    return lo[None, :] + np.minimum(n, sizes[None, :] - 1)


def quant_levels(
    nodes: Sequence[onnx.NodeProto],
    start: str,
    cand: np.ndarray,
    scale: np.ndarray,
    qscale: float | np.ndarray,
    consts: Mapping[str, np.ndarray],
    opset_imports: Sequence,
    where: str,
    shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Integer output levels of ``nodes`` (the chain, then the quantizer last) for every
    candidate integer in ``cand`` (N, C); the quantizer's output is level * qscale exactly
    (``qscale``: one float, or one per column for per-channel quantizer scales).

    ``shape`` is the start tensor's shape without the batch (default (C,)): the flat columns
    are fed in that shape so per-channel constants broadcast as in the model."""
    shape = tuple(shape) if shape is not None else (cand.shape[1],)
    out = np.empty(cand.shape, dtype=np.int64)
    step = max(1, _BATCH_ELEMS // max(cand.shape[1], 1))
    for a in range(0, cand.shape[0], step):
        x = start_values(cand[a : a + step], scale)
        xs = x.reshape(len(x), *shape)
        y = run_nodes(nodes, start, xs, consts, opset_imports).reshape(x.shape)
        qs = np.asarray(qscale, dtype=np.float64)
        lv = np.round(y.astype(np.float64) / qs)
        # The quantizer computes level * scale in float32: recover the level and prove it.
        if not np.array_equal(lv.astype(np.float32) * qs.astype(np.float32), y):
            raise HwpruneError(
                f"{where}: quantizer outputs are not integer multiples of its scale {qscale}; "
                "use a zero zero-point and a constant scale"
            )
        out[a : a + step] = lv.astype(np.int64)
    return out


def monotone_direction(levels: np.ndarray) -> int:
    """+1 if non-decreasing (constant counts as +1), -1 if non-increasing, 0 if neither."""
    d = np.diff(levels)
    if np.all(d >= 0):
        return 1
    if np.all(d <= 0):
        return -1
    return 0


def thresholds_for(lo: int, levels: np.ndarray, base: int, step: int, n_thr: int) -> tuple:
    """Ascending thresholds t_j = the smallest integer reaching level base + j * step
    (j = 1..n_thr) for the non-decreasing ``levels`` of the integers lo, lo + 1, ...

    A level reached already at lo gets threshold lo (always passed); a level never reached
    gets lo + len(levels) (never passed). Raises ValueError if the reconstruction
    base + step * #{t <= k} differs from ``levels`` on any candidate.
    """
    ts = []
    for j in range(1, n_thr + 1):
        hit = np.flatnonzero(levels >= base + j * step)
        ts.append(int(lo + (hit[0] if hit.size else len(levels))))
    k = lo + np.arange(len(levels), dtype=np.int64)
    recon = base + step * (k[:, None] >= np.array(ts, dtype=np.int64)[None, :]).sum(axis=1)
    if not np.array_equal(recon, levels):  # a level off the base + step * j grid
        raise ValueError("threshold reconstruction differs from the evaluated levels")
    return tuple(ts)


# Element-wise ops whose float32 evaluation is monotonic in their activation input (IEEE
# operations are correctly rounded, and rounding is monotonic): the sign of the direction
# is that of the constant factor (Mul, Div, BatchNormalization's gamma), -1 for a constant
# minus the activation, +1 for the rest. Quantizers (Quant, BipolarQuant, Trunc) are
# non-decreasing: round, divide by a positive scale, clip.
MONOTONE_OPS = (
    "Mul",
    "Div",
    "Add",
    "Sub",
    "BatchNormalization",
    "Relu",
    "Quant",
    "BipolarQuant",
    "Trunc",
)


def directions(
    nodes: Sequence[onnx.NodeProto],
    start: str,
    scale: np.ndarray,
    consts: Mapping[str, np.ndarray],
    shape: tuple[int, ...],
) -> np.ndarray | None:
    """Per flat element, +1 if the chain (start value int * scale, then ``nodes``) is
    non-decreasing in the integer, -1 if non-increasing; None when some node is not known
    to be monotonic (the caller then evaluates every candidate)."""
    n = int(np.prod(shape, dtype=np.int64))
    sign = np.sign(np.broadcast_to(np.asarray(scale, dtype=np.float64), (n,))).copy()
    cur = start

    def per_elem(c, axis_channel: bool = False) -> np.ndarray:
        c = np.asarray(c, dtype=np.float64)
        if axis_channel:  # one value per channel (axis 1 of the batched tensor)
            c = c.reshape((1, -1) + (1,) * (len(shape) - 1))
        return np.broadcast_to(c, (1, *shape)).reshape(-1)

    for node in nodes:
        if node.op_type not in MONOTONE_OPS:
            return None
        if node.op_type in ("Mul", "Div"):
            other = node.input[1] if node.input[0] == cur else node.input[0]
            if node.op_type == "Div" and node.input[0] != cur:
                return None  # a constant divided by the activation
            sign *= np.sign(per_elem(consts[other]))
        elif node.op_type == "Sub" and node.input[0] != cur:
            sign = -sign
        elif node.op_type == "BatchNormalization":
            sign *= np.sign(per_elem(consts[node.input[1]], axis_channel=True))
        cur = node.output[0]
    sign[sign == 0] = 1  # a constant element: any direction holds
    return sign.astype(np.int64)


def search_thresholds(
    nodes: Sequence[onnx.NodeProto],
    start: str,
    ranges: Sequence[tuple[int, int]],
    direction: np.ndarray,
    scale: np.ndarray,
    qscale: float | np.ndarray,
    qmin: int,
    step: int,
    n_thr: int,
    consts: Mapping[str, np.ndarray],
    opset_imports: Sequence,
    where: str,
    shape: tuple[int, ...],
) -> list[tuple[int, ...]]:
    """Thresholds of a chain known to be monotonic (``directions``), by binary search.

    For element c (integer x in [lo, hi]) and level j, t_j is the smallest u in the
    ascending variable u = direction * x reaching level qmin + j * step (u_hi + 1 when never
    reached, u_lo when always). A monotonic level function is fixed by these thresholds, so
    evaluating with qonnx the ~log2(range) midpoints of each search is a complete proof; the
    levels at both ends are checked to lie on the quantizer's grid. All (element, level)
    searches run together: one qonnx execution per bisection step."""
    lo = np.array([r[0] for r in ranges], dtype=np.int64)
    hi = np.array([r[1] for r in ranges], dtype=np.int64)
    u_lo = np.where(direction > 0, lo, -hi)
    u_hi = np.where(direction > 0, hi, -lo)
    want = qmin + step * np.arange(1, n_thr + 1, dtype=np.int64)[:, None]  # (n_thr, 1)
    a = np.broadcast_to(u_lo, (n_thr, len(lo))).copy()  # answer in [a, b]
    b = np.broadcast_to(u_hi + 1, (n_thr, len(lo))).copy()

    def level(u: np.ndarray) -> np.ndarray:
        x = u * direction[None, :]
        return quant_levels(nodes, start, x, scale, qscale, consts, opset_imports, where, shape)

    ends = level(np.stack([u_lo, u_hi]))
    if np.any(ends[0] > ends[1]) or np.any((ends - qmin) % step):
        raise HwpruneError(
            f"{where}: the quantizer's levels at the ends of the input range are off its grid "
            "or not ordered; the chain is not the monotonic map it was taken for"
        )
    while np.any(a < b):
        active = a < b
        mid = np.where(active, (a + b) // 2, np.minimum(a, u_hi[None, :]))
        reached = level(mid) >= want
        b = np.where(active & reached, mid, b)
        a = np.where(active & ~reached, mid + 1, a)
    return [tuple(int(t) for t in a[:, c]) for c in range(len(lo))]
