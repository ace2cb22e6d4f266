"""Layers: Gemm, MatMul and Conv become Dense ops of nonzero terms only.

A convolution's rows are its (output channel, output position) pairs in C order; terms that
would read zero padding are dropped. A bias on the accumulator's power-of-two grid is folded
into the rows; one off the grid joins the pending float map, so the next quantizer's
thresholds take it exactly.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx

from hwprune.errors import HwpruneError
from hwprune.frontend.qonnx.state import Act, Const, ImportState, attrs, size, windows
from hwprune.ir.graph import Dense, Row


def per_output(scale: np.ndarray, shape: tuple[int, ...], axis: int, where: str) -> np.ndarray:
    """A weight scale broadcast to the weights' ``shape``, one value per index of ``axis``
    (the output axis); the scale may not vary along any other axis."""
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64), shape)
    s = np.moveaxis(s, axis, 0).reshape(shape[axis], -1)
    if not np.all(s == s[:, :1]):
        raise HwpruneError(
            f"{where}: the weight scale varies within an output channel; use per-tensor or "
            "per-output-channel weight scales"
        )
    return s[:, 0].copy()


def weights(st: ImportState, node) -> Const:
    """The node's quantized constant weights (its second input)."""
    w = st.get(node.input[1])
    if not isinstance(w, Const):
        raise HwpruneError(f"{st.where(node)}: weights must be constant")
    if w.ints is None:
        raise HwpruneError(
            f"{st.where(node)}: weights are not quantized; use a quantized layer "
            "(e.g. Brevitas QuantLinear / QuantConv2d with a fixed-point weight quantizer)"
        )
    return w


# Largest integer column factor a per-channel input scale may need (see column_scale).
MAX_FACTOR_BITS = 40


def column_scale(st: ImportState, x: Act, node) -> tuple[float, np.ndarray | None]:
    """The real scale of a layer's integer input as ``base * factor[j]``, exactly.

    Per-tensor: (scale, None). Per-channel (each element j its own positive float scale
    s_j, as after a Brevitas per-channel quantizer and pooling): every float is m * 2**e
    with an integer m, so s_j = factor_j * base with base = 2**min(e) and integer factors;
    the layer multiplies each weight by its column's factor and the sum stays an exact
    integer on the scale base (per row, times the weight scale)."""
    if x.scale is None:
        return 2.0**x.exp, None
    s = np.asarray(x.scale, dtype=np.float64)
    if np.all(s == s[0]):
        return float(s[0]), None
    if np.any(s <= 0):
        raise HwpruneError(
            f"{st.where(node)}: the input has a non-positive per-channel scale; quantize "
            "with positive scales before this layer"
        )
    m, e = np.frexp(s)
    mant = (m * 2.0**53).astype(np.int64)  # exact: m has 53 significant bits at most
    exps = e.astype(np.int64) - 53
    tz = np.array([(int(v) & -int(v)).bit_length() - 1 for v in mant], dtype=np.int64)
    mant, exps = mant >> tz, exps + tz
    low = int(exps.min())
    factors = [int(v) << int(k - low) for v, k in zip(mant, exps)]
    if max(f.bit_length() for f in factors) > MAX_FACTOR_BITS:
        raise HwpruneError(
            f"{st.where(node)}: the input's per-channel scales span more than "
            f"{MAX_FACTOR_BITS} bits ({s.min():.3g} to {s.max():.3g}), too wide to carry "
            "exactly; use a per-tensor activation quantizer before this layer"
        )
    return 2.0**low, np.array(factors, dtype=np.int64)


