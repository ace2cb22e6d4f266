"""``hwprune train CONFIG --fit BOARD[:lut=...] --search greedy|rl|uniform``: per-layer
sparsity allocated so the estimated design fits a board budget with the best validation
accuracy, then pruned with the configured criterion, schedule and method.

Steps (every trial on the Dask cluster of ``hwprune.sweep.runner``, one process per core):

1. dense QAT once (``train_dense``), saved for the trials;
2. can the budget be met at all? the network at the top of the ladder in every layer, sized
   by the estimator (``hwprune.auto.predict``); if it is still over, one line naming each
   resource and by how much, exit 2;
3. the per-layer sensitivity analysis (``hwprune.auto.sensitivity``): the resource model and
   the accuracy curves;
4. the search (``hwprune.auto.search``) under the budget, every allocation it weighs sized
   by the estimator on the masked dense export (``Predictor``);
5. the final run from the same dense network with the allocation as prune.layer_sparsity,
   exported and sized by the estimator itself. Fine-tuning moves the surviving weights'
   values and the estimate with them, a few per cent either way: if the design is over the
   budget, or more than SLACK under it, the limits handed to the search are scaled by
   budget / estimate and steps 4-5 run again (at most MAX_ROUNDS rounds); of the designs that
   fit, the one closest to the budget is kept.

The build directory gets what ``hwprune train`` writes (config.toml with the allocation,
model.pt, train.json, model.onnx) and fit.json, fit.md, sensitivity.json/.md/.png.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hwprune.auto.budget import Budget, parse_budget
from hwprune.auto.predict import Predictor
from hwprune.auto.search import SEARCHES, SearchInput, project
from hwprune.auto.sensitivity import (
    DEFAULT_LADDER,
    TRIAL_EPOCHS,
    run_sensitivity,
    search_layers,
)
from hwprune.auto.sensitivity import write as write_sensitivity
from hwprune.auto.trials import (
    Trial,
    design_entry,
    figures,
    final_config,
    load_dense,
    run_trials,
    save_dense,
)
from hwprune.config import Config
from hwprune.errors import HwpruneError

MAX_ROUNDS = 3
# A final design within this fraction under the budget ends the rounds; further under, the
# next round asks for more (the prediction was pessimistic), further over, for less.
SLACK = 0.03
# An RL episode over the limits by the predictor loses this many times its largest relative
# overflow from its reward (5 % over costs 10 points of accuracy).
OVER_PENALTY = 2.0
FIT_JSON = "fit.json"


@dataclass
class FitReport:
    """What ``train --fit`` found: the allocation, the final design's accuracies and
    estimate against the budget, and every round of search and check."""

    spec: str
    search: str
    allocation: dict[str, float]
    dense_accuracy: float
    pruned_accuracy: float
    val_accuracy: float
    estimate: dict[str, float]  # the final design's figures (lut, ff, dsp, bram18, latency_ns)
    limits: dict[str, float]
    fits: bool
    seconds: dict[str, float]
    sparsity: dict[str, float] = field(default_factory=dict)  # achieved mask sparsity
    rounds: list[dict] = field(default_factory=list)


def _infeasible(budget: Budget, top: float, names, fig: dict) -> HwpruneError:
    return HwpruneError(
        f"--fit {budget.spec}: cannot be met: with {top:.0%} of the weights pruned in every "
        f"prunable layer ({', '.join(names)}) the design estimates "
        f"{budget.overflow_text(fig)}; raise the fraction, choose a larger board or make the "
        "model smaller"
    )


@dataclass
class FitResult:
    """One search's outcome in a session: the report, the trained result (``TrainResult``),
    the final config (with the allocation) and the exported model's bytes."""

    report: FitReport
    train: object
    config: Config
    onnx: bytes


