"""The bit-exactness ladder: every level compared with the golden interpreter.

    simulate(build_dir, g, model, simulator, vectors, seed)   qonnx, C-sim, RTL -> SimReport
    brevitas_level(config, build_dir, g, vectors, seed)       the trained model's own forward

Each level gets the same vectors; a level that differs reports its first mismatch (vector,
layer, element, expected, got). ``sim/report.json`` records the verdict with the host-side
assumptions it rests on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hwprune.builddir import staged
from hwprune.errors import HwpruneError, MismatchError
from hwprune.ir import golden
from hwprune.ir.graph import Graph
from hwprune.names import TOP
from hwprune.sim.forecast import warn_if_long
from hwprune.sim.reference import draw_model_inputs, qonnx_outputs, qonnx_reference, to_grid


@dataclass
class Level:
    """One rung of the bit-exactness ladder compared with the golden interpreter."""

    name: str
    passed: bool
    vectors: int
    seconds: float
    first_mismatch: dict | None = None
    skipped: str | None = None


@dataclass
class SimReport:
    levels: list[Level] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(lv.passed for lv in self.levels if lv.skipped is None)

    @classmethod
    def load(cls, path: Path) -> SimReport:
        """The report a simulation wrote (sim/report.json)."""
        doc = json.loads(Path(path).read_text())
        return cls([Level(**lv) for lv in doc["levels"]])


def first_mismatch(g: Graph, x: np.ndarray, want: np.ndarray, got: np.ndarray) -> dict | None:
    bad = np.argwhere(want != got)
    if len(bad) == 0:
        return None
    v, i = (int(t) for t in bad[0])
    return {
        "vector": v,
        "layer": g.outputs[0],
        "index": i,
        "expected": int(want[v, i]),
        "got": int(got[v, i]),
        "input": [int(t) for t in x[v]],
    }


@dataclass(frozen=True)
class _SimContext:
    """What every ladder level needs: the build, the graph, the vectors and golden's answer."""

    build_dir: Path
    simdir: Path
    g: Graph
    x: np.ndarray
    want: np.ndarray
    model: Path
    simulator: str
    qonnx_out: np.ndarray | None = None  # qonnx's outputs, when drawing x already ran it
    qonnx_seconds: float = 0.0  # the time that drawing spent in qonnx, counted at its level
    progress: bool = False
    builds: dict = field(default_factory=dict)  # level -> Future of its build (_start_builds)

    def built(self, name: str) -> None:
        """Wait for the build started for level ``name``, raising its error."""
        if name in self.builds:
            self.builds[name].result()

    @contextmanager
    def bar(self, name: str):
        """A progress bar of this level's vectors (rate in vec/s); yields tick(n done)."""
        from tqdm import tqdm

        with tqdm(
            total=len(self.x), desc=name, unit="vec", disable=not self.progress, leave=True
        ) as b:
            yield lambda n: b.update(max(0, min(n, b.total) - b.n))
            b.update(b.total - b.n)


def _level_qonnx(c: _SimContext) -> Level:
    if not c.model.is_file():
        return Level("qonnx", True, 0, 0.0, skipped="model.onnx not found")
    t0 = time.perf_counter()
    with c.bar("qonnx") as tick:
        got = c.qonnx_out if c.qonnx_out is not None else qonnx_outputs(c.model, c.g, c.x, tick)
    mm = first_mismatch(c.g, c.x, c.want, got)
    seconds = time.perf_counter() - t0 + c.qonnx_seconds
    return Level("qonnx", mm is None, len(c.x), seconds, mm)


def _level_csim(c: _SimContext) -> Level:
    from hwprune.sim.csim import first_failing_layer, run_csim

    t0 = time.perf_counter()
    hls = c.build_dir / "hls"
    with c.bar("csim") as tick:
        c.built("csim")
        got = run_csim(hls, c.x, c.build_dir / CACHE / "csim", tick)
    mm = first_mismatch(c.g, c.x, c.want, got)
    if mm is not None:
        # Name the first layer that differs (hls4ml's trace), not just the output.
        try:
            first = first_failing_layer(hls, c.g, c.x[mm["vector"]])
        except HwpruneError:  # a project written without tracing: keep the output's
            first = None
        mm.update(first or {})
    return Level("csim", mm is None, len(c.x), time.perf_counter() - t0, mm)


