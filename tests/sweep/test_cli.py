"""`hwprune sweep` as a user runs it: exit 1 with the results written when a point fails (on
the command's own LocalCluster), a real interruption resumed without recomputation, and bad
sweep files refused in one line (exit 2, no traceback, nothing written)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.sweep.helpers import SHORT, TINY, runs, write_sweep
from tests.test_cli import assert_clean_error


def hwprune(*args, timeout=300, env=None):
    return subprocess.run(
        [sys.executable, "-m", "hwprune.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )


FAILING = (
    SHORT
    + """
[axes]
"model.module" = ["user_models.py:tiny", "user_models.py:broken"]
"""
)


def test_a_point_that_raises_is_recorded_and_the_sweep_completes(tmp_path, scheduler):
    sweep = write_sweep(tmp_path, FAILING)
    out = tmp_path / "out"
    # The command's own LocalCluster (2 workers), as a user runs it.
    r = hwprune("sweep", sweep, "-o", out, "--workers", "2")
    assert r.returncode == 1, r.stderr
    assert "Dask dashboard: http" in r.stderr
    assert "2 points: 1 ok, 1 failed" in r.stdout
    assert 'FAILED model.module = "user_models.py:broken"' in r.stderr
    doc = json.loads((out / "sweep.json").read_text())
    good, bad = doc["points"]
    assert good["status"] == "ok" and good["estimate"]["lut"] > 0
    assert bad["status"] == "failed" and bad["failed_step"] == "train"
    assert "this model is broken on purpose" in bad["error"]
    assert "ValueError" in (out / "points" / bad["key"] / "error.txt").read_text()
    md = (out / "sweep.md").read_text()
    assert "## Failed points" in md and "broken on purpose" in md
    assert good["key"] in md.split("## Failed points")[0]
    assert Counter(runs(out)) == {good["key"]: 1, bad["key"]: 1}

    # Again: nothing runs (a failed point keeps its record), exit 1 again.
    r = hwprune("sweep", sweep, "-o", out, "--scheduler", scheduler)
    assert r.returncode == 1 and "0 run now, 2 from earlier runs" in r.stdout, r.stderr
    assert len(runs(out)) == 2
    # --retry-failed runs the failed point only.
    r = hwprune("sweep", sweep, "-o", out, "--scheduler", scheduler, "--retry-failed")
    assert r.returncode == 1 and "1 run now, 1 from earlier runs" in r.stdout, r.stderr
    assert Counter(runs(out)) == {good["key"]: 1, bad["key"]: 2}


def _finished(out: Path) -> int:
    """How many points sweep.json has as finished (0 while there is none)."""
    try:
        summary = json.loads((out / "sweep.json").read_text())["summary"]
    except (OSError, ValueError):
        return 0
    return summary["ok"] + summary["failed"]


def test_an_interrupted_sweep_resumes_without_recomputing(tmp_path, scheduler):
    body = TINY + '[axes]\n"prune.sparsity" = [0.5, 0.6, 0.7, 0.8, 0.9]\n'
    sweep = write_sweep(tmp_path, body)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hwprune.cli", "sweep", str(sweep), "-o", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--scheduler", scheduler], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 180
    while not _finished(out) and time.monotonic() < deadline:  # the first point recorded
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    doc = json.loads((out / "sweep.json").read_text())  # valid, with what was not run
    assert doc["summary"]["pending"] >= 1 and doc["summary"]["ok"] >= 1, doc["summary"]
    assert len(runs(out)) < 5, runs(out)

    # Resumed at once: the points finished are not run again, and a point whose task was
    # still running on the cluster (Dask cannot stop it) is waited for, not run twice.
    r = hwprune("sweep", sweep, "-o", out, "--scheduler", scheduler)
    assert r.returncode == 0, r.stderr
    assert "from earlier runs" in r.stdout
    assert sorted(runs(out)) == sorted(p["key"] for p in doc["points"]), (
        out / "runs.log"
    ).read_text()


BAD = [
    (
        '[axes]\n"prune.sparsty" = [0.5]\n',
        ['[axes] "prune.sparsty"', "no key 'sparsty'", "did you mean 'sparsity'"],
    ),
    ('[axes]\n"pruning.sparsity" = [0.5]\n', ["not a config key", "did you mean 'prune'"]),
    (
        '[axes]\n"prune.sparsity" = [0.5, 1.5]\n',
        ["[axes] prune.sparsity = 1.5", "is not allowed; use a number in [0, 1)"],
    ),
    ('[axes]\n"model.hidden" = [32, 64]\n', ['"model.hidden" takes list values', "[[32], [64"]),
    ('[axes]\n"prune.sparsity" = 0.5\n', ["must be a non-empty list"]),
    ('[axes]\n"prune.sparsity" = [0.5, 0.5]\n', ["lists 0.5 twice"]),
    (
        '[axes]\n"prune.method" = ["lottery-ticket"]\n"prune.schedule" = ["agp"]\n',
        ['point prune.method = "lottery-ticket", prune.schedule = "agp"', "lottery-ticket"],
    ),
    ("[config.train]\nepochs = 0\n", ["[config]", "train.epochs = 0 is not allowed"]),
    ("[config.trian]\nepochs = 3\n", ["unknown section [trian]"]),
    ("[sweep]\nsampels = 3\n", ["unknown key sweep.sampels", "did you mean 'samples'"]),
    ('[sweep]\nmode = "random"\n', ['mode = "random" needs sweep.samples']),
    (
        '[axes]\n"train.seed" = [1, 2]\n[sweep]\nmode = "random"\nsamples = 3\n',
        ["samples = 3 is more than the 2 points"],
    ),
    ("[sweep]\nsamples = 3\n", ["samples applies to mode"]),
    ('[sweep]\nsynth = "vivado"\n', ['sweep.synth = "vivado" is not allowed']),
    ("[sweep]\nsim = 1\n", ["sweep.sim must be bool"]),
    ("[axis]\n", ["unknown key 'axis'", "did you mean 'axes'"]),
    ("[axes\n", ["not valid TOML"]),
]


@pytest.mark.parametrize("body, words", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_sweep_file_one_line_exit_2_nothing_written(tmp_path, body, words):
    sweep = write_sweep(tmp_path, 'base = "digits.toml"\n' + body, "bad.toml")
    out = tmp_path / "out"
    r = hwprune("sweep", sweep, "-o", out)
    assert_clean_error(r, "bad.toml", *words)
    assert not out.exists()


def test_bad_base_and_bad_options(tmp_path):
    sweep = write_sweep(tmp_path, 'base = "nosuch.toml"\n', "s.toml")
    out = tmp_path / "out"
    assert_clean_error(hwprune("sweep", sweep, "-o", out), "s.toml", "nosuch.toml", "no such file")
    # A base config's own mistake is named in the base file.
    (tmp_path / "base.toml").write_text("[prune]\nsparsity = 2.0\n")
    sweep.write_text('base = "base.toml"\n')
    assert_clean_error(hwprune("sweep", sweep, "-o", out), "base.toml", "prune.sparsity = 2.0")
    sweep.write_text(TINY)
    assert_clean_error(hwprune("sweep", sweep, "-o", out, "--workers", "0"), "--workers 0")
    r = hwprune("sweep", sweep, "-o", out, "--workers", "2", "--scheduler", "tcp://x:1")
    assert_clean_error(r, "--workers", "--scheduler")
    assert_clean_error(hwprune("sweep", tmp_path / "none.toml"), "none.toml", "no such sweep")
    # No scheduler there (waiting 2 s instead of distributed's default 30 s): nothing written.
    quick = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    r = hwprune("sweep", sweep, "-o", out, "--scheduler", "tcp://127.0.0.1:9", env=quick)
    assert_clean_error(r, "--scheduler tcp://127.0.0.1:9: cannot connect", "dask scheduler")
    assert not out.exists()


def test_refuses_a_folder_that_is_not_a_sweep_directory(tmp_path):
    sweep = write_sweep(tmp_path, TINY)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me\n")
    assert_clean_error(hwprune("sweep", sweep, "-o", mine), "not an hwprune sweep directory")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    build = tmp_path / "build"  # an hwprune build directory is not a sweep directory either
    build.mkdir()
    (build / ".hwprune").write_text("hwprune 0.1.0\n")
    assert_clean_error(hwprune("sweep", sweep, "-o", build), "not an hwprune sweep directory")
    afile = tmp_path / "file"
    afile.write_text("x")
    assert_clean_error(hwprune("sweep", sweep, "-o", afile), "is a file")


def test_help_says_how_failed_points_are_retried():
    r = hwprune("sweep", "--help")
    assert r.returncode == 0
    assert "--retry-failed" in r.stdout and "not run again" in " ".join(r.stdout.split())
    assert Path(sys.executable).exists()
