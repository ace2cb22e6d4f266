"""One point of a sweep, as a task: its build directory, its steps and its record.

``run_point`` is what a Dask worker runs (it also runs in-process, without Dask). It never
raises for a point that fails: the error is caught and recorded, so one bad point cannot stop
the others. Only the death of the process itself (a crash, SIGKILL, ``os._exit``) escapes,
and Dask then runs the task again on another worker (``distributed.scheduler.allowed-
failures``).

Files (``DIR`` is the sweep directory)::

    DIR/points/<key>/            a normal hwprune build directory (config.toml, model.onnx,
                                 ir.json, rtl/, hls/, estimate.json, ...)
    DIR/points/<key>/point.json  the record, written last and atomically: a point whose
                                 record exists has finished (ok or failed)
    DIR/points/<key>/error.txt   the traceback of a failed point
    DIR/runs.log                 one line per task start: the evidence of what ran
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hwprune import __version__
from hwprune.builddir import write_atomic
from hwprune.config import Config
from hwprune.errors import HwpruneError

POINTS_DIR = "points"
POINT_JSON = "point.json"
ERROR_TXT = "error.txt"
RUNS_LOG = "runs.log"
# The figures of a board's estimate a point records (estimate.json has them all).
ESTIMATE_KEYS = ("lut", "ff", "dsp", "bram18", "uram", "latency_cycles", "ii")
# The longest error text a record holds (the traceback is in error.txt).
MAX_ERROR = 2000


@dataclass(frozen=True)
class PointTask:
    """What a worker needs to run one point (pickled to it)."""

    key: str
    inputs: dict
    config: Config
    sweep_dir: str  # absolute; a remote worker needs it on a shared file system
    sim: bool = False
    synth: str = ""
    retry_failed: bool = False  # a failed record found when the task starts is not reused

    @property
    def point_dir(self) -> Path:
        return Path(self.sweep_dir) / POINTS_DIR / self.key


def steps(sim: bool) -> tuple[str, ...]:
    """The api steps a point runs (the report step's plots are per build, not per sweep)."""
    return ("train", "export", "compile", *(("sim",) if sim else ()), "estimate")


def read_record(sweep_dir: Path, key: str) -> dict | None:
    """The record of a finished point, or None (not run, interrupted, or unreadable)."""
    p = Path(sweep_dir) / POINTS_DIR / key / POINT_JSON
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("status") in ("ok", "failed") else None


def write_record(task: PointTask, record: dict) -> None:
    write_atomic(task.point_dir / POINT_JSON, json.dumps(record, indent=1) + "\n")


def _worker() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # not inside a Dask worker: run in-process
        return "local"


def _pin_threads() -> None:
    """One intra-op thread per task: workers are one per core, and torch's own pool would
    make them fight for the cores (the worker's OMP_NUM_THREADS is 1 too, set before torch
    is imported by distributed's nanny.pre-spawn-environ)."""
    import torch

    torch.set_num_threads(1)


@contextlib.contextmanager
def _exclusive(task: PointTask) -> Iterator[None]:
    """Hold the point's lock: one task at a time runs a point. A sweep interrupted on a
    cluster that outlives it (--scheduler) leaves its running tasks running (Dask cannot stop
    a task under way); when the sweep is resumed at once, the new task for such a point waits
    here for the old one and then takes its record. The lock goes with the process that
    holds it, so a killed worker leaves none behind."""
    path = Path(task.sweep_dir) / POINTS_DIR / f".{task.key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _log_start(task: PointTask, worker: str) -> None:
    # One short line per write, opened for appending: concurrent workers' lines do not mix.
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{task.key} start {stamp} worker={worker} pid={os.getpid()}\n"
    with open(Path(task.sweep_dir) / RUNS_LOG, "a") as f:
        f.write(line)


def failed_record(task: PointTask, error: str, step: str | None = None, **extra) -> dict:
    """The record of a point that failed (also used by the runner for a task Dask gave up
    on, whose worker died too often)."""
    return {
        "key": task.key,
        "inputs": task.inputs,
        "status": "failed",
        "error": error[:MAX_ERROR],
        "failed_step": step,
        "board": task.config.compile.board,
        "hwprune": __version__,
        **extra,
    }


def _estimate_figures(est: dict) -> dict:
    out = {k: est["totals"][k] for k in ESTIMATE_KEYS}
    out |= {
        "fits": est["fits"],
        "clock_mhz": est["clock_mhz"],
        "available": est["available"],
        "utilization_pct": est["utilization_pct"],
    }
    return out


def _synth_figures(rep: dict) -> dict:
    return {
        "tool": rep["tool"],
        "seconds": rep["seconds"],
        "fits": rep["fits"],
        **{r: row["measured"] for r, row in rep["resources"].items()},
    }


def run_point(task: PointTask) -> dict:
    """Run one point's steps in its build directory and write its record; return the record.

    Status "ok" with accuracy, the estimate on the point's board (and the simulation
    verdict, the synthesis figures when asked), seconds per step; or "failed" with the
    error, the step it happened in and the traceback in error.txt.
    """
    with _exclusive(task):
        rec = read_record(Path(task.sweep_dir), task.key)
        if rec is not None and (rec["status"] == "ok" or not task.retry_failed):
            return {**rec, "inputs": task.inputs}  # finished meanwhile, by an earlier task
        return _run(task)


def _run(task: PointTask) -> dict:
    from hwprune import api

    warnings.filterwarnings("ignore")  # Brevitas' and torch.onnx's, once per point
    worker = _worker()
    _log_start(task, worker)
    _pin_threads()
    # A fresh build directory: what an interrupted or earlier failed run left is stale.
    shutil.rmtree(task.point_dir, ignore_errors=True)
    runners = {s.name: s.run for s in api.STEPS}
    job = api._Job(task.config, task.point_dir, progress=False)
    seconds: dict[str, float] = {}
    where = {"worker": worker, "host": socket.gethostname(), "pid": os.getpid()}
    t_all = time.perf_counter()
    step = "train"
    try:
        for step in steps(task.sim):
            t0 = time.perf_counter()
            runners[step](job)
            seconds[step] = round(time.perf_counter() - t0, 3)
        board = task.config.compile.board
        synth = None
        if task.synth:
            step = "synth"
            t0 = time.perf_counter()
            ests = api.estimate(task.point_dir, board, synth=task.synth)
            synth = _synth_figures(ests[board]["synth"])
            seconds["synth"] = round(time.perf_counter() - t0, 3)
    except Exception as e:  # noqa: BLE001 - any failure of one point is recorded, not raised
        seconds["total"] = round(time.perf_counter() - t_all, 3)
        first = str(e).strip() or type(e).__name__
        task.point_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(task.point_dir / ERROR_TXT, "".join(traceback.format_exception(e)))
        error = first if isinstance(e, HwpruneError) else f"{type(e).__name__}: {first}"
        record = failed_record(task, error, step, seconds=seconds, **where)
        write_record(task, record)
        return record
    seconds["total"] = round(time.perf_counter() - t_all, 3)
    tr = job.train
    record = {
        "key": task.key,
        "inputs": task.inputs,
        "status": "ok",
        "error": None,
        "failed_step": None,
        "board": board,
        "hwprune": __version__,
        "accuracy": {"dense": tr.dense_accuracy, "pruned": tr.pruned_accuracy},
        "sparsity": tr.sparsity,
        "estimate": _estimate_figures(job.design.estimates[board]),
        "sim": None
        if job.sim is None
        else {
            "passed": job.sim.passed,
            "levels": {lv.name: lv.skipped or lv.passed for lv in job.sim.levels},
        },
        "synth": synth,
        "seconds": seconds,
        **where,
    }
    write_record(task, record)
    return record
