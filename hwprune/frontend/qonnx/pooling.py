"""Pooling: MaxPool becomes Max with each window listed; AveragePool over a power-of-two
window becomes a Dense of ones with a right shift (exact)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hwprune.errors import HwpruneError
from hwprune.frontend.qonnx.state import ImportState, attrs, size, windows
from hwprune.ir.graph import Dense, Max, Row


def maxpool(st: ImportState, node) -> None:
    """MaxPool as Max; windows hold only the valid (unpadded) elements."""
    a = attrs(node)
    if len([o for o in node.output if o]) != 1:
        raise HwpruneError(
            f"{st.where(node)}: the Indices output is not supported; use MaxPool "
            "without return_indices"
        )
    # max(relu(x)) == relu(max(x)): a pending ReLU stays pending through the pooling.
    x = st.dyn(node.input[0], node)
    if x.nodes:
        raise HwpruneError(
            f"{st.where(node)}: max pooling of a float map (BatchNorm / scaling) is not "
            "supported; quantize before the MaxPool"
        )
    kernel = tuple(a["kernel_shape"])
    strides, pads, dil = st.geometry(node, x, kernel)
    win, out_sp = windows(x.shape, kernel, strides, pads, dil)
    win = st.cols(x, win)
    groups = []
    for w in win.reshape(-1, win.shape[2]):
        grp = tuple(sorted(w[w >= 0].tolist()))
        if not grp:
            raise HwpruneError(
                f"{st.where(node)}: a window reads only padding; use pads smaller than the kernel"
            )
        groups.append(grp)
    shape = (x.shape[0], *out_sp)
    st.check_shape(node, shape)
    scale = window_scales(st, node, x, groups, "max")
    window = st.window(x, kernel, strides, pads, dil, x.shape[0], shape)
    op = Max(st.fresh("maxpool"), (x.op,), tuple(groups), window)
    y = st.emit(op, shape, x.exp, x.relu)
    if scale is not None:
        y = replace(y, scale=scale, start=node.output[0])
    st.env[node.output[0]] = y


def window_scales(st: ImportState, node, x, groups, what: str) -> np.ndarray | None:
    """The float scale of each window's output, or None (x is int * 2**exp).

    Max commutes with a positive scale, and a window (one channel's neighbourhood) shares
    its channel's scale, so per-tensor and per-channel scales alike pass through; a
    non-positive scale would flip the comparison, and a window mixing scales has no single
    one: both are refused."""
    if x.scale is None:
        return None
    s = np.asarray(x.scale, dtype=np.float64)
    if np.any(s <= 0):
        raise HwpruneError(
            f"{st.where(node)}: {what} pooling of values with a non-positive scale "
            f"({s.min():.3g}) would flip the comparison; quantize with positive scales first"
        )
    first = np.array([s[g[0]] for g in groups])
    if any(np.any(s[list(g)] != f) for g, f in zip(groups, first)):
        raise HwpruneError(
            f"{st.where(node)}: a {what} pooling window mixes elements of different scales; "
            "quantize with one scale per channel before the pooling"
        )
    return first


def avgpool(st: ImportState, node) -> None:
    """AveragePool over 2**k elements as a Dense of ones with w_exp = -k (exact)."""
    a = attrs(node)
    x = st.value(node.input[0], node)
    kernel = tuple(a["kernel_shape"])
    strides, pads, dil = st.geometry(node, x, kernel)
    if any(pads):
        raise HwpruneError(
            f"{st.where(node)}: pads {list(pads)} are not supported; use AvgPool without padding"
        )
    n = size(kernel)
    if n & (n - 1):
        raise HwpruneError(
            f"{st.where(node)}: window {'x'.join(map(str, kernel))} holds {n} elements, "
            "not a power of two, so the average is not exact; power-of-two windows "
            "(2, 4, 2x2, 4x4) are supported"
        )
    win, out_sp = windows(x.shape, kernel, strides, pads, dil)
    win = st.cols(x, win)
    ones = (1,) * n
    rows = tuple(Row(0, tuple(sorted(w.tolist())), ones) for w in win.reshape(-1, n))
    shape = (x.shape[0], *out_sp)
    st.check_shape(node, shape)
    # sum * 2**-k is the average exactly; the next Quant requantizes it as usual.
    k = n.bit_length() - 1
    window = st.window(x, kernel, strides, pads, dil, x.shape[0], shape)
    op = Dense(st.fresh("avgpool"), (x.op,), size(x.shape), rows, -k, window)
    # Depthwise: each channel has its own all-ones window, so the kernel is C x window.
    st.layers[op.name] = {
        "kind": "avgpool",
        "kernel_weights": x.shape[0] * n,
        "kernel_nonzeros": x.shape[0] * n,
        "positions": win.shape[1],
    }
    y = st.emit(op, shape, x.exp - k)
    scale = window_scales(st, node, x, [r.cols for r in rows], "average")
    if scale is not None:  # sum * 2**-k on each window's float scale
        y = replace(y, scale=scale * 2.0**-k, start=node.output[0])
    st.env[node.output[0]] = y
