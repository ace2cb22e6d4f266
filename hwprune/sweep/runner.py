"""Running a sweep's points on Dask distributed, resuming from the records already written.

A point whose record (points/<key>/point.json) says ok is never submitted again; a failed
one neither, unless ``retry_failed``. Every other point is one task, keyed ``point-<key>``,
on a LocalCluster of one single-threaded worker process per core (or on the cluster behind
``scheduler``). Results are written as they arrive: each point's record by the task itself,
sweep.json after every completed point (atomically, so an interrupted sweep leaves a valid
file), sweep.md and sweep.png at the end.

A worker that dies while running a point (a crash, the OOM killer, SIGKILL) loses only that
point's run: the nanny starts a new worker and the scheduler gives the task to a live one,
up to ``distributed.scheduler.allowed-failures`` times (default 3); past that, Dask raises
KilledWorker and the point is recorded as failed with that message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwprune import __version__
from hwprune.errors import HwpruneError
from hwprune.sweep.point import (
    POINTS_DIR,
    PointTask,
    failed_record,
    read_record,
    run_point,
    write_record,
)
from hwprune.sweep.results import fronts, pending_record, write_json, write_results
from hwprune.sweep.spec import Sweep

# Marks a folder as a sweep directory (only such a folder, or an empty one, is written into).
SWEEP_MARKER = ".hwprune-sweep"
# Environment of every local worker process, set before it imports anything: one thread for
# the BLAS and OpenMP pools (torch's intra-op pool is OpenMP), as distributed's own default.
WORKER_ENV = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}


@dataclass
class SweepReport:
    """What a sweep produced: every point's record (in the sweep's order) and the files."""

    sweep: Sweep
    out_dir: Path
    records: list[dict]
    ran: int  # points computed by this call
    cached: int  # points whose record an earlier call wrote
    seconds: float
    dashboard: str | None = None  # the Dask dashboard's address, when a cluster was used
    paths: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records if r["status"] == "failed"]

    @property
    def ok(self) -> bool:
        """Every point finished without error."""
        return all(r["status"] == "ok" for r in self.records)

    def fronts(self) -> dict[str, list[dict]]:
        """The Pareto fronts (``results.FRONTS``) among the ok points."""
        return fronts(self.records)


def check_sweep_dir(out_dir: Path) -> None:
    """Refuse a file, or an existing non-empty folder that is not a sweep directory (it may
    hold the user's files, or an hwprune build directory)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise HwpruneError(f"{out_dir} is a file; pass a directory with -o")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / SWEEP_MARKER).is_file():
        raise HwpruneError(
            f"{out_dir} exists and is not an hwprune sweep directory; choose a new or empty "
            "-o DIR (the same DIR again resumes a sweep)"
        )


def _make_sweep_dir(out_dir: Path) -> None:
    try:
        (out_dir / POINTS_DIR).mkdir(parents=True, exist_ok=True)
        (out_dir / SWEEP_MARKER).write_text(f"hwprune {__version__} sweep directory\n")
    except OSError as e:
        raise HwpruneError(
            f"{out_dir}: cannot create the sweep directory ({e.strerror}); choose a writable -o"
        ) from None


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None, dashboard_address: str | None):
    """A Dask client: of a new LocalCluster, or connected to the scheduler at ``scheduler``."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            # (waits distributed.comm.timeouts.connect: 30 s unless configured)
            client = Client(scheduler)
        except Exception as e:  # noqa: BLE001 - OSError or TimeoutError, reworded for the CLI
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise HwpruneError(
                f"--scheduler {scheduler}: cannot connect ({first}); start one with "
                "'dask scheduler' (and workers with 'dask worker ADDRESS'), or drop "
                "--scheduler to run on a local cluster"
            ) from None
        with client:
            yield client
        return
    env = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_ENV.items()}
    with dask.config.set(env):
        cluster = LocalCluster(
            n_workers=workers or _cores(),
            threads_per_worker=1,
            processes=True,
            dashboard_address=dashboard_address,
        )
    try:
        with Client(cluster) as client:
            yield client
    finally:
        # A worker that has imported torch and Brevitas can take more than the nanny's 4 s
        # to exit on busy cores; it is then killed, with a warning that alarms for nothing
        # (every result is written by then).
        nanny = logging.getLogger("distributed.nanny")
        level = nanny.level
        nanny.setLevel(logging.ERROR)
        try:
            cluster.close()
        finally:
            nanny.setLevel(level)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(f"hwprune sweep: {text}", file=sys.stderr, flush=True)


def run_sweep(
    sw: Sweep,
    out_dir: Path,
    workers: int | None = None,
    scheduler: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    dashboard_address: str | None = ":8787",
) -> SweepReport:
    """Run the points of ``sw`` that have no record yet in ``out_dir`` (see the module)."""
    if workers is not None and workers < 1:
        raise HwpruneError(f"--workers {workers}: use 1 or more")
    if workers is not None and scheduler:
        raise HwpruneError(
            "--workers sizes the local cluster; with --scheduler the cluster's own workers "
            "run the points: drop one of them"
        )
    out_dir = Path(out_dir)
    check_sweep_dir(out_dir)
    t0 = time.perf_counter()
    records: dict[str, dict] = {}
    pending = []
    for p in sw.points:
        rec = read_record(out_dir, p.key)
        if rec is not None and (rec["status"] == "ok" or not retry_failed):
            records[p.key] = {**rec, "inputs": p.inputs}  # (as this sweep names them)
        else:
            pending.append(p)

    def ordered() -> list[dict]:
        return [records.get(p.key) or pending_record(p) for p in sw.points]

    cached = len(sw.points) - len(pending)
    report = SweepReport(sw, out_dir, [], 0, cached, 0.0)
    if cached:
        _say(progress, f"{cached} of {len(sw.points)} points already computed in {out_dir}")
    try:
        if pending:
            with _client(workers, scheduler, dashboard_address) as client:
                _make_sweep_dir(out_dir)  # (not before: a scheduler not found writes nothing)
                report.dashboard = client.dashboard_link
                n = len(client.scheduler_info(n_workers=-1)["workers"])
                _say(progress, f"{len(pending)} points to run on {n} Dask workers")
                if client.dashboard_link:
                    _say(progress, f"Dask dashboard: {client.dashboard_link}")

                def done(rec: dict) -> None:
                    records[rec["key"]] = rec
                    write_json(out_dir, sw, ordered())

                report.ran = _collect(client, sw, out_dir, pending, retry_failed, done, progress)
    finally:
        # Also when interrupted: sweep.json then lists the points not run as pending (but
        # nothing is written when the cluster could not even be reached).
        report.records = ordered()
        if (out_dir / SWEEP_MARKER).is_file():
            write_json(out_dir, sw, report.records)
    _make_sweep_dir(out_dir)
    report.paths = write_results(out_dir, sw, report.records)
    report.seconds = time.perf_counter() - t0
    return report


def _collect(
    client, sw: Sweep, out_dir: Path, pending, retry_failed: bool, done, progress: bool
) -> int:
    """Submit the pending points, hand each record to ``done`` as its task completes, and
    return how many completed."""
    from distributed import as_completed
    from tqdm import tqdm

    sweep_dir = str(out_dir.resolve())
    futures = {}
    for p in pending:
        task = PointTask(p.key, p.inputs, p.config, sweep_dir, sw.sim, sw.synth, retry_failed)
        futures[client.submit(run_point, task, key=f"point-{p.key}", pure=False)] = task
    bar = tqdm(
        total=len(sw.points),
        initial=len(sw.points) - len(pending),
        desc="sweep",
        unit="point",
        disable=not progress,
        file=sys.stderr,
    )
    ran = failed = 0
    with bar:
        for fut in as_completed(list(futures)):
            task = futures.pop(fut)
            if fut.status == "finished":
                rec = fut.result()
                if read_record(out_dir, task.key) is None:  # a worker on another disk
                    write_record(task, rec)
            elif fut.status == "error":  # Dask gave up: KilledWorker, or lost data
                exc = fut.exception()
                rec = failed_record(task, f"{type(exc).__name__}: {exc}", None)
                write_record(task, rec)
            else:  # cancelled: not run, stays pending for the next call
                continue
            fut.release()
            ran += 1
            failed += rec["status"] == "failed"
            done(rec)
            bar.set_postfix(failed=failed, refresh=False)
            bar.update()
    return ran
