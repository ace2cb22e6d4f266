"""The self-made coverage models of issue 4: each runs under qonnx, and together they contain
every node type the importer must handle, with the properties the issue names (float scales,
unfolded BatchNorm with a negative gamma, bipolar and ternary quantizers, pruned weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_node, execute_onnx

from tests.qonnx_coverage_models import (
    BREVITAS_MODULES,
    COVERAGE_MODELS,
    REQUIRED_OPS,
    input_datatype,
    op_types,
    sample_inputs,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Every coverage model, built once with seed 0."""
    out = tmp_path_factory.mktemp("coverage")
    return {name: build(out / f"{name}.onnx", 0) for name, build in COVERAGE_MODELS.items()}


def _quant_nodes(m: ModelWrapper):
    return [n for n in m.graph.node if n.op_type in ("Quant", "BipolarQuant", "Trunc")]


def _quantized_weights(m: ModelWrapper) -> list[np.ndarray]:
    """Weight tensors (2-D or more) as qonnx's own Quant / BipolarQuant execution gives them."""
    inits = {i.name for i in m.graph.initializer}
    out = []
    for node in _quant_nodes(m):
        if node.input[0] in inits:
            ctx = {n: m.get_initializer(n) for n in node.input}
            execute_node(node, ctx, m.graph, opset_version=1)
            if ctx[node.output[0]].ndim >= 2:
                out.append(ctx[node.output[0]])
    return out


@pytest.mark.parametrize("name", list(COVERAGE_MODELS))
def test_model_executes_on_its_input_datatype(models, name):
    path = models[name]
    m = ModelWrapper(str(path))
    x = sample_inputs(path, 20, seed=1)
    dt = input_datatype(path)
    # Inputs really come from the annotated datatype.
    if dt == "BIPOLAR":
        assert set(np.unique(x)) <= {-1.0, 1.0}
    elif dt != "FLOAT32":
        assert np.array_equal(x, np.round(x))
    else:
        assert ((x >= 0) & (x < 1)).all()
    ys = []
    for xi in x:
        res = execute_onnx(m, {m.graph.input[0].name: xi[None]})
        ys.append(res[m.graph.output[0].name])
    ys = np.concatenate(ys)
    assert np.isfinite(ys).all()
    # Not a degenerate model: different inputs give different outputs.
    assert len({y.tobytes() for y in ys}) > 1


@pytest.mark.parametrize("name", list(BREVITAS_MODULES))
def test_export_matches_brevitas(models, name):
    """qonnx execution of the export equals the Brevitas forward of a model rebuilt from the
    same seed: the file means what the Brevitas network means (BatchNorm, Trunc, bipolar)."""
    import torch

    module, _ = BREVITAS_MODULES[name](0)
    path = models[name]
    m = ModelWrapper(str(path))
    x = sample_inputs(path, 20, seed=2)
    with torch.no_grad():
        ref = module(torch.from_numpy(x))
    ref = getattr(ref, "value", ref).numpy()
    got = np.concatenate(
        [execute_onnx(m, {m.graph.input[0].name: xi[None]})[m.graph.output[0].name] for xi in x]
    )
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_union_covers_every_required_op(models):
    covered = {name: op_types(p) for name, p in models.items()}
    union = set().union(*covered.values())
    missing = sorted(set(REQUIRED_OPS) - union)
    assert not missing, f"no coverage model contains {missing}"
    # Convolutions in both dimensionalities.
    conv_dims = set()
    for p in models.values():
        for n in onnx.load(str(p)).graph.node:
            if n.op_type == "Conv":
                ks = next(a for a in n.attribute if a.name == "kernel_shape")
                conv_dims.add(len(ks.ints))
    assert conv_dims == {1, 2}
    # The table the report prints: which model covers which required op.
    for op in REQUIRED_OPS:
        print(f"{op:20s} {', '.join(n for n, ops in covered.items() if op in ops)}")


def test_models_have_third_party_properties(models):
    scales, gammas, bipolar, ternary, zero_fracs = [], [], False, False, []
    dts = set()
    for p in models.values():
        m = ModelWrapper(str(p))
        dts.add(input_datatype(p))
        for node in _quant_nodes(m):
            scales.append(m.get_initializer(node.input[1]))
            bipolar |= node.op_type == "BipolarQuant"
            if node.op_type == "Quant":
                bits = float(m.get_initializer(node.input[3]))
                narrow = next(a.i for a in node.attribute if a.name == "narrow")
                ternary |= bits == 2 and narrow == 1
        for node in m.graph.node:
            if node.op_type == "BatchNormalization":
                gammas.append(m.get_initializer(node.input[1]))
        zero_fracs += [float(np.mean(w == 0)) for w in _quantized_weights(m)]
    # Per-tensor scales, and some that are not powers of two.
    assert all(np.asarray(s).size == 1 for s in scales)
    log2 = np.log2(np.abs(np.concatenate([np.ravel(s) for s in scales])))
    assert np.sum(np.abs(log2 - np.round(log2)) > 1e-3) >= 10
    # BatchNorm left unfolded, every one with a negative-gamma channel.
    assert len(gammas) >= 5 and all((g < 0).any() for g in gammas)
    assert bipolar and ternary
    # Pruned-like weights: every non-binary weight tensor is at least 30 % zero.
    assert sum(f >= 0.3 for f in zero_fracs) >= 10
    assert {"FLOAT32", "BIPOLAR"} <= dts and len(dts) >= 3


def test_builders_are_seeded(tmp_path):
    """Same seed, same weights; another seed, other weights (cheap models only)."""
    for name in ("elementwise", "mlp_bn"):
        build = COVERAGE_MODELS[name]
        a, b, c = (
            ModelWrapper(str(build(tmp_path / f"{name}{i}.onnx", s)))
            for i, s in enumerate((3, 3, 4))
        )
        wa, wb, wc = (_quantized_weights(m) for m in (a, b, c))
        assert all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))
        assert not all(np.array_equal(x, y) for x, y in zip(wa, wc, strict=True))
