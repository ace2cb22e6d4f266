"""Bad input: one line naming the problem and the fix, exit code 2, no traceback, and nothing
written (no half-done build directory, no user file overwritten)."""

import json
import os
import subprocess
import sys
from pathlib import Path

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
    assert_clean_error(r, "'pynq-z9'; did you mean pynq-z2, pynq-z1?", "'hwprune boards'")
    assert not out.exists()
    r = hwprune("estimate", small_qonnx, "--board", "ulx3s")
    assert_clean_error(r, "did you mean ulx3s-85f, ulx3s-45f, ulx3s-25f?", "'hwprune boards'")
    r = hwprune("estimate", small_qonnx, "--board", "nope")
    assert_clean_error(r, "nope", "pynq-z2", "zcu104", "arty-a7-35t", "'hwprune boards'")


def test_unsupported_op(tmp_path):
    from onnx import helper

    from tests.frontend.qonnx.test_importer import _model, _quant, _quant_inits

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


def test_sim_levels_run_only_those_named_and_refuse_unknown_ones(tmp_path, small_qonnx):
    import json

    out = tmp_path / "b"
    assert hwprune("compile", small_qonnx, "-o", out).returncode == 0
    r = hwprune("sim", out, "--levels", "qonnx,rtl-axis", "--vectors", "20")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "sim" / "report.json").read_text())
    assert [lv["name"] for lv in rep["levels"]] == ["qonnx", "rtl axi-stream (icarus)"]
    r = hwprune("sim", out, "--levels", "qonnx,gates")
    assert_clean_error(r, "'gates'", "qonnx, csim, rtl, rtl-axis")


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
    saved = json.loads((out / "estimate.json").read_text())
    assert saved["pynq-z2"]["synth"]["resources"] == measured
    assert "synth" not in saved["kv260"]  # boards not synthesised keep their estimate
    r = hwprune("estimate", small_qonnx, "--synth", "yosys")
    assert_clean_error(r, "--synth needs a build directory")


@pytest.mark.parametrize(
    "case",
    [
        "seed",
        "vectors",
        "too_many_vectors",
        "file_parent",
        "unwritable",
        "reuse_factor",
        "reuse_factor_hls4ml",
        "sim_on_model_file",
        "unknown_step",
        "restart_without_files",
        "config_sim_seed",
        "config_compile_board",
    ],
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
        "vectors": (["sim", build, "--vectors", "0"], ["--vectors 0", "use 1 to"]),
        "too_many_vectors": (["sim", build, "--vectors", "10000000"], ["use 1 to 1,000,000"]),
        "file_parent": (["compile", small_qonnx, "-o", blocker / "sub"], ["afile", "is a file"]),
        "unwritable": (
            ["compile", small_qonnx, "-o", locked / "x" / "y"],
            ["cannot create", "writable -o DIR"],
        ),
        "reuse_factor": (
            ["compile", small_qonnx, "-o", tmp_path / "c", "--reuse-factor", "1000000000"],
            ["reuse factor 1000000000", "the largest has", "every layer accepts: 1"],
        ),
        # 7 divides no layer's weights: hls4ml would quietly pick another per layer.
        "reuse_factor_hls4ml": (
            ["compile", small_qonnx, "-o", tmp_path / "c", "--reuse-factor", "7"],
            ["reuse factor 7 does not fit layer", "as hls4ml requires", "nearest"],
        ),
        "sim_on_model_file": (["sim", small_qonnx], ["is a model file", "hwprune compile"]),
        "unknown_step": (["run", "-o", build, "--from", "simulate"], ["invalid choice"]),
        "restart_without_files": (
            ["run", "-o", tmp_path / "new", "--from", "sim"],
            ["has no model.pt", "'train' step"],
        ),
        "config_sim_seed": (
            ["train", cfg(tmp_path / "seed.toml", "[sim]\nseed = -3\n"), "-o", build],
            [],
        ),
        "config_compile_board": (
            ["train", cfg(tmp_path / "board.toml", '[compile]\nboard = "nosuch"\n'), "-o", build],
            ["compile.board", "pynq-z2"],
        ),
    }[case]
    if case == "config_sim_seed":
        words = ["sim.seed", "non-negative", "seed.toml"]
    if case in ("seed", "vectors", "too_many_vectors"):
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


def cfg(path, text):
    path.write_text(text)
    return path


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