def _level_rtl(c: _SimContext) -> Level:
    from hwprune.codegen.cocotb_tb import write_vectors
    from hwprune.sim.rtl import run_rtl

    vec = c.simdir / "vectors.npz"
    write_vectors(vec, c.g, c.x)
    # The logs go beside sim/ (build_dir/logs), not into the staging folder, so a log an
    # error message names still exists after the run.
    logs = c.build_dir / "logs"
    cache = c.build_dir / CACHE / "rtl"
    with c.bar(f"rtl ({c.simulator})") as tick:
        c.built("rtl")
        r = run_rtl(c.build_dir / "rtl", c.simdir / "rtl", vec, c.simulator, TOP, logs, cache, tick)
    return Level(f"rtl ({c.simulator})", r.passed, r.n_vectors, r.seconds, r.first_mismatch)


def _level_rtl_axis(c: _SimContext) -> Level:
    """The AXI-Stream top on the same vectors, under random bubbles and back-pressure."""
    from hwprune.codegen.axis import axis_top_name
    from hwprune.sim.rtl import run_rtl

    vec = c.simdir / "vectors.npz"  # written by the rtl level, when it ran
    if not vec.is_file():
        from hwprune.codegen.cocotb_tb import write_vectors

        write_vectors(vec, c.g, c.x)
    logs = c.build_dir / "logs"
    top = axis_top_name(TOP)
    cache = c.build_dir / CACHE / "rtl"
    with c.bar(f"rtl axi-stream ({c.simulator})"):
        r = run_rtl(c.build_dir / "rtl", c.simdir / "rtl_axis", vec, c.simulator, top, logs, cache)
    name = f"rtl axi-stream ({c.simulator})"
    return Level(name, r.passed, r.n_vectors, r.seconds, r.first_mismatch)


# Simulator and C-simulation builds, kept by a hash of their sources across compiles and sims
# (DIR/cache/: compile leaves it alone; a stale entry is replaced, never used).
CACHE = "cache"

# The rungs `hwprune sim` checks, in order (Brevitas is added by `run`, which has the model).
SIM_LEVELS = (
    ("qonnx", _level_qonnx),
    ("csim", _level_csim),
    ("rtl", _level_rtl),
    ("rtl-axis", _level_rtl_axis),
)


def _start_builds(pool, build_dir: Path, simulator: str, chosen: list[str]) -> dict:
    """Start the C-simulation's g++ and the RTL level's simulator build at once, beside the
    qonnx level: each is mostly one process, so on 2 cores a large design's builds take the
    longer one's time instead of their sum."""
    from hwprune.sim.csim import build_csim
    from hwprune.sim.rtl import prebuild_rtl

    builds = {}
    if "csim" in chosen:
        builds["csim"] = pool.submit(build_csim, build_dir / "hls", build_dir / CACHE / "csim")
    if "rtl" in chosen:
        logs, cache = build_dir / "logs", build_dir / CACHE / "rtl"
        builds["rtl"] = pool.submit(prebuild_rtl, build_dir / "rtl", simulator, TOP, logs, cache)
    return builds


