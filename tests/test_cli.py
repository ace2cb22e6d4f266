"""Bad input: one line naming the problem and the fix, exit code 2, no traceback, and nothing
written (no half-done build directory, no user file overwritten)."""

import os
import subprocess
import sys

import pytest


def hwprune(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "hwprune.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def assert_clean_error(r, *words):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_missing_model(tmp_path):
    out = tmp_path / "out"
    r = hwprune("compile", tmp_path / "missing.onnx", "-o", out)
    assert_clean_error(r, "missing.onnx", "no such file")
    assert not out.exists()


def test_not_onnx(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("hello\n")
    out = tmp_path / "out"
    r = hwprune("compile", bad, "-o", out)
    assert_clean_error(r, "not an ONNX model")
    assert not out.exists()


def test_unknown_board(tmp_path, small_qonnx):
    out = tmp_path / "out"
    r = hwprune("compile", small_qonnx, "-o", out, "--board", "pynq-z9")
    assert_clean_error(r, "pynq-z9", "pynq-z2", "zcu104", "arty-a7-35t")
    assert not out.exists()
    r = hwprune("estimate", small_qonnx, "--board", "nope")
    assert_clean_error(r, "nope", "pynq-z2")


def test_unsupported_op(tmp_path):
    from onnx import helper

    from tests.test_importer import _model, _quant, _quant_inits

    nodes = [_quant("x", "q", "a"), helper.make_node("Tanh", ["q"], ["y"], name="act_tanh")]
    p = _model(nodes, _quant_inits("a"), tmp_path / "tanh.onnx")
    out = tmp_path / "out"
    r = hwprune("compile", p, "-o", out)
    assert_clean_error(r, "act_tanh", "Tanh", "supported")
    assert not out.exists()


def test_user_directory_is_never_written(tmp_path, small_qonnx):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    r = hwprune("compile", small_qonnx, "-o", out)
    assert_clean_error(r, "not an hwprune build directory")
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]
    assert (out / "thesis.tex").read_text() == "precious"


def test_sim_without_compile(tmp_path):
    r = hwprune("sim", tmp_path)
    assert_clean_error(r, "no ir.json", "hwprune compile")


def test_bad_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[prune]\nmethod = "lottery"\n')
    out = tmp_path / "out"
    r = hwprune("train", cfg, "-o", out)
    assert_clean_error(r, "prune.method", "lottery-ticket")
    assert not out.exists()


def test_boards_lists_catalogue():
    r = hwprune("boards")
    assert r.returncode == 0, r.stderr
    for name in ("pynq-z2", "zcu104", "arty-a7-35t", "xc7z020clg400-1"):
        assert name in r.stdout


@pytest.mark.parametrize("sim", ["xsim"])
def test_unknown_simulator(tmp_path, small_qonnx, sim):
    out = tmp_path / "b"
    assert hwprune("compile", small_qonnx, "-o", out).returncode == 0
    r = hwprune("sim", out, "--simulator", sim)
    assert_clean_error(r, sim, "icarus", "verilator")


def test_estimate_with_yosys_synthesis(tmp_path, small_qonnx):
    import json

    out = tmp_path / "b"
    assert hwprune("compile", small_qonnx, "-o", out).returncode == 0
    r = hwprune("estimate", out, "--board", "pynq-z2", "--synth", "yosys", "--json")
    assert r.returncode == 0, r.stderr
    e = json.loads(r.stdout)["pynq-z2"]
    measured = e["synth"]["resources"]
    assert measured["lut"]["measured"] > 0
    # yosys may drop constant register bits, never add any: the schedule is an upper bound
    assert 0 < measured["ff"]["measured"] <= e["totals"]["ff"]
    assert (out / "synth" / "xc7" / "yosys.log").is_file()
    r = hwprune("estimate", small_qonnx, "--synth", "yosys")
    assert_clean_error(r, "--synth needs a build directory")


@pytest.mark.parametrize(
    "case",
    ["seed", "vectors", "file_parent", "unwritable", "reuse_factor"],
)
def test_bad_options_one_line_exit_2(tmp_path, small_qonnx, case):
    # Each was a traceback or silently accepted before (issue 10).
    build = tmp_path / "b"
    blocker = tmp_path / "afile"
    blocker.write_text("user data\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    args, words = {
        "seed": (["sim", build, "--seed", "-1"], ["--seed -1", "0 or more"]),
        "vectors": (["sim", build, "--vectors", "0"], ["--vectors 0", "1 or more"]),
        "file_parent": (["compile", small_qonnx, "-o", blocker / "sub"], ["afile", "is a file"]),
        "unwritable": (
            ["compile", small_qonnx, "-o", locked / "x" / "y"],
            ["cannot create", "writable -o DIR"],
        ),
        "reuse_factor": (
            ["compile", small_qonnx, "-o", tmp_path / "c", "--reuse-factor", "1000000000"],
            ["--reuse-factor 1000000000", "the largest has"],
        ),
    }[case]
    if case in ("seed", "vectors"):
        assert hwprune("compile", small_qonnx, "-o", build).returncode == 0
    if case == "unwritable":
        locked.chmod(0o500)
        if os.access(locked, os.W_OK):  # root ignores permissions; sysfs refuses even root
            args[3] = "/sys/hwprune_test/out"
    r = hwprune(*args)
    locked.chmod(0o700)
    assert_clean_error(r, *words)
    assert blocker.read_text() == "user data\n"
    assert not list(tmp_path.glob(".*staging*"))


def test_stale_staging_of_a_killed_run_is_removed(tmp_path, small_qonnx):
    # A staging folder whose process is gone (SIGKILL) is removed by the next run there;
    # one of a live process (this test's) is left alone.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f".b.staging-{int(dead.stdout)}-abc"
    live = tmp_path / f".b.staging-{os.getpid()}-abc"
    stale.mkdir()
    live.mkdir()
    assert hwprune("compile", small_qonnx, "-o", tmp_path / "b").returncode == 0
    assert not stale.exists() and live.exists()


def test_sigterm_leaves_nothing_behind(tmp_path, small_qonnx):
    import signal
    import time

    build = tmp_path / "b"
    assert hwprune("compile", small_qonnx, "-o", build).returncode == 0
    p = subprocess.Popen(
        [sys.executable, "-m", "hwprune.cli", "sim", str(build), "--vectors", "2000"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not list(tmp_path.glob(".b.staging-*")) and time.time() < deadline:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    # The progress bar may have drawn lines before; the message is the one last line.
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "hwprune: stopped by SIGTERM; partial outputs removed"
    assert not list(tmp_path.glob(".b.staging-*"))


def test_recompile_removes_the_old_verdict(tmp_path, small_qonnx):
    # A verdict about the previous model must not outlive it.
    build = tmp_path / "b"
    assert hwprune("compile", small_qonnx, "-o", build).returncode == 0
    assert hwprune("sim", build, "--vectors", "5").returncode == 0
    assert (build / "sim" / "report.json").is_file()
    assert hwprune("compile", small_qonnx, "-o", build).returncode == 0
    assert not (build / "sim").exists()
