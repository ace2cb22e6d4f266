"""hwprune's Python API: the library's front door, and what every CLI subcommand calls.

    import hwprune

    design = hwprune.compile("model.onnx", "build/m", board="pynq-z2")      -> Design
    design.predict(x)                 bit-exact outputs (the golden interpreter)
    design.sim(vectors=200)           qonnx, C-sim and RTL vs golden     -> SimReport
    design.estimate("zcu104")         resources and latency              -> {board: estimate}
    design.layer_table("zcu104")      the per-layer table                -> str
    design.paths                      what compile wrote                 -> {name: Path}
    hwprune.load("build/m")           a build directory written before   -> Design

    hwprune.train(config, out_dir)    QAT + pruning, then QONNX export   -> TrainReport
    hwprune.run(config, out_dir)      every step, report.md and plots    -> RunReport
    hwprune.api.sim(dir), hwprune.api.estimate(dir_or_onnx, board), hwprune.boards()
    hwprune.api.sweep("sweep.toml", "build/sweep")   points on Dask, Pareto fronts -> SweepReport
    (hwprune.sim, .estimate, .export and .sweep are subpackages: use the Design methods or api.*)

``config`` is a ``Config``, the path of a TOML file, or None for the bundled default example.

The main job is a sequence of steps held as data (``STEPS``): train, export, compile, sim,
estimate, report. A step reads what the steps before it left in the build directory and
passes its result to the next in memory, so ``run(config, out_dir, start="compile")``
restarts from the files an earlier run left.

Errors are exceptions: ``HwpruneError`` (bad input; the message names the problem and the
fix) and its subclass ``MismatchError`` (a ladder level disagreed). Only the CLI turns them
into exit codes.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from hwprune.builddir import staged, write_files
from hwprune.errors import HwpruneError, MismatchError
from hwprune.ir.graph import Graph, from_json, to_json
from hwprune.ir.passes import optimize
from hwprune.names import CONV_MODES, HLS_PROJECT, KERNELS, SYNTH_TOOLS, TOP

# numpy, the config schema and the simulation ladder are imported by the functions that use
# them: `hwprune estimate DIR` needs none of them and returns in a fraction of their import
# time (benchmarks/estimate_speed.py).
if TYPE_CHECKING:
    import numpy as np

    from hwprune.config import Config
    from hwprune.sim.ladder import SimReport
    from hwprune.sweep.runner import SweepReport

# Outputs of later steps that a new compile makes stale: removed when compile replaces them.
DERIVED_FROM_COMPILE = (
    "estimate.json",
    "asic.json",
    "asic",
    "sim",
    "synth",
    "logs",
    "plots",
    "report.md",
    "report.html",
)
# The most vectors one simulation takes (the RTL testbench holds them in memory).
MAX_VECTORS = 1_000_000


def _config(config: Config | str | Path | None) -> Config:
    from hwprune.config import Config, load_config
    from hwprune.resources import data_dir

    if isinstance(config, Config):
        return config
    return load_config(Path(config) if config else data_dir("examples") / "digits.toml")


def _remove(out_dir: Path, names: tuple[str, ...]) -> None:
    for name in names:
        p = Path(out_dir) / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


# --- train and export -----------------------------------------------------------------------


@dataclass(frozen=True)
class TrainReport:
    dense_accuracy: float
    pruned_accuracy: float
    seconds: float
    sparsity: dict = field(default_factory=dict)  # pruned layer -> achieved mask sparsity

    @classmethod
    def load(cls, build_dir: Path) -> TrainReport:
        doc = json.loads(_need(build_dir, "train.json", "train").read_text())
        return cls(doc["dense_accuracy"], doc["pruned_accuracy"], doc["seconds"], doc["sparsity"])


def _need(build_dir: Path, name: str, step: str) -> Path:
    """A file an earlier step wrote, or an error naming the step that writes it."""
    p = Path(build_dir) / name
    if not p.exists():
        raise HwpruneError(
            f"{build_dir} has no {name}; run the '{step}' step first "
            f"(hwprune run CONFIG -o {build_dir} --from {step})"
        )
    return p


def write_train_files(
    stage: Path, config: Config, res, seconds: float, init: Path | None = None, **extra
) -> TrainReport:
    """The train step's files for a finished ``train.loop.TrainResult``: config.toml,
    model.pt and train.json (``extra`` keys added to it), into ``stage``."""
    import torch

    (stage / "config.toml").write_text(config.to_toml())
    torch.save(res.model.state_dict(), stage / "model.pt")
    rep = TrainReport(
        res.dense_accuracy,
        res.pruned_accuracy,
        seconds,
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
        "init": None if init is None else str(init),
        "init_accuracy": res.init_accuracy,
        **extra,
        "history": res.history,
    }
    (stage / "train.json").write_text(json.dumps(doc, indent=1) + "\n")
    return rep


def _train_files(
    config: Config, out_dir: Path, progress: bool, init: Path | None = None
) -> TrainReport:
    """QAT + pruning (or, with ``init``, fine-tuning from that model.pt); writes config.toml
    (resolved), model.pt (BatchNorm folded, masks squashed) and train.json (accuracies,
    sparsity, the init checkpoint and its accuracy, history)."""
    from hwprune.train.loop import train as train_loop

    t0 = time.perf_counter()
    with staged(out_dir) as stage:
        res = train_loop(config, progress=progress, init=init)
        rep = write_train_files(stage, config, res, time.perf_counter() - t0, init)
    # A new model: what was derived from the previous one describes it no longer.
    _remove(out_dir, ("model.onnx", "ir.json", "hls", "rtl", *DERIVED_FROM_COMPILE))
    return rep


def load_trained(config: Config, build_dir: Path):
    """The trained Brevitas model of a build directory, rebuilt from the config and model.pt
    (BatchNorm folded, as trained), in eval mode."""
    import torch

    from hwprune.train.model import build_model

    info = json.loads(_need(build_dir, "train.json", "train").read_text())
    model = build_model(config.model, tuple(info["shape"]), info["n_classes"], fold_bn=True)
    state = torch.load(_need(build_dir, "model.pt", "train"), weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def export(config: Config | str | Path | None, build_dir: Path) -> Path:
    """Export the trained model of ``build_dir`` to cleaned QONNX (build_dir/model.onnx)."""
    import numpy as np

    from hwprune.export.qonnx import export_model

    config, build_dir = _config(config), Path(build_dir)
    info = json.loads(_need(build_dir, "train.json", "train").read_text())
    model = load_trained(config, build_dir)
    with staged(build_dir) as stage:
        export_model(model, int(np.prod(info["shape"])), stage / "model.onnx")
    return build_dir / "model.onnx"


def train(
    config: Config | str | Path | None,
    out_dir: Path,
    progress: bool = True,
    init: Path | None = None,
) -> TrainReport:
    """QAT + pruning, then export: config.toml, model.pt, train.json and model.onnx.

    ``init``: the model.pt of an earlier run to transfer from: no dense QAT; the checkpoint
    is pruned (prune.init_masks: its zeros kept or reopened) and fine-tuned on the config's
    data. Its accuracy before fine-tuning is the report's dense_accuracy (and train.json's
    init_accuracy)."""
    job = _Job(_config(config), Path(out_dir), progress, init=None if init is None else Path(init))
    if job.init is not None:
        from hwprune.train.loop import check_init

        check_init(job.config, job.init)  # a wrong checkpoint fails before any step starts
    _run_steps(job, "train", "export")
    return job.train


# --- compile --------------------------------------------------------------------------------


# The ASIC targets' estimates (``estimate_asic``), beside estimate.json (whose entries are
# boards).
ASIC_JSON = "asic.json"


@dataclass
class Design:
    """A compiled design: its build directory, the IR, the manifest and the estimates.

    ``predict`` is bit-exact (the golden interpreter, which every ladder level matches);
    ``sim`` and ``estimate`` run on the files of the build directory.
    """

    build_dir: Path
    graph: Graph
    manifest: dict
    estimates: dict = field(default_factory=dict)  # board -> estimate (every board)
    asic: dict = field(default_factory=dict)  # ASIC target -> estimate (asic.json), if any

    @classmethod
    def load(cls, build_dir: Path) -> Design:
        build_dir = Path(build_dir)
        g = load_graph(build_dir)
        man = json.loads(_need(build_dir, "rtl/manifest.json", "compile").read_text())
        est = build_dir / "estimate.json"
        ests = json.loads(est.read_text()) if est.is_file() else {}
        asic = build_dir / ASIC_JSON
        return cls(build_dir, g, man, ests, json.loads(asic.read_text()) if asic.is_file() else {})

    @property
    def paths(self) -> dict[str, Path]:
        """What compile wrote: ir.json, hls/ (the hls4ml project, tb_data/ with the golden
        vectors), rtl/ (Verilog, cocotb testbench, manifest.json) and estimate.json."""
        d = self.build_dir
        return {
            "ir": d / "ir.json",
            "hls": d / "hls",
            "rtl": d / "rtl",
            "verilog": d / "rtl" / f"{TOP}.v",
            "manifest": d / "rtl" / "manifest.json",
            "estimate": d / "estimate.json",
        }

    @property
    def model(self) -> Path:
        """The QONNX model the design was compiled from."""
        local = self.build_dir / "model.onnx"
        return local if local.is_file() else Path(self.graph.meta.get("source", ""))

    def predict(self, x, raw: bool = False) -> np.ndarray:
        """The hardware's outputs for model inputs ``x`` (n, ...), bit for bit.

        Inputs the hardware reads directly must be levels of the model's input quantizer
        (multiples of its scale, in range); a model whose input the host prepares (a float
        input with a stated input type, a float chain) gets it prepared exactly as qonnx does.
        Returns the outputs as real values (integers times the output scale, plus the last
        layer's float bias where the model has one), or the integers with ``raw=True``.
        A float tail after the hardware (e.g. Softmax) is the host's and is not applied.
        """
        import numpy as np

        from hwprune.ir import golden

        g = self.graph
        levels = self._input_levels(np.asarray(x, dtype=np.float64))
        ints = golden.outputs(g, levels)
        if raw:
            return ints
        ho = g.host_output
        if ho is None:
            return ints * 2.0 ** g.meta["output_exp"]
        y = ints * np.asarray(ho.scale, dtype=np.float64).reshape(-1)
        return y if ho.offset is None else y + np.asarray(ho.offset, np.float64).reshape(-1)

    def _input_levels(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        g = self.graph
        (inp,) = g.inputs
        n = len(x) if x.ndim > 1 else 1
        flat = x.reshape(n, -1)
        hi = g.host_input
        want = int(np.prod(g.meta.get("input_shape", [inp.size])))
        if flat.shape[1] != (want if hi is not None else inp.size):
            raise HwpruneError(
                f"predict: each input has {flat.shape[1]} values, the model reads "
                f"{want if hi is not None else inp.size}; pass an array of shape (n, "
                f"{want if hi is not None else inp.size})"
            )
        if hi is not None:
            from hwprune.sim.reference import qonnx_reference

            if not self.model.is_file():
                raise HwpruneError(
                    f"predict: the host prepares this model's input with qonnx, and the model "
                    f"{self.model} is gone; compile it again into {self.build_dir}"
                )
            if hi.input_type:
                from hwprune.frontend.precision import parse_precision

                t = parse_precision(hi.input_type)
                flat = t.levels_to_float(t.quantize(flat))
            shape = g.meta.get("input_shape", [flat.shape[1]])
            feeds = flat.astype(np.float32).reshape(n, 1, *shape)
            levels, _ = qonnx_reference(self.model, g, feeds)
            return levels
        scaled = flat / 2.0**inp.exp
        levels = np.round(scaled)
        bad = (levels != scaled) | (levels < inp.range.lo) | (levels > inp.range.hi)
        if bad.any():
            v, i = (int(t) for t in np.argwhere(bad)[0])
            step = 2.0**inp.exp
            raise HwpruneError(
                f"predict: input [{v}, {i}] = {flat[v, i]!r} is not a level of the model's input "
                f"quantizer (multiples of {step!r} from {inp.range.lo * step!r} to "
                f"{inp.range.hi * step!r}); quantize the inputs as that quantizer does first"
            )
        return levels.astype(np.int64)

    def sim(
        self,
        simulator: str = "icarus",
        vectors: int = 1000,
        seed: int = 0,
        progress=False,
        levels: Sequence[str] | None = None,
    ) -> SimReport:
        """The ladder on this design (see ``hwprune.sim``)."""
        return sim(self.build_dir, simulator, vectors, seed, progress, levels)

    def estimate(self, board: str = "all", synth: str | None = None) -> dict:
        """Estimates on one board or all (see ``hwprune.estimate``)."""
        return estimate(self.build_dir, board, synth)

    def layer_table(self, board: str | None = None) -> str:
        """The per-layer table (kind, shape, nonzeros, product terms, removed neurons, LUT,
        FF, DSP, latency) on ``board`` (default: the board compiled for)."""
        from hwprune.report import layer_rows, layer_table

        name = board or self.graph.meta.get("board")
        est = self.estimates.get(name) or estimate(self.build_dir, name)[name]
        return layer_table(layer_rows(self.graph, self.manifest, est))


def _compile_files(
    model_onnx: Path,
    out_dir: Path,
    board: str = "pynq-z2",
    kernel: str = "mac",
    reuse_factor: int = 1,
    input_type: str | None = None,
    pipeline: int | str = 4,
    conv: str = "unroll",
    stream_layers: int | None = None,
) -> Design:
    """The compile step: ir.json, hls/ (with tb_data/), rtl/ (+ manifest.json). Everything is
    checked (file, board, kernel, reuse factor, pipeline, conv, supported ops) before anything
    is written."""
    from hwprune.boards import get_board
    from hwprune.codegen import rtl_files
    from hwprune.codegen.cocotb_tb import write_vectors
    from hwprune.codegen.manifest import manifest as build_manifest
    from hwprune.codegen.verilog import count_product_terms as verilog_terms
    from hwprune.hlsgen import count_product_terms as hls_terms
    from hwprune.hlsgen import write_hls_project
    from hwprune.ir import golden

    if kernel not in KERNELS:
        raise HwpruneError(f"unknown kernel {kernel!r}; choose one of: {', '.join(KERNELS)}")
    if reuse_factor < 1:
        raise HwpruneError(f"reuse factor {reuse_factor} must be 1 or more")
    if conv not in CONV_MODES:
        raise HwpruneError(f"--conv {conv}: choose one of: {', '.join(CONV_MODES)}")
    if stream_layers is not None and stream_layers < 1:
        raise HwpruneError(f"stream_layers {stream_layers} must be 1 or more (or unset: all)")
    b = get_board(board)
    model_onnx, out_dir = Path(model_onnx), Path(out_dir)
    imported, g = design_graph(
        model_onnx, b, kernel, reuse_factor, input_type, pipeline, conv, stream_layers
    )
    with staged(out_dir) as stage:
        (stage / "ir.json").write_text(to_json(g))
        rtl = stage / "rtl"
        vfiles = rtl_files(g, TOP)
        write_files(rtl, vfiles)
        x = golden.stimulus_vectors(g, 1000, 0)
        write_vectors(rtl / "vectors.npz", g, x)
        write_hls_project(
            g,
            stage / "hls",
            part=b.part,
            clock_period_ns=1000.0 / b.clock_mhz,
            reuse_factor=reuse_factor,
            project_name=HLS_PROJECT,
            vectors=x,
        )
        v_terms: dict[str, int] = {}
        for text in vfiles.values():
            v_terms.update(verilog_terms(text))
        manifest = build_manifest(imported, g, v_terms, hls_terms(stage / "hls"))
        (rtl / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    # What was derived from the model compiled before (estimates, a verdict, synthesis, the
    # report) no longer describes this one.
    _remove(out_dir, DERIVED_FROM_COMPILE)
    return Design(out_dir, g, manifest)


def design_graph(
    model_onnx: Path,
    board,
    kernel: str = "mac",
    reuse_factor: int = 1,
    input_type: str | None = None,
    pipeline: int | str = 4,
    conv: str = "unroll",
    stream_layers: int | None = None,
) -> tuple[Graph, Graph]:
    """The imported graph of a QONNX model and the design compile makes of it for ``board``
    (a Board): optimized, with every choice by cost made; nothing written."""
    from hwprune.frontend.qonnx import import_qonnx
    from hwprune.hlsgen import check_reuse_factor
    from hwprune.hw.stream import plan as stream_plan

    per_stage = parse_pipeline(pipeline)
    model_onnx = Path(model_onnx)
    imported = import_qonnx(model_onnx, input_type or None)
    g = optimize(imported)
    if conv == "unroll":  # (a streamed design's layers are known after the choice below)
        check_reuse_factor(g, reuse_factor)
    meta = {
        **imported.meta,
        "source": str(model_onnx.resolve()),
        "board": board.name,
        "reuse_factor": reuse_factor,
        "kernel": kernel,
        "pipeline": per_stage,
        "conv": conv,
    }
    # By cost: each threshold layer's form, then (auto) each layer's kernel.
    g = _choose(replace(g, meta=meta), model_onnx, board, stream_layers)
    if conv != "unroll":
        # hls4ml's reuse factor applies to the layers it builds: a streamed design's head
        # (its stream stages take one position per R cycles, hw.stream).
        p = stream_plan(g)
        check_reuse_factor(g if p is None else p.head, reuse_factor)
    return imported, g


def _choose(g: Graph, model_onnx: Path, board, stream_layers: int | None = None) -> Graph:
    """Every choice compile makes by cost (``estimate.choices``). With ``--conv stream`` the
    layers at the front that stream (``hw.stream``; at most ``stream_layers`` of them) keep
    their form; the choices are made for the head after them, and (kernel auto) for each
    stream kernel. ``--conv auto``: unrolled if that design fits ``board`` by the estimate,
    else the fewest streamed layers that make it fit (all of them if none does); the figures
    are kept in ``meta["conv_choice"]``."""
    from hwprune.estimate import estimate_boards
    from hwprune.estimate.choices import choose
    from hwprune.hw import stream

    conv = g.meta.get("conv", "unroll")
    if conv == "unroll":
        return choose(g)
    stages, why = stream.stages(g, stream_layers)
    if not stages and conv == "stream":
        raise HwpruneError(
            f"--conv stream: {model_onnx} does not start with a convolution or pooling that "
            f"streams ({why}); use --conv unroll"
        )
    if conv == "stream":
        return _streamed(g, len(stages))
    options = {0: choose(g)}
    options |= {k: _streamed(g, k) for k in range(1, len(stages) + 1)}
    figures = {}
    for k, cand in options.items():
        e = estimate_boards(cand, [board])[board.name]
        # (keys as strings: the record goes to ir.json's meta)
        figures[str(k)] = {"lut": e["totals"]["lut"], "ff": e["totals"]["ff"], "fits": e["fits"]}
        if e["fits"]:
            break
    k = next((int(k) for k, f in figures.items() if f["fits"]), max(options))
    record = {"stream_layers": k, "board": board.name, "by_stream_layers": figures}
    return replace(options[k], meta={**options[k].meta, "conv_choice": record})


def _streamed(g: Graph, n: int) -> Graph:
    """``g`` with its first ``n`` stream stages kept as they are and the choices of
    ``estimate.choices`` made for the head after them and (kernel auto) the stage kernels."""
    from hwprune.estimate.choices import choose, with_kernels
    from hwprune.hw import stream

    stages, _ = stream.stages(g, n)
    head = choose(stream.head(g, stages))
    meta = {**head.meta, stream.STREAM_KEY: len(stages)}
    for st in stages:
        chosen = with_kernels(st.kernel).meta
        for key in ("layer_kernels", "kernel_choice"):
            if key in chosen:
                meta[key] = {**meta.get(key, {}), **chosen[key]}
    front = g.ops[: g.ops.index(g.op(stages[-1].ops[-1])) + 1]
    return replace(g, ops=(*front, *head.ops[1:]), meta=meta)


def parse_pipeline(pipeline: int | str) -> int:
    """``--pipeline``: "layer" (one register bank per layer, 0) or the most adder levels
    between two register banks (a positive integer)."""
    if pipeline == "layer":
        return 0
    try:
        n = int(pipeline)
    except (TypeError, ValueError):
        n = -1
    if n < 0 or isinstance(pipeline, bool):
        raise HwpruneError(
            f"--pipeline {pipeline}: use 'layer' (one register bank per layer) or the most "
            "adder levels between two register banks (a positive integer, default 4)"
        )
    return n


def _estimate_files(design: Design) -> dict:
    """The estimate step: every board of the catalogue into estimate.json (the file answers
    "where does this design fit?")."""
    from hwprune.boards import list_boards
    from hwprune.estimate import estimate_boards

    est = estimate_boards(design.graph, list_boards())
    with staged(design.build_dir) as stage:
        (stage / "estimate.json").write_text(json.dumps(est, indent=1, sort_keys=True) + "\n")
    design.estimates = est
    return est


def compile(
    model_onnx: Path,
    out_dir: Path,
    board: str = "pynq-z2",
    kernel: str = "mac",
    reuse_factor: int = 1,
    input_type: str | None = None,
    pipeline: int | str = 4,
    conv: str = "unroll",
    stream_layers: int | None = None,
) -> Design:
    """Import a QONNX model and write ir.json, hls/, rtl/ (+ manifest.json) and estimate.json.

    ``input_type`` (hls4ml spelling, e.g. ``fixed<16,6>``) is the precision the host
    quantizes a float graph input to when the model reads it without a quantizer.
    ``reuse_factor`` must be one hls4ml accepts for every layer (it is checked).
    ``pipeline``: "layer" or the most adder levels between two register banks.
    ``conv``: "unroll" (an adder tree per output pixel), "stream" (``hw.stream``: the
    convolutions and poolings at the front, at most ``stream_layers`` of them) or "auto"
    (unrolled if it fits ``board`` by the estimate, else the fewest streamed layers that fit).
    """
    design = _compile_files(
        model_onnx, out_dir, board, kernel, reuse_factor, input_type, pipeline, conv, stream_layers
    )
    _estimate_files(design)
    return design


def load(build_dir: Path) -> Design:
    """The design a build directory holds (written by compile or run)."""
    return Design.load(build_dir)


def load_graph(build_dir: Path) -> Graph:
    """The IR of a build directory (written by compile)."""
    build_dir = Path(build_dir)
    p = build_dir / "ir.json"
    if build_dir.is_file():
        raise HwpruneError(
            f"{build_dir} is a model file, not a build directory; compile it first "
            f"('hwprune compile {build_dir} -o DIR') and pass DIR"
        )
    if not p.is_file():
        raise HwpruneError(
            f"{build_dir} has no ir.json; run 'hwprune compile MODEL.onnx -o {build_dir}' first"
        )
    return from_json(p.read_text())


# --- sim ------------------------------------------------------------------------------------


def _check_sim_options(
    simulator: str, vectors: int, seed: int, levels: Sequence[str] | None = None
) -> None:
    from hwprune.sim.ladder import SIM_LEVELS
    from hwprune.sim.rtl import check_simulator

    known = [name for name, _ in SIM_LEVELS]
    for lv in levels if levels is not None else ():
        if lv not in known:
            raise HwpruneError(f"--levels: no level {lv!r}; choose among {', '.join(known)}")
    if levels is not None and not levels:
        raise HwpruneError(f"--levels: name at least one of {', '.join(known)}")
    check_simulator(simulator)  # before the C-sim spends its time
    if not 1 <= vectors <= MAX_VECTORS:
        raise HwpruneError(f"--vectors {vectors}: use 1 to {MAX_VECTORS:,}")
    if seed < 0:
        raise HwpruneError(f"--seed {seed}: use 0 or more")


def sim(
    build_dir: Path,
    simulator: str = "icarus",
    vectors: int = 1000,
    seed: int = 0,
    progress: bool = True,
    levels: Sequence[str] | None = None,
) -> SimReport:
    """Compare C-simulation and RTL simulation (and qonnx execution when the model is at hand)
    with the golden interpreter on corner + seeded random vectors; write sim/report.json.
    ``levels`` names the levels to run (``ladder.SIM_LEVELS``: qonnx, csim, rtl, rtl-axis;
    default all).

    Raises MismatchError naming the first failing level, vector, layer and value.
    """
    from hwprune.sim.ladder import simulate

    build_dir = Path(build_dir)
    _check_sim_options(simulator, vectors, seed, levels)
    g = load_graph(build_dir)
    model = Design(build_dir, g, {}).model
    return simulate(build_dir, g, model, simulator, vectors, seed, progress, levels=levels)


# --- estimate and boards --------------------------------------------------------------------


def boards() -> list:
    """The board catalogue."""
    from hwprune.boards import list_boards

    return list_boards()


def libraries() -> list:
    """The standard-cell library catalogue (ASIC targets ``asic:<name>``)."""
    from hwprune.libraries import list_libraries

    return list_libraries()


def estimate(
    target: Path,
    board: str = "all",
    synth: str | None = None,
    progress=None,
    input_type: str | None = None,
) -> dict:
    """Estimates for a build directory or a QONNX model, on one board, several (names
    separated by commas: "pynq-z2,icebreaker") or all of them ("all").

    With ``synth="yosys"`` the build directory's rtl/ is also synthesized (once per yosys
    device family) and each board's entry gains a "synth" report: measured figures next to
    the estimate, with est/measured ratios, and for iCE40 and ECP5 boards nextpnr's Fmax and
    fit ("pnr"); the entries are also written into DIR/estimate.json. Logs go to
    DIR/synth/<family>/yosys.log (nextpnr's beside it, in nextpnr-<part>-<clock>mhz/).
    """
    return estimate_design(target, board, synth, progress, input_type)[2]


def _estimate_target(target: Path, synth: str | None, input_type: str | None) -> Graph:
    """The graph ``hwprune estimate`` reads from ``target``: a build directory's ir.json, or a
    QONNX model imported (``synth`` needs a build directory's rtl/)."""
    if target.is_dir():
        if input_type:  # stored and never used would mislead: the build already fixed it
            raise HwpruneError(
                f"--input-type {input_type}: {target} is a build directory, whose input type "
                "was fixed when it was compiled; drop --input-type or pass the .onnx model"
            )
        return load_graph(target)
    if target.is_file():
        if synth is not None:
            raise HwpruneError(
                f"{target}: --synth needs a build directory with rtl/; compile the model "
                f"first ('hwprune compile {target} -o DIR') and pass DIR"
            )
        # Here only: onnx and qonnx take about a second to import, the whole of a build
        # directory's estimate otherwise.
        from hwprune.frontend.qonnx import import_qonnx

        return optimize(import_qonnx(target, input_type or None))
    raise HwpruneError(f"{target}: no such build directory or model file")


def estimate_design(
    target: Path,
    board: str = "all",
    synth: str | None = None,
    progress=None,
    input_type: str | None = None,
) -> tuple[Graph, dict | None, dict]:
    """``estimate`` with what it estimated: (graph, manifest or None for a model file,
    estimates per board), so a caller can print per-layer tables without reading again."""
    from hwprune.boards import get_board, list_boards
    from hwprune.estimate import estimate_boards

    target = Path(target)
    if synth is not None and synth not in SYNTH_TOOLS:
        raise HwpruneError(
            f"unknown synthesis tool {synth!r}; choose one of: {', '.join(SYNTH_TOOLS)}"
        )
    names = list(dict.fromkeys(b.strip() for b in board.split(",") if b.strip()))
    chosen = list_boards() if board == "all" else [get_board(b) for b in names]
    if not chosen:
        raise HwpruneError(f"--board {board!r} names no board; give a board name or 'all'")
    g = _estimate_target(target, synth, input_type)
    manifest = None
    if target.is_dir():
        man = target / "rtl" / "manifest.json"
        manifest = json.loads(man.read_text()) if man.is_file() else None
    ests = estimate_boards(g, chosen)
    if synth is None:
        return g, manifest, ests
    if not (target / "rtl").is_dir():
        raise HwpruneError(
            f"{target}: --synth needs a build directory with rtl/; run 'hwprune compile' first"
        )
    from hwprune.estimate.synth import (
        FLOWS,
        place_and_route,
        synth_command,
        synth_report,
        synth_yosys,
        yosys_family,
    )

    # The RTL does not depend on the board: one yosys run per synthesis command (family, and
    # -dsp on iCE40 UltraPlus parts), one nextpnr run per part and clock.
    runs: dict[str, tuple[Path, dict]] = {}
    pnrs: dict[tuple[str, float], dict] = {}
    with staged(target) as stage:
        for b in chosen:
            # "all" synthesises the boards whose family has a yosys flow; a board named
            # alone without one is refused by yosys_family, naming the families that have.
            if board == "all" and b.family not in FLOWS:
                continue
            cmd = synth_command(b)
            if cmd not in runs:
                fam = yosys_family(b)
                used = {d.name for d, _ in runs.values()}
                name = fam if fam not in used else f"{fam}-{len(runs)}"
                work = stage / "synth" / name
                runs[cmd] = (work, synth_yosys(target / "rtl", b, work, progress=progress))
                if "pnr" in runs[cmd][1]:
                    pnrs[(b.part, b.clock_mhz)] = runs[cmd][1]["pnr"]
            work, syn = runs[cmd]
            if "pnr" in syn:
                key = (b.part, b.clock_mhz)
                if key not in pnrs:
                    pnrs[key] = place_and_route(work, b, syn, progress=progress)
                syn = {**syn, "pnr": pnrs[key]}
            ests[b.name]["synth"] = synth_report(ests[b.name], syn)
        # The measured figures beside the estimates in estimate.json (other boards kept).
        est_file = target / "estimate.json"
        saved = json.loads(est_file.read_text()) if est_file.is_file() else {}
        saved.update(ests)
        (stage / "estimate.json").write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
    return g, manifest, ests


def estimate_asic(
    target: Path,
    libraries: str,
    synth: str | None = None,
    progress=None,
    input_type: str | None = None,
    place: bool = False,
    utilisation: float = 0.5,
    max_cells: int | None = None,
) -> tuple[Graph, dict]:
    """ASIC estimates for a build directory or a QONNX model on standard-cell libraries
    (``libraries``: "asic:osu018", several separated by commas): (graph, entries by target).

    Each entry is the fast estimate from the lowered netlist (``estimate.asic_fast``: area in
    µm², critical path and Fmax, per layer and whole). With ``synth="yosys"`` the build
    directory's rtl/ is also mapped to the library with yosys and timed and powered with
    OpenSTA (``estimate.asic.synth_asic``); the measured figures go to the entry's "synth",
    the entries into DIR/asic.json (estimate.json holds the boards'), and the logs and the
    gate-level netlist to DIR/asic/<library>/ (yosys.log, mapped.v, sta.log).

    ``place`` (needs ``synth``) also places and routes the mapped netlist with qflow
    (graywolf, qrouter; ``estimate.asic_place``) in a core sized for ``utilisation``: the
    entry's "place" (core and die area, failed nets, wire length, post-route timing). A
    design of more cells than ``max_cells`` (default: what that flow handles in about 10
    minutes here) is refused first.
    """
    from hwprune.libraries import find_library

    target = Path(target)
    if synth is not None and synth not in SYNTH_TOOLS:
        raise HwpruneError(
            f"unknown synthesis tool {synth!r}; choose one of: {', '.join(SYNTH_TOOLS)}"
        )
    if place and synth is None:
        raise HwpruneError("--place places the mapped netlist: add --synth yosys")
    names = list(dict.fromkeys(t.strip() for t in libraries.split(",") if t.strip()))
    if not names:
        raise HwpruneError(f"--target {libraries!r} names no library; e.g. --target asic:osu018")
    libs = [find_library(n) for n in names]
    g = _estimate_target(target, synth, input_type)
    from hwprune.estimate.asic_fast import asic_estimate, fitted_libraries

    ests = {}
    for lib in libs:
        if lib.name in fitted_libraries():
            ests[lib.target] = asic_estimate(g, lib)
        elif synth is None:
            raise HwpruneError(
                f"{lib.target}: the fast ASIC estimate has no fitted constants for this library "
                f"(fitted: {', '.join('asic:' + n for n in fitted_libraries())}); add --synth "
                "yosys to map, time and power the design on it"
            )
        else:  # measured figures only
            ests[lib.target] = {
                "library": lib.target,
                "method": "none: no fitted constants for this library (measured only)",
                "area_um2": None,
                "critical_path_ns": None,
                "fmax_mhz": None,
            }
    if synth is None:
        return g, ests
    if not (target / "rtl").is_dir():
        raise HwpruneError(
            f"{target}: --synth needs a build directory with rtl/; run 'hwprune compile' first"
        )
    from hwprune.estimate.asic import synth_asic
    from hwprune.estimate.asic_report import asic_synth_report

    for lib in libs:  # checked before any run: a missing library or tool fails at once
        lib.check_installed()
    with staged(target) as stage:
        if (target / "asic").is_dir():  # other libraries' runs stay (staged replaces asic/)
            shutil.copytree(target / "asic", stage / "asic")
        for lib in libs:
            work = stage / "asic" / lib.name
            shutil.rmtree(work, ignore_errors=True)
            syn = synth_asic(target / "rtl", lib, work, progress=progress)
            ests[lib.target]["synth"] = asic_synth_report(ests[lib.target], syn)
            if place:
                from hwprune.estimate.asic import MAPPED_V
                from hwprune.estimate.asic_place import MAX_CELLS, place_asic

                ests[lib.target]["place"] = place_asic(
                    target / "rtl",
                    lib,
                    work / "place",
                    utilisation,
                    max_cells=max_cells or MAX_CELLS,
                    cell_count=syn["cell_count"],
                    netlist=work / MAPPED_V,
                    progress=progress,
                )
        # asic.json, beside estimate.json (whose entries are boards): other targets kept.
        asic_file = target / ASIC_JSON
        saved = json.loads(asic_file.read_text()) if asic_file.is_file() else {}
        saved.update(ests)
        (stage / ASIC_JSON).write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
    return g, ests


# --- run: the steps as data -------------------------------------------------------------------


@dataclass
class _Job:
    """One run's context and the results its steps hand on (None: not run in this process;
    the next step that needs it reads it from the build directory)."""

    config: Config
    out_dir: Path
    progress: bool
    init: Path | None = None  # train's --init checkpoint (transfer), or None
    train: TrainReport | None = None
    design: Design | None = None
    sim: SimReport | None = None
    plots: list[Path] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def the_design(self) -> Design:
        if self.design is None:
            self.design = Design.load(self.out_dir)
        return self.design


def _step_train(job: _Job) -> None:
    job.train = _train_files(job.config, job.out_dir, job.progress, job.init)


def _step_export(job: _Job) -> None:
    export(job.config, job.out_dir)


def _step_compile(job: _Job) -> None:
    c = job.config.compile
    model = _need(job.out_dir, "model.onnx", "export")
    job.design = _compile_files(
        model,
        job.out_dir,
        c.board,
        c.kernel,
        c.reuse_factor,
        c.input_type or None,
        c.pipeline,
        *job.config.conv_choice(),
    )


def _step_sim(job: _Job) -> None:
    from hwprune.sim.ladder import brevitas_level, describe_mismatch, simulate

    s, d = job.config.sim, job.the_design()
    _check_sim_options(s.simulator, s.vectors, s.seed)
    brevitas = brevitas_level(load_trained(job.config, job.out_dir), d.graph, s.vectors, s.seed)
    if not brevitas.passed:
        raise MismatchError(
            f"brevitas differs from golden: {describe_mismatch(brevitas.first_mismatch)}"
        )
    job.sim = simulate(
        job.out_dir, d.graph, d.model, s.simulator, s.vectors, s.seed, job.progress, [brevitas]
    )


def _step_estimate(job: _Job) -> None:
    d = job.the_design()
    _estimate_files(d)
    if job.config.compile.asic:  # the ASIC rows: fast estimate, yosys mapping, OpenSTA
        d.asic = estimate_asic(job.out_dir, job.config.compile.asic, synth="yosys")[1]


def _step_report(job: _Job) -> None:
    from hwprune.report import plots_section, summary, write_html, write_plots
    from hwprune.sim.ladder import SimReport

    if job.train is None:
        job.train = TrainReport.load(job.out_dir)
    if job.sim is None:
        job.sim = SimReport.load(_need(job.out_dir, "sim/report.json", "sim"))
    d = job.the_design()
    if not d.estimates:
        d.estimates = json.loads(_need(job.out_dir, "estimate.json", "estimate").read_text())
    job.plots = write_plots(job.out_dir, d.graph.meta.get("board"))
    seconds = time.perf_counter() - job.started
    text = summary(job.train, job.sim, d, seconds) + plots_section(job.out_dir, job.plots)
    with staged(job.out_dir) as stage:
        (stage / "report.md").write_text(text)
    write_html(text, job.out_dir)


@dataclass(frozen=True)
class Step:
    """One step of the main job: what it reads from the build directory and what it writes."""

    name: str
    needs: tuple[str, ...]
    writes: tuple[str, ...]
    run: Callable[[_Job], None]


STEPS = (
    Step("train", (), ("config.toml", "model.pt", "train.json"), _step_train),
    Step("export", ("model.pt", "train.json"), ("model.onnx",), _step_export),
    Step("compile", ("model.onnx",), ("ir.json", "hls", "rtl"), _step_compile),
    Step("sim", ("model.pt", "train.json", "ir.json", "hls", "rtl"), ("sim", "logs"), _step_sim),
    Step("estimate", ("ir.json", "rtl"), ("estimate.json",), _step_estimate),
    Step(
        "report",
        ("train.json", "ir.json", "rtl", "sim", "estimate.json"),
        ("report.md", "report.html", "plots"),
        _step_report,
    ),
)
STEP_NAMES = tuple(s.name for s in STEPS)


def _run_steps(job: _Job, start: str, stop: str) -> None:
    from tqdm import tqdm

    for name in (start, stop):
        if name not in STEP_NAMES:
            raise HwpruneError(f"unknown step {name!r}; the steps are: {', '.join(STEP_NAMES)}")
    i, j = STEP_NAMES.index(start), STEP_NAMES.index(stop)
    if i > j:
        raise HwpruneError(f"step {start!r} comes after {stop!r}; the order is {STEP_NAMES}")
    writer = {w: s.name for s in STEPS for w in s.writes}
    for need in STEPS[i].needs:  # a restart: what the skipped steps should have left
        _need(job.out_dir, need, writer[need])
    steps = STEPS[i : j + 1]
    bar = tqdm(steps, desc="hwprune", unit="step", disable=not job.progress or len(steps) < 2)
    for step in bar:
        bar.set_description(f"hwprune: {step.name}")
        step.run(job)


@dataclass
class RunReport:
    """What the steps of one run produced (None: a step this run did not reach)."""

    train: TrainReport | None
    design: Design | None
    sim: SimReport | None
    seconds: float
    plots: list[Path] = field(default_factory=list)

    @property
    def graph(self) -> Graph:
        return self.design.graph

    @property
    def estimates(self) -> dict:
        return self.design.estimates


def run(
    config: Config | str | Path | None,
    out_dir: Path,
    progress: bool = True,
    start: str = "train",
    stop: str = "report",
) -> RunReport:
    """The main job: the steps from ``start`` to ``stop`` (STEPS: train, export, compile,
    sim, estimate, report). Writes report.md, report.html and plots/ into the build
    directory. Starting later than train needs what an earlier run left there; ``config``
    None then means the build directory's own config.toml."""
    out_dir = Path(out_dir)
    if config is None and start != "train" and (out_dir / "config.toml").is_file():
        config = out_dir / "config.toml"
    job = _Job(_config(config), out_dir, progress)
    _run_steps(job, start, stop)
    seconds = time.perf_counter() - job.started
    return RunReport(job.train, job.design, job.sim, seconds, job.plots)


def summary(r: RunReport) -> str:
    """The text the main job ends with (report.md without its plots)."""
    from hwprune.report import summary as text

    return text(r.train, r.sim, r.design, r.seconds)


# --- sweep ------------------------------------------------------------------------------------


def sweep(
    sweep_file: str | Path,
    out_dir: Path,
    workers: int | None = None,
    scheduler: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
) -> SweepReport:
    """A design-space sweep (``hwprune.sweep``): every point of ``sweep_file`` (a base config
    and axes of config keys) runs train, export, compile, [sim] and estimate as one Dask task
    in ``out_dir``/points/<key>/, on a LocalCluster of ``workers`` single-threaded processes
    (default: one per core) or on the cluster whose scheduler is at ``scheduler``
    ("tcp://HOST:8786"). Every point is resolved and checked before any runs.

    Writes out_dir/sweep.json (every point's inputs, accuracy, estimate, seconds, status),
    sweep.md (the Pareto fronts of accuracy against estimated LUT and against latency) and
    sweep.png. Called again, it runs only the points without a record: a failed point is run
    again only with ``retry_failed``. A point that fails is recorded and never stops the
    others (``SweepReport.ok`` says whether all succeeded).
    """
    from hwprune.sweep.runner import run_sweep
    from hwprune.sweep.spec import load_sweep

    return run_sweep(
        load_sweep(sweep_file), Path(out_dir), workers, scheduler, retry_failed, progress
    )


def sensitivity(
    config: Config | str | Path | None,
    out_dir: Path,
    board: str | None = None,
    ladder: tuple[float, ...] | None = None,
    epochs: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
):
    """Per-layer sensitivity (``hwprune.auto.sensitivity``): each prunable layer pruned alone
    at each sparsity of ``ladder`` with the configured criterion, fine-tuned ``epochs``
    epochs, scored on the validation set and estimated on ``board`` (default: the config's);
    the trials run on a Dask cluster as ``sweep``'s points do. Writes sensitivity.json, .md
    and .png into ``out_dir``."""
    from hwprune.auto import sensitivity as sens

    cfg = _config(config)
    title = str(config) if isinstance(config, (str, Path)) else ""
    return sens.analyse(
        cfg,
        Path(out_dir),
        board,
        sens.DEFAULT_LADDER if ladder is None else ladder,
        sens.TRIAL_EPOCHS if epochs is None else epochs,
        workers,
        scheduler,
        progress,
        title,
    )


def train_fit(
    config: Config | str | Path | None,
    out_dir: Path,
    fit: str,
    search: str = "greedy",
    *,
    ladder: tuple[float, ...] | None = None,
    epochs: int | None = None,
    episodes: int = 128,
    seed: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
):
    """``hwprune train --fit``: per-layer sparsity allocated so the estimate fits the budget
    ``fit`` ("BOARD[:lut=0.5,ff=...,dsp=...,bram18=...,latency_ns=...]") with the best
    validation accuracy, by ``search`` (greedy, rl or uniform), then pruned with the
    configured criterion and schedule (``hwprune.auto.fit``). Writes what ``train`` writes,
    and fit.json, fit.md and the sensitivity files; HwpruneError (one line naming the
    resource and the overflow) when no allocation can fit."""
    from hwprune.auto import sensitivity as sens
    from hwprune.auto.fit import fit_train

    return fit_train(
        _config(config),
        Path(out_dir),
        fit,
        search,
        ladder=sens.DEFAULT_LADDER if ladder is None else ladder,
        epochs=sens.TRIAL_EPOCHS if epochs is None else epochs,
        episodes=episodes,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
    )