def simulate(
    build_dir: Path,
    g: Graph,
    model: Path,
    simulator: str,
    vectors: int,
    seed: int,
    progress: bool = True,
    before: Sequence[Level] = (),
    levels: Sequence[str] | None = None,
) -> SimReport:
    """Run every level of ``SIM_LEVELS`` (or those ``levels`` names) on ``vectors`` inputs and
    write sim/report.json (staged: the folder appears whole or not at all). ``before``: levels
    the caller already ran (the Brevitas model's), recorded first.

    Raises MismatchError naming the first failing level, vector, layer and value.
    """

    t0 = time.perf_counter()
    x, q_out = sim_vectors(g, model, vectors, seed)
    drawn_with_qonnx = time.perf_counter() - t0 if q_out is not None else 0.0
    report = SimReport(list(before))
    with staged(build_dir) as stage:
        simdir = stage / "sim"
        simdir.mkdir()
        want = golden.outputs(g, x)
        chosen = [name for name, _ in SIM_LEVELS if levels is None or name in levels]
        if progress:
            warn_if_long(build_dir, g, len(x), simulator, chosen)
        with ThreadPoolExecutor(2) as pool:
            ctx = _SimContext(
                build_dir,
                simdir,
                g,
                x,
                want,
                model,
                simulator,
                q_out,
                drawn_with_qonnx,
                progress,
                _start_builds(pool, build_dir, simulator, chosen),
            )
            for name, level in SIM_LEVELS:
                if name in chosen:
                    report.levels.append(level(ctx))
        doc = {
            "passed": report.passed,
            "host_boundary": host_boundary(g),
            "levels": [asdict(lv) for lv in report.levels],
        }
        (simdir / "report.json").write_text(json.dumps(doc, indent=1) + "\n")
    if not report.passed:
        bad = next(lv for lv in report.levels if not lv.passed)
        raise MismatchError(
            f"{bad.name} differs from golden: {describe_mismatch(bad.first_mismatch)}", report
        )
    return report


def sim_vectors(g: Graph, model: Path, n: int, seed: int) -> tuple:
    """The IR input vectors a simulation uses and, when already computed, qonnx's outputs.

    A model whose input is prepared on the host (g.host_input) gets n model inputs drawn
    from its input datatype or its stated input type, run through qonnx; the IR inputs are
    read from qonnx's execution context. Otherwise (or without the model file): corner +
    random IR inputs.
    """
    from hwprune.frontend.precision import parse_precision

    hi = g.host_input
    if hi is not None and Path(model).is_file():
        t = None if hi.input_type is None else parse_precision(hi.input_type)
        return qonnx_reference(model, g, draw_model_inputs(model, n, seed, t))
    return golden.stimulus_vectors(g, n, seed), None


def describe_mismatch(mm: dict | None) -> str:
    """One line: first failing vector, layer, element, expected and got."""
    if not mm:
        return "no details"
    inp = mm.get("input")
    shown = "" if inp is None else f" input={inp[:8]}{'...' if len(inp) > 8 else ''}"
    return (
        f"vector {mm.get('vector')} layer {mm.get('layer')} element {mm.get('index')}: "
        f"expected {mm.get('expected')}, got {mm.get('got')}{shown}"
    )


def brevitas_level(model, g: Graph, vectors: int, seed: int) -> Level:
    """The trained Brevitas model's forward (``hwprune.api.load_trained``) vs golden on the
    vectors every other level gets."""
    from hwprune.train.model import forward_numpy

    t0 = time.perf_counter()
    (inp,) = g.inputs
    x = golden.stimulus_vectors(g, vectors, seed)
    got = to_grid(forward_numpy(model, x * 2.0**inp.exp), g)
    mm = first_mismatch(g, x, golden.outputs(g, x), got)
    return Level("brevitas", mm is None, len(x), time.perf_counter() - t0, mm)


def host_boundary(g: Graph) -> list[str]:
    """What the host does around the hardware, in words (report.md, sim/report.json)."""
    hi, ho = g.host_input, g.host_output
    lines = [
        "input: the hardware reads the integer levels of the model's input quantizer"
        if hi is None
        else f"input: {hi.how}"
    ]
    if hi is not None and hi.input_type:
        lines.append(f"input type: {hi.input_type} (stated with --input-type / compile.input_type)")
    if ho is None:
        lines.append("output: the hardware's integers times 2**output_exp")
    else:
        tail = ", ".join(ho.tail) or "none"
        fin = f"; {ho.final_op} taken as argmax" if ho.final else ""
        lines.append(f"output: integers of tensor {ho.tensor!r}, host tail: {tail}{fin}")
    return lines
