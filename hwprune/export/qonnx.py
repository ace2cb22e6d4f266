"""Brevitas -> QONNX export, cleaned with qonnx so every downstream tool can read it."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from pathlib import Path

import torch

from hwprune.errors import HwpruneError


def _manager():
    """Brevitas' QONNX export manager, with unsigned 1-bit activations exported as Quant.

    brevitas 0.13.4 exports every 1-bit quantizer as BipolarQuant (+-scale), also an unsigned
    one (a 1-bit ReLU: 0 or scale), so QONNX would compute something else (measured)."""
    from brevitas.export.onnx.qonnx.function import BrevitasQuantOp
    from brevitas.export.onnx.qonnx.handler import BrevitasActQuantProxyHandler
    from brevitas.export.onnx.qonnx.manager import QONNXDynamoManager

    class ActHandler(BrevitasActQuantProxyHandler):
        def prepare_for_export(self, module):
            super().prepare_for_export(module)
            if module.is_quant_enabled and not module.is_signed:
                self.quant_op = BrevitasQuantOp

    class Manager(QONNXDynamoManager):  # export_qonnx's default manager with torch >= 2.9
        handlers = [
            ActHandler if h is BrevitasActQuantProxyHandler else h
            for h in QONNXDynamoManager.handlers
        ]

    return Manager


def export_model(model: torch.nn.Module, n_in: int, path: Path) -> None:
    """Export ``model`` (flat input of shape (1, n_in)) to a cleaned QONNX file at ``path``.

    BatchNorm must be folded first: exported as its own float node it would break the
    integer-only path, and folding decides the weights' integers."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    # torch.onnx logs one warning per missing torchvision op at export; not the user's business.
    bn = [
        n for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    if bn:
        raise HwpruneError(
            f"layer {bn[0]!r} is a BatchNorm: fold BatchNorm before export "
            "(hwprune.train.model.fold_batchnorm)"
        )
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        # torch.onnx prints progress lines and warnings; the user sees our summary instead.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _manager().export(model, torch.zeros(1, n_in), export_path=str(raw), dynamo=True)
        cleanup_model(ModelWrapper(str(raw))).save(str(path))
