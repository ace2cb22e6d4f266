"""The library behind every CLI subcommand: one public function per subcommand, same name.

    train(config, out_dir)                  -> TrainReport   (model.pt, model.onnx, config.toml)
    compile(model_onnx, out_dir, board)     -> Graph         (ir.json, hls/, rtl/, estimate.json)
    sim(build_dir, simulator, vectors)      -> SimReport     (sim/report.json)
    estimate(target, board)                 -> dict          (per-board estimates)
    boards()                                -> list[Board]
    run(config, out_dir)                    -> RunReport     (all of the above + report.md)

Errors are ``HwpruneError`` (bad input) or ``MismatchError`` (a ladder level disagreed); the
CLI turns them into exit codes.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from hwprune.builddir import staged, write_files
from hwprune.config import Config
from hwprune.errors import HwpruneError, MismatchError
from hwprune.ir import golden
from hwprune.ir.graph import Graph, from_json, to_json
from hwprune.ir.passes import optimize, unread_inputs
from hwprune.resources import banner

TOP = "hwprune_top"
HLS_PROJECT = "myproject"
KERNELS = ("mac",)


# --- train ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainReport:
    dense_accuracy: float
    pruned_accuracy: float
    seconds: float
    sparsity: dict = field(default_factory=dict)  # pruned layer -> achieved mask sparsity


def train(config: Config, out_dir: Path, progress: bool = True) -> TrainReport:
    """QAT + pruning; writes config.toml (resolved), model.pt (BatchNorm folded, masks
    squashed), model.onnx (cleaned QONNX) and train.json (accuracies, sparsity, history)."""
    import torch

    from hwprune.export.qonnx import export_model
    from hwprune.train.loop import train as train_loop

    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    with staged(out_dir) as stage:
        res = train_loop(config, progress=progress)
        (stage / "config.toml").write_text(config.to_toml())
        torch.save(res.model.state_dict(), stage / "model.pt")
        export_model(res.model, res.split.x_train.shape[1], stage / "model.onnx")
        rep = TrainReport(
            res.dense_accuracy,
            res.pruned_accuracy,
            time.perf_counter() - t0,
            {k: float(v) for k, v in res.sparsity.items()},
        )
        doc = {
            **asdict(rep),
            "shape": list(res.split.shape),
            "n_classes": res.split.n_classes,
            "criterion": config.prune.criterion,
            "schedule": config.prune.schedule,
            "method": config.prune.method,
            "teacher": config.distill.teacher,
            "history": res.history,
        }
        (stage / "train.json").write_text(json.dumps(doc, indent=1) + "\n")
    return rep


# --- compile --------------------------------------------------------------------------------

# Outputs of later steps that a new compile makes stale: removed when compile replaces them.
DERIVED_FROM_COMPILE = ("sim", "synth", "report.md")


def _manifest(imported: Graph, g: Graph, verilog_terms: dict, hls_terms: dict) -> dict:
    """Per Dense layer: the layer's own weights and nonzeros (a convolution's kernel, counted
    once), the product terms it lowers to, what the passes removed, and the product terms of
    the emitted Verilog and HLS C++ (which must equal ``nonzero_weights``, the compiled terms)."""
    layers = []
    compiled = {op.name: op for op in g.dense_ops()}
    kernels = imported.meta.get("layers", {})
    for op in imported.dense_ops():
        new = compiled[op.name]
        k = kernels.get(op.name, {})
        layers.append(
            {
                "name": op.name,
                "kind": k.get("kind", "linear"),
                "weights": k.get("kernel_weights", op.n_in * op.n_out),
                "kernel_nonzeros": k.get("kernel_nonzeros", op.n_terms),
                "positions": k.get("positions", 1),
                "nonzero_weights_imported": op.n_terms,
                "nonzero_weights": new.n_terms,
                "removed_neurons": op.n_out - new.n_out,
                "removed_inputs": op.n_in - new.n_in,
                "product_terms_verilog": verilog_terms.get(op.name, 0),
                "product_terms_hls": hls_terms.get(op.name, 0),
            }
        )
    softmax = "none (raw accumulator outputs; argmax is taken outside)"
    ho = imported.host_output
    if ho:  # a float tail after the last layer: the host maps the hardware's integers
        tail = ", ".join(ho.tail) or "the scale only"
        off = " plus the layer's float bias (offset)" if ho.offset is not None else ""
        softmax = (
            f"none in hardware: outputs are the integers of tensor {ho.tensor!r}, which is "
            f"integers times its scale{off}; the host applies the model's float tail ({tail}); "
            "argmax is taken outside"
        )
        if ho.final is not None:
            softmax = (
                f"argmax taken outside the hardware (monotonic, so argmax of the integer logits "
                f"equals argmax of qonnx's {ho.final_op}); the hardware outputs the integers of "
                f"tensor {ho.tensor!r} (= integers * scale{off}, the logits; host tail: {tail})"
            )
    hi = imported.host_input
    host_in = (
        "none: the hardware reads the integer levels of the model's input quantizer"
        if hi is None
        else f"{hi.how}; the hardware input is tensor {hi.tensor!r} / {hi.scale!r}"
    )
    return {
        "top": TOP,
        "layers": layers,
        "unread_inputs": unread_inputs(g),
        "input": host_in,
        "input_type": None if hi is None else hi.input_type,
        "softmax": softmax,
    }


def compile(
    model_onnx: Path,
    out_dir: Path,
    board: str = "pynq-z2",
    kernel: str = "mac",
    reuse_factor: int = 1,
    input_type: str | None = None,
) -> Graph:
    """Import a QONNX model and write ir.json, hls/, rtl/ (+ manifest.json) and estimate.json.

    ``input_type`` (hls4ml spelling, e.g. ``fixed<16,6>``) is the precision the host
    quantizes a float graph input to when the model reads it without a quantizer.
    Everything is checked (file, board, supported ops) before anything is written.
    """
    from hwprune.boards import get_board, list_boards
    from hwprune.codegen.cocotb_tb import emit_testbench, write_vectors
    from hwprune.codegen.verilog import count_product_terms as verilog_terms
    from hwprune.codegen.verilog import emit_verilog
    from hwprune.estimate import estimate_boards
    from hwprune.frontend.qonnx import import_qonnx
    from hwprune.hls4ml_project import count_product_terms as hls_terms
    from hwprune.hls4ml_project import write_hls_project

    if kernel not in KERNELS:
        raise HwpruneError(f"unknown kernel {kernel!r}; choose one of: {', '.join(KERNELS)}")
    if reuse_factor < 1:
        raise HwpruneError(f"reuse factor {reuse_factor} must be 1 or more")
    b = get_board(board)
    model_onnx = Path(model_onnx)
    imported = import_qonnx(model_onnx, input_type or None)
    g = optimize(imported)
    largest = max((op.n_in * op.n_out for op in g.dense_ops()), default=1)
    if reuse_factor > largest:
        raise HwpruneError(
            f"--reuse-factor {reuse_factor} exceeds every layer's size (the largest has "
            f"{largest} weights); use a reuse factor from 1 to {largest}"
        )
    meta = {
        **imported.meta,
        "source": str(model_onnx.resolve()),
        "board": b.name,
        "reuse_factor": reuse_factor,
    }
    g = replace(g, meta=meta)
    with staged(Path(out_dir)) as stage:
        (stage / "ir.json").write_text(to_json(g))
        rtl = stage / "rtl"
        vfiles = emit_verilog(g, TOP)
        write_files(rtl, {**vfiles, **emit_testbench(g, TOP)})
        write_vectors(rtl / "vectors.json", g, golden.stimulus_vectors(g, 1000, 0))
        write_hls_project(
            g,
            stage / "hls",
            part=b.part,
            clock_period_ns=1000.0 / b.clock_mhz,
            reuse_factor=reuse_factor,
            project_name=HLS_PROJECT,
        )
        v_terms: dict[str, int] = {}
        for text in vfiles.values():
            v_terms.update(verilog_terms(text))
        manifest = _manifest(imported, g, v_terms, hls_terms(stage / "hls"))
        (rtl / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        # Every board of the catalogue: the file answers "where does this design fit?".
        est = estimate_boards(g, list_boards())
        (stage / "estimate.json").write_text(json.dumps(est, indent=1, sort_keys=True) + "\n")
    # What was derived from the model compiled before (a verdict, synthesis, the report) no
    # longer describes this one.
    for stale in DERIVED_FROM_COMPILE:
        p = Path(out_dir) / stale
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    return g


# --- sim ------------------------------------------------------------------------------------


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


def _first_mismatch(g: Graph, x: np.ndarray, want: np.ndarray, got: np.ndarray) -> dict | None:
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


def load_graph(build_dir: Path) -> Graph:
    """The IR of a build directory (written by compile)."""
    p = Path(build_dir) / "ir.json"
    if not p.is_file():
        raise HwpruneError(
            f"{build_dir} has no ir.json; run 'hwprune compile MODEL.onnx -o {build_dir}' first"
        )
    return from_json(p.read_text())


def qonnx_outputs(model_onnx: Path, g: Graph, x: np.ndarray) -> np.ndarray:
    """qonnx execution of the model on IR input integers, as integers on the output grid
    (for models whose input quantizer reads the graph input directly)."""
    from hwprune.frontend.qonnx import load_model

    m = load_model(model_onnx)
    (inp,) = g.inputs
    iname = m.graph.input[0].name
    shape = [1, *(int(d) for d in m.get_tensor_shape(iname)[1:])]  # flat or (1, C, H, W)
    feeds = (x * 2.0**inp.exp).astype(np.float32).reshape(len(x), *shape)
    return _qonnx_run(m, g, feeds)[1]


def draw_model_inputs(model_onnx: Path, n: int, seed: int, input_type=None) -> np.ndarray:
    """n seeded model inputs, shape (n, 1, ...), drawn from the input's annotated datatype:
    FLOAT32 uniform in [0, 1), an integer type (BIPOLAR, INTn, UINTn) uniform on its values.

    With a stated ``input_type`` (a FixedType), the inputs are what the host hands qonnx and
    the hardware: three corner vectors (all minimum, all maximum, zeros), then half levels
    drawn uniformly on the type's grid and half floats spread over twice the type's range,
    quantized by the host exactly as ap_fixed would (so rounding and overflow are exercised).
    """
    from hwprune.frontend.qonnx import load_model

    m = load_model(model_onnx)
    iname = m.graph.input[0].name
    shape = (1, *(int(d) for d in m.get_tensor_shape(iname)[1:]))
    dt = m.get_tensor_datatype(iname)
    rng = np.random.default_rng(seed)
    if input_type is not None:
        t = input_type
        corners = np.array([t.lo, t.hi, 0], dtype=np.int64)[: max(n, 0)]
        k = max(n - len(corners), 0)
        levels = rng.integers(t.lo, t.hi + 1, size=(k // 2, *shape))
        span = (t.hi - t.lo + 1) * 2.0**t.exp
        floats = rng.uniform(-span, span, size=(k - k // 2, *shape))
        drawn = np.concatenate([levels, t.quantize(floats)])
        full = np.broadcast_to(corners.reshape(-1, *([1] * len(shape))), (len(corners), *shape))
        return t.levels_to_float(np.concatenate([full, drawn])).astype(np.float32)
    if dt.name == "FLOAT32":
        return rng.random((n, *shape), dtype=np.float32)
    if dt.is_integer() and dt.get_num_possible_values() <= 2**16:
        vals = [v for v in range(int(dt.min()), int(dt.max()) + 1) if dt.allowed(v)]
        return rng.choice(np.array(vals, dtype=np.float32), size=(n, *shape))
    raise HwpruneError(
        f"input {iname!r} has datatype {dt.name}; FLOAT32 and integer datatypes can be drawn"
    )


def qonnx_reference(model_onnx: Path, g: Graph, feeds: np.ndarray) -> tuple:
    """qonnx execution of the model on model inputs ``feeds`` (n, 1, ...).

    Returns (IR input integers, qonnx's output integers), both (n, size) int64. The IR input
    is read from qonnx's full execution context (tensor g.host_input.tensor divided by its
    scale), so the host-side preprocessing is qonnx's own.
    """
    from hwprune.frontend.qonnx import load_model

    return _qonnx_run(load_model(model_onnx), g, feeds)


def _exact_ints(t: np.ndarray, scale) -> np.ndarray:
    """t / scale as int64, exact: a value off the grid becomes a marker that never matches."""
    scaled = np.asarray(t, dtype=np.float64) / np.asarray(scale, dtype=np.float64)
    ints = np.round(scaled)
    ints = np.where(ints == scaled, ints, np.iinfo(np.int64).min)
    return ints.astype(np.int64)


# How far (in integer steps) qonnx's float32 tensor may sit from integer * scale (+ offset)
# and still name that integer: float32 rounding of its own products and sums is ~1e-6 of a
# step for these sizes, while any other integer is a whole step away.
_INT_TOLERANCE = 2.0**-10


def _host_ints(t: np.ndarray, scale, offset=None) -> np.ndarray:
    """The integers k that qonnx's float tensor ``t`` (n, size) holds as k * scale + offset.

    With a float (non power-of-two) scale, qonnx computes k * scale in float32 (a quantizer)
    or sums float32 products (a layer), so t / scale is an integer only up to float32
    rounding: k is the nearest integer, accepted when it is unambiguous (within
    ``_INT_TOLERANCE``); anything else is a marker that never matches. The comparison with
    the hardware's integers is then exact."""
    t = np.asarray(t, dtype=np.float64)
    if offset is not None:
        t = t - np.asarray(offset, dtype=np.float64)
    scaled = t / np.asarray(scale, dtype=np.float64)
    ints = np.round(scaled)
    ok = np.abs(scaled - ints) <= _INT_TOLERANCE
    return np.where(ok, ints, np.iinfo(np.int64).min).astype(np.int64)


