"""Sweeps on a real LocalCluster of 2 workers (conftest.scheduler): every point through the
real steps and estimator; resume recomputes nothing (counted in runs.log, which each task
start appends to); a point that raises is recorded and the others finish; a point whose
worker process dies is run again by Dask and completes."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter

import pytest

from hwprune import api
from hwprune.sweep.point import POINT_JSON, POINTS_DIR
from tests.sweep.helpers import SHORT, TINY, runs, write_sweep

GRID = (
    TINY
    + """
[axes]
"prune.sparsity" = [0.5, 0.8]
"compile.kernel" = ["mac", "adder-graph"]
"""
)


def dominates(a: dict, b: dict, cost: str) -> bool:
    """``a`` is at least as accurate and as cheap as ``b``, and better in one."""
    acc_a, acc_b = a["accuracy"]["pruned"], b["accuracy"]["pruned"]
    c_a, c_b = a["estimate"][cost], b["estimate"][cost]
    return acc_a >= acc_b and c_a <= c_b and (acc_a > acc_b or c_a < c_b)


def test_grid_on_two_workers_then_resume_recomputes_nothing(tmp_path, scheduler):
    sweep = write_sweep(tmp_path, GRID)
    out = tmp_path / "out"
    rep = api.sweep(sweep, out, scheduler=scheduler, progress=False)
    assert rep.ok and rep.ran == 4 and rep.cached == 0
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["summary"] == {"points": 4, "ok": 4, "failed": 0, "pending": 0}
    inputs = [p["inputs"] for p in doc["points"]]
    assert inputs == [  # grid order, last axis fastest
        {"prune.sparsity": s, "compile.kernel": k}
        for s in (0.5, 0.8)
        for k in ("mac", "adder-graph")
    ]
    for p in doc["points"]:
        # The figures are the real estimator's: those of the point's own estimate.json.
        build = out / POINTS_DIR / p["key"]
        est = json.loads((build / "estimate.json").read_text())[p["board"]]
        assert p["estimate"]["lut"] == est["totals"]["lut"] > 0
        assert p["estimate"]["latency_cycles"] == est["totals"]["latency_cycles"] > 0
        assert 0 < p["accuracy"]["pruned"] <= 1
        assert json.loads((build / POINT_JSON).read_text())["status"] == "ok"
        assert (build / "rtl" / "hwprune_top.v").is_file()
        assert set(p["seconds"]) == {"train", "export", "compile", "estimate", "total"}
    # The fronts, checked against their definition.
    ok = doc["points"]
    for cost in ("lut", "latency_cycles"):
        front = [p for p in ok if p["key"] in doc["pareto"][cost]]
        assert front
        assert not any(dominates(q, f, cost) for f in front for q in ok)
        assert all(any(dominates(f, q, cost) for f in front) for q in ok if q not in front)
    md = (out / "sweep.md").read_text()
    assert "## Pareto front: accuracy against estimated LUT" in md
    assert "## Pareto front: accuracy against latency" in md
    assert all(p["key"] in md for p in ok)
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(runs(out)) == sorted(p["key"] for p in ok)

    # Run again: no task runs, the results are the same.
    before = (out / "sweep.json").read_text()
    again = api.sweep(sweep, out, scheduler=scheduler, progress=False)
    assert again.ran == 0 and again.cached == 4 and again.dashboard is None
    assert len(runs(out)) == 4
    assert json.loads((out / "sweep.json").read_text()) == json.loads(before)

    # Interrupted in the middle of one point: its record missing, part of its build left.
    lost = ok[2]["key"]
    os.remove(out / POINTS_DIR / lost / POINT_JSON)
    shutil.rmtree(out / POINTS_DIR / lost / "rtl")
    third = api.sweep(sweep, out, scheduler=scheduler, progress=False)
    assert third.ran == 1 and third.ok
    assert Counter(runs(out)) == Counter({p["key"]: 1 + (p["key"] == lost) for p in ok})
    assert (out / POINTS_DIR / lost / "rtl" / "hwprune_top.v").is_file()


def test_a_point_whose_worker_dies_is_run_again_and_completes(tmp_path, scheduler):
    # dies_once ends its process (os._exit) the first time, as a segfault would: the nanny
    # starts a new worker and the scheduler gives the task to a live one.
    sweep = write_sweep(tmp_path, SHORT + '[config.model]\nmodule = "user_models.py:dies_once"\n')
    out = tmp_path / "out"
    rep = api.sweep(sweep, out, scheduler=scheduler, progress=False)
    assert (tmp_path / "dies_once.marker").is_file()
    (rec,) = rep.records
    assert rep.ok and rec["status"] == "ok", rec.get("error")
    started = (out / "runs.log").read_text().splitlines()
    assert [line.split()[0] for line in started] == [rec["key"]] * 2
    pids = [line.split("pid=")[1] for line in started]
    assert pids[0] != pids[1] and pids[1] == str(rec["pid"])


@pytest.mark.slow
def test_sim_and_yosys_on_every_point(tmp_path, scheduler):
    # The ladder (C-sim, RTL sim) and yosys for the point's board: minutes, so -m slow.
    body = TINY + '[config.sim]\nvectors = 100\n[sweep]\nsim = true\nsynth = "yosys"\n'
    out = tmp_path / "out"
    rep = api.sweep(write_sweep(tmp_path, body), out, scheduler=scheduler, progress=False)
    (rec,) = rep.records
    assert rec["status"] == "ok", rec.get("error")
    assert rec["sim"]["passed"] and "sim" in rec["seconds"] and "synth" in rec["seconds"]
    assert rec["synth"]["tool"].lower().startswith("yosys") and rec["synth"]["lut"] > 0
    est = json.loads((out / POINTS_DIR / rec["key"] / "estimate.json").read_text())
    assert est[rec["board"]]["synth"]["resources"]["lut"]["measured"] == rec["synth"]["lut"]
    assert "LUT (yosys)" in (out / "sweep.md").read_text()
