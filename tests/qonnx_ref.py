"""Reference figures computed with qonnx itself, independent of hwprune's importer."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def quantized_weight_nonzeros(model_onnx: Path) -> list[int]:
    """Nonzero integer weights per 2-D weight tensor, in node order, by qonnx's own Quant
    execution on the initializers (weights that round to 0 count as zero)."""
    from qonnx.core.onnx_exec import execute_node

    from hwprune.frontend.qonnx import load_model

    m = load_model(model_onnx)
    inits = {i.name for i in m.graph.initializer}
    counts = []
    for node in m.graph.node:
        if node.op_type == "Quant" and node.input[0] in inits:
            ctx = {n: m.get_initializer(n) for n in node.input}
            execute_node(node, ctx, m.graph, opset_version=m.model.opset_import[0].version)
            if ctx[node.output[0]].ndim == 2:
                counts.append(int(np.count_nonzero(ctx[node.output[0]])))
    return counts
