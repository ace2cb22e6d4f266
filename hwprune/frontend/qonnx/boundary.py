"""The host boundary: what stays outside the hardware, before and after it.

Float preprocessing before the first quantizer, or of an integer-annotated input (e.g.
BIPOLAR), stays on the host: the host input names the tensor whose values / scale are the IR
input; so does an input quantizer with a float scale (its integer levels are the IR input).
A float tail after the last layer stays on the host too: the host output names the tensor the
output integers are (times its scale, plus ``offset``: a last layer's off-grid float bias),
the tail's node names and a final Softmax (taken as argmax of the integer logits, softmax
being monotonic).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hwprune.errors import HwpruneError
from hwprune.frontend.qonnx.state import Act, FloatInput, ImportState, attrs, size
from hwprune.ir.graph import Input, IntRange


def int_input(st: ImportState, name: str, src: FloatInput, node) -> Act:
    """The graph input with an integer datatype, through its host-side affine chain, as
    the IR input: the chain is evaluated with qonnx on every value of the datatype, and
    the IR input ranges over the (integer) image."""
    from hwprune.frontend.qonnx.chains import run_nodes

    dt = st.model.get_tensor_datatype(src.name)
    if not dt.is_integer() or dt.get_num_possible_values() > 2**16:
        raise HwpruneError(
            f"{st.where(node)}: reads the float graph input {src.name!r} ({dt.name}) "
            "without a Quant; put an input quantizer (Quant) in front of it or annotate an "
            "integer datatype (e.g. BIPOLAR, INT8)"
        )
    in_shape = (1, *st.model.get_tensor_shape(src.name)[1:])
    vals = [v for v in range(int(dt.min()), int(dt.max()) + 1) if dt.allowed(v)]
    image = []
    for v in vals:
        x = np.full(in_shape, v, dtype=np.float32)
        if src.nodes:
            consts = st.consts(src.nodes, src.name)
            opsets = st.model.model.opset_import
            x = run_nodes(src.nodes, src.name, x, consts, opsets)
        image.append(np.asarray(x, dtype=np.float64).reshape(-1))
    img = np.stack(image)
    if not np.all(img == np.round(img)):
        raise HwpruneError(
            f"{st.where(node)}: the input preprocessing maps {dt.name} values to "
            "non-integers; quantize the input with a Quant node instead"
        )
    op = Input(src.name, (), size(src.shape), IntRange(int(img.min()), int(img.max())), 0)
    st.host_input = {"tensor": name, "scale": 1.0}
    return st.emit(op, src.shape, 0)


def input_quant(
    st: ImportState, node, src: FloatInput, scale, exp, rng: IntRange, sign: bool
) -> None:
    """The graph input's quantizer: its integer levels are the IR Input.

    A float (non power-of-two) scale, or float preprocessing before the quantizer, stays on
    the host: the host computes the levels (the host input), and a float scale joins the
    value's pending float map like any other float scale."""
    from hwprune.frontend.qonnx.quantizers import pow2_exp
    from hwprune.frontend.qonnx.quantizers import sign as sign_op

    if np.asarray(scale).size != 1:
        pow2_exp(scale, st.where(node))  # raises: per-channel input scales
    if sign:
        sign_op(st, node, src, 0)  # raises: a bipolar input quantizer
    n = size(src.shape)
    op = Input(src.name, (), n, rng, 0 if exp is None else exp)
    if exp is None:
        qs = float(np.asarray(scale, dtype=np.float64).reshape(()))
        st.host_input = {"tensor": node.output[0], "scale": qs}
        d = st.emit(op, src.shape, 0)
        st.env[node.output[0]] = replace(d, scale=np.full(n, qs), start=node.output[0])
        return
    if src.nodes:  # float preprocessing stays on the host: the IR input is the levels
        st.host_input = {"tensor": node.output[0], "scale": 2.0**exp}
    st.env[node.output[0]] = st.emit(op, src.shape, exp)


def softmax(st: ImportState, node) -> None:
    """A final Softmax stays on the host: the hardware outputs the integer logits; softmax
    is monotonic, so argmax of the logits is argmax of the softmax (host output)."""
    outs = {o.name for o in st.model.graph.output}
    shape = st.model.get_tensor_shape(node.input[0])
    axis = attrs(node).get("axis", -1)
    if node.output[0] not in outs or not shape or len(shape) != 2 or axis not in (-1, 1):
        raise HwpruneError(
            f"{st.where(node)}: only a final Softmax over the last axis of a (1, N) "
            "tensor is supported (taken as argmax on the host); remove it or move it last"
        )
    if not isinstance(st.get(node.input[0]), Act):
        raise HwpruneError(f"{st.where(node)}: input must be a layer's output")
    st.softmax_node = node
    st.env[node.output[0]] = st.get(node.input[0])


def host_output(st: ImportState, out: Act, name: str, last) -> dict | None:
    """What the host does after the hardware, or None (the output is int * 2**exp).

    The hardware's integers k are qonnx tensor ``tensor`` = k * scale + offset (offset: a
    layer's off-grid float bias, else absent); the ``tail`` nodes (elementwise, by
    constants) map that tensor on, and a final Softmax (``softmax``: its node) is taken as
    argmax of the logits on the host."""
    sm = st.softmax_node
    if out.exact:
        if sm is None:
            return None
        v = st.value(name, last)
        return {"tensor": sm.input[0], "scale": 2.0**v.exp, "tail": [], "softmax": sm.name}
    sc = out.scale
    ho: dict = {
        "tensor": out.start,
        "scale": float(sc[0]) if np.all(sc == sc[0]) else [float(v) for v in sc],
    }
    nodes = list(out.nodes)
    if out.start not in st.model.get_all_tensor_names():
        # The layer's accumulator is unnamed in the model (a bias chain): the host tensor
        # is the layer's output, the accumulator plus the bias (``offset``).
        add = nodes.pop(0)
        b = np.asarray(st.get(add.input[1]).raw, dtype=np.float32)
        off = np.broadcast_to(b, (1, *out.shape)).reshape(-1)
        ho["tensor"] = add.output[0]
        ho["offset"] = [float(v) for v in off]
    ho["tail"] = [n.name for n in nodes]
    if sm is not None:
        ho["softmax"] = sm.name
    return ho