def _qonnx_run(m, g: Graph, feeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Execute the cleaned model on each input; return (IR input ints, output ints).

    With g.host_output the output integers are qonnx's tensor before the float tail
    divided by its scale, and the tail mapped over those integers by qonnx must reproduce
    the model output bit for bit (else the vector is marked as a mismatch).
    """
    from qonnx.core.onnx_exec import execute_onnx

    from hwprune.frontend.qonnx.chains import run_nodes, start_values

    iname, oname = m.graph.input[0].name, m.graph.output[0].name
    hi, ho = g.host_input, g.host_output
    xs, outs, starts, logits = [], [], [], []
    for feed in feeds:
        ctx = execute_onnx(m, {iname: np.asarray(feed, dtype=np.float32)}, True)
        if hi is not None:
            xs.append(_host_ints(ctx[hi.tensor].reshape(-1), hi.scale))
        outs.append(np.asarray(ctx[oname]).reshape(-1))
        if ho is not None:
            starts.append(np.asarray(ctx[ho.tensor]))
            if ho.final is not None:  # compare the logits; the final op is checked by argmax
                by_name = {n.name: n for n in m.graph.node}
                logits.append(np.asarray(ctx[by_name[ho.final].input[0]]).reshape(-1))
    x = np.array(xs) if hi is not None else None
    if x is not None and np.any(x == np.iinfo(np.int64).min):
        raise HwpruneError(
            f"qonnx tensor {hi.tensor!r} is off its scale {hi.scale}; the host-side "
            "input preprocessing does not produce the IR input grid"
        )
    y = np.array(outs)
    if ho is None:
        return x, _to_grid(y, g)
    t = np.concatenate(starts)  # (n, ...): the batch replaces the model's batch of 1
    flat = t.reshape(len(t), -1)
    offset = 0.0 if ho.offset is None else np.asarray(ho.offset, dtype=np.float64)
    ints = _host_ints(flat, ho.scale, ho.offset)
    ref = np.array(logits) if ho.final is not None else y  # what the tail must reproduce
    # The host's logits: the integers on the tensor's grid, mapped by the tail.
    host = ints * np.asarray(ho.scale, dtype=np.float64) + offset
    if ho.tail:
        by_name = {n.name: n for n in m.graph.node}
        nodes = [by_name[k] for k in ho.tail]
        consts = {i.name: np.asarray(ctx[i.name]) for i in m.graph.initializer}
        sv = start_values(ints, np.asarray(ho.scale, dtype=np.float64))
        if ho.offset is not None:
            sv = sv + np.asarray(ho.offset, dtype=np.float32)
        mapped = run_nodes(nodes, ho.tensor, sv.reshape(t.shape), consts, m.model.opset_import)
        host = mapped.reshape(len(t), -1)
        # Bit for bit when the tensor is exactly the integers' float32 image (as in tfc_2w2a);
        # else qonnx's own float32 rounding of the layer remains, and the tail must agree to it.
        exact = np.all(sv.reshape(flat.shape) == flat, axis=1)
        close = np.all(np.isclose(host, ref, rtol=1e-5, atol=1e-6), axis=1)
        same = np.where(exact, np.all(host == ref, axis=1), close)
        ints[~same] = np.iinfo(np.int64).min  # the tail does not reproduce qonnx's output
    if ho.final is not None:
        # Softmax and LogSoftmax are monotonic: the host's argmax of the logits must be one
        # of the (tied) maxima of qonnx's output; ArgMax outputs the first maximum's index,
        # as numpy's argmax does.
        pick = np.argmax(host, axis=1)
        if ho.final_op == "ArgMax":
            ok = y[:, 0].astype(np.int64) == pick
        else:
            ok = y[np.arange(len(y)), pick] == y.max(axis=1)
        ints[~ok] = np.iinfo(np.int64).min
    return x, ints


def _to_grid(y: np.ndarray, g: Graph) -> np.ndarray:
    """Float outputs -> integers on the output scale; a value off the grid is itself a mismatch
    and is kept as a non-integer marker so the comparison fails."""
    return _exact_ints(y, 2.0 ** g.meta["output_exp"])


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


def _level_qonnx(c: _SimContext) -> Level:
    if not c.model.is_file():
        return Level("qonnx", True, 0, 0.0, skipped="model.onnx not found")
    t0 = time.perf_counter()
    got = c.qonnx_out if c.qonnx_out is not None else qonnx_outputs(c.model, c.g, c.x)
    mm = _first_mismatch(c.g, c.x, c.want, got)
    seconds = time.perf_counter() - t0 + c.qonnx_seconds
    return Level("qonnx", mm is None, len(c.x), seconds, mm)


def _level_csim(c: _SimContext) -> Level:
    from hwprune.sim.csim import first_failing_layer, run_csim

    t0 = time.perf_counter()
    hls = c.build_dir / "hls"
    mm = _first_mismatch(c.g, c.x, c.want, run_csim(hls, c.x))
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

    vec = c.simdir / "vectors.json"
    write_vectors(vec, c.g, c.x)
    r = run_rtl(c.build_dir / "rtl", c.simdir / "rtl", vec, c.simulator, TOP)
    return Level(f"rtl ({c.simulator})", r.passed, r.n_vectors, r.seconds, r.first_mismatch)


# The rungs `hwprune sim` checks, in order (Brevitas is added by `run`, which has the model).
SIM_LEVELS = (("qonnx", _level_qonnx), ("csim", _level_csim), ("rtl", _level_rtl))


def sim(
    build_dir: Path,
    simulator: str = "icarus",
    vectors: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> SimReport:
    """Compare C-simulation and RTL simulation (and qonnx execution when the model is at hand)
    with the golden interpreter on corner + seeded random vectors; write sim/report.json.

    Raises MismatchError naming the first failing level, vector, layer and value.
    """
    from tqdm import tqdm

    from hwprune.sim.rtl import check_simulator

    build_dir = Path(build_dir)
    check_simulator(simulator)  # before the C-sim spends its time
    if vectors < 1:
        raise HwpruneError(f"--vectors {vectors}: use 1 or more")
    if seed < 0:
        raise HwpruneError(f"--seed {seed}: use 0 or more")
    g = load_graph(build_dir)
    model = build_dir / "model.onnx"
    if not model.is_file():
        model = Path(g.meta.get("source", ""))
    t0 = time.perf_counter()
    x, q_out = sim_vectors(g, model, vectors, seed)
    drawn_with_qonnx = time.perf_counter() - t0 if q_out is not None else 0.0
    report = SimReport()
    with staged(build_dir) as stage:
        simdir = stage / "sim"
        simdir.mkdir()
        want = golden.outputs(g, x)
        ctx = _SimContext(build_dir, simdir, g, x, want, model, simulator, q_out, drawn_with_qonnx)
        bar = tqdm(SIM_LEVELS, desc="simulate", unit="level", disable=not progress, leave=False)
        for name, level in bar:
            bar.set_description(f"simulate: {name}")
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
            f"{bad.name} differs from golden: {describe_mismatch(bad.first_mismatch)}"
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


# --- estimate and boards --------------------------------------------------------------------


def boards() -> list:
    """The board catalogue."""
    from hwprune.boards import list_boards

    return list_boards()


def estimate(
    target: Path,
    board: str = "all",
    synth: str | None = None,
    progress=None,
    input_type: str | None = None,
) -> dict:
    """Estimates for a build directory or a QONNX model, on one board or all of them.

    With ``synth="yosys"`` the build directory's rtl/ is also synthesized (once per yosys
    device family) and each board's entry gains a "synth" report: measured figures next to
    the estimate, with est/measured ratios. Logs go to DIR/synth/<family>/yosys.log.
    """
    from hwprune.boards import get_board, list_boards
    from hwprune.estimate import estimate_boards
    from hwprune.frontend.qonnx import import_qonnx

    target = Path(target)
    if synth is not None and synth not in SYNTH_TOOLS:
        raise HwpruneError(
            f"unknown synthesis tool {synth!r}; choose one of: {', '.join(SYNTH_TOOLS)}"
        )
    chosen = list_boards() if board == "all" else [get_board(board)]
    if target.is_dir():
        if input_type:  # stored and never used would mislead: the build already fixed it
            raise HwpruneError(
                f"--input-type {input_type}: {target} is a build directory, whose input type "
                "was fixed when it was compiled; drop --input-type or pass the .onnx model"
            )
        g = load_graph(target)
    elif target.is_file():
        g = optimize(import_qonnx(target, input_type or None))
    else:
        raise HwpruneError(f"{target}: no such build directory or model file")
    ests = estimate_boards(g, chosen)
    if synth is None:
        return ests
    if not (target / "rtl").is_dir():
        raise HwpruneError(
            f"{target}: --synth needs a build directory with rtl/; run 'hwprune compile' first"
        )
    from hwprune.estimate.synth import synth_report, synth_yosys, yosys_family

    runs: dict[str, dict] = {}  # the RTL does not depend on the board: one run per family
    with staged(target) as stage:
        for b in chosen:
            fam = yosys_family(b)
            if fam not in runs:
                runs[fam] = synth_yosys(target / "rtl", b, stage / "synth" / fam, progress=progress)
            ests[b.name]["synth"] = synth_report(ests[b.name], runs[fam])
    return ests


SYNTH_TOOLS = ("yosys",)


# --- run --------------------------------------------------------------------------------------


@dataclass
class RunReport:
    train: TrainReport
    graph: Graph
    imported_zeros: dict[str, tuple[int, int]]
    sim: SimReport
    estimates: dict
    seconds: float


def run(config: Config, out_dir: Path, progress: bool = True) -> RunReport:
    """The main job: train, export, compile, simulate (Brevitas, QONNX, golden, C-sim, RTL)
    and estimate on every board. Writes report.md into the build directory."""
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    tr = train(config, out_dir, progress)
    g = compile(
        out_dir / "model.onnx",
        out_dir,
        config.compile.board,
        reuse_factor=config.compile.reuse_factor,
        input_type=config.compile.input_type or None,
    )
    brevitas = brevitas_level(config, out_dir, g, config.sim.vectors, config.sim.seed)
    rep = sim(out_dir, config.sim.simulator, config.sim.vectors, config.sim.seed, progress)
    rep.levels.insert(0, brevitas)
    if not brevitas.passed:
        raise MismatchError(
            f"brevitas differs from golden: {describe_mismatch(brevitas.first_mismatch)}"
        )
    # compile wrote the estimate for every board and the per-layer weight counts already.
    ests = json.loads((out_dir / "estimate.json").read_text())
    layers = json.loads((out_dir / "rtl" / "manifest.json").read_text())["layers"]
    zeros = {ly["name"]: (ly["weights"] - ly["kernel_nonzeros"], ly["weights"]) for ly in layers}
    report = RunReport(tr, g, zeros, rep, ests, time.perf_counter() - t0)
    with staged(out_dir) as stage:
        (stage / "report.md").write_text(summary(report))
    return report


def brevitas_level(config: Config, out_dir: Path, g: Graph, vectors: int, seed: int) -> Level:
    """Brevitas forward (rebuilt from config.toml + model.pt) vs golden on the same vectors."""
    import torch

    from hwprune.train.model import build_model, forward_numpy

    t0 = time.perf_counter()
    (inp,) = g.inputs
    info = json.loads((out_dir / "train.json").read_text())
    model = build_model(config.model, tuple(info["shape"]), info["n_classes"], fold_bn=True)
    model.load_state_dict(torch.load(out_dir / "model.pt", weights_only=True))
    x = golden.stimulus_vectors(g, vectors, seed)
    got = _to_grid(forward_numpy(model, x * 2.0**inp.exp), g)
    mm = _first_mismatch(g, x, golden.outputs(g, x), got)
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


def summary(r: RunReport) -> str:
    """The text the main job ends with (also written to report.md)."""
    from hwprune.estimate import format_table

    lines = [banner("<!--").replace("\n", " -->\n").rstrip(), "# hwprune run", ""]
    lines.append(
        f"Accuracy (test set): dense QAT {r.train.dense_accuracy:.2%}, "
        f"pruned {r.train.pruned_accuracy:.2%}"
    )
    if r.train.sparsity:
        shown = ", ".join(f"{k} {v:.1%}" for k, v in r.train.sparsity.items())
        lines.append(f"Mask sparsity per pruned layer: {shown}")
    lines += ["", "Zero weights per layer (after quantization):", ""]
    for name, (z, n) in r.imported_zeros.items():
        lines.append(f"  {name:<8} {z:>5} / {n:<5} zero ({z / n:.1%})")
    total_z = sum(z for z, _ in r.imported_zeros.values())
    total_n = sum(n for _, n in r.imported_zeros.values())
    lines.append(f"  {'total':<8} {total_z:>5} / {total_n:<5} zero ({total_z / total_n:.1%})")
    lines += ["", "Bit-exactness vs golden interpreter:", ""]
    for lv in r.sim.levels:
        verdict = "SKIP " + lv.skipped if lv.skipped else ("PASS" if lv.passed else "FAIL")
        lines.append(f"  {lv.name:<16} {verdict:<6} {lv.vectors} vectors, {lv.seconds:.1f} s")
    lines += ["", "Assumed at the host boundary:", ""] + [f"  {t}" for t in host_boundary(r.graph)]
    lines += [
        "",
        "Estimate per board:",
        "",
        format_table(r.estimates),
        "",
        f"Total time {r.seconds:.0f} s",
    ]
    return "\n".join(lines) + "\n"
