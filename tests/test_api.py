"""The Python API (hwprune/api.py): the README's session as written, predict against qonnx,
the steps as data (restart, export reproduced byte for byte), errors as exceptions."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hwprune
from hwprune import api
from hwprune.errors import HwpruneError
from hwprune.sim.reference import qonnx_outputs, qonnx_reference

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "models"


def readme_session() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_session_runs_as_written(tmp_path):
    # The block is run unchanged, from a folder where its relative paths resolve.
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "models").symlink_to(MODELS)
    code = readme_session()
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "build/unsw/rtl/hwprune_top.v" in r.stdout
    assert "| total" in r.stdout  # the per-layer table
    assert "unknown board 'nosuch'" in r.stdout or "nosuch" in r.stdout
    assert (tmp_path / "build" / "unsw" / "sim" / "report.json").is_file()


def test_design_paths_exist_and_load_round_trips(tmp_path):
    d = api.compile(MODELS / "unsw_nb15_mlp_w2a2.onnx", tmp_path / "b")
    for name, p in d.paths.items():
        assert p.exists(), name
    again = hwprune.load(tmp_path / "b")
    assert again.graph == d.graph and again.manifest == d.manifest
    assert again.estimates == d.estimates and set(d.estimates) == {b.name for b in api.boards()}


def test_predict_equals_qonnx_on_a_host_prepared_input(tmp_path):
    # unsw reads BIPOLAR values and the host applies (x + 1) / 2: predict prepares the
    # input with qonnx and the outputs equal qonnx's own.
    d = api.compile(MODELS / "unsw_nb15_mlp_w2a2.onnx", tmp_path / "b")
    x = np.random.default_rng(3).choice([-1.0, 1.0], size=(40, 600))
    _, want = qonnx_reference(d.model, d.graph, x.astype(np.float32).reshape(40, 1, 600))
    assert np.array_equal(d.predict(x, raw=True), want)
    assert np.array_equal(d.predict(x), want * 2.0 ** d.graph.meta["output_exp"])


def test_predict_equals_qonnx_on_quantizer_levels(default_run):
    # The default job's model reads its input through a power-of-two quantizer: predict takes
    # that quantizer's levels as they are.
    out, _, _ = default_run
    d = hwprune.load(out)
    model = d.model
    (inp,) = d.graph.inputs
    assert d.graph.host_input is None
    levels = np.random.default_rng(0).integers(inp.range.lo, inp.range.hi + 1, (30, inp.size))
    want = qonnx_outputs(model, d.graph, levels)
    assert np.array_equal(d.predict(levels * 2.0**inp.exp, raw=True), want)
    off = levels * 2.0**inp.exp
    off[2, 5] += 2.0 ** (inp.exp - 1)  # half a step: not a level of the input quantizer
    with pytest.raises(HwpruneError, match=r"input \[2, 5\] .* is not a level"):
        d.predict(off)
    with pytest.raises(HwpruneError, match="each input has 3 values"):
        d.predict(np.zeros((1, 3)))


def test_errors_are_exceptions_and_train_is_callable(tmp_path):
    with pytest.raises(HwpruneError, match="unknown board 'nosuch'"):
        hwprune.compile(MODELS / "unsw_nb15_mlp_w2a2.onnx", tmp_path / "b", board="nosuch")
    assert not (tmp_path / "b").exists()
    # hwprune.train is the train package and the API's train step at once.
    with pytest.raises(HwpruneError, match="no such config file"):
        hwprune.train(tmp_path / "missing.toml", tmp_path / "t")
    import importlib

    importlib.import_module("hwprune.train.loop")  # the package stays callable once imported
    assert callable(hwprune.train)


def test_steps_restart_from_the_build_directory(default_run, tmp_path):
    out, _, report = default_run
    copy = tmp_path / "build"
    shutil.copytree(out, copy)
    # export alone, from model.pt and config.toml: the same QONNX bytes as the first run
    (copy / "model.onnx").unlink()
    api.run(None, copy, progress=False, start="export", stop="export")
    assert (copy / "model.onnx").read_bytes() == (out / "model.onnx").read_bytes()
    # estimate and report from what the run left (config None: the build's config.toml)
    for name in ("estimate.json", "report.md", "report.html"):
        (copy / name).unlink()
    shutil.rmtree(copy / "plots")
    again = api.run(None, copy, progress=False, start="estimate")
    assert (copy / "estimate.json").read_text() == (out / "estimate.json").read_text()
    assert again.design.estimates == report.design.estimates
    assert [lv.name for lv in again.sim.levels] == [lv.name for lv in report.sim.levels]
    assert (copy / "report.md").is_file() and (copy / "report.html").is_file()
    assert len(list((copy / "plots").glob("*.png"))) == 4


def test_restart_without_the_earlier_files_names_the_step(tmp_path):
    with pytest.raises(HwpruneError, match="has no model.pt; run the 'train' step"):
        api.run(None, tmp_path / "empty", progress=False, start="sim")
    with pytest.raises(HwpruneError, match="unknown step 'simulate'"):
        api.run(None, tmp_path / "empty", progress=False, start="simulate")
    assert not (tmp_path / "empty").exists()


def test_default_job_writes_its_report(default_run):
    out, _, report = default_run
    text = (out / "report.md").read_text()
    assert "## Per-layer estimate (pynq-z2)" in text and "| total" in text
    for png in ("training", "nonzeros", "layer_resources", "utilization"):
        assert f"](plots/{png}.png)" in text
        assert (out / "plots" / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "<table" in html
    # the printed summary carries the per-layer table too
    assert "| total" in api.summary(report)
    assert report.plots and all(p.is_file() for p in report.plots)


@pytest.mark.slow  # maps the digits MLP (about 70k cells) with yosys: about 3 minutes
def test_config_asic_key_adds_the_asic_row_to_the_report(default_run, tmp_path):
    from dataclasses import replace

    out, cfg, _ = default_run
    copy = tmp_path / "build"
    shutil.copytree(out, copy)
    cfg = replace(cfg, compile=replace(cfg.compile, asic="asic:osu018"))
    again = api.run(cfg, copy, progress=False, start="estimate")
    asic = json.loads((copy / "asic.json").read_text())["asic:osu018"]
    assert again.design.asic["asic:osu018"] == asic
    sta = asic["synth"]["sta"]
    assert asic["synth"]["area_um2"]["total"] > 0 and sta["fmax_mhz"] > 0
    text = (copy / "report.md").read_text()
    assert "ASIC (area in mm²" in text and "asic:osu018" in text
    assert f"{sta['power_w']['total'] * 1e3:.3f}" in text  # power beside the boards
    # the boards' estimate is the same as without the key
    assert (copy / "estimate.json").read_text() == (out / "estimate.json").read_text()
