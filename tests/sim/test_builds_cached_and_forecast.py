"""Builds are kept in DIR/cache/ by a hash of their sources: a second ``sim`` after a
``compile`` that changed nothing builds nothing, a changed source builds again; and ``sim``
says before starting when its levels will take long."""

from __future__ import annotations

import subprocess
import sys
import warnings

from hwprune import api
from hwprune.names import TOP
from hwprune.sim import csim, forecast, rtl


def _compile(model, out):
    cmd = [sys.executable, "-m", "hwprune.cli", "compile", str(model), "-o", str(out)]
    assert subprocess.run(cmd, capture_output=True).returncode == 0


def _built_files(out):
    """The simulator's and g++'s products, with their modification times."""
    files = [p for p in (out / "cache").rglob("*") if p.is_file() and p.suffix in (".vvp", ".so")]
    assert files, "nothing was built into cache/"
    return {p: p.stat().st_mtime_ns for p in files}


def test_a_sim_after_an_unchanged_compile_builds_nothing(tmp_path, small_qonnx):
    warnings.filterwarnings("ignore")
    out = tmp_path / "b"
    _compile(small_qonnx, out)
    rtl_dir, cache = out / "rtl", out / "cache"
    assert not rtl.is_built(rtl_dir, "icarus", TOP, cache / "rtl")
    assert not csim.is_built(out / "hls", cache / "csim")
    api.sim(out, vectors=20, progress=False, levels=["csim", "rtl"])
    assert rtl.is_built(rtl_dir, "icarus", TOP, cache / "rtl")
    assert csim.is_built(out / "hls", cache / "csim")
    before = _built_files(out)

    _compile(small_qonnx, out)  # rewrites hls/ and rtl/ with the same bytes
    assert rtl.is_built(rtl_dir, "icarus", TOP, cache / "rtl")
    assert csim.is_built(out / "hls", cache / "csim")
    rep = api.sim(out, vectors=20, progress=False, levels=["csim", "rtl"])
    assert rep.passed and _built_files(out) == before  # nothing rebuilt
    est = forecast.forecast(out, api.load(out).graph, 20, "icarus", ["csim", "rtl"])
    assert est["csim"][0] == 0.0 and est["rtl"][0] == 0.0

    top = rtl_dir / "hwprune_top.v"
    top.write_text(top.read_text() + "// changed\n")
    assert not rtl.is_built(rtl_dir, "icarus", TOP, cache / "rtl")
    est = forecast.forecast(out, api.load(out).graph, 20, "icarus", ["csim", "rtl"])
    assert est["rtl"][0] > 0.0 and est["csim"][0] == 0.0
    assert api.sim(out, vectors=20, progress=False, levels=["rtl"]).passed
    assert rtl.is_built(rtl_dir, "icarus", TOP, cache / "rtl")
    assert len(list((cache / "rtl").glob("icarus-*"))) == 1  # the stale build is gone


def test_sim_says_before_starting_when_it_will_take_long(
    tmp_path, small_qonnx, monkeypatch, capsys
):
    warnings.filterwarnings("ignore")
    out = tmp_path / "b"
    _compile(small_qonnx, out)
    monkeypatch.setattr(forecast, "WARN_SECONDS", 0.0)  # this design is small: warn anyway
    api.sim(out, vectors=10, progress=True, levels=["qonnx", "rtl"])
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "will take about" in ln]
    assert len(lines) == 1
    line = lines[0]
    # the slowest level (the uncached simulator build) is the one left out of the suggestion
    assert line.startswith("hwprune sim: this design") and "--levels qonnx" in line
    assert "rtl" not in line.rsplit("--levels", 1)[1]
    # one level: the hint is not a --levels of nothing
    api.sim(out, vectors=10, progress=True, levels=["rtl"])
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "will take about" in ln]
    assert "--levels" not in line and ("--vectors" in line or "the next run reuses" in line)
    # nothing is said when the levels are quick
    monkeypatch.setattr(forecast, "WARN_SECONDS", 180.0)
    api.sim(out, vectors=10, progress=True, levels=["qonnx", "rtl"])
    assert "will take about" not in capsys.readouterr().err
