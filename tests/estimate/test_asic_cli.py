"""`hwprune estimate DIR --target asic:osu018 --synth yosys` on a compiled build: the fast
estimate and the measured figures (yosys mapping, OpenSTA) in asic.json, the boards'
estimate.json untouched, bad requests refused in one line."""

import json
import shutil

import pytest

from tests.test_cli import assert_clean_error, hwprune

pytestmark = pytest.mark.skipif(
    shutil.which("yosys") is None or shutil.which("sta") is None,
    reason="needs yosys and OpenSTA (make deps)",
)


@pytest.fixture(scope="module")
def build(small_qonnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("asic") / "build"
    r = hwprune("compile", small_qonnx, "-o", out)
    assert r.returncode == 0, r.stderr
    return out


def test_target_synth_writes_asic_json(build):
    before = (build / "estimate.json").read_bytes()
    r = hwprune("estimate", build, "--target", "asic:osu018", "--synth", "yosys")
    assert r.returncode == 0, r.stderr
    assert "asic:osu018" in r.stdout and "Fmax" in r.stdout
    assert (build / "estimate.json").read_bytes() == before  # boards only, unchanged
    e = json.loads((build / "asic.json").read_text())["asic:osu018"]
    syn, sta = e["synth"], e["synth"]["sta"]
    assert (build / "asic" / "osu018" / "mapped.v").is_file()
    assert syn["cell_count"] == sum(syn["cells"].values()) > 0
    assert syn["area_um2"]["total"] == pytest.approx(syn["yosys_area"])
    # OpenSTA timed a path and powered the design at the library's clock.
    assert sta["clock_mhz"] == 200.0 and sta["fmax_mhz"] > 0
    assert sta["critical_path_ns"] == pytest.approx(1000 / 200 - sta["slack_ns"], abs=1e-3)
    p = sta["power_w"]
    assert p["total"] == pytest.approx(p["internal"] + p["switching"] + p["leakage"], rel=1e-3)
    assert p["leakage"] > 0
    # The fast estimate (no synthesis) lands near the measured area on this network.
    assert e["area_um2"]["total"] == pytest.approx(syn["area_um2"]["total"], rel=0.15)
    assert e["latency_cycles"] > 0
    assert syn["ratio"]["area"] == pytest.approx(
        e["area_um2"]["total"] / syn["area_um2"]["total"], abs=1e-3
    )


def test_place_refuses_a_design_above_its_limit(build):
    # The small network maps to about 10k cells, above what qflow places here in 10 minutes.
    r = hwprune("estimate", build, "--target", "asic:osu018", "--synth", "yosys", "--place")
    assert_clean_error(r, "cells, above the")
    r = hwprune("estimate", build, "--target", "asic:osu018", "--place")
    assert_clean_error(r, "--synth yosys")
    r = hwprune("estimate", build, "--place")
    assert_clean_error(r, "--target asic:NAME")


def test_a_library_without_fitted_constants_is_measured_only(build):
    # osu035 has no constants in asic_fit.toml: the fast estimate refuses alone, in one line,
    # and with --synth yosys the design is mapped, timed and powered on it all the same.
    r = hwprune("estimate", build, "--target", "asic:osu035")
    assert_clean_error(r, "asic:osu035", "no fitted constants", "--synth yosys")
    asic_json = build / "asic.json"
    before = set(json.loads(asic_json.read_text())) if asic_json.is_file() else set()
    r = hwprune("estimate", build, "--target", "asic:osu035", "--synth", "yosys", "--json")
    assert r.returncode == 0, r.stderr
    e = json.loads(r.stdout)["asic:osu035"]
    assert e["area_um2"] is None and e["synth"]["ratio"]["area"] is None
    assert e["synth"]["area_um2"]["total"] == pytest.approx(e["synth"]["yosys_area"])
    assert e["synth"]["sta"]["clock_mhz"] == 100.0  # osu035's default clock
    saved = set(json.loads(asic_json.read_text()))
    assert saved == before | {"asic:osu035"}  # other targets' entries are kept
