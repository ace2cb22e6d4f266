"""The handler table is the one list of supported ONNX ops, and every entry has a test model.

A new op is one handler, one entry in hwprune/frontend/qonnx/handlers.py and a test model that
holds it; this test fails for an entry that no model in the test corpora contains (so no op is
"supported" without ever being imported and compared with qonnx)."""

from __future__ import annotations

import warnings

import onnx
import pytest

from hwprune.errors import HwpruneError
from hwprune.frontend.qonnx import HANDLERS, SUPPORTED_OPS, import_qonnx
from tests.corpus_models import write_corpus
from tests.frontend.op_models import FINAL_OPS, build_float_input_mlp
from tests.qonnx_coverage_models import COVERAGE_MODELS


@pytest.fixture(scope="module")
def model_ops(tmp_path_factory) -> dict[str, set[str]]:
    """Op types of every test model after qonnx cleanup: the coverage models, the
    third-party-style corpus and the small op models."""
    warnings.filterwarnings("ignore")
    d = tmp_path_factory.mktemp("ops")
    paths = {n: b(d / f"{n}.onnx", 0) for n, b in COVERAGE_MODELS.items()}
    paths.update(write_corpus(d / "corpus"))
    for f in FINAL_OPS:
        paths[f"float_{f}"] = build_float_input_mlp(d / f"float_{f}.onnx", 0, f)
    return {n: {x.op_type for x in onnx.load(str(p)).graph.node} for n, p in paths.items()}


def test_every_handler_has_a_test_model(model_ops):
    covered = set().union(*model_ops.values())
    missing = [op for op in HANDLERS if op not in covered]
    assert not missing, f"handlers with no test model: {missing}"


def test_unsupported_op_message_lists_the_table(tmp_path):
    from tests.frontend.qonnx.test_importer import _model, _quant, _quant_inits

    nodes = [_quant("x", "q", "a"), onnx.helper.make_node("Erf", ["q"], ["y"], name="my_erf")]
    p = _model(nodes, _quant_inits("a"), tmp_path / "m.onnx")
    with pytest.raises(HwpruneError) as e:
        import_qonnx(p)
    msg = str(e.value)
    assert "'my_erf'" in msg and "Erf" in msg and ", ".join(SUPPORTED_OPS) in msg
