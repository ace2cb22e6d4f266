"""The HLS emitter (hls4ml project with zero-skipping kernels) and its g++ C-simulation.

Expected values come only from the IR and the golden interpreter. Projects are written once
per module and built once per case; tests that modify a project work on a copy.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hwprune import hlsgen as hls
from hwprune.errors import HwpruneError
from hwprune.hlsgen import extension as hls_extension
from hwprune.hlsgen import project as hls_project
from hwprune.hlsgen.layers import _hls_names
from hwprune.ir import golden
from hwprune.ir.graph import (
    OP_KINDS,
    Dense,
    Graph,
    Input,
    IntRange,
    Requant,
    Rounding,
    Row,
    Value,
    verify,
)
from hwprune.resources import data_dir
from hwprune.sim.csim import BUILD_LOG, first_failing_layer, run_csim, trace_csim
from tests.graphs import random_mlp

PART = "xc7z020clg400-1"
N_RANDOM = 1000

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def edge_graph(seed: int, in_signed: bool, rounding: Rounding, act0_shift: int, out_requant: bool):
    """A random MLP with the awkward cases: a row with no terms, a row with a single term,
    a first requant with shift <= 0 and, optionally, a HALF_EVEN requant with a signed clip
    as the graph output (at shift 2 a quarter of its inputs are ties, half of them negative)."""
    g = random_mlp(seed, (16, 12, 8, 5), 0.7, in_signed=in_signed, rounding=rounding)
    ops = []
    for op in g.ops:
        if op.name == "dense0":
            rows = list(op.rows)
            rows[0] = Row(rows[0].bias, (), ())
            rows[1] = Row(rows[1].bias, (3,), (-7,))
            op = replace(op, rows=tuple(rows))
        elif op.name == "act0":
            op = replace(op, shift=act0_shift, hi=2047)
        ops.append(op)
    outputs = ("dense2",)
    if out_requant:
        ops.append(Requant("out", ("dense2",), 2, -600, 600, Rounding.HALF_EVEN))
        outputs = ("out",)
    g = Graph(tuple(ops), outputs)
    verify(g)
    return g


# name -> (graph, reuse factor)
CASES = {
    "unsigned_floor_shl": (edge_graph(11, False, Rounding.FLOOR, -1, False), 1),
    "signed_half_even": (edge_graph(12, True, Rounding.HALF_EVEN, 0, True), 4),
}


# A plain 3-Dense-layer random graph for the per-layer trace tests.
MLP = random_mlp(21, (16, 12, 8, 5), 0.7, in_signed=True)


@pytest.fixture(scope="module")
def mlp_project(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mlp") / "hls"
    hls.write_hls_project(MLP, out, PART)
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Write each case's project once per module; returns case name -> (graph, hls dir)."""
    written: dict[str, tuple[Graph, Path]] = {}

    def get(case: str) -> tuple[Graph, Path]:
        if case not in written:
            g, reuse = CASES[case]
            out = tmp_path_factory.mktemp(case) / "hls"
            hls.write_hls_project(g, out, PART, reuse_factor=reuse)
            written[case] = (g, out)
        return written[case]

    return get


def assert_bit_exact(g: Graph, hls_dir: Path, x: np.ndarray) -> None:
    got = run_csim(hls_dir, x)
    want = golden.outputs(g, x)
    bad = np.flatnonzero((got != want).any(axis=1))
    assert bad.size == 0, (
        f"{bad.size} of {len(x)} vectors differ; first: x={x[bad[0]].tolist()} "
        f"csim={got[bad[0]].tolist()} golden={want[bad[0]].tolist()}"
    )


