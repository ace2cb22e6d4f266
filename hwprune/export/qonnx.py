"""Brevitas -> QONNX export, cleaned with qonnx so every downstream tool can read it."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from pathlib import Path

import torch


def export_model(model: torch.nn.Module, n_in: int, path: Path) -> None:
    """Export ``model`` (input shape (1, n_in)) to a cleaned QONNX file at ``path``."""
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    # torch.onnx logs one warning per missing torchvision op at export; not the user's business.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        # torch.onnx prints progress lines and warnings; the user sees our summary instead.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_qonnx(model, torch.zeros(1, n_in), export_path=str(raw))
        cleanup_model(ModelWrapper(str(raw))).save(str(path))