class FitSession:
    """Steps 1-3 of the module (dense network, budget check, sensitivity) once; ``run`` does
    steps 4-5 for a search. A context manager: it holds a Dask client and a work folder."""

    def __init__(
        self,
        cfg: Config,
        spec: str,
        *,
        ladder: tuple[float, ...] = DEFAULT_LADDER,
        epochs: int = TRIAL_EPOCHS,
        workers: int | None = None,
        scheduler: str | None = None,
        progress: bool = True,
        dashboard_address: str | None = None,
        work_parent: Path | None = None,
    ):
        self.cfg, self.spec, self.progress, self.epochs = cfg, spec, progress, epochs
        self.budget = parse_budget(spec)
        if not ladder or not all(0 < s < 1 for s in ladder):
            raise HwpruneError(f"--ladder {ladder}: give sparsities in (0, 1), e.g. 0.5,0.8,0.95")
        self.ladder = tuple(sorted(set(ladder)))
        self.layers = search_layers(cfg)
        if not self.layers:
            raise HwpruneError("--fit: the model has no layer that can be pruned (2+ weight bits)")
        self._cluster = (workers, scheduler, dashboard_address)
        self._work_parent = work_parent
        self.seconds: dict[str, float] = {}

    def __enter__(self) -> FitSession:
        import contextlib

        from hwprune.sweep.runner import _client

        self._stack = contextlib.ExitStack()
        try:
            tmp = tempfile.TemporaryDirectory(prefix=".hwprune-fit-", dir=self._work_parent)
            self.work = Path(self._stack.enter_context(tmp))
            self._prepare()
            self.client = self._stack.enter_context(_client(*self._cluster))
            t = time.perf_counter()
            self.sens = run_sensitivity(
                self.cfg, self.dense_file, self.budget.board, self.layers, self.ladder,
                self.epochs, self.client, self.progress,
            )  # fmt: skip
            self.seconds["sensitivity"] = time.perf_counter() - t
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _prepare(self) -> None:
        t = time.perf_counter()
        self.dense_file = save_dense(self.cfg, self.work / "dense.pt", self.progress)
        self.dense = load_dense(self.dense_file)
        self.seconds["dense"] = time.perf_counter() - t
        t = time.perf_counter()
        names = tuple(ly.name for ly in self.layers)
        self.predictor = Predictor(self.cfg, self.dense_file, self.budget.board, names)
        top = self.predictor(dict.fromkeys(names, self.ladder[-1]))
        if self.budget.overflow(top):
            raise _infeasible(self.budget, self.ladder[-1], names, top)
        self.seconds["budget_check"] = time.perf_counter() - t

    def _evaluate(self, limits: dict[str, float]):
        def evaluate(allocs):
            """Rewards: trial validation accuracy, less OVER_PENALTY times the largest
            fraction by which the predictor puts the allocation over ``limits``."""
            trials = [
                Trial(self.cfg, str(self.dense_file), tuple(a.items()), self.epochs) for a in allocs
            ]
            accs = [r["val_accuracy"] for r in run_trials(trials, self.client, False)]
            out = []
            for a, acc in zip(allocs, accs):
                pred = self.predictor(a)
                over = [(pred[r] - lim) / lim for r, lim in limits.items() if lim]
                out.append(acc - OVER_PENALTY * max(0.0, *over))
            return out

        return evaluate

    def run(
        self, search: str = "greedy", episodes: int = 128, batch: int = 8, seed: int | None = None
    ) -> FitResult:
        """Search under the budget, train the final design, check it by the estimator."""
        import torch

        from hwprune.export.qonnx import export_model
        from hwprune.train.loop import accuracy, train

        if search not in SEARCHES:
            raise HwpruneError(f"--search {search}: choose one of {', '.join(SEARCHES)}")
        budget, predictor = self.budget, self.predictor
        seconds = {**self.seconds, "search": 0.0, "final": 0.0}
        limits = dict(budget.limits)
        rounds: list[dict] = []
        kept = None
        for k in range(MAX_ROUNDS):
            t = time.perf_counter()
            problem = self.sens.problem(limits, predictor)
            inp = SearchInput(
                problem,
                self.sens.accuracy_curves(),
                self._evaluate(limits),
                self.cfg.train.seed if seed is None else seed,
                episodes,
                batch,
                self.progress,
            )
            if search == "rl" and rounds:
                # A new agent would cost as much as the first: the found allocation is
                # projected onto the corrected budget instead.
                alloc = project(problem, rounds[-1]["allocation"])
                info = {"projected_from_round": k}
            else:
                alloc, info = SEARCHES[search](inp)
            seconds["search"] += time.perf_counter() - t
            t = time.perf_counter()
            final_cfg = final_config(self.cfg, tuple(alloc.items()))
            res = train(final_cfg, progress=self.progress, dense=self.dense)
            onnx = self.work / "model.onnx"
            export_model(res.model, int(torch.tensor(res.split.shape).prod()), onnx)
            fig = figures(design_entry(onnx, final_cfg, budget.board))
            over = budget.overflow(fig)
            pred = problem.predict(alloc)
            rounds.append(
                {
                    "round": k + 1,
                    "limits": limits,
                    "allocation": alloc,
                    "predicted": pred,
                    "estimate": fig,
                    "fits": not over,
                    "info": info,
                    "estimates_made": predictor.calls,
                }
            )
            seconds["final"] += time.perf_counter() - t
            # The resources the search spent up to their limit, and the final design's
            # figure against the prediction: fine-tuning moves the weights' values, and the
            # estimate with them (either way, by a few per cent).
            spent = [r for r, lim in limits.items() if pred[r] >= (1 - SLACK) * lim]
            use = max(fig[r] / lim for r, lim in budget.limits.items() if lim)
            if not over and (kept is None or use > kept[3]):
                # the fitting design closest to the budget so far
                kept = FitResult(None, res, final_cfg, onnx.read_bytes()), alloc, fig, use
            if not over and all(fig[r] >= (1 - SLACK) * budget.limits[r] for r in spent):
                break  # within SLACK of the budget: done
            # Next round: ask the search for what makes the final figure meet the budget.
            limits = {
                r: lim * budget.limits[r] / fig[r] if r in spent and fig[r] > 0 else lim
                for r, lim in limits.items()
            }
            limits = {
                r: min(lim, budget.limits[r] - over[r]) if r in over else lim
                for r, lim in limits.items()
            }
        if kept is None:
            raise HwpruneError(
                f"--fit {self.spec}: after {MAX_ROUNDS} rounds of search the design still "
                f"estimates {budget.overflow_text(fig)}; use a smaller fraction or a finer "
                "--ladder"
            )
        # The design that fits closest to the budget (a round that came out over, or further
        # under, is recorded only).
        got, alloc, fig, _ = kept
        res, final_cfg = got.train, got.config
        report = FitReport(
            self.spec,
            search,
            {n: round(s, 4) for n, s in alloc.items()},
            res.dense_accuracy,
            res.pruned_accuracy,
            accuracy(res.model, res.split.x_val, res.split.y_val),
            fig,
            budget.limits,
            True,
            seconds,
            {n: float(v) for n, v in res.sparsity.items()},
            rounds,
        )
        return FitResult(report, res, final_cfg, got.onnx)


