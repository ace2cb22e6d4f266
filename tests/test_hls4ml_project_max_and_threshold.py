"""The HLS emitter's Max and Threshold layers (hwprune_max.h, hwprune_threshold.h) against the
golden interpreter, through hls4ml's g++ C-simulation.

Expected values come from the golden interpreter and from hand-worked cases. Each project is
written and built once per module; the corruption test works on a copy.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from hwprune import hlsgen as hls
from hwprune.hlsgen.config import _END_MARK, _THRESHOLD_MARK
from hwprune.ir import golden
from hwprune.ir.graph import Graph, Input, IntRange, Max, Rounding, Threshold, verify
from hwprune.sim.csim import first_failing_layer, trace_csim
from tests.graphs import random_cnn, random_mlp
from tests.test_hls4ml_project import PART, assert_bit_exact, needs_gxx

N_RANDOM = 300
NEW_HEADERS = (hls.MAX_HEADER, hls.THRESHOLD_HEADER)


def max_graph() -> Graph:
    """Two Max levels as the output: windows of 1, 2, 3, 5 and 7 inputs (the kernel's tree on
    sizes that are not powers of two), overlapping windows and a repeated index."""
    x = Input("x", (), 10, IntRange(-8, 7), -3)
    m1 = Max(
        "m1", ("x",), ((4,), (0, 1), (2, 3, 9), (5, 6, 7, 8, 9), (0, 2, 4, 6, 8, 1, 3), (7, 7))
    )
    m2 = Max("m2", ("m1",), ((0, 5), (1, 2, 3), (4,)))
    g = Graph((x, m1, m2), ("m2",))
    verify(g)
    return g


# t1: ragged lists, an empty one, thresholds below, at and above the input range [-8, 7],
# a repeated threshold. t2: constants wider than 32 bits, thresholds beyond t1's range.
T1 = ((0,), (), (-100, -8, 8), (-3, 2, 2, 100), (7,), (-7, -1, 3), (-8,), (6, 7))
T2 = ((-(2**40), 0, 2**40),) * 8


def threshold_graph() -> Graph:
    """Input -> Threshold t1 (base -3, step 5) -> Threshold t2 (wide constants) as the output."""
    x = Input("x", (), 8, IntRange(-8, 7), 0)
    t1 = Threshold("t1", ("x",), T1, -3, 5, 0)
    t2 = Threshold("t2", ("t1",), T2, -(2**40), 2**37 + 1, 4)
    g = Graph((x, t1, t2), ("t2",))
    verify(g)
    return g


def folded_threshold_graph() -> Graph:
    """A Threshold after a Max whose base, step and thresholds lie far beyond 64 bits while
    its outputs are small: every input passes one threshold, so y = base + step = 5."""
    x = Input("x", (), 4, IntRange(0, 3), 0)
    m = Max("m", ("x",), ((0, 1), (2, 3)))
    huge = 2**70
    t = Threshold("t", ("m",), ((-huge,), (-huge, huge)), -huge, huge + 5, 0)
    g = Graph((x, m, t), ("t",))
    verify(g)
    return g


# name -> graph. The two CNNs run in CI; more seeds are in the slow test below.
GRAPHS = {
    "cnn_bipolar": random_cnn(0, bipolar=True),
    "cnn_multi": random_cnn(1, bipolar=False),
    "max_out": max_graph(),
    "threshold_out": threshold_graph(),
    "folded_threshold_out": folded_threshold_graph(),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Write each graph's project once per module; returns name -> (graph, hls dir)."""
    written: dict[str, tuple[Graph, Path]] = {}

    def get(name: str) -> tuple[Graph, Path]:
        if name not in written:
            out = tmp_path_factory.mktemp(name) / "hls"
            hls.write_hls_project(GRAPHS[name], out, PART)
            written[name] = (GRAPHS[name], out)
        return written[name]

    return get


def assert_traces_equal_golden(g: Graph, hls_dir: Path, x: np.ndarray) -> None:
    traced = trace_csim(hls_dir, x)
    want = golden.run(g, x)
    assert list(traced) == [op.name for op in g.ops if not isinstance(op, Input)]
    for name, got in traced.items():
        np.testing.assert_array_equal(got, want[name], err_msg=name)


@needs_gxx
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_csim_and_every_layer_equal_golden(project, name):
    g, hls_dir = project(name)
    x = golden.stimulus_vectors(g, N_RANDOM, seed=5)
    assert_bit_exact(g, hls_dir, x)
    assert_traces_equal_golden(g, hls_dir, x[:40])
    # Max and Threshold add no product terms: the count is that of the Dense ops alone.
    assert hls.count_product_terms(hls_dir) == {d.name: d.n_terms for d in g.dense_ops()}