def dense(st: ImportState, node, x: Act, w: Const, transposed: bool) -> Act:
    """A fully connected layer (Gemm / MatMul) as a Dense of its nonzero terms."""
    mat = w.ints.T if transposed else w.ints  # (n_in, n_out)
    if mat.ndim != 2:
        raise HwpruneError(f"{st.where(node)}: weights must be 2-D, got shape {mat.shape}")
    if len(x.shape) != 1:
        raise HwpruneError(
            f"{st.where(node)}: input shape {x.shape} is not flat; put a Flatten "
            "(nn.Flatten) before the linear layer"
        )
    n_in = x.shape[0]
    if mat.shape[0] != n_in:
        raise HwpruneError(
            f"{st.where(node)}: weight shape {mat.shape} does not match {n_in} inputs"
        )
    base, factor = column_scale(st, x, node)
    rows = []
    for j in range(mat.shape[1]):
        col = mat[:, j]
        nz = np.flatnonzero(col)
        # A pending Transpose renumbers the columns; terms stay sorted by IR column.
        order = np.argsort(st.cols(x, nz), kind="stable")
        cols, ws = st.cols(x, nz)[order], col[nz][order]
        if factor is not None:  # per-channel input scales: integer column factors
            ws = ws * factor[cols]
        rows.append(Row(0, tuple(cols.tolist()), tuple(ws.tolist())))
    out_scale = None
    if x.scale is not None or w.scale is not None:
        ws = w.scale.T if (w.scale is not None and transposed) else w.scale
        ws = 2.0**w.exp if ws is None else per_output(ws, mat.shape, 1, st.where(node))
        out_scale = np.broadcast_to(base * ws, (mat.shape[1],)).copy()
    w_exp = w.exp if out_scale is None else -x.exp  # float: output exp 0, nominal
    op = Dense(st.fresh("dense"), (x.op,), n_in, tuple(rows), w_exp)
    st.layers[op.name] = {
        "kind": "linear",
        "kernel_weights": int(mat.size),
        "kernel_nonzeros": int(np.count_nonzero(mat)),
        "positions": 1,
    }
    d = st.emit(op, (mat.shape[1],), x.exp + w_exp)
    if out_scale is not None:
        d = replace(d, scale=out_scale, start=node.output[0])
    return d


def add_bias(st: ImportState, node, acc: Act, b: Const) -> bool:
    """Fold a constant bias into the Dense producing ``acc``, exactly or not at all.

    The bias broadcasts (ONNX rules) against the accumulator's shape with its batch of 1.
    Returns False (nothing changed) when it is not on the accumulator's power-of-two grid
    or not directly after the Dense: the caller then keeps it in the float map.
    """
    op = st.ops[-1]
    if not (isinstance(op, Dense) and op.name == acc.op) or not acc.exact or acc.relu:
        return False
    if b.ints is not None:
        ints = b.ints.astype(np.float64) * 2.0 ** (b.exp - acc.exp)
    else:
        ints = np.asarray(b.raw, dtype=np.float64) / 2.0**acc.exp  # exact: 2**k scales
    try:
        ints = np.broadcast_to(ints, (1, *acc.shape)).reshape(-1)
    except ValueError:
        raise HwpruneError(
            f"{st.where(node)}: bias of shape {ints.shape} does not broadcast to the "
            f"output shape {acc.shape}"
        ) from None
    if not np.all(ints == np.round(ints)) or np.any(np.abs(ints) >= 2.0**52):
        return False  # off the grid: the next quantizer takes it exactly (thresholds)
    rows = tuple(replace(r, bias=r.bias + int(v)) for r, v in zip(op.rows, ints))
    st.ops.pop()
    st.emit(replace(op, rows=rows), acc.shape, acc.exp)
    return True


def bias_chain(st: ImportState, node, acc: Act, b_name: str) -> Act:
    """A Gemm / Conv bias off the integer grid: the layer's accumulator (a tensor the
    model does not name, ``<output>__hwprune_acc``) plus an Add of the bias joins the
    float map, so the next quantizer's thresholds take it exactly."""
    start = node.output[0] + "__hwprune_acc"
    # The Add is the layer's own bias: messages about it name the layer (its doc_string).
    add = onnx.helper.make_node(
        "Add",
        [start, b_name],
        [node.output[0]],
        name=node.name + "__hwprune_bias",
        doc_string=node.doc_string,
    )
    acc = st.floated(start, acc, node)
    return replace(acc, start=start, nodes=acc.nodes + (add,))


def gemm(st: ImportState, node) -> None:
    """Gemm (transA 0, alpha 1): a Dense plus its bias."""
    a = attrs(node)
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) not in (0.0, 1.0):
        raise HwpruneError(
            f"{st.where(node)}: only Gemm with transA=0, alpha=1, beta=1 is supported"
        )
    x = st.value(node.input[0], node)
    acc = dense(st, node, x, weights(st, node), transposed=bool(a.get("transB", 0)))
    if len(node.input) > 2 and node.input[2] and a.get("beta", 1.0) != 0.0:
        b = st.get(node.input[2])
        if not isinstance(b, Const):
            raise HwpruneError(f"{st.where(node)}: bias must be constant")
        if not add_bias(st, node, acc, b):
            acc = bias_chain(st, node, acc, node.input[2])
    st.env[node.output[0]] = acc


