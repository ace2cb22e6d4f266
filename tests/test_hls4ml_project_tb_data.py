"""The HLS project's tb_data files, run through the project's own C++ test bench.

hls4ml's ``<project>_test.cpp`` is what Vitis' csim and cosim (build_prj.tcl) run. Here it is
compiled with g++ against the project's ap_types headers, as the C-simulation library is, and
run from the project directory. Expected values come from the golden interpreter.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hwprune import hlsgen as hls
from hwprune.errors import HwpruneError
from hwprune.ir import golden
from hwprune.ir.graph import Dense, Graph, Input, IntRange, Row, verify
from hwprune.sim.csim import CSIM_CFLAGS
from tests.graphs import random_mlp

PART = "xc7z020clg400-1"
# Signed inputs: negative values cross the test bench's float -> ap_int conversion too.
MLP = random_mlp(21, (16, 12, 8, 5), 0.7, in_signed=True)
VECTORS = golden.stimulus_vectors(MLP, 200, 0)
RESULTS_LOG = "tb_data/csim_results.log"

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tb") / "hls"
    hls.write_hls_project(MLP, out, PART, vectors=VECTORS)
    return out


def compile_test_bench(project: Path) -> Path:
    """The project's own test bench and firmware compiled into one executable."""
    exe = project.parent / "tb"
    flags = [f for f in CSIM_CFLAGS.split() if f != "-fPIC"]
    # -std=c++11: build_prj.tcl compiles both files with -std=c++0x, its old name.
    cmd = ["g++", *flags, "-std=c++11", "-Ifirmware/ap_types/", "-o", str(exe)]
    cmd += ["myproject_test.cpp", "firmware/myproject.cpp"]
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return exe


@pytest.fixture(scope="module")
def test_bench(project) -> Path:
    return compile_test_bench(project)


def run_test_bench(exe: Path, project: Path) -> tuple[str, list[str]]:
    """Run the test bench in ``project``; its stdout and the lines of its results log."""
    proc = subprocess.run([str(exe)], cwd=project, capture_output=True, text=True, check=True)
    return proc.stdout, (project / RESULTS_LOG).read_text().splitlines()


def mismatches(project: Path, log: list[str]) -> list[int]:
    """Vectors whose logged outputs differ from tb_output_predictions.dat (and any extra or
    missing line)."""
    want = (project / hls.TB_OUTPUTS).read_text().splitlines()
    n = max(len(want), len(log))
    want, log = want + [""] * (n - len(want)), log + [""] * (n - len(log))
    return [i for i in range(n) if want[i] != log[i]]


def ints(lines: list[str]) -> np.ndarray:
    return np.array([[int(v) for v in ln.split()] for ln in lines], dtype=np.int64)


def test_files_hold_the_vectors_and_golden_outputs_exactly(project):
    inputs = (project / hls.TB_INPUTS).read_text()
    outputs = (project / hls.TB_OUTPUTS).read_text()
    assert np.array_equal(ints(inputs.splitlines()), VECTORS)
    assert np.array_equal(ints(outputs.splitlines()), golden.outputs(MLP, VECTORS))
    # Plain integers, which the test bench's atof -> float conversion keeps exact.
    assert all(abs(int(v)) <= 2**24 for v in inputs.split())
    # One line per vector, as hls4ml writes .dat files: each value followed by a space.
    assert inputs.startswith(" ".join(str(v) for v in VECTORS[0]) + " \n")


@needs_gxx
def test_project_test_bench_reproduces_the_predictions(project, test_bench):
    stdout, log = run_test_bench(test_bench, project)
    assert "Unable to open input/predictions file" not in stdout
    assert len(log) == len(VECTORS)
    assert np.array_equal(ints(log), golden.outputs(MLP, VECTORS))
    # What build_prj.tcl's compare_files would see: the same bytes.
    assert (project / RESULTS_LOG).read_text() == (project / hls.TB_OUTPUTS).read_text()
    assert mismatches(project, log) == []


