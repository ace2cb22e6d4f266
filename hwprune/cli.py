"""The `hwprune` command: a thin wrapper over hwprune.api (one function per subcommand).

Exit codes: 0 success; 1 a level of the bit-exactness ladder disagreed (or, for sweep, a point
failed); 2 bad input (a one-line message naming the problem and the fix, no traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from hwprune import __version__
from hwprune.errors import HwpruneError, MismatchError

DEFAULT_EXAMPLE = "digits.toml"
# hwprune.api.STEP_NAMES, spelt here so parsing the command line imports no library.
STEP_NAMES = ("train", "export", "compile", "sim", "estimate", "report")
INPUT_TYPE_HELP = (
    "precision the host quantizes a float model input to when the model has no input "
    "quantizer, spelt as in hls4ml: fixed<16,6>, ufixed<8,0>, int<8>, uint<8>, "
    "fixed<16,6,RND,SAT> (default modes: truncate, wrap)"
)


def _print_sim(rep) -> None:
    for lv in rep.levels:
        verdict = f"SKIP ({lv.skipped})" if lv.skipped else ("PASS" if lv.passed else "FAIL")
        print(f"  {lv.name:<16} {verdict}  {lv.vectors} vectors, {lv.seconds:.1f} s")


def cmd_run(a) -> int:
    from hwprune import api

    config = a.config
    if config is None and a.start == "train":
        from hwprune.resources import data_dir

        config = data_dir("examples") / DEFAULT_EXAMPLE
    rep = api.run(config, Path(a.output), start=a.start, stop=a.stop)
    if rep.design is not None and rep.sim is not None and rep.train is not None:
        print(api.summary(rep))
    print(f"Build directory: {a.output} (report.md, report.html, plots/, model.onnx, hls/, rtl/)")
    return 0


def _ladder(a):
    from hwprune.auto.sensitivity import parse_ladder

    return None if a.ladder is None else parse_ladder(a.ladder)


def cmd_train(a) -> int:
    from hwprune import api

    if a.fit is not None:
        return _train_fit(a)
    for flag, given in (("--search", a.search), ("--episodes", a.episodes)):
        if given is not None:
            raise HwpruneError(f"{flag} chooses how --fit allocates sparsity; add --fit BOARD")
    init = None if a.init is None else Path(a.init)
    rep = api.train(a.config, Path(a.output), init=init)
    start = "dense QAT" if init is None else f"{init} before fine-tuning:"
    print(
        f"{start} accuracy {rep.dense_accuracy:.2%}, pruned {rep.pruned_accuracy:.2%} "
        f"({rep.seconds:.0f} s); wrote {a.output}/model.pt, model.onnx and train.json"
    )
    for name, sp in rep.sparsity.items():
        print(f"  {name:<10} mask sparsity {sp:.1%}")
    return 0


def _train_fit(a) -> int:
    from hwprune import api
    from hwprune.auto.budget import parse_budget

    if a.init is not None:
        raise HwpruneError(
            "--init and --fit: a transfer keeps the checkpoint's own sparsity pattern; "
            "run --fit on a config without --init"
        )
    budget = parse_budget(a.fit)  # (a bad --fit fails before any training)
    rep = api.train_fit(
        a.config,
        Path(a.output),
        a.fit,
        a.search or "greedy",
        ladder=_ladder(a),
        epochs=a.epochs,
        episodes=128 if a.episodes is None else a.episodes,
        workers=a.workers,
        scheduler=a.scheduler,
    )
    print(
        f"--fit {a.fit} by {rep.search}: dense QAT accuracy {rep.dense_accuracy:.2%}, pruned "
        f"{rep.pruned_accuracy:.2%}; wrote {a.output}/model.pt, model.onnx, train.json, fit.md"
    )
    for r in rep.limits:
        print(f"  {r:<10} {rep.estimate[r]:>10,.0f}  budget {budget.describe(r)}")
    for name, sp in rep.allocation.items():
        print(f"  {name:<10} sparsity {sp:.1%}")
    return 0


def cmd_sensitivity(a) -> int:
    from hwprune import api

    sens = api.sensitivity(
        a.config, Path(a.output), a.board, _ladder(a), a.epochs, a.workers, a.scheduler
    )
    print(
        f"{len(sens.points) + 1} trials ({len(sens.layers)} layers x {len(sens.ladder)} "
        f"sparsities, and none pruned) in {sens.seconds:.0f} s; wrote {a.output}/"
        "sensitivity.json, sensitivity.md and sensitivity.png"
    )
    for ly in sens.layers:
        curve = ", ".join(f"{s:.2f}: {acc:.1%}" for s, acc in sens.accuracy_curves()[ly.name])
        print(f"  {ly.name:<10} {curve}")
    return 0


def _cluster_args(s, shared: str = "the output's parent") -> None:
    s.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes of the local Dask cluster, one thread each (default: one per core)",
    )
    s.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on an existing Dask cluster (e.g. tcp://HOST:8786) instead of a local one; "
        f"its workers need hwprune installed and {shared} on a shared file system",
    )


def _trial_args(s) -> None:
    s.add_argument(
        "--ladder",
        metavar="S1,S2,...",
        help="the sparsities each layer is tried at (default 0.25,0.5,0.7,0.8,0.9,0.95)",
    )
    s.add_argument(
        "--epochs",
        type=int,
        metavar="N",
        help="fine-tuning epochs of each trial after pruning (default 3)",
    )


def cmd_compile(a) -> int:
    from hwprune import api

    d = api.compile(
        Path(a.model),
        Path(a.output),
        a.board,
        a.kernel,
        a.reuse_factor,
        a.input_type,
        a.pipeline,
        a.conv,
        a.stream_layers,
    )
    print(f"compiled {a.model} for {a.board}: {len(d.graph.dense_ops())} weight layers")
    print(d.layer_table())
    if d.manifest.get("input_type"):
        print(f"  input: {d.manifest['input']}")
    print(f"wrote {a.output}/ir.json, hls/ (tb_data/ with golden vectors), rtl/, estimate.json")
    return 0


def cmd_sim(a) -> int:
    from hwprune import api

    try:
        levels = a.levels.split(",") if a.levels else None
        rep = api.sim(Path(a.dir), a.simulator, a.vectors, a.seed, levels=levels)
    except MismatchError as e:
        if e.report is not None:
            _print_sim(e.report)
        raise
    _print_sim(rep)
    print("PASS: every level is bit-exact with the golden interpreter")
    return 0


def cmd_estimate(a) -> int:
    from hwprune import api
    from hwprune.estimate import format_table

    progress = None
    if a.synth and not a.json and sys.stderr.isatty():

        def progress(step: str) -> None:
            print(f"\r  synth: {step:<24}", end="", file=sys.stderr, flush=True)

    if a.place and not a.asic:
        raise HwpruneError("--place is for ASIC targets: add --target asic:NAME --synth yosys")
    if a.asic:
        if a.board:
            raise HwpruneError(
                "--target asic:NAME and --board are estimated separately; run one, then the other"
            )
        from hwprune.estimate.asic_report import format_asic_table

        g, ests = api.estimate_asic(
            Path(a.target),
            ",".join(a.asic),
            a.synth,
            progress=progress,
            input_type=a.input_type,
            place=a.place,
            utilisation=a.utilisation,
            max_cells=a.max_cells,
        )
        if progress is not None:
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
        if a.json:
            print(json.dumps(ests, indent=1, sort_keys=True))
        else:
            print(format_asic_table(ests))
        return 0
    board = ",".join(a.board) if a.board else "all"
    g, manifest, ests = api.estimate_design(
        Path(a.target), board, synth=a.synth, progress=progress, input_type=a.input_type
    )
    if progress is not None:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    if a.json:
        print(json.dumps(ests, indent=1, sort_keys=True))
        return 0
    print(format_table(ests))
    if len(ests) == 1 and board != "all":  # one board: its per-layer table too
        from hwprune.report import layer_rows, layer_table

        (est,) = ests.values()
        print()
        print(layer_table(layer_rows(g, manifest, est)))
    if a.synth:
        from hwprune.estimate.synth import format_synth_table

        print()
        print(format_synth_table({n: e["synth"] for n, e in ests.items() if "synth" in e}))
    return 0


def cmd_boards(a) -> int:
    from hwprune import api

    boards = api.boards()
    # Name and part columns as wide as their longest entry (Versal part names run to 25).
    wn = max(len("name"), *(len(b.name) for b in boards))
    wp = max(len("part"), *(len(b.part) for b in boards))
    print(
        f"{'name':<{wn}} {'part':<{wp}} {'lut':>9} {'ff':>10} {'dsp':>6} {'bram18':>7} "
        f"{'clock_mhz':>9}"
    )
    for b in boards:
        print(
            f"{b.name:<{wn}} {b.part:<{wp}} {b.lut:>9} {b.ff:>10} {b.dsp:>6} {b.bram18:>7} "
            f"{b.clock_mhz:>9g}"
        )
    libs = api.libraries()
    wt = max(len("asic target"), *(len(x.target) for x in libs))
    print()
    print(f"{'asic target':<{wt}} {'node':>6} {'volts':>5} {'clock_mhz':>9}  library")
    for x in libs:
        print(
            f"{x.target:<{wt}} {x.process_nm:>4}nm {x.voltage:>5g} {x.clock_mhz:>9g}  "
            f"{x.description}"
        )
    return 0


def cmd_sweep(a) -> int:
    from hwprune import api
    from hwprune.sweep.spec import describe

    rep = api.sweep(Path(a.sweep), Path(a.output), a.workers, a.scheduler, a.retry_failed)
    ok = len(rep.records) - len(rep.failed)
    print(
        f"{len(rep.records)} points: {ok} ok, {len(rep.failed)} failed "
        f"({rep.ran} run now, {rep.cached} from earlier runs; {rep.seconds:.0f} s)"
    )
    front = rep.fronts()["lut"]
    if front:
        print("Pareto front, accuracy against estimated LUT:")
        for r in front:
            print(
                f"  {100 * r['accuracy']['pruned']:6.2f} %  {r['estimate']['lut']:>9,} LUT  "
                f"{describe(r['inputs'])}"
            )
    for r in rep.failed:
        first = r["error"].split("\n", 1)[0]
        print(f"FAILED {describe(r['inputs'])}: {first}", file=sys.stderr)
    print(f"wrote {a.output}/sweep.json, sweep.md, sweep.png and points/")
    return 0 if rep.ok else 1


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (not the usage block) and exit code 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}; see '{self.prog} --help'", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hwprune", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"hwprune {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("run", help="train, compile, simulate and estimate (the main job)")
    s.add_argument(
        "config",
        nargs="?",
        help="config TOML (default: the bundled digits example; with --from a later step, "
        "the build directory's config.toml)",
    )
    s.add_argument("-o", "--output", default="build/run", help="build directory")
    s.add_argument(
        "--from",
        dest="start",
        default="train",
        choices=STEP_NAMES,
        help="restart from this step, reusing what earlier steps left in the build directory",
    )
    s.add_argument(
        "--to", dest="stop", default="report", choices=STEP_NAMES, help="stop after this step"
    )
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("train", help="QAT + pruning; writes model.pt and model.onnx")
    s.add_argument("config")
    s.add_argument("-o", "--output", required=True)
    s.add_argument(
        "--init",
        metavar="MODEL.pt",
        help="transfer: start from the model.pt of an earlier 'hwprune train' (same model "
        "layers and number of classes) instead of dense QAT, then prune and fine-tune on "
        "this config's data; prune.init_masks says whether its zeros stay zero",
    )
    s.add_argument(
        "--fit",
        metavar="BOARD[:lut=F,ff=F,dsp=F,bram18=F,latency_ns=NS]",
        help="allocate each layer's sparsity so the estimated design fits this budget (each "
        "resource a fraction of the board's, 1 when not given) with the best validation "
        "accuracy, then prune with the configured criterion and schedule",
    )
    s.add_argument(
        "--search",
        choices=("greedy", "rl", "uniform"),
        help="how --fit allocates: greedy (from the sensitivity curves, the default), rl (an "
        "AMC-style actor-critic agent, He et al. 2018) or uniform (one sparsity everywhere)",
    )
    s.add_argument("--episodes", type=int, metavar="N", help="--search rl: episodes (default 128)")
    _trial_args(s)
    _cluster_args(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser(
        "sensitivity",
        help="per-layer sensitivity: accuracy and estimated LUTs of each layer pruned alone",
        description="Train the dense network once, then prune each prunable layer alone at "
        "each sparsity of the ladder (the configured criterion), fine-tune briefly, and "
        "record validation accuracy and the estimate on the board. The trials run on Dask. "
        "Writes sensitivity.json, sensitivity.md and sensitivity.png (one curve per layer).",
    )
    s.add_argument("config")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--board", help="board of the estimates (default: the config's)")
    _trial_args(s)
    _cluster_args(s)
    s.set_defaults(func=cmd_sensitivity)

    s = sub.add_parser("compile", help="QONNX -> ir.json, hls/, rtl/, estimate.json")
    s.add_argument("model", metavar="MODEL.onnx")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--board", default="pynq-z2")
    s.add_argument(
        "--kernel", default="mac", help="how Dense layers become hardware: mac (the default)"
    )
    s.add_argument("--reuse-factor", type=int, default=1, dest="reuse_factor")
    s.add_argument(
        "--pipeline",
        default="4",
        metavar="layer|N",
        help="register banks: 'layer' (one per layer) or after every N adder levels (default 4)",
    )
    s.add_argument("--input-type", dest="input_type", metavar="TYPE", help=INPUT_TYPE_HELP)
    s.add_argument(
        "--conv",
        default="unroll",
        metavar="unroll|stream|auto",
        help="convolutions: unroll (an adder tree per output pixel, the default), stream "
        "(one kernel per layer, a pixel per cycle through line buffers) or auto (unrolled if "
        "it fits the board by the estimate, else the fewest streamed layers that fit)",
    )
    s.add_argument(
        "--stream-layers",
        type=int,
        dest="stream_layers",
        metavar="N",
        help="with --conv stream: stream the first N convolutions and poolings only",
    )
    s.set_defaults(func=cmd_compile)

    s = sub.add_parser("sim", help="C-sim and RTL sim vs the golden interpreter")
    s.add_argument("dir", metavar="DIR")
    s.add_argument("--simulator", default="icarus")
    s.add_argument("--vectors", type=int, default=1000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--levels",
        metavar="L,L",
        help="the levels to run, comma-separated (default all): qonnx, csim, rtl, rtl-axis",
    )
    s.set_defaults(func=cmd_sim)

    s = sub.add_parser("estimate", help="resources and latency per board")
    s.add_argument("target", metavar="DIR|MODEL.onnx")
    s.add_argument(
        "--board",
        action="append",
        metavar="NAME[,NAME]",
        help="the boards to estimate for (repeat or separate by commas; default: all)",
    )
    s.add_argument(
        "--target",
        dest="asic",
        action="append",
        metavar="asic:NAME",
        help="estimate for a standard-cell library instead of boards (area, Fmax; with --synth "
        "yosys: mapped with yosys, timed and powered with OpenSTA); 'hwprune boards' lists them",
    )
    s.add_argument(
        "--place",
        action="store_true",
        help="with --target and --synth yosys: place and route the mapped netlist with qflow "
        "(graywolf, qrouter): core area, routed or not, post-route Fmax",
    )
    s.add_argument(
        "--utilisation",
        type=float,
        default=0.5,
        metavar="F",
        help="--place: the core's cell utilisation, in (0, 1] (default 0.5)",
    )
    s.add_argument(
        "--max-cells",
        type=int,
        dest="max_cells",
        metavar="N",
        help="--place: refuse designs of more cells than this (default: what qflow places and "
        "routes in about 10 minutes here)",
    )
    s.add_argument("--json", action="store_true")
    s.add_argument(
        "--synth",
        choices=["yosys"],
        help="also synthesize DIR/rtl with yosys and compare (about 1-3 min per device family); "
        "on iCE40 and ECP5 boards nextpnr also places and routes it: Fmax and fit",
    )
    s.add_argument("--input-type", dest="input_type", metavar="TYPE", help=INPUT_TYPE_HELP)
    s.set_defaults(func=cmd_estimate)

    s = sub.add_parser(
        "sweep",
        help="a design-space sweep on Dask: accuracy against hardware, Pareto fronts",
        description="Run every point of a sweep file (a base config and axes of config keys) "
        "through train, export, compile and estimate, as Dask tasks. Run the same command "
        "again to resume: points already computed are not run again. Exit 0 when every "
        "point is ok, 1 when some point failed (the results are still written), 2 on bad "
        "input.",
    )
    s.add_argument("sweep", metavar="SWEEP.toml")
    s.add_argument(
        "-o",
        "--output",
        default="build/sweep",
        help="sweep directory: sweep.json, sweep.md, sweep.png and points/<key>/ (one build "
        "directory per point)",
    )
    _cluster_args(s, "the sweep directory")
    s.add_argument(
        "--retry-failed",
        action="store_true",
        dest="retry_failed",
        help="run the points that failed in an earlier run again (by default a failed point "
        "keeps its recorded error and is not run again)",
    )
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("boards", help="list the board catalogue and the ASIC targets")
    s.set_defaults(func=cmd_boards)
    return p


def _quiet_libraries() -> None:
    """Brevitas, torch.onnx and hls4ml print warnings that are not the user's business."""
    warnings.filterwarnings("ignore")
    logging.getLogger("torch").setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _Signalled(BaseException):
    """SIGTERM or SIGHUP, raised where the program is so staging folders are removed on the
    way out (like Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_IMPORTING = "<frozen importlib._bootstrap"
_pending: list[int] = []  # a signal held back until the import under way has finished


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith(_IMPORTING):
            return True
        frame = frame.f_back
    return False


def _on_signal(signum, frame) -> None:
    """Raise _Signalled where the program is, unless it is importing a module: an exception
    raised into a module's initialisation leaves it half made ("ImportError: initialization
    failed", or a crash when a build thread uses it; measured with SIGTERM at 0-3 s into
    `hwprune sim`). Then the signal is raised again 50 ms later, until the import is done."""
    import signal

    if _importing(frame):
        if not _pending:
            _pending.append(signum)
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        return
    _pending.clear()
    raise _Signalled(signum)


def _on_alarm(_signum, frame) -> None:
    if _pending:
        _on_signal(_pending[0], frame)


def _signalled(e: BaseException) -> _Signalled | None:
    """The signal an exception came from (raised into a library that wrapped it), if any."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, _Signalled):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def _stopped(signum: int) -> int:
    import signal

    name = signal.Signals(signum).name
    print(f"hwprune: stopped by {name}; partial outputs removed", file=sys.stderr)
    return 128 + signum