def matmul(st: ImportState, node) -> None:
    """MatMul by a constant right-hand side: a Dense."""
    x = st.value(node.input[0], node)
    if not isinstance(st.get(node.input[1]), Const):
        raise HwpruneError(f"{st.where(node)}: only a constant right-hand side is supported")
    st.env[node.output[0]] = dense(st, node, x, weights(st, node), transposed=False)


def conv(st: ImportState, node) -> None:
    """Conv as a Dense: one row per (output channel, output position), C order."""
    a = attrs(node)
    x = st.value(node.input[0], node)
    w = weights(st, node)
    groups = int(a.get("group", 1))
    kernel = tuple(int(k) for k in w.ints.shape[2:])
    strides, pads, dil = st.geometry(node, x, kernel)
    n_out, c_per = w.ints.shape[0], w.ints.shape[1]
    if groups < 1 or x.shape[0] != c_per * groups or n_out % groups:
        raise HwpruneError(
            f"{st.where(node)}: weights {w.ints.shape} with group {groups} do not match "
            f"{x.shape[0]} input channels"
        )
    win, out_sp = windows(x.shape, kernel, strides, pads, dil)
    win = st.cols(x, win)
    n_pos = win.shape[1]
    mat = w.ints.reshape(n_out, -1)
    base, factor = column_scale(st, x, node)
    rows = []
    for o in range(n_out):
        # Output channel o reads its group's input channels only (group 1: all of them).
        g0 = (o // (n_out // groups)) * c_per
        cols_of = win[g0 : g0 + c_per].transpose(1, 0, 2).reshape(n_pos, -1)
        wo = mat[o]
        for p in range(n_pos):
            # Terms reading padding are dropped (the padding is zero); so are zero weights.
            keep = (cols_of[p] >= 0) & (wo != 0)
            cs, ws = cols_of[p][keep], wo[keep]
            if factor is not None:  # per-channel input scales: integer column factors
                ws = ws * factor[cs]
            order = np.argsort(cs, kind="stable")  # a pending Transpose renumbers columns
            rows.append(Row(0, tuple(cs[order].tolist()), tuple(ws[order].tolist())))
    shape = (mat.shape[0], *out_sp)
    st.check_shape(node, shape)
    window = st.window(x, kernel, strides, pads, dil, groups, shape)
    op = Dense(st.fresh("conv"), (x.op,), size(x.shape), tuple(rows), w.exp, window)
    st.layers[op.name] = {
        "kind": f"conv{len(kernel)}d",
        "kernel_weights": int(mat.size),
        "kernel_nonzeros": int(np.count_nonzero(mat)),
        "positions": n_pos,
    }
    if x.scale is not None or w.scale is not None:
        ws = 2.0**w.exp if w.scale is None else per_output(w.scale, w.ints.shape, 0, st.where(node))
        per_ch = np.broadcast_to(base * ws, (mat.shape[0],))
        op = replace(op, w_exp=-x.exp)  # float scale: output exp 0, nominal
        acc = st.emit(op, shape, 0)
        acc = replace(acc, scale=np.repeat(per_ch, n_pos), start=node.output[0])
    else:
        acc = st.emit(op, shape, x.exp + w.exp)
    if len(node.input) > 2 and node.input[2]:
        b = st.get(node.input[2])
        if not isinstance(b, Const):
            raise HwpruneError(f"{st.where(node)}: bias must be constant")
        # ONNX Conv's B is one value per output channel: give it the channel axis.
        per_ch = (-1,) + (1,) * len(kernel)
        ints = None if b.ints is None else b.ints.reshape(per_ch)
        raw = np.asarray(b.raw).reshape(per_ch)
        if not add_bias(st, node, acc, Const(ints, b.exp, raw)):
            name = node.input[2] + "__hwprune_ch"
            st.env[name] = Const(ints, b.exp, raw)
            acc = bias_chain(st, node, acc, name)
    st.env[node.output[0]] = acc
