"""Per-layer sensitivity: each prunable layer pruned alone at a ladder of sparsities (the
configured criterion, a short fine-tune, every other layer dense), scored on the validation
set and sized by the estimator on the board. ``hwprune sensitivity CONFIG -o DIR`` writes
sensitivity.json, sensitivity.md and sensitivity.png (one curve per layer: accuracy against
sparsity, and against the design's estimated LUTs); ``train --fit`` builds its resource model
and its greedy search from the same measurements (``Sensitivity.problem``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hwprune.auto.problem import LayerInfo, Problem
from hwprune.auto.trials import Trial, run_trials
from hwprune.config import Config

DEFAULT_LADDER = (0.25, 0.5, 0.7, 0.8, 0.9, 0.95)
TRIAL_EPOCHS = 3  # fine-tuning epochs of each trial
SENSITIVITY_JSON = "sensitivity.json"


@dataclass(frozen=True)
class Sensitivity:
    """``dense``: the trial with no layer pruned (same fine-tune); ``points``: one trial per
    layer and ladder level, each with "layer" and "level" added."""

    board: str
    ladder: tuple[float, ...]
    epochs: int
    layers: tuple[LayerInfo, ...]
    dense: dict
    points: tuple[dict, ...]
    seconds: float

    def curve(self, name: str) -> list[dict]:
        """Layer ``name``'s trials by sparsity, the dense trial first (at 0)."""
        pts = sorted((p for p in self.points if p["layer"] == name), key=lambda p: p["level"])
        return [{**self.dense, "layer": name, "level": 0.0}, *pts]

    def problem(self, budget: dict[str, float], predictor=None) -> Problem:
        """The allocation problem under ``budget``: its resource model is ``predictor`` when
        given, else this analysis's per-layer curves added up."""
        base = self.dense["figures"]
        curves = {
            ly.name: tuple(
                (p["level"], {r: p["figures"][r] - base[r] for r in base})
                for p in self.curve(ly.name)
            )
            for ly in self.layers
        }
        top = max(self.ladder)
        return Problem(self.layers, dict(base), curves, dict(budget), top, predictor)

    def accuracy_curves(self) -> dict[str, list[tuple[float, float]]]:
        """Per layer: (sparsity, validation accuracy) from 0 up the ladder."""
        return {
            ly.name: [(p["level"], p["val_accuracy"]) for p in self.curve(ly.name)]
            for ly in self.layers
        }

    def to_json(self) -> str:
        doc = asdict(self)
        return json.dumps(doc, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Sensitivity:
        d = json.loads(text)
        return cls(
            d["board"],
            tuple(d["ladder"]),
            d["epochs"],
            tuple(LayerInfo(**ly) for ly in d["layers"]),
            d["dense"],
            tuple(d["points"]),
            d["seconds"],
        )


def search_layers(cfg: Config) -> tuple[LayerInfo, ...]:
    """The layers a search allocates: the pruned ones (prune.layers, or every linear/conv),
    without 1-bit (bipolar) ones, which cannot hold a zero."""
    import numpy as np

    from hwprune.train.data import load_dataset
    from hwprune.train.model import build_model, prunable

    split = load_dataset(cfg.data)
    model = build_model(cfg.model, split.shape, split.n_classes)
    out = []
    for name, m in prunable(model).items():
        if cfg.prune.layers and name not in cfg.prune.layers:
            continue
        wq = getattr(m, "weight_quant", None)
        bits = int(wq.bit_width()) if wq is not None and wq.is_quant_enabled else 32
        if bits == 1:
            continue
        w = m.weight
        units = int(w.shape[0])
        out.append(LayerInfo(name, int(np.prod(w.shape)) // units, units, bits))
    return tuple(out)


def run_sensitivity(
    cfg: Config,
    dense_file: Path,
    board: str,
    layers: tuple[LayerInfo, ...],
    ladder: tuple[float, ...] = DEFAULT_LADDER,
    epochs: int = TRIAL_EPOCHS,
    client=None,
    progress: bool = True,
) -> Sensitivity:
    """The dense trial and every (layer, level) trial, with estimates on ``board``."""
    t0 = time.perf_counter()
    base = tuple((ly.name, 0.0) for ly in layers)
    allocs = [base] + [
        tuple((n, s if n == ly.name else 0.0) for n, _ in base) for ly in layers for s in ladder
    ]
    trials = [Trial(cfg, str(dense_file), a, epochs, board) for a in allocs]
    res = run_trials(trials, client, progress, "sensitivity")
    keys = [(ly.name, s) for ly in layers for s in ladder]
    points = tuple({**r, "layer": n, "level": s} for (n, s), r in zip(keys, res[1:]))
    return Sensitivity(
        board, tuple(ladder), epochs, layers, res[0], points, time.perf_counter() - t0
    )


def markdown(sens: Sensitivity, title: str) -> str:
    """A table per layer: sparsity, validation and test accuracy, estimated LUT/FF/DSP."""
    lines = [
        f"# Sensitivity: {title}",
        "",
        f"Each layer pruned alone (every other layer dense) with the configured criterion, "
        f"then fine-tuned {sens.epochs} epochs; estimates on {sens.board}. "
        f"{len(sens.points) + 1} trials in {sens.seconds:.0f} s.",
        "",
        "| layer | sparsity | val accuracy | test accuracy | LUT | FF | DSP | latency (ns) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ly in sens.layers:
        for p in sens.curve(ly.name):
            f = p["figures"]
            lines.append(
                f"| {ly.name} | {p['level']:.2f} | {p['val_accuracy']:.2%} | "
                f"{p['test_accuracy']:.2%} | {f['lut']:,.0f} | {f['ff']:,.0f} | "
                f"{f['dsp']:,.0f} | {f['latency_ns']:,.0f} |"
            )
    return "\n".join(lines) + "\n"


def plot(sens: Sensitivity, title: str) -> bytes:
    """Two panels, one curve per layer: validation accuracy against the layer's sparsity,
    and against the whole design's estimated LUTs."""
    from matplotlib.figure import Figure

    from hwprune.report.plots import _png

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_s, ax_l = fig.subplots(1, 2)
    for ly in sens.layers:
        c = sens.curve(ly.name)
        acc = [100 * p["val_accuracy"] for p in c]
        ax_s.plot([p["level"] for p in c], acc, marker="o", label=ly.name)
        ax_l.plot([p["figures"]["lut"] for p in c], acc, marker="o", label=ly.name)
    ax_s.set_xlabel("sparsity of the layer (others dense)")
    ax_l.set_xlabel(f"estimated LUTs of the design on {sens.board}")
    for ax in (ax_s, ax_l):
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{title}: per-layer sensitivity", fontsize="medium")
    return _png(fig)


def write(sens: Sensitivity, out_dir: Path, title: str) -> None:
    """sensitivity.json, .md and .png into ``out_dir`` (inside a staging folder)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SENSITIVITY_JSON).write_text(sens.to_json())
    (out_dir / "sensitivity.md").write_text(markdown(sens, title))
    (out_dir / "sensitivity.png").write_bytes(plot(sens, title))


def parse_ladder(text: str) -> tuple[float, ...]:
    """``--ladder 0.5,0.8,0.95`` -> ascending sparsities in (0, 1); one-line error else."""
    from hwprune.errors import HwpruneError

    try:
        vals = tuple(sorted({float(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        vals = ()
    if not vals or not all(0 < v < 1 for v in vals):
        raise HwpruneError(
            f"--ladder {text}: give sparsities in (0, 1) separated by commas, e.g. 0.5,0.8,0.95"
        )
    return vals


def analyse(
    cfg: Config,
    out_dir: Path,
    board: str | None = None,
    ladder: tuple[float, ...] = DEFAULT_LADDER,
    epochs: int = TRIAL_EPOCHS,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    title: str = "",
) -> Sensitivity:
    """``hwprune sensitivity``: dense QAT once, then every trial on the Dask cluster; writes
    sensitivity.json, .md and .png into the build directory ``out_dir``."""
    import tempfile

    from hwprune.auto.trials import save_dense
    from hwprune.boards import get_board
    from hwprune.builddir import check_writable, staged
    from hwprune.errors import HwpruneError
    from hwprune.sweep.runner import _client

    board = get_board(board or cfg.compile.board).name
    if epochs < 0:
        raise HwpruneError(f"--epochs {epochs}: use 0 (no fine-tuning) or more")
    out_dir = Path(out_dir)
    check_writable(out_dir)
    layers = search_layers(cfg)
    if not layers:
        raise HwpruneError("the model has no layer that can be pruned (2 or more weight bits)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.dense-", dir=out_dir.parent) as d:
        dense = save_dense(cfg, Path(d) / "dense.pt", progress)
        with _client(workers, scheduler, None) as client:
            sens = run_sensitivity(cfg, dense, board, layers, ladder, epochs, client, progress)
    with staged(out_dir) as stage:
        write(sens, stage, title or board)
    return sens
