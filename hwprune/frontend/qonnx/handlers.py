"""The one table of ONNX op types the importer handles: op type -> handler(state, node).

Adding an op is one handler (in the file of its kind), one entry here and a test model that
holds it (tests/frontend/qonnx/test_handlers.py fails for an entry no test model covers).
``SUPPORTED_OPS`` is this table's keys; error messages and the README list them from here.
"""

from __future__ import annotations

from collections.abc import Callable

from hwprune.frontend.qonnx import boundary, elementwise, layers, pooling, quantizers

HANDLERS: dict[str, Callable] = {
    "Quant": quantizers.quant,
    "BipolarQuant": quantizers.bipolar_quant,
    "Gemm": layers.gemm,
    "MatMul": layers.matmul,
    "Conv": layers.conv,
    "Add": elementwise.elementwise,
    "Relu": elementwise.relu,
    "MaxPool": pooling.maxpool,
    "AveragePool": pooling.avgpool,
    "Reshape": elementwise.reshape,
    "Flatten": elementwise.reshape,
    "Identity": elementwise.identity,
    "Mul": elementwise.elementwise,
    "Div": elementwise.elementwise,
    "Sub": elementwise.elementwise,
    "BatchNormalization": elementwise.batchnorm,
    "Transpose": elementwise.transpose,
    "Trunc": quantizers.trunc,
    "Squeeze": elementwise.reshape,
    "Unsqueeze": elementwise.reshape,
    "Softmax": boundary.final,
    "LogSoftmax": boundary.final,
    "ArgMax": boundary.final,
}

SUPPORTED_OPS: tuple[str, ...] = tuple(HANDLERS)

# Ops a raw export may hold that qonnx cleanup folds away (shape arithmetic on constants).
FOLDED_BY_CLEANUP = ("Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast")
