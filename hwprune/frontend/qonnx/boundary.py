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
from hwprune.ir.graph import HostInput, HostOutput, Input, IntRange

# Nodes that only move elements: host-side, they leave the value set of the input unchanged.
SHAPE_OPS = ("Reshape", "Flatten", "Transpose", "Identity", "Squeeze", "Unsqueeze")

# Values of the input a host-side float chain is evaluated on, at most (one qonnx run each).
MAX_INPUT_VALUES = 2**16


def float_input(st: ImportState, name: str, src: FloatInput, node) -> Act:
    """The float graph input read by arithmetic without a quantizer, as the IR input.

    Its value set is the stated input type (``--input-type``: the host quantizes the input
    to it, ap_fixed semantics) or the input's annotated integer datatype (e.g. BIPOLAR). A
    host-side chain of element-wise nodes after it is evaluated with qonnx on every value of
    that set; its image must lie on a power-of-two grid, whose integers are the IR input."""
    from hwprune.frontend.qonnx.chains import run_nodes

    dt = st.model.get_tensor_datatype(src.name)
    t = st.input_type
    user = st.tensor(src.name)  # the input's name in the user's file, for messages
    if t is None and (not dt.is_integer() or dt.get_num_possible_values() > MAX_INPUT_VALUES):
        raise HwpruneError(
            f"{st.where(node)}: reads the float graph input {user!r} ({dt.name}) without a "
            "quantizer; state the precision the host quantizes it to with --input-type (for "
            "example --input-type 'fixed<16,6>', hls4ml's default) or put a Quant in front of it"
        )
    if t is not None and dt.name != "FLOAT32":
        raise HwpruneError(
            f"--input-type {t.spelling()}: input {user!r} is annotated {dt.name} in the "
            "model, which already fixes its values; drop --input-type"
        )
    if t is not None and t.width > MAX_INPUT_BITS:
        raise HwpruneError(
            f"--input-type {t.spelling()}: {t.width} bits cannot be fed to qonnx exactly "
            f"(float32 holds {MAX_INPUT_BITS} significant bits); use {MAX_INPUT_BITS} bits or fewer"
        )
    elementwise = [n for n in src.nodes if n.op_type not in SHAPE_OPS]
    if t is not None:
        lo, hi, exp = t.lo, t.hi, t.exp
        how = (
            f"the host quantizes float input {user!r} to {t.spelling()} (ap_fixed "
            f"semantics: rounding {t.rounding}, overflow {t.saturation})"
        )
    else:
        lo, hi, exp = int(dt.min()), int(dt.max()), 0
        how = f"the host feeds input {user!r} as its annotated {dt.name} values"
    if elementwise:
        names = ", ".join(n.op_type for n in elementwise)
        lo, hi, exp = _chain_image(st, src, node, lo, hi, exp, dt, run_nodes)
        how += f", then applies the model's float preprocessing ({names})"
    op = Input(src.name, (), size(src.shape), IntRange(lo, hi), exp)
    st.host_input = HostInput(name, 2.0**exp, None if t is None else t.spelling(), how)
    return st.emit(op, src.shape, exp)


# qonnx executes float32: an input wider than its significand is not fed exactly.
MAX_INPUT_BITS = 24


