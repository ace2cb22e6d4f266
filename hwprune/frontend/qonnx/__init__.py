"""The QONNX front end: QONNX -> hwprune's integer IR.

Files, in the order a newcomer reads them:

- ``importer.py``: load and clean with qonnx, walk the nodes, build the Graph;
- ``handlers.py``: the one table op type -> handler (``SUPPORTED_OPS`` is its keys);
- ``state.py``: the walk's state and the three kinds of tensor (Act, Const, FloatInput);
- ``quantizers.py``, ``layers.py``, ``pooling.py``, ``elementwise.py``: the handlers;
- ``boundary.py``: what stays on the host before and after the hardware;
- ``chains.py``: float scale / BatchNorm chains compiled exactly into integer thresholds.
"""

from hwprune.frontend.qonnx.handlers import HANDLERS, SUPPORTED_OPS
from hwprune.frontend.qonnx.importer import import_model, import_qonnx, load_model

__all__ = ["HANDLERS", "SUPPORTED_OPS", "import_model", "import_qonnx", "load_model"]