@needs_gxx
def test_hand_worked_max_and_threshold(project):
    _, hls_dir = project("max_out")
    x = np.array([[3, -8, 7, -2, -5, 0, 1, -1, 2, -4]])
    traced = trace_csim(hls_dir, x)
    np.testing.assert_array_equal(traced["m1"][0], [-5, 3, 7, 2, 7, -1])
    np.testing.assert_array_equal(traced["m2"][0], [-1, 7, 7])
    _, hls_dir = project("threshold_out")
    x = np.array([[-1, 5, 7, -8, 7, -1, -8, 6]])
    # Thresholds passed per element of t1: none of (0,); none (no thresholds); -100 and -8
    # of (-100, -8, 8); none of (-3, 2, 2, 100); 7 of (7,); -7 and -1 of (-7, -1, 3);
    # -8 of (-8,); 6 of (6, 7). In t2 every value passes -(2**40), those >= 0 pass 0 too.
    counts = np.array([0, 0, 2, 0, 1, 2, 1, 1])
    t1 = -3 + 5 * counts
    t2 = -(2**40) + (2**37 + 1) * (1 + (t1 >= 0))
    traced = trace_csim(hls_dir, x)
    np.testing.assert_array_equal(traced["t1"][0], t1)
    np.testing.assert_array_equal(traced["t2"][0], t2)


@needs_gxx
@pytest.mark.slow
@pytest.mark.parametrize("bipolar", [True, False])
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_csim_equals_golden_more_cnns(tmp_path, seed, bipolar):
    rounding = Rounding.HALF_EVEN if seed == 3 else Rounding.FLOOR
    g = random_cnn(seed, channels=4, side=6, n_out=5, bipolar=bipolar, rounding=rounding)
    hls.write_hls_project(g, tmp_path / "hls", PART, reuse_factor=2 if seed == 4 else 1)
    assert hls.count_product_terms(tmp_path / "hls") == {d.name: d.n_terms for d in g.dense_ops()}
    assert_bit_exact(g, tmp_path / "hls", golden.stimulus_vectors(g, N_RANDOM, seed=seed))


def _threshold_block(params: str, layer: str) -> tuple[int, int]:
    """Start and end offsets of the threshold array of Threshold ``layer`` in parameters.h."""
    start = params.index(f"{_THRESHOLD_MARK}{json.dumps(layer)}")
    start = params.index("thresholds[", params.index("};", start))
    return start, params.index(_END_MARK, start)


def emitted_thresholds(hls_dir: Path, layer: str) -> np.ndarray:
    """The (n_in, n_thresholds) threshold array of ``layer`` as written in parameters.h."""
    text = (hls_dir / "firmware" / "parameters.h").read_text()
    a, b = _threshold_block(text, layer)
    rows = re.findall(r"^\s*\{([^}]*)\},$", text[a:b], re.MULTILINE)
    return np.array([[int(v.rstrip("L")) for v in r.split(",")] for r in rows])


@needs_gxx
def test_corrupted_threshold_makes_csim_disagree(project, tmp_path):
    g, src = project("cnn_multi")
    hls_dir = tmp_path / "hls"
    shutil.copytree(src, hls_dir)
    th = g.op("mt0")
    x = golden.stimulus_vectors(g, N_RANDOM, seed=6)
    want = golden.run(g, x)
    ts = emitted_thresholds(hls_dir, "mt0")
    # Lower one threshold t by one, so that an input equal to t - 1 now passes it too. Pick
    # one the output reads (a nonzero dense1 weight on that element), whose new value stays
    # inside the emitted array's range (so inside threshold_t) and that some vector reaches.
    used = {c for row in g.op("dense1").rows for c in row.cols}
    lo, hi = ts.min(), ts.max()
    i, k, v = next(
        (i, k, int(np.flatnonzero(want["pool0"][:, i] == ts[i, k] - 1)[0]))
        for i in sorted(used)
        for k in range(ts.shape[1])
        if lo <= ts[i, k] - 1 <= hi and np.any(want["pool0"][:, i] == ts[i, k] - 1)
    )
    params = hls_dir / "firmware" / "parameters.h"
    text = params.read_text()
    a, b = _threshold_block(text, "mt0")
    block = text[a:b].splitlines(keepends=True)
    row = ts[i].tolist()
    row[k] -= 1
    old = "    {" + ", ".join(str(t) for t in ts[i]) + "},\n"
    assert block[1 + i] == old
    block[1 + i] = "    {" + ", ".join(str(t) for t in row) + "},\n"
    params.write_text(text[:a] + "".join(block) + text[b:])
    assert (emitted_thresholds(hls_dir, "mt0") != ts).sum() == 1

    with pytest.raises(AssertionError, match="vectors differ"):
        assert_bit_exact(g, hls_dir, x)
    assert first_failing_layer(hls_dir, g, x[v]) == {
        "layer": "mt0",
        "index": i,
        "expected": int(want["mt0"][v, i]),
        "got": int(want["mt0"][v, i]) + th.step,
    }
    # The layers before it still agree: the first failure is the corrupted layer itself.
    traced = trace_csim(hls_dir, x[v : v + 1])
    for name in ("conv0", "act0", "pool0"):
        np.testing.assert_array_equal(traced[name], want[name][v : v + 1], err_msg=name)


