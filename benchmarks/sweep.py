"""Wall time of the example sweep (examples/sweep_digits.toml, 24 points) on 1 and 2 Dask
workers, and what Dask adds per point.

    .venv/bin/python benchmarks/sweep.py [--serial] [--tasks 200]   (about 15 min on 2 cores)
    .venv/bin/python benchmarks/sweep.py --report   (sweep.md again from results/sweep.json)

1. The example, from a fresh sweep directory each time, on a LocalCluster of 1 worker, then
   of 2 (``hwprune.api.sweep``, as ``hwprune sweep ... --workers N`` runs it): wall time from
   the call to the written results (cluster start and stop included), and the ratio.
2. What Dask adds per point, three ways:
   - trivial tasks: ``--tasks`` no-op tasks through a 1-worker LocalCluster, submitted at once
     and gathered (scheduler, transport and worker bookkeeping, in milliseconds per task);
   - on the real points: the 1-worker sweep's wall time minus the sum of its points' own
     seconds (measured inside each task), per point: cluster start and stop, moving tasks and
     records, writing sweep.json after each point, and the results at the end;
   - with ``--serial``: the same 24 points run one after another in this process without
     Dask (``sweep.point.run_point``), against the 1-worker sweep.

Writes benchmarks/results/sweep.md and sweep.json (tool versions, CPU, date, load average).
The machine's load is recorded before and after: 2 cores shared with other jobs make every
figure noisy, the ratio most of all.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXAMPLE = ROOT / "examples" / "sweep_digits.toml"
WORK = ROOT / "build" / "bench-sweep"
RESULTS = ROOT / "benchmarks" / "results"


def _noop(i: int) -> int:
    return i


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _busy(doc: dict) -> float | None:
    """The highest 1-minute load before a Dask run when it says other jobs were running, else
    None. Only the loads before the cluster runs count: a load after a run, or before the
    serial run (right after the 2-worker one), is mostly this benchmark's own processes, which
    the 1-minute average still holds for a minute."""
    before = [float(r["load_before"].split()[0]) for r in doc["runs"] if r.get("workers")]
    worst = max(before, default=0.0)
    return worst if worst > doc["cores"] - 0.5 else None


def busy_note(doc: dict) -> str:
    """What the load averages say about the measurements."""
    worst = _busy(doc)
    if worst is not None:
        return (
            f"**The machine was busy**: other jobs shared its {doc['cores']} cores during these "
            f"runs (1-minute load average up to {worst:.1f} before a run; before and after each "
            "run below, 1, 5 and 15 minutes). Every time here is longer and noisier than on a "
            "quiet machine, and the 2-worker speed-up most of all: a core taken by another job "
            "slows one of the two workers."
        )
    return (
        "No other job ran during these runs (load averages before and after each run below, "
        "1, 5 and 15 minutes; they count this benchmark's own processes, and a 1-minute average "
        "still holds the previous run's for about a minute)."
    )


def step_seconds(out: Path) -> dict:
    """The points' own seconds per step, summed, from their records."""
    sums: dict[str, float] = {}
    for p in sorted(out.glob("points/*/point.json")):
        for step, sec in json.loads(p.read_text())["seconds"].items():
            sums[step] = round(sums.get(step, 0.0) + sec, 1)
    return sums