def test_a_signal_during_an_import_waits_for_it(tmp_path, monkeypatch):
    # A SIGTERM that arrives while a module initialises is raised once the import is done,
    # not into it (which left modules half made: "ImportError: initialization failed").
    import signal
    import time

    from hwprune import cli

    (tmp_path / "slow_init_mod.py").write_text(
        "import os, signal, time\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(0.3)\n"
        "done = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    old = signal.signal(signal.SIGTERM, cli._on_signal)
    try:
        with pytest.raises(cli._Signalled) as info:
            import slow_init_mod

            assert slow_init_mod.done  # the import finished...
            time.sleep(2)  # ...and the signal comes here
            pytest.fail("no signal after the import")
        assert info.value.signum == signal.SIGTERM
        assert sys.modules["slow_init_mod"].done
    finally:
        signal.signal(signal.SIGTERM, old)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        sys.modules.pop("slow_init_mod", None)
    # An exception a library raised from the signal still counts as the signal.
    try:
        try:
            raise cli._Signalled(signal.SIGTERM)
        except cli._Signalled as e:
            raise ImportError("initialization failed") from e
    except ImportError as e:
        assert cli._signalled(e) is not None and cli._signalled(e).signum == signal.SIGTERM


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


def test_estimate_one_board_prints_the_per_layer_table(tmp_path, small_qonnx):
    build = tmp_path / "b"
    assert hwprune("compile", small_qonnx, "-o", build).returncode == 0
    est = json.loads((build / "estimate.json").read_text())["zcu104"]
    for target in (build, small_qonnx):
        r = hwprune("estimate", target, "--board", "zcu104")
        assert r.returncode == 0, r.stderr
        total = next(ln for ln in r.stdout.splitlines() if ln.startswith("| total"))
        cells = [c.strip().replace(",", "") for c in total.strip("|").split("|")]
        assert str(est["totals"]["lut"]) in cells and str(est["totals"]["ff"]) in cells


def test_estimate_on_several_boards(small_qonnx):
    # --board repeated or comma-separated: one entry per board, no per-layer table; a board
    # named twice is estimated once.
    for args in (
        ("--board", "zcu104", "--board", "icebreaker"),
        ("--board", "zcu104,icebreaker,zcu104"),
    ):
        r = hwprune("estimate", small_qonnx, *args, "--json")
        assert r.returncode == 0, r.stderr
        assert sorted(json.loads(r.stdout)) == ["icebreaker", "zcu104"]
    r = hwprune("estimate", small_qonnx, "--board", "zcu104", "--board", "icebreaker")
    assert r.returncode == 0, r.stderr
    assert "zcu104" in r.stdout and "icebreaker" in r.stdout
    assert not any(ln.startswith("| total") for ln in r.stdout.splitlines())
    r = hwprune("estimate", small_qonnx, "--board", "zcu104,nope")
    assert_clean_error(r, "nope")


def test_estimate_says_what_overflows_a_board_and_by_how_much():
    # tfc_2w2a needs more LUTs and flip-flops than the iCEBreaker's 5,280 logic cells.
    model = Path(__file__).resolve().parent / "models" / "tfc_2w2a.onnx"
    r = hwprune("estimate", model, "--board", "icebreaker", "--json")
    assert r.returncode == 0, r.stderr
    e = json.loads(r.stdout)["icebreaker"]
    t = e["totals"]
    assert not e["fits"] and e["overflow"] == {
        "lut": {"used": t["lut"], "available": 5280, "over": t["lut"] - 5280},
        "ff": {"used": t["ff"], "available": 5280, "over": t["ff"] - 5280},
    }
    r = hwprune("estimate", model, "--board", "icebreaker")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    i = lines.index("does not fit (resource used of available, +excess, share):")
    assert lines[i + 1].startswith(f"  icebreaker  lut {t['lut']:,} of 5,280 (+{t['lut'] - 5280:,}")
    assert f"; ff {t['ff']:,} of 5,280 (+{t['ff'] - 5280:,}, " in lines[i + 1]


def test_a_failed_rtl_build_names_a_log_that_exists(tmp_path, small_qonnx):
    build = tmp_path / "b"
    assert hwprune("compile", small_qonnx, "-o", build).returncode == 0
    top = build / "rtl" / "hwprune_top.v"
    top.write_text(top.read_text().replace("endmodule", "endmodul", 1))  # a syntax error
    r = hwprune("sim", build, "--vectors", "3")
    # The progress bar of the levels before may have drawn lines; the message is the last.
    assert r.returncode == 2 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "icarus could not build" in last and "_build.log" in last
    log = Path(last.rsplit("see ", 1)[1].strip())
    assert log.is_file() and log.is_relative_to(build)
    assert "endmodul" in log.read_text() or "syntax" in log.read_text()
    assert not list(tmp_path.glob(".b.staging-*"))


def test_a_closed_pipe_stops_quietly():
    # `hwprune boards | head -1`: the reader goes away before hwprune writes; no internal
    # error and no traceback, the status of a process ended by SIGPIPE.
    cmd = [sys.executable, "-m", "hwprune.cli", "boards"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    _, err = p.communicate(timeout=60)
    assert p.returncode == 141, err
    assert err == b"", err
