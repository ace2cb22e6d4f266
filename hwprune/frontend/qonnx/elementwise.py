"""Element-wise and shape ops: Mul / Div / Add / Sub by constants, BatchNormalization, Relu,
Identity, Reshape / Flatten and Transpose.

Before the input quantizer they are host-side preprocessing (kept on the FloatInput); on an
activation a constant Add on the accumulator's grid is a folded bias, every other map joins
the pending float map that the next quantizer compiles into thresholds; shape ops cost no
hardware (IR values are flat, read in C order; a Transpose is a pending permutation).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hwprune.errors import HwpruneError
from hwprune.frontend.qonnx.layers import add_bias
from hwprune.frontend.qonnx.state import Const, FloatInput, ImportState, attrs, size


def elementwise(st: ImportState, node) -> None:
    """Mul / Div / Add / Sub with one constant operand: host-side preprocessing on the
    graph input, a folded bias (Add on the integer grid), or part of a float map."""
    names = list(node.input)
    ops = [st.get(n) for n in names]
    k = 0 if not isinstance(ops[0], Const) else 1
    if isinstance(ops[k], Const) or not isinstance(ops[1 - k], Const):
        raise HwpruneError(
            f"{st.where(node)}: only {node.op_type} of an activation and a constant is supported"
        )
    if node.op_type == "Div" and k != 0:
        raise HwpruneError(
            f"{st.where(node)}: dividing a constant by an activation is not supported"
        )
    src, name = ops[k], names[k]
    if isinstance(src, FloatInput):
        shape = st.out_shape(node)
        st.env[node.output[0]] = replace(src, shape=shape, nodes=src.nodes + (node,))
        return
    src = st.dyn(name, node)
    if node.op_type == "Add" and add_bias(st, node, src, ops[1 - k]):
        st.env[node.output[0]] = src
        return
    st.env[node.output[0]] = st.append(node, name, src)


def batchnorm(st: ImportState, node) -> None:
    """BatchNormalization (inference) joins the float map; its parameters are constants."""
    if attrs(node).get("training_mode", 0):
        raise HwpruneError(f"{st.where(node)}: training_mode 1 is not supported")
    for n in node.input[1:]:
        if not isinstance(st.get(n), Const):
            raise HwpruneError(f"{st.where(node)}: parameters must be constants")
    src = st.get(node.input[0])
    if isinstance(src, FloatInput):
        st.env[node.output[0]] = replace(src, nodes=src.nodes + (node,))
        return
    st.env[node.output[0]] = st.append(node, node.input[0], st.dyn(node.input[0], node))


def relu(st: ImportState, node) -> None:
    """Relu: a pending clip at 0 on an exact value, else one more node of the float map."""
    src = st.get(node.input[0])
    if isinstance(src, FloatInput):
        st.env[node.output[0]] = replace(src, nodes=src.nodes + (node,))
        return
    v = st.dyn(node.input[0], node)
    if v.exact:
        st.env[node.output[0]] = replace(v, relu=True)
    else:  # a float map: the ReLU is one more elementwise node
        st.env[node.output[0]] = st.append(node, node.input[0], v)


def identity(st: ImportState, node) -> None:
    """Identity: the same tensor under another name."""
    st.env[node.output[0]] = st.get(node.input[0])


def reshape(st: ImportState, node) -> None:
    """Reshape / Flatten: the flat C-order vector is unchanged, only the shape moves."""
    src = st.get(node.input[0])
    # Constants are reshaped by qonnx cleanup's constant folding, never here.
    if isinstance(src, Const):
        raise HwpruneError(
            f"{st.where(node)}: reshaping a constant is not supported; run qonnx cleanup"
        )
    shape = st.out_shape(node)
    if size(shape) != size(src.shape):
        raise HwpruneError(
            f"{st.where(node)}: reshape from {src.shape} to {shape} changes the size"
        )
    if isinstance(src, FloatInput):  # host-side preprocessing
        st.env[node.output[0]] = replace(src, shape=shape, nodes=src.nodes + (node,))
        return
    if src.nodes:
        raise HwpruneError(
            f"{st.where(node)}: reshaping a float map (BatchNorm / scaling) is not "
            "supported; quantize before the reshape"
        )
    start = None if src.scale is None else node.output[0]
    st.env[node.output[0]] = replace(src, shape=shape, start=start)


def transpose(st: ImportState, node) -> None:
    """Transpose: folded on constants, host-side before the input quantizer, and on an
    activation a pending permutation (``Act.perm``) that the next layer or pooling reads
    through (its columns / windows are renumbered): no hardware."""
    src = st.get(node.input[0])
    perm = attrs(node).get("perm")
    if isinstance(src, Const):
        t = lambda a: None if a is None else np.transpose(a, perm)  # noqa: E731
        st.env[node.output[0]] = Const(t(src.ints), src.exp, t(src.raw), t(src.scale))
        return
    shape = st.out_shape(node)
    if isinstance(src, FloatInput):  # host-side preprocessing
        st.env[node.output[0]] = replace(src, shape=shape, nodes=src.nodes + (node,))
        return
    src = st.dyn(node.input[0], node)
    rank = len(src.shape) + 1
    perm = list(range(rank))[::-1] if perm is None else list(perm)
    if perm[0] != 0 or sorted(perm) != list(range(rank)):
        raise HwpruneError(f"{st.where(node)}: perm {perm} moves the batch axis; keep axis 0 first")
    if src.nodes:
        raise HwpruneError(
            f"{st.where(node)}: transposing a float map (BatchNorm / scaling) is not "
            "supported; quantize before the Transpose"
        )
    idx = np.arange(size(src.shape)) if src.perm is None else src.perm
    new = np.transpose(idx.reshape(src.shape), [p - 1 for p in perm[1:]]).reshape(-1)
    if tuple(src.shape[p - 1] for p in perm[1:]) != shape:
        raise HwpruneError(f"{st.where(node)}: output shape {shape} differs from perm")
    keep = None if np.array_equal(new, np.arange(new.size)) else new
    start = None if src.scale is None else node.output[0]
    st.env[node.output[0]] = replace(src, shape=shape, perm=keep, start=start)