def run_example(workers: int) -> dict:
    """The example on a fresh LocalCluster of ``workers``: wall time and the points' own."""
    from hwprune import api

    out = WORK / f"workers-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    load_before = load()
    t0 = time.perf_counter()
    rep = api.sweep(EXAMPLE, out, workers=workers, progress=True)
    wall = time.perf_counter() - t0
    totals = [r["seconds"]["total"] for r in rep.records if "seconds" in r]
    return {
        "workers": workers,
        "points": len(rep.records),
        "ok": sum(r["status"] == "ok" for r in rep.records),
        "wall_s": round(wall, 1),
        "points_s": round(sum(totals), 1),
        "point_median_s": round(sorted(totals)[len(totals) // 2], 2),
        "steps_s": step_seconds(out),
        "load_before": load_before,
        "load_after": load(),
    }


def trivial_tasks(n: int) -> dict:
    """``n`` no-op tasks through a 1-worker LocalCluster: seconds per task."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.gather(client.map(_noop, range(10), pure=False))  # warm up
            t0 = time.perf_counter()
            client.gather(client.map(_noop, range(n), pure=False))
            batch = time.perf_counter() - t0
            # One at a time, as a sweep's results arrive: a round trip each.
            t0 = time.perf_counter()
            for i in range(min(n, 50)):
                client.submit(_noop, i, pure=False).result()
            single = (time.perf_counter() - t0) / min(n, 50)
    return {"tasks": n, "batch_ms_per_task": 1000 * batch / n, "round_trip_ms": 1000 * single}


def serial(points) -> dict:
    """The points one after another in this process, no Dask."""
    from hwprune.sweep.point import PointTask, run_point

    out = WORK / "serial"
    shutil.rmtree(out, ignore_errors=True)
    (out / "points").mkdir(parents=True)
    load_before = load()
    t0 = time.perf_counter()
    recs = [run_point(PointTask(p.key, p.inputs, p.config, str(out))) for p in points]
    wall = time.perf_counter() - t0
    return {
        "wall_s": round(wall, 1),
        "points_s": round(sum(r["seconds"]["total"] for r in recs), 1),
        "steps_s": step_seconds(out),
        "ok": sum(r["status"] == "ok" for r in recs),
        "load_before": load_before,
        "load_after": load(),
    }


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("hwprune", "dask", "distributed", "torch", "brevitas")}


def markdown(doc: dict) -> str:
    one, two = doc["runs"]
    n = one["points"]
    t = doc["trivial"]
    over = doc["overhead_s_per_point"]
    lines = [
        "# Sweeps on Dask: the example on 1 and 2 workers, and what Dask adds per point",
        "",
        f"Written by `benchmarks/sweep.py` ({doc['command']}) on {doc['date']}: {doc['cpu']}, "
        f"{doc['cores']} cores, Python {doc['python']}; "
        + ", ".join(f"{k} {v}" for k, v in doc["versions"].items())
        + ".",
        "",
        f"The sweep: `{doc['example']}`, {n} points (each trains the digits MLP for 20 + 10 "
        "epochs, exports, compiles and estimates on pynq-z2), from a fresh sweep directory, "
        "on a LocalCluster of one single-threaded worker process per worker. Wall time from "
        "the call to the written results, cluster start and stop included.",
        "",
        busy_note(doc),
        "",
        "Own seconds are the points' own, measured inside each task and summed (train, "
        "export, compile; estimate takes about 0.05 s a point).",
        "",
        "| workers | points ok | wall (s) | own seconds | train | export | compile "
        "| median point (s) | load before | load after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        st = r.get("steps_s", {})
        lines.append(
            f"| {r['workers']} | {r['ok']} / {r['points']} | {r['wall_s']:.0f} | "
            f"{r['points_s']:.0f} | {st.get('train', 0):.0f} | {st.get('export', 0):.0f} | "
            f"{st.get('compile', 0):.0f} | {r['point_median_s']:.1f} | {r['load_before']} | "
            f"{r['load_after']} |"
        )
    lines += [
        "",
        f"Speed-up with 2 workers: **{one['wall_s'] / two['wall_s']:.2f}x** "
        f"({one['wall_s']:.0f} s / {two['wall_s']:.0f} s).",
        "",
        "## What Dask adds per point",
        "",
        f"- Trivial tasks, 1-worker LocalCluster: {t['batch_ms_per_task']:.2f} ms per task "
        f"when {t['tasks']} are submitted at once; {t['round_trip_ms']:.1f} ms for one task's "
        "round trip (submit, run, result).",
        f"- On the real points, 1 worker: wall {one['wall_s']:.0f} s minus the points' own "
        f"{one['points_s']:.0f} s = {over * n:.0f} s, **{over:.2f} s per point**. That is "
        "cluster start and stop (a few seconds once), moving each task and its record, "
        "sweep.json rewritten after every point, and sweep.md and sweep.png at the end. The "
        "worker's first imports (torch, Brevitas, hls4ml: several seconds) fall inside its "
        "first point, as they would in any process.",
    ]
    if "serial" in doc:
        s, st = doc["serial"], doc["serial"]["steps_s"]
        when = (
            f"load {s['load_before']} before, {s['load_after']} after"
            if "load_before" in s
            else "it ran last"
        )
        lines.append(
            f"- Serially in this process, no Dask: {s['wall_s']:.0f} s wall for the same points "
            f"({s['ok']} ok), of which the points' own {s['points_s']:.0f} s (train "
            f"{st.get('train', 0):.0f}, export {st.get('export', 0):.0f}, compile "
            f"{st.get('compile', 0):.0f}; {when}), against {one['wall_s']:.0f} s wall and "
            f"{one['points_s']:.0f} s own through the 1-worker cluster. Outside the points the "
            f"serial run spent {(s['wall_s'] - s['points_s']) / n:.2f} s per point, the cluster "
            f"{over:.2f} s. The rest of the difference of the walls "
            f"({(one['wall_s'] - s['wall_s']) / n:+.2f} s per point) is inside the points, "
            "running the same code; its cause is not isolated here (a worker's event loop, "
            "heartbeats and profiler share the interpreter with the task)"
            + (
                ", or the other jobs' load, which changes from minute to minute."
                if _busy(doc) is not None
                else "."
            )
        )
    share = 100 * over / one["point_median_s"]
    lines += [
        "",
        f"Dask's own cost outside the points is {share:.1f} % of a median point "
        f"({one['point_median_s']:.1f} s, mostly training). With 2 workers the points' own "
        f"seconds grew from {one['points_s']:.0f} to {two['points_s']:.0f} "
        f"({100 * (two['points_s'] / one['points_s'] - 1):+.0f} %: two workers"
        + (" and the other jobs" if _busy(doc) is not None else "")
        + f" on {doc['cores']} cores): that, with the cluster's fixed start and stop, not the "
        f"scheduling, is what keeps the speed-up at {one['wall_s'] / two['wall_s']:.2f}x.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serial", action="store_true", help="also run the points without Dask")
    ap.add_argument("--tasks", type=int, default=200, help="trivial tasks to time")
    ap.add_argument(
        "--report",
        action="store_true",
        help="only rewrite sweep.md from results/sweep.json (and the runs' point records)",
    )
    a = ap.parse_args()
    if a.report:
        doc = json.loads((RESULTS / "sweep.json").read_text())
        for r in doc["runs"]:
            r.setdefault("steps_s", step_seconds(WORK / f"workers-{r['workers']}"))
        if "serial" in doc:
            doc["serial"].setdefault("steps_s", step_seconds(WORK / "serial"))
        (RESULTS / "sweep.json").write_text(json.dumps(doc, indent=1) + "\n")
        (RESULTS / "sweep.md").write_text(markdown(doc))
        return
    from hwprune.sweep.spec import load_sweep

    WORK.mkdir(parents=True, exist_ok=True)
    doc = {
        "command": "python benchmarks/sweep.py" + (" --serial" if a.serial else ""),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions(),
        "example": str(EXAMPLE.relative_to(ROOT)),
        "runs": [run_example(1), run_example(2)],
        "trivial": trivial_tasks(a.tasks),
    }
    one = doc["runs"][0]
    doc["overhead_s_per_point"] = round((one["wall_s"] - one["points_s"]) / one["points"], 3)
    if a.serial:
        doc["serial"] = serial(load_sweep(EXAMPLE).points)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sweep.json").write_text(json.dumps(doc, indent=1) + "\n")
    (RESULTS / "sweep.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
