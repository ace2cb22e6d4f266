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

from hwprune.builddir import staged, write_files
from hwprune.config import Config
from hwprune.errors import HwpruneError, MismatchError
from hwprune.ir import golden
from hwprune.ir.graph import Graph, from_json, to_json
from hwprune.ir.passes import optimize
from hwprune.names import HLS_PROJECT, KERNELS, SYNTH_TOOLS, TOP
from hwprune.resources import banner
from hwprune.sim.ladder import (
    SimReport,
    brevitas_level,
    describe_mismatch,
    host_boundary,
    simulate,
)

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
    from hwprune.codegen.manifest import manifest as build_manifest
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
        manifest = build_manifest(imported, g, v_terms, hls_terms(stage / "hls"))
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


def load_graph(build_dir: Path) -> Graph:
    """The IR of a build directory (written by compile)."""
    p = Path(build_dir) / "ir.json"
    if not p.is_file():
        raise HwpruneError(
            f"{build_dir} has no ir.json; run 'hwprune compile MODEL.onnx -o {build_dir}' first"
        )
    return from_json(p.read_text())


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
    return simulate(build_dir, g, model, simulator, vectors, seed, progress)


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