def _last_resort(e: BaseException) -> int:
    """An unexpected exception: save the traceback to a file, one line, exit 3."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="hwprune-traceback-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("".join(traceback.format_exception(e)))
    first = str(e).splitlines()[0][:120] if str(e) else ""
    print(
        f"hwprune: internal error ({type(e).__name__}: {first}); this is a bug: please "
        f"report it with the traceback saved in {path}",
        file=sys.stderr,
    )
    return 3


def _pipe_closed() -> int:
    """The reader of stdout went away (``hwprune estimate ... | head``): stop quietly with
    the status a process ended by SIGPIPE has (128 + 13), as ``yes | head`` does. stdout
    then points at /dev/null so the interpreter's last flush does not fail again (Python's
    signal documentation, "Note on SIGPIPE")."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    import signal

    args = build_parser().parse_args(argv)
    _quiet_libraries()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    try:
        rc = args.func(args)
        sys.stdout.flush()  # (a closed pipe shows here, not at interpreter exit)
        return rc
    except BrokenPipeError:
        return _pipe_closed()
    except MismatchError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except HwpruneError as e:
        print(f"hwprune: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwprune: interrupted", file=sys.stderr)
        return 130
    except _Signalled as e:
        return _stopped(e.signum)
    except Exception as e:  # noqa: BLE001 - the last resort: never a bare traceback
        sig = _signalled(e)
        return _last_resort(e) if sig is None else _stopped(sig.signum)


if __name__ == "__main__":
    sys.exit(main())