@needs_gxx
def test_a_corrupted_vector_is_caught(project, test_bench, tmp_path):
    work = tmp_path / "hls"
    shutil.copytree(project, work)
    # One expected value off by one: exactly that vector is reported.
    pred = work / hls.TB_OUTPUTS
    lines = pred.read_text().splitlines(keepends=True)
    values = lines[7].split()
    values[2] = str(int(values[2]) + 1)
    lines[7] = " ".join(values) + " \n"
    pred.write_text("".join(lines))
    _, log = run_test_bench(test_bench, work)
    assert mismatches(work, log) == [7]
    # One input changed (within its range): the test bench reads it, the outputs move.
    shutil.copy(project / hls.TB_OUTPUTS, pred)
    x = VECTORS.copy()
    x[5, :] = np.where(x[5, :] < 0, x[5, :] + 100, x[5, :] - 100)
    assert not np.array_equal(golden.outputs(MLP, x[5:6]), golden.outputs(MLP, VECTORS[5:6]))
    (work / hls.TB_INPUTS).write_text("".join(" ".join(map(str, r)) + " \n" for r in x))
    _, log = run_test_bench(test_bench, work)
    assert mismatches(work, log) == [5]
    assert np.array_equal(ints(log), golden.outputs(MLP, x))


def test_write_tb_data_replaces_vectors_and_keeps_the_library_stamp(project, tmp_path):
    plain = tmp_path / "plain"
    hls.write_hls_project(MLP, plain, PART)
    assert not any((plain / "tb_data").iterdir())
    # The vectors are no source of the C-simulation library: same stamp with or without.
    assert (plain / "build_lib.sh").read_text() == (project / "build_lib.sh").read_text()
    hls.write_tb_data(plain, MLP, VECTORS[:3])
    assert ints((plain / hls.TB_OUTPUTS).read_text().splitlines()).shape == (3, 5)
    hls.write_tb_data(plain, MLP, VECTORS)
    for rel in (hls.TB_INPUTS, hls.TB_OUTPUTS):
        assert (plain / rel).read_bytes() == (project / rel).read_bytes()
    assert sorted(p.name for p in (plain / "tb_data").iterdir()) == sorted(
        Path(rel).name for rel in (hls.TB_INPUTS, hls.TB_OUTPUTS)
    )


def wide_input_graph(bits: int) -> Graph:
    """y = x0 - x1 on unsigned inputs of ``bits`` bits: any rounding of an input shows."""
    ops = (
        Input("x", (), 2, IntRange(0, 2**bits - 1), 0),
        Dense("y", ("x",), 2, (Row(0, (0, 1), (1, -1)),), 0),
    )
    g = Graph(ops, ("y",))
    verify(g)
    return g


@needs_gxx
def test_inputs_beyond_float_reach_the_design_exactly(tmp_path):
    # 2**24 + 1 and 2**31 - 1 are not floats: through hls4ml's float test bench the outputs
    # would be off by one. Such a project's test bench reads doubles.
    g = wide_input_graph(32)
    x = np.array([[2**24 + 1, 2**24], [2**32 - 1, 2**31 - 1], [0, 2**32 - 1], [3, 1]])
    project = tmp_path / "hls"
    hls.write_hls_project(g, project, PART, vectors=x)
    assert "std::vector<double> in;" in (project / "myproject_test.cpp").read_text()
    _, log = run_test_bench(compile_test_bench(project), project)
    assert ints(log).tolist() == [[1], [2**31], [-(2**32) + 1], [2]]
    assert mismatches(project, log) == []
    # A project whose test bench still reads floats (hls4ml's, by hand) gets no wide vectors.
    bench = project / "myproject_test.cpp"
    bench.write_text(bench.read_text().replace("vector<double> in;", "vector<float> in;"))
    with pytest.raises(HwpruneError, match="reads its inputs as float"):
        hls.write_tb_data(project, g, x)


def test_narrow_inputs_keep_hls4mls_float_test_bench(project):
    text = (project / "myproject_test.cpp").read_text()
    assert "std::vector<float> in;" in text and "nnet::copy_data<float, " in text


@pytest.mark.parametrize(
    ("g", "x", "message"),
    [
        (MLP, VECTORS[:, :3], "shape"),
        (MLP, VECTORS[:0], "shape"),
        (MLP, VECTORS + 0.5, "integers"),
        (MLP, np.full((1, 16), 300), "outside"),
        (MLP, np.full((1, 16), 2**24 + 1), "up to 2\\*\\*24"),
        (wide_input_graph(60), np.array([[2**53, 0], [2**53 + 1, 0]]), "up to 2\\*\\*53"),
    ],
)
def test_bad_vectors_are_refused(g, x, message):
    with pytest.raises(HwpruneError, match=message):
        hls.tb_data_files(g, x)


def test_vectors_of_another_graph_are_refused(project):
    other = random_mlp(22, (16, 12, 8, 5), 0.7, in_signed=True)
    with pytest.raises(HwpruneError, match="not written from this graph"):
        hls.write_tb_data(project, other, VECTORS)
