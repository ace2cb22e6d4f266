"""The two third-party zoo models (tests/models, copied from ../shared/models with their
licence) import into integer-only IR and match qonnx execution bit for bit on inputs drawn
from each model's input datatype."""

import time
from pathlib import Path

import numpy as np
import pytest

from hwprune import api
from hwprune.frontend.qonnx import import_qonnx
from hwprune.ir import golden
from hwprune.ir.graph import Requant, Threshold
from hwprune.sim import reference

# Vendored (about 450 KB, licences and source in tests/models/README.md) so a clean clone
# tests them wherever it lives; a missing file is a failure, not a skip.
MODELS = Path(__file__).resolve().parents[1] / "models"
NAMES = ("tfc_2w2a", "unsw_nb15_mlp_w2a2")


def _path(name: str) -> Path:
    return MODELS / f"{name}.onnx"


@pytest.mark.parametrize("name", NAMES)
def test_imports_integer_only(name):
    t0 = time.perf_counter()
    g = import_qonnx(_path(name))
    assert time.perf_counter() - t0 < 30
    # Every float scale and BatchNorm became thresholds; no float survives in the IR.
    assert any(isinstance(op, Threshold) for op in g.ops)
    assert not any(isinstance(op, Requant) for op in g.ops)
    assert g.host_input is not None


@pytest.mark.parametrize("name", NAMES)
def test_golden_equals_qonnx_on_1000_inputs(name):
    p = _path(name)
    g = import_qonnx(p)
    x, got = reference.qonnx_reference(p, g, reference.draw_model_inputs(p, 1000, seed=7))
    np.testing.assert_array_equal(got, golden.outputs(g, x))


def _compile_and_sim(name, tmp_path, vectors):
    out = tmp_path / name
    api.compile(_path(name), out)
    rep = api.sim(out, vectors=vectors, progress=False)
    assert rep.passed
    assert [lv.vectors for lv in rep.levels] == [vectors] * 4  # qonnx, csim, rtl, rtl axi-stream


# tfc (59k weights: a 26 s whole-layer solve and two RTL builds) runs with -m slow; CI keeps
# unsw here and tfc's golden == qonnx above.
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "tfc_2w2a" else n for n in NAMES]
)
def test_compile_and_sim_200(name, tmp_path):
    _compile_and_sim(name, tmp_path, 200)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_compile_and_sim_300(name, tmp_path):
    _compile_and_sim(name, tmp_path, 300)