def _layer_types(hls_dir: Path) -> dict[str, tuple[str, str]]:
    """IR op name -> (C++ type of its output, the config struct of its call), from the top
    function's calls and defines.h."""
    fw = hls_dir / "firmware"
    defines = dict(
        (n, t) for t, n in re.findall(r"typedef (.+?) (\w+);", (fw / "defines.h").read_text())
    )
    names = {d["hls"]: d["ir"] for d in json.loads((hls_dir / hls.NAMES_FILE).read_text())["ops"]}
    calls = re.findall(
        r"nnet::hwprune_\w+<\w+, (\w+), (config\d+)>\(.*\); // (\w+)",
        (fw / "myproject.cpp").read_text(),
    )
    return {names[layer]: (defines[out_t], config) for out_t, config, layer in calls}


def test_types_are_exact_integers(tmp_path):
    g = GRAPHS["cnn_multi"]
    hls.write_hls_project(g, tmp_path / "hls", PART)
    types = _layer_types(tmp_path / "hls")
    assert {n: t for n, (t, _) in types.items()} == {
        op.name: hls.ap_type(g.values[op.name].range) for op in g.ops if not isinstance(op, Input)
    }
    # Thresholds stay within the input's range plus one: threshold_t is at most one bit wider
    # than the input type.
    defines = (tmp_path / "hls" / "firmware" / "defines.h").read_text()
    x = g.values["pool0"].range
    t_type = re.search(r"typedef (.+?) mt0_threshold_t;", defines).group(1)
    assert re.fullmatch(r"ap_u?int<\d+>", t_type)
    assert int(re.search(r"\d+", t_type).group()) <= IntRange(x.lo, x.hi + 1).bits
    ts = emitted_thresholds(tmp_path / "hls", "mt0")
    assert ts.min() >= x.lo and ts.max() <= x.hi + 1
    assert re.fullmatch(r"ap_u?int<\d+>", re.search(r"typedef (.+?) mt0_work_t;", defines)[1])


def test_headers_copied_only_where_used_and_deterministic(tmp_path):
    def headers(g: Graph) -> set[str]:
        hls.write_hls_project(g, tmp_path / "hls", PART)
        utils = tmp_path / "hls" / "firmware" / "nnet_utils"
        return {f"nnet_utils/{p.name}" for p in utils.glob("hwprune_*.h")}

    always = set(hls.ALWAYS_COPIED)
    # Projects of Dense/Requant graphs stay as earlier versions wrote them, file for file.
    assert headers(random_mlp(1, (6, 4, 3))) == always
    assert headers(GRAPHS["max_out"]) == always | {hls.MAX_HEADER}
    assert headers(GRAPHS["cnn_bipolar"]) == always | set(NEW_HEADERS)
    for header in NEW_HEADERS:
        copied = tmp_path / "hls" / "firmware" / header
        assert copied.read_bytes() == hls.header_source(header).read_bytes()
    # Written again elsewhere: the same files, byte for byte (the config records the output
    # directory).
    hls.write_hls_project(GRAPHS["cnn_bipolar"], tmp_path / "again", PART)
    files = sorted(p.relative_to(tmp_path / "hls") for p in (tmp_path / "hls").rglob("*"))
    assert files == sorted(
        p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*")
    )
    for rel in files:
        a, b = tmp_path / "hls" / rel, tmp_path / "again" / rel
        if a.is_file() and rel.name != "hls4ml_config.yml":
            assert a.read_bytes() == b.read_bytes(), rel


def test_every_layer_kind_has_a_kernel():
    layers = {
        hls.LAYER_BUILDERS[type(op)](op, g, op.name, list(op.inputs))[0]["class_name"]
        for g in GRAPHS.values()
        for op in g.ops
    }
    # The streaming project's own layers are tested in test_hls4ml_project_stream.py.
    assert layers - {"Input"} == set(hls.KERNELS) - {"HwpruneStreamStage", "HwpruneCollect"}
    assert all(hls.header_source(h).is_file() for _, h, _ in hls.KERNELS.values())