def corrupt_term(hls_dir: Path, layer: str, term: int, change) -> tuple[int, int, int, int]:
    """Replace the weight of product term ``term`` of Dense ``layer`` in parameters.h by
    ``change(weight)``; returns (row, column, old weight, new weight)."""
    params = hls_dir / "firmware" / "parameters.h"
    text = params.read_text()
    start = text.index(f"// hwprune-dense {json.dumps(layer)}")
    r, c, w = hls.emitted_dense_terms(hls_dir)[layer][term]
    line = f"acc{r} += x[{c}] * weight_t({w});"
    at = text.index(line, start)
    bad = change(w)
    params.write_text(text[:at] + line.replace(f"({w})", f"({bad})") + text[at + len(line) :])
    return r, c, w, bad


def test_every_op_kind_has_a_layer_builder():
    assert set(OP_KINDS.values()) <= set(hls.LAYER_BUILDERS)


@needs_gxx
@pytest.mark.parametrize("case", sorted(CASES))
def test_csim_equals_golden(project, case):
    g, hls_dir = project(case)
    assert_bit_exact(g, hls_dir, golden.stimulus_vectors(g, N_RANDOM, seed=5))


@pytest.mark.parametrize("reuse", [1, 4])
def test_one_product_per_nonzero_weight(tmp_path, reuse):
    g = edge_graph(13, True, Rounding.HALF_EVEN, -2, True)
    hls.write_hls_project(g, tmp_path / "hls", PART, reuse_factor=reuse)
    dense = {op.name: op for op in g.dense_ops()}
    assert hls.count_product_terms(tmp_path / "hls") == {n: op.n_terms for n, op in dense.items()}
    emitted = hls.emitted_dense_terms(tmp_path / "hls")
    for name, op in dense.items():
        ir_terms = [
            (r, c, w)
            for r, row in enumerate(op.rows)
            for c, w in zip(row.cols, row.weights, strict=True)
        ]
        assert list(emitted[name]) == ir_terms
        assert all(w != 0 for _, _, w in emitted[name])
    # hls4ml's dense weight arrays (which would hold the zeros) are not emitted at all.
    assert not any((tmp_path / "hls" / "firmware" / "weights").iterdir())
    params = (tmp_path / "hls" / "firmware" / "parameters.h").read_text()
    limits = [int(v) for v in re.findall(r"multiplier_limit = (\d+);", params)]
    assert limits == [max(1, -(-op.n_terms // reuse)) for op in dense.values()]
    top = (tmp_path / "hls" / "firmware" / "myproject.cpp").read_text()
    assert f"#pragma HLS PIPELINE II={reuse}" in top


def test_types_are_exact_integers(project):
    g, hls_dir = project("signed_half_even")
    defines = (hls_dir / "firmware" / "defines.h").read_text()
    types = dict((n, t) for t, n in re.findall(r"typedef (.+?) (\w+);", defines))
    assert all(re.fullmatch(r"ap_u?int<\d+>", t) for t in types.values()), types
    assert types["input_t"] == hls.ap_type(g.inputs[0].range)
    assert types["result_t"] == hls.ap_type(g.values[g.outputs[0]].range)


@needs_gxx
def test_corrupted_weight_makes_csim_disagree(project, tmp_path):
    g, src = project("unsigned_floor_shl")
    hls_dir = tmp_path / "hls"
    shutil.copytree(src, hls_dir)
    r, _, _, _ = corrupt_term(hls_dir, "dense2", 0, lambda w: w + 1 if w != -1 else -2)
    x = golden.stimulus_vectors(g, N_RANDOM, seed=5)
    with pytest.raises(AssertionError, match="vectors differ"):
        assert_bit_exact(g, hls_dir, x)
    # What the flow does on a mismatch: trace the first failing vector layer by layer.
    got, want = run_csim(hls_dir, x), golden.outputs(g, x)
    v = int(np.flatnonzero((got != want).any(axis=1))[0])
    assert first_failing_layer(hls_dir, g, x[v]) == {
        "layer": "dense2",
        "index": r,
        "expected": int(want[v, r]),
        "got": int(got[v, r]),
    }


@needs_gxx
def test_build_error_names_compiler_line_and_log(project, tmp_path):
    _, src = project("unsigned_floor_shl")
    hls_dir = tmp_path / "hls"
    shutil.copytree(src, hls_dir)
    params = hls_dir / "firmware" / "parameters.h"
    params.write_text(params.read_text().replace("y[0] = acc0;", "y[0] = acc0 +;", 1))
    with pytest.raises(HwpruneError, match=rf"error: .*{BUILD_LOG}"):
        run_csim(hls_dir, np.zeros((1, 16), dtype=np.int64))


@needs_gxx
def test_requant_kernel_exhaustively(tmp_path):
    """hwprune_requant.h on every input of many small ranges, one g++ program for all configs:
    left and right shifts, shifts beyond the input width, both roundings, every clip side."""
    in_ranges = [(0, 1), (-1, 0), (-4, 3), (0, 7), (-8, 7), (-5, 9), (3, 200), (-128, 127)]
    clips = [(-(2**40), 2**40), (0, 15), (-3, 3), (2, 5), (-100, -50)]
    cases = [
        (IntRange(*r), Requant(f"r{k}", ("x",), shift, lo, hi, rounding))
        for k, (r, shift, rounding, (lo, hi)) in enumerate(
            (r, s, rd, c)
            for r in in_ranges
            for s in range(-3, 11)
            for rd in Rounding
            for c in clips
        )
    ]
    hls_data = data_dir("hls")
    ap_types = Path(importlib.util.find_spec("hls4ml").origin).parent / "templates/vivado/ap_types"
    src = ["#include <cstdio>", '#include "nnet_utils/hwprune_requant.h"']
    calls = []
    for k, (r, op) in enumerate(cases):
        params, work = hls.requant_params(op, r)
        out = op.infer((Value((r,), 0),)).range
        n = r.hi - r.lo + 1
        src += [
            f"typedef {hls.ap_type(r)} in{k}_t;",
            f"typedef {hls.ap_type(out)} out{k}_t;",
            hls.requant_struct(k, op.name, n, params, hls.ap_type(work)),
            f"void run{k}() {{",
            f"    in{k}_t x[{n}]; out{k}_t y[{n}];",
            f"    for (int i = 0; i < {n}; i++) x[i] = {r.lo} + i;",
            f"    nnet::hwprune_requant<in{k}_t, out{k}_t, config{k}>(x, y);",
            f'    for (int i = 0; i < {n}; i++) printf("%lld\\n", (long long)y[i]);',
            "}",
        ]
        calls.append(f"run{k}();")
    src += ["int main() {", *calls, "return 0;", "}"]
    (tmp_path / "t.cpp").write_text("\n".join(src) + "\n")
    subprocess.run(
        ["g++", "-O0", "-std=c++11", f"-I{ap_types}", f"-I{hls_data}", "t.cpp", "-o", "t"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    run = subprocess.run([tmp_path / "t"], capture_output=True, check=True, text=True)
    got = [int(v) for v in run.stdout.split()]
    want, where = [], []
    for r, op in cases:
        x = np.arange(r.lo, r.hi + 1, dtype=np.int64)
        want += golden.requant_array(x, op.shift, op.lo, op.hi, op.rounding).tolist()
        where += [(op, int(v)) for v in x]
    assert len(got) == len(want)
    bad = [k for k, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
    if bad:
        op, x = where[bad[0]]
        pytest.fail(f"{len(bad)} wrong outputs; first: {op} on x={x} gave {got[bad[0]]}")


@needs_gxx
def test_wide_literals_exact_and_bridge_limit_enforced(tmp_path):
    rows = (
        Row(2**40 + 1, (0, 1, 2, 3), (2**46 + 3, -(2**33) - 5, 7, 2**31)),
        Row(-(2**35), (2,), (-(2**45),)),
    )
    ops = (Input("x", (), 4, IntRange(0, 255), 0), Dense("d", ("x",), 4, rows, 0))
    g = Graph(ops, ("d",))
    verify(g)
    hls.write_hls_project(g, tmp_path / "hls", PART)
    assert hls.count_product_terms(tmp_path / "hls") == {"d": 5}
    small = np.random.default_rng(3).integers(0, 4, size=(200, 4), endpoint=True)
    assert_bit_exact(g, tmp_path / "hls", small)
    with pytest.raises(HwpruneError, match=r"2\*\*53"):
        run_csim(tmp_path / "hls", np.full((1, 4), 255))


def test_csim_rejects_inputs_the_bridge_would_wrap(project):
    g, hls_dir = project("unsigned_floor_shl")
    x = np.zeros((1, g.inputs[0].size), dtype=np.int64)
    x[0, 0] = g.inputs[0].range.hi + 1
    with pytest.raises(HwpruneError, match="outside the project's input type"):
        run_csim(hls_dir, x)
    with pytest.raises(HwpruneError, match="must be integers"):
        run_csim(hls_dir, np.full((1, g.inputs[0].size), 0.5))


def test_writing_is_deterministic_and_registration_idempotent(tmp_path):
    from hls4ml.model.flow import get_flow

    g, reuse = CASES["signed_half_even"]
    hls.write_hls_project(g, tmp_path / "a", PART, reuse_factor=reuse)
    # Fresh modules register again: must neither fail nor duplicate. The writer's module is
    # reloaded too, so that it calls the fresh module's registration.
    importlib.reload(hls_extension)
    importlib.reload(hls_project)
    hls.write_hls_project(g, tmp_path / "b", PART, reuse_factor=reuse)
    hls.write_hls_project(g, tmp_path / "b", PART, reuse_factor=reuse)  # replaces in place
    passes = get_flow("vivado:optimize").optimizers
    assert passes.count(f"{hls.BACKEND.lower()}:{hls.ZERO_TERM_PASS}") == 1
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*"))
    assert files_a == files_b
    for rel in files_a:
        a, b = tmp_path / "a" / rel, tmp_path / "b" / rel
        if a.is_file() and rel.name != "hls4ml_config.yml":  # it records the output dir
            assert a.read_bytes() == b.read_bytes(), rel
    assert not list(tmp_path.glob(".*")), "staging directories were left behind"


def test_refuses_to_overwrite_a_foreign_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(HwpruneError, match="not an hls4ml project"):
        hls.write_hls_project(CASES["signed_half_even"][0], tmp_path, PART)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@needs_gxx
@pytest.mark.slow
@pytest.mark.parametrize("reuse", [1, 4])
def test_csim_equals_golden_64_64_32_10(tmp_path, reuse):
    g = random_mlp(3, (64, 64, 32, 10), 0.8, in_signed=True, rounding=Rounding.HALF_EVEN)
    hls.write_hls_project(g, tmp_path / "hls", PART, reuse_factor=reuse)
    assert hls.count_product_terms(tmp_path / "hls") == {d.name: d.n_terms for d in g.dense_ops()}
    assert_bit_exact(g, tmp_path / "hls", golden.stimulus_vectors(g, N_RANDOM, seed=7))


# --- per-layer traces -------------------------------------------------------------------------


@needs_gxx
@pytest.mark.parametrize("case", ["mlp", *sorted(CASES)])
def test_traced_layers_equal_golden(project, mlp_project, case):
    g, hls_dir = (MLP, mlp_project) if case == "mlp" else project(case)
    x = golden.stimulus_vectors(g, 50, seed=9)
    traced = trace_csim(hls_dir, x)
    want = golden.run(g, x)
    assert list(traced) == [op.name for op in g.ops if not isinstance(op, Input)]
    for name, got in traced.items():
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want[name], err_msg=name)
    # Tracing is switched off again: a later run_csim is unaffected.
    assert_bit_exact(g, hls_dir, x)


@needs_gxx
def test_first_failing_layer_none_when_correct(mlp_project):
    for x in golden.stimulus_vectors(MLP, 2, seed=4):
        assert first_failing_layer(mlp_project, MLP, x) is None


@needs_gxx
def test_first_failing_layer_names_corrupted_first_dense(mlp_project, tmp_path):
    hls_dir = tmp_path / "hls"
    shutil.copytree(mlp_project, hls_dir)
    # Towards zero by one: the changed product stays inside the layer's exact types, so the
    # C-simulation value is predictable (expected - sign(w) * x[c]).
    r, c, w, bad = corrupt_term(hls_dir, "dense0", 0, lambda w: w - (1 if w > 0 else -1))
    assert hls.count_product_terms(hls_dir) == {d.name: d.n_terms for d in MLP.dense_ops()}
    xs = golden.stimulus_vectors(MLP, 20, seed=4)
    x = next(v for v in xs if v[c] != 0)
    expected = int(golden.run(MLP, x[None, :])["dense0"][0, r])
    assert first_failing_layer(hls_dir, MLP, x) == {
        "layer": "dense0",
        "index": r,
        "expected": expected,
        "got": expected + (bad - w) * int(x[c]),
    }
    # A vector the corrupted term cannot see (x[c] == 0) passes every layer.
    x0 = x.copy()
    x0[c] = 0
    assert first_failing_layer(hls_dir, MLP, x0) is None


def test_trace_code_only_in_simulation_and_off_by_default(project):
    g, hls_dir = project("signed_half_even")
    top = (hls_dir / "firmware" / "myproject.cpp").read_text()
    guarded = re.findall(
        r"#ifndef __SYNTHESIS__\n\s*nnet::save_layer_output<\w+>\(\w+, \"(\w+)\", \d+\);\n#endif",
        top,
    )
    names = _hls_names(g)
    assert guarded == [names[op.name] for op in g.ops if not isinstance(op, Input)]
    assert top.count("save_layer_output") == len(guarded)
    # Only the bridge's allocate_trace_storage switches tracing on; the C++ test bench of a
    # Vitis C-simulation leaves it off too.
    for cpp in ("myproject_bridge.cpp", "myproject_test.cpp"):
        text = (hls_dir / cpp).read_text()
        assert re.findall(r"^bool trace_enabled = (\w+);$", text, re.MULTILINE) == ["false"], cpp
    doc = json.loads((hls_dir / hls.NAMES_FILE).read_text())
    assert doc["graph"] == hls.graph_digest(g)
    assert doc["ops"] == [
        {
            "ir": op.name,
            "hls": names[op.name],
            "size": g.values[op.name].size,
            "traced": not isinstance(op, Input),
        }
        for op in g.ops
    ]


def test_trace_refuses_untraced_project_and_other_graph(project, tmp_path):
    g, src = project("unsigned_floor_shl")
    hls_dir = tmp_path / "hls"
    shutil.copytree(src, hls_dir)
    x = np.zeros(g.inputs[0].size, dtype=np.int64)
    with pytest.raises(HwpruneError, match="not written from this graph"):
        first_failing_layer(hls_dir, MLP, x)
    (hls_dir / hls.NAMES_FILE).unlink()
    with pytest.raises(HwpruneError, match="not written with tracing"):
        trace_csim(hls_dir, x[None, :])


def test_csim_module_imports_no_hls4ml():
    code = "import sys, hwprune.sim.csim; print('hls4ml' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


def test_reuse_factor_rule_is_hls4ml_own():
    # hls4ml's backend check is the independent source; hwprune refuses what it would change.
    from hls4ml.backends.fpga.fpga_backend import FPGABackend

    from hwprune.hlsgen import reuse_factor_fits

    for n_in in range(1, 33):
        for n_out in range(1, 21):
            for rf in range(1, n_in * n_out + 2):
                want = FPGABackend._validate_reuse_factor(None, n_in, n_out, rf)
                assert reuse_factor_fits(n_in, n_out, rf) == want, (n_in, n_out, rf)
