"""The third-party-style corpus (tests/corpus_models.py): QKeras, FINN 1-bit and 2-bit,
Brevitas per-channel and a wide network. Each imports, and golden equals qonnx execution bit
for bit on 1,000 inputs plus corners; the small ones also pass C-simulation and RTL
simulation (the full-size runs are in benchmarks/real_models.py and under -m slow)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest
from qonnx.core.modelwrapper import ModelWrapper

from hwprune import api
from hwprune.frontend.precision import parse_precision
from hwprune.frontend.qonnx import import_qonnx
from hwprune.ir import golden
from hwprune.ir.graph import Threshold
from hwprune.sim import reference
from tests.corpus_models import CORPUS, has_dynamic_flatten, write_corpus

# Vectors per C-sim / RTL run in the default subset (the slow cases run 200).
SIM_VECTORS = 40


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    warnings.filterwarnings("ignore")
    return write_corpus(tmp_path_factory.mktemp("corpus"), seed=0)


def feeds(name: str, path, n: int) -> np.ndarray:
    """n sampled model inputs plus three corners: zeros, all-minimum and all-maximum of the
    input's range (the stated input type's, else the samples')."""
    x = CORPUS[name].sample_inputs(ModelWrapper(str(path)), n, 1).astype(np.float32)
    t = CORPUS[name].input_type
    lo, hi = (
        (x.min(), x.max())
        if t is None
        else (
            parse_precision(t).levels_to_float(
                np.array([parse_precision(t).lo, parse_precision(t).hi])
            )
        )
    )
    corners = np.stack([np.zeros_like(x[0]), np.full_like(x[0], lo), np.full_like(x[0], hi)])
    return np.concatenate([corners, x])


# finn_tfc_w2a2 (33 s) runs with -m slow: the shared tfc_2w2a, the same FINN network trained,
# is checked the same way in tests/sim/test_ladder_real_models.py.
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n == "finn_tfc_w2a2" else n for n in CORPUS],
)
def test_golden_equals_qonnx_on_1000_inputs(corpus, name):
    p = corpus[name]
    g = import_qonnx(p, CORPUS[name].input_type)
    x, ints = reference.qonnx_reference(p, g, feeds(name, p, 1000))
    assert x is not None and len(x) == 1003  # every corpus input is prepared on the host
    np.testing.assert_array_equal(golden.outputs(g, x), ints)


def test_export_patterns_are_the_third_party_ones(corpus):
    # The raw FINN exports carry the dynamic flatten; qonnx cleanup folds it, and the
    # importer reads what is left. QKeras' float input needs a stated type; Brevitas'
    # per-channel activations and Trunc become exact thresholds / shifts.
    for name in ("finn_tfc_w1a1", "finn_tfc_w2a2"):
        assert has_dynamic_flatten(CORPUS[name].build(0))
        assert not {"Shape", "Gather", "Concat"} & {
            n.op_type for n in onnx.load(corpus[name]).graph.node
        }
    g = import_qonnx(corpus["qkeras_mlp"], "fixed<16,6>")
    assert g.host_input.input_type == "fixed<16,6>"
    assert g.inputs[0].exp == -10 and (g.inputs[0].range.lo, g.inputs[0].range.hi) == (
        -32768,
        32767,
    )
    assert g.host_output.final_op == "Softmax"
    g = import_qonnx(corpus["finn_tfc_w1a1"])
    assert "sign (BipolarQuant)" in g.host_input.how and (
        g.inputs[0].range.lo,
        g.inputs[0].range.hi,
    ) == (-1, 1)
    g = import_qonnx(corpus["brevitas_perchannel"])
    assert any(isinstance(op, Threshold) for op in g.ops)


@pytest.mark.parametrize(
    "name, vectors, simulator",
    [
        ("qkeras_mlp", SIM_VECTORS, "icarus"),
        # Icarus needs ~8 s per cycle on this design (its wide buses are re-evaluated once
        # per element): Verilator runs it.
        pytest.param("brevitas_perchannel", 200, "verilator", marks=pytest.mark.slow),
        pytest.param("finn_tfc_w2a2", 200, "icarus", marks=pytest.mark.slow),
        pytest.param("finn_tfc_w1a1", 200, "icarus", marks=pytest.mark.slow),
    ],
)
def test_compiles_and_simulates_bit_exactly(corpus, name, vectors, simulator, tmp_path):
    out = tmp_path / "b"
    api.compile(corpus[name], out, input_type=CORPUS[name].input_type)
    # The AXI-Stream top wraps the same layers: the coverage and real-model ladders check it.
    rep = api.sim(out, simulator, vectors, progress=False, levels=["qonnx", "csim", "rtl"])
    assert [lv.name for lv in rep.levels] == ["qonnx", "csim", f"rtl ({simulator})"]
    assert all(lv.passed and lv.vectors >= vectors for lv in rep.levels)
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    assert man["input_type"] == CORPUS[name].input_type
    for ly in man["layers"]:  # zero-weight multipliers removed in both emitted codes
        assert ly["product_terms_verilog"] == ly["product_terms_hls"] == ly["nonzero_weights"]
    report = json.loads((out / "sim" / "report.json").read_text())
    assert report["passed"] and report["host_boundary"][0].startswith("input: the host")
