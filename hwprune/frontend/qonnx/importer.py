"""Load a QONNX file, clean it with qonnx and walk it into hwprune's integer IR.

The model is cleaned with qonnx first (shape inference, constant folding, unique names), then
walked in topological order; each node goes to its handler in ``handlers.HANDLERS``. Anything
not in the table raises ``HwpruneError`` naming the node, its op type and what is supported,
before anything is written.

``Graph.meta`` records ``input_name``, ``input_shape`` (the graph input's shape without batch),
``output_name``, ``output_exp`` and ``layers``: for every Dense the importer creates, its kind
(conv1d, conv2d, linear, avgpool) and kernel-level counts, so reports can show both the kernel
and the unrolled rows. The host boundary (boundary.py) is the graph's typed ``host_input`` /
``host_output``.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from hwprune.errors import HwpruneError
from hwprune.frontend.precision import FixedType, parse_precision
from hwprune.frontend.qonnx.boundary import host_output
from hwprune.frontend.qonnx.handlers import FOLDED_BY_CLEANUP, HANDLERS, SUPPORTED_OPS
from hwprune.frontend.qonnx.names import describe, tag
from hwprune.frontend.qonnx.state import FloatInput, ImportState
from hwprune.ir.graph import Graph, verify


def load_model(path: str | Path):
    """Load and clean a QONNX file; one-line HwpruneError if it is missing or not ONNX.

    Each node's doc_string records its name, op type and tensors as the file has them
    (``names.tag``): cleanup renames all of them, and messages name what the user wrote."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    p = Path(path)
    if not p.is_file():
        raise HwpruneError(f"{p}: no such file; pass the path of a QONNX .onnx model")
    try:
        proto = onnx.load(str(p))
    except Exception as e:  # onnx raises DecodeError and others for non-ONNX bytes
        raise HwpruneError(
            f"{p}: not an ONNX model ({type(e).__name__}); pass a QONNX .onnx file such as the "
            "model.onnx written by 'hwprune train'"
        ) from None
    if not proto.graph.node:
        raise HwpruneError(f"{p}: ONNX graph has no nodes; pass a QONNX model of a network")
    # A node whose inputs are all constant (e.g. a Pow computing a scale) is folded by cleanup.
    const = {i.name for i in proto.graph.initializer}
    for node in proto.graph.node:
        if all(i in const for i in node.input if i) or node.op_type in FOLDED_BY_CLEANUP:
            const.update(node.output)
            continue
        if node.op_type not in SUPPORTED_OPS:
            raise HwpruneError(
                f"{p}: {describe(node.name, node.op_type, node.output)}: op type "
                f"{node.op_type} is not supported; supported: {', '.join(SUPPORTED_OPS)}"
            )
    tag(proto.graph)
    try:
        return cleanup_model(ModelWrapper(proto))
    except Exception as e:
        raise HwpruneError(
            f"{p}: qonnx cleanup failed ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
            "check that the file is a valid QONNX export"
        ) from None


def _graph_input_name(st: ImportState) -> str:
    names = sorted(st.graph_inputs)
    if len(names) != 1:
        raise HwpruneError(f"model has {len(names)} inputs; only single-input models are supported")
    return names[0]


def import_model(model, input_type: str | FixedType | None = None) -> Graph:
    """Convert a cleaned qonnx ModelWrapper into a verified integer IR graph.

    ``input_type`` (hls4ml spelling, e.g. ``fixed<16,6>``) is the precision the host
    quantizes a float graph input to when the model reads it without a quantizer."""
    if isinstance(input_type, str):
        input_type = parse_precision(input_type)
    st = ImportState(model, input_type)
    nodes = list(model.graph.node)
    for node in nodes:
        if node.op_type not in HANDLERS:
            raise HwpruneError(
                f"{st.where(node)}: op type {node.op_type} is not supported; supported: "
                f"{', '.join(SUPPORTED_OPS)}"
            )
    # The float input becomes an Input op at its quantizer; its size is the product of the
    # shape, read in C order like every other tensor.
    in_name = _graph_input_name(st)
    in_shape = model.get_tensor_shape(in_name)
    if (
        not in_shape
        or len(in_shape) not in (2, 3, 4)
        or in_shape[0] != 1
        or not all(isinstance(d, int) and d >= 1 for d in in_shape)
    ):
        raise HwpruneError(
            f"input {st.tensor(in_name)!r} has shape {in_shape}; (1, N), (1, C, L) and "
            "(1, C, H, W) inputs are supported"
        )
    st.env[in_name] = FloatInput(in_name, tuple(in_shape[1:]))
    for node in nodes:
        HANDLERS[node.op_type](st, node)
    outs = [o.name for o in model.graph.output]
    if len(outs) != 1:
        raise HwpruneError(
            f"model has {len(outs)} outputs; only single-output models are supported"
        )
    out = st.dyn(outs[0], nodes[-1])
    if out.perm is not None:
        raise HwpruneError(
            f"{st.where(nodes[-1])}: the model ends in a transposed activation; only a "
            "Transpose read by a later layer is supported"
        )
    ho = host_output(st, out, outs[0], nodes[-1])
    if out.exact:
        out = st.value(outs[0], nodes[-1])
    meta = {
        "input_name": in_name,
        "input_shape": list(in_shape[1:]),
        "output_name": outs[0],
        "output_exp": out.exp,
        "layers": st.layers,
    }
    if input_type is not None and st.host_input is None:
        raise HwpruneError(
            f"--input-type {input_type.spelling()}: the model never reads its float input "
            "without a quantizer; drop --input-type"
        )
    g = Graph(tuple(st.ops), (out.op,), meta, st.host_input, ho)
    verify(g)
    return g


def import_qonnx(path: str | Path, input_type: str | FixedType | None = None) -> Graph:
    """Load, clean and import a QONNX file; raises HwpruneError on anything unsupported."""
    return import_model(load_model(path), input_type)
