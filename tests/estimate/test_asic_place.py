"""qflow placement and routing on a standard-cell library (hwprune.estimate.asic_place).

The small network is a 2-layer random MLP (8 -> 6 -> 4 at 50 % sparsity); the expectations
are physical bounds (the core holds every placed cell, a complete route leaves no failed net,
the placed netlist holds at least the mapped cells), not figures produced by the code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hwprune.errors import HwpruneError
from hwprune.estimate import asic_place
from hwprune.estimate.asic_place import MAX_CELLS, place_asic, wire_length
from hwprune.libraries import find_library

needs_qflow = pytest.mark.skipif(
    shutil.which("qflow") is None
    or shutil.which("yosys") is None
    or not Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib").is_file(),
    reason="qflow (with graywolf, qrouter, yosys and the osu018 files) not installed "
    "(sudo apt-get install qflow)",
)


def _small_rtl(d: Path) -> Path:
    from hwprune.codegen.cocotb_tb import write_rtl
    from hwprune.ir.passes import optimize
    from tests.graphs import random_mlp

    g = random_mlp(3, (8, 6, 4), sparsity=0.5, in_signed=True, in_bits=4, w_bits=3, act_bits=3)
    write_rtl(optimize(g), d)
    return d


def test_refuses_a_design_above_the_limit_before_running(tmp_path, monkeypatch):
    # Refused on the given cell count, before any tool is looked for or run.
    monkeypatch.setattr(asic_place, "find_qflow", lambda: pytest.fail("a tool was looked for"))
    lib = find_library("asic:osu018")
    with pytest.raises(HwpruneError) as e:
        place_asic(tmp_path / "rtl", lib, tmp_path / "w", max_cells=100, cell_count=101)
    msg = str(e.value)
    assert "101 cells, above the 100 this flow places and routes in about 10 minutes here" in msg
    assert not (tmp_path / "w").exists()


def test_limit_is_the_measured_one():
    # Every measured design at or below the limit finished within ten minutes; those above
    # it did not.
    assert MAX_CELLS == 5000
    for cells, seconds in asic_place.SCALING.items():
        assert (seconds <= 600) == (cells <= MAX_CELLS)


def test_rejects_a_utilisation_outside_0_1(tmp_path):
    lib = find_library("asic:osu018")
    for u in (0, 1.5):
        with pytest.raises(HwpruneError, match="utilisation"):
            place_asic(tmp_path, lib, tmp_path / "w", utilisation=u)


def test_missing_qflow_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setattr(asic_place.shutil, "which", lambda _name, **_kw: None)
    monkeypatch.setattr(asic_place, "QFLOW_BIN", tmp_path / "nowhere")
    with pytest.raises(HwpruneError, match=r"sudo apt-get install qflow"):
        place_asic(tmp_path, find_library("asic:osu018"), tmp_path / "w", cell_count=10)


def test_wire_length_of_a_hand_written_def():
    # Two nets: a 3 um + 2 um L-shaped route (units 100 per um) and a 1 um via-to-via jog;
    # the ( instance pin ) pairs before "+ ROUTED" are not points.
    text = """NETS 2 ;
- a
  ( PIN a ) ( U1 A )
+ ROUTED metal1 ( 0 0 ) ( 300 * ) M2_M1
  NEW metal2 ( 300 0 ) ( * 200 ) ;
- b
  ( U1 Y ) ( U2 A )
+ ROUTED metal2 ( 100 100 ) ( 100 200 ) ;
END NETS
SPECIALNETS 1 ;
- vdd ( * vdd )
+ ROUTED metal1 120 ( 0 0 ) ( 99900 * ) ;
END SPECIALNETS
"""
    assert wire_length(text, 100) == 6.0


@needs_qflow
def test_small_design_places_and_routes(tmp_path):
    rtl = _small_rtl(tmp_path / "rtl")
    lib = find_library("asic:osu018")
    stages: list[str] = []
    r = place_asic(rtl, lib, tmp_path / "work", utilisation=0.5, progress=stages.append)
    json.dumps(r)  # JSON-able
    assert stages == ["map", "synthesize", "place", "route", "backanno"]
    assert r["routing"]["completed"] and r["routing"]["failed_nets"] == 0
    assert r["routing"]["wire_length_um"] > 0
    assert r["core"]["area_um2"] >= r["cell_area_um2"] > 0
    assert r["core"]["area_um2"] == pytest.approx(
        r["core"]["width_um"] * r["core"]["height_um"], rel=1e-3
    )
    assert r["die"]["area_um2"] >= r["core"]["area_um2"]
    # qflow adds output and fan-out buffers to the mapped netlist, never removes a cell.
    assert r["cell_count"] >= r["mapped_cell_count"] > 0
    assert r["cell_area_um2"] >= r["mapped_area_um2"]["total"]
    # decongest pads to the requested density; the rows add a little slack on top.
    assert 0.3 <= r["utilisation"]["achieved"] <= 0.5
    assert r["versions"]["qflow"] and r["versions"]["qrouter"]
    assert set(r["seconds"]) >= {"map", "synthesize", "place", "route", "place_and_route"}
    for log in ("place", "route"):
        assert Path(r["logs"][log]).is_file()
    if r["timing"] is not None:
        assert r["timing"]["critical_path_ns"] > 0