def _chain_image(st: ImportState, src: FloatInput, node, lo, hi, exp, dt, run_nodes):
    """Range and grid exponent of the host chain's image of every input value."""
    if hi - lo + 1 > MAX_INPUT_VALUES:
        raise HwpruneError(
            f"{st.where(node)}: the float preprocessing of input {st.tensor(src.name)!r} would "
            f"have to be evaluated on {hi - lo + 1} values, more than {MAX_INPUT_VALUES}; use a "
            "narrower --input-type or quantize the preprocessed input with a Quant node"
        )
    in_shape = tuple(st.model.get_tensor_shape(src.name)[1:])
    consts = st.consts(src.nodes, src.name)
    opsets = st.model.model.opset_import
    vals = np.array(
        [v for v in range(lo, hi + 1) if st.input_type is not None or dt.allowed(v)],
        dtype=np.float64,
    )
    # Every element of the input takes the same value in one row; rows are batched unless a
    # shape op (whose constant target shape holds the batch of 1) is among the nodes.
    step = max(1, 2**22 // max(size(in_shape), 1))
    if any(n.op_type in SHAPE_OPS for n in src.nodes):
        step = 1
    image = []
    for a in range(0, len(vals), step):
        v = vals[a : a + step] * 2.0**exp
        x = np.broadcast_to(v.reshape(-1, *([1] * len(in_shape))), (len(v), *in_shape))
        y = run_nodes(src.nodes, src.name, x.astype(np.float32), consts, opsets)
        image.append(np.asarray(y, dtype=np.float64).reshape(len(v), -1))
    img = np.concatenate(image)
    # The coarsest power-of-two grid holding every image value (integers: exponent 0).
    for e in range(0, -48, -1):
        if np.all(img * 2.0**-e == np.round(img * 2.0**-e)):
            ints = np.round(img * 2.0**-e)
            return int(ints.min()), int(ints.max()), e
    raise HwpruneError(
        f"{st.where(node)}: the input preprocessing maps the input's values off any "
        "power-of-two grid; quantize the preprocessed input with a Quant node instead"
    )


def input_quant(
    st: ImportState, node, src: FloatInput, scale, exp, rng: IntRange, sign: bool
) -> None:
    """The graph input's quantizer: its integer levels are the IR Input.

    A float (non power-of-two) scale, float preprocessing before the quantizer, or a sign
    (BipolarQuant, 1-bit signed Quant) stays on the host: the host computes the levels (the
    host input), and a float scale joins the value's pending float map like any other."""
    if st.input_type is not None:
        raise HwpruneError(
            f"--input-type {st.input_type.spelling()}: the model quantizes its input itself "
            f"({st.where(node)}); drop --input-type"
        )
    n = size(src.shape)
    op = Input(src.name, (), n, rng, 0 if exp is None else exp)
    kind = "sign (" + node.op_type + ")" if sign else f"quantizer {node.op_type}"
    pre = ", ".join(x.op_type for x in src.nodes if x.op_type not in SHAPE_OPS)
    how = f"the host applies the model's input {kind}, {st.where(node)}" + (
        f", after its float preprocessing ({pre})" if pre else ""
    )
    if exp is None:
        s = np.asarray(scale, dtype=np.float64)
        if np.any(s <= 0):
            raise HwpruneError(f"{st.where(node)}: input scale {s.reshape(-1)[:4]} is not positive")
        # One scale per element (per-tensor or per-channel alike), in C order.
        qs = np.broadcast_to(s, (1, *src.shape)).reshape(-1).copy()
        host_scale = float(qs[0]) if s.size == 1 else tuple(float(v) for v in qs)
        st.host_input = HostInput(node.output[0], host_scale, None, how)
        d = st.emit(op, src.shape, 0)
        st.env[node.output[0]] = replace(d, scale=qs, start=node.output[0])
        return
    # A sign is computed on the host even from the raw input (the hardware takes no floats).
    if src.nodes or sign:
        st.host_input = HostInput(node.output[0], 2.0**exp, None, how)
    st.env[node.output[0]] = st.emit(op, src.shape, exp)


# Final ops the host takes as argmax of the output integers (each is monotonic in the logits).
FINAL_OPS = ("Softmax", "LogSoftmax", "ArgMax")


def final(st: ImportState, node) -> None:
    """A final Softmax, LogSoftmax or ArgMax stays on the host: the hardware outputs the
    integer logits; all three are monotonic in them, so the host's argmax of the logits is
    the model's answer (host output)."""
    outs = {o.name for o in st.model.graph.output}
    shape = st.model.get_tensor_shape(node.input[0])
    a = attrs(node)
    axis = a.get("axis", -1 if node.op_type != "ArgMax" else 0)
    ok = node.output[0] in outs and shape and len(shape) == 2 and axis in (-1, 1)
    if node.op_type == "ArgMax" and a.get("select_last_index", 0):
        ok = False  # ties would go to the last index; the host's argmax takes the first
    if not ok:
        raise HwpruneError(
            f"{st.where(node)}: only a final {node.op_type} over the last axis of a (1, N) "
            "tensor is supported (taken as argmax on the host); remove it or move it last"
        )
    if not isinstance(st.get(node.input[0]), Act):
        raise HwpruneError(f"{st.where(node)}: input must be a layer's output")
    st.final_node = node
    st.env[node.output[0]] = st.get(node.input[0])


def host_output(st: ImportState, out: Act, name: str, last) -> HostOutput | None:
    """What the host does after the hardware, or None (the output is int * 2**exp).

    The hardware's integers k are qonnx tensor ``tensor`` = k * scale + offset (offset: a
    layer's off-grid float bias, else absent); the ``tail`` nodes (elementwise, by
    constants) map that tensor on, and a final Softmax / LogSoftmax / ArgMax is taken as
    argmax of the logits on the host."""
    fn = st.final_node
    fin = {} if fn is None else {"final": fn.name, "final_op": fn.op_type}
    if out.exact:
        if fn is None:
            return None
        v = st.value(name, last)
        return HostOutput(fn.input[0], 2.0**v.exp, **fin)
    sc = out.scale
    scale = float(sc[0]) if np.all(sc == sc[0]) else tuple(float(v) for v in sc)
    tensor, offset = out.start, None
    nodes = list(out.nodes)
    if out.start not in st.model.get_all_tensor_names():
        # The layer's accumulator is unnamed in the model (a bias chain): the host tensor
        # is the layer's output, the accumulator plus the bias (``offset``).
        add = nodes.pop(0)
        b = np.asarray(st.get(add.input[1]).raw, dtype=np.float32)
        off = np.broadcast_to(b, (1, *out.shape)).reshape(-1)
        tensor, offset = add.output[0], tuple(float(v) for v in off)
    return HostOutput(tensor, scale, tuple(n.name for n in nodes), offset, **fin)