def fit_train(
    cfg: Config,
    out_dir: Path,
    spec: str,
    search: str = "greedy",
    *,
    ladder: tuple[float, ...] = DEFAULT_LADDER,
    epochs: int = TRIAL_EPOCHS,
    episodes: int = 128,
    batch: int = 8,
    seed: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    dashboard_address: str | None = None,
) -> FitReport:
    """Allocate, prune, check; see the module. Writes the build directory ``out_dir``."""
    from hwprune.api import write_train_files
    from hwprune.builddir import check_writable, staged

    parse_budget(spec)
    if search not in SEARCHES:
        raise HwpruneError(f"--search {search}: choose one of {', '.join(SEARCHES)}")
    out_dir = Path(out_dir)
    check_writable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # (the work folder beside the output: a --scheduler cluster's workers read the dense
    # network from it, as they read a sweep's directory)
    session = FitSession(
        cfg, spec, ladder=ladder, epochs=epochs, workers=workers, scheduler=scheduler,
        progress=progress, dashboard_address=dashboard_address, work_parent=out_dir.parent,
    )  # fmt: skip
    with session:
        got = session.run(search, episodes, batch, seed)
        rep = got.report
        with staged(out_dir) as stage:
            write_train_files(stage, got.config, got.train, sum(rep.seconds.values()))
            (stage / "model.onnx").write_bytes(got.onnx)
            (stage / FIT_JSON).write_text(json.dumps(asdict(rep), indent=1) + "\n")
            (stage / "fit.md").write_text(markdown(rep, session.budget))
            write_sensitivity(session.sens, stage, str(session.budget.board))
    return rep


def markdown(rep: FitReport, budget: Budget) -> str:
    lines = [
        f"# train --fit {rep.spec} --search {rep.search}",
        "",
        f"Test accuracy {rep.pruned_accuracy:.2%} (dense QAT {rep.dense_accuracy:.2%}), "
        f"validation {rep.val_accuracy:.2%}.",
        "",
        "| resource | estimate | budget | fits |",
        "|---|---:|---:|:---:|",
    ]
    for r, lim in rep.limits.items():
        v = rep.estimate[r]
        lines.append(f"| {r} | {v:,.0f} | {budget.describe(r)} | {'yes' if v <= lim else 'NO'} |")
    lines += ["", "| layer | allocated sparsity | mask sparsity |", "|---|---:|---:|"]
    for n, s in rep.allocation.items():
        lines.append(f"| {n} | {s:.3f} | {rep.sparsity.get(n, 0.0):.3f} |")
    lines += ["", "Seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in rep.seconds.items()), ""]
    return "\n".join(lines)
