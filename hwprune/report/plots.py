"""PNG plots of a build directory: training curves, nonzeros per layer, resources per layer,
utilisation per board.

matplotlib is imported inside the functions and used through ``Figure`` and the Agg canvas
only (no pyplot), so plotting leaves no global state behind and needs no display. Each
figure is rendered in memory, then all are written together (``staged``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hwprune import __version__
from hwprune.builddir import staged
from hwprune.errors import HwpruneError
from hwprune.report.tables import choose_board, read_build

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOTS_DIR = "plots"
# Resource bars of the utilisation plot: key in estimate.json, label.
UTIL_RESOURCES = (("lut", "LUT"), ("ff", "FF"), ("dsp", "DSP"), ("bram18", "BRAM18"))
# Log axis floor for utilisation: a bar below it (and 0 %) is drawn at the floor's height 0.
UTIL_FLOOR_PCT = 0.01


def _figure(width: float, height: float, rows: int = 1):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise HwpruneError(
            "plots need matplotlib, which is not installed; pip install matplotlib"
        ) from None
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, axes


def _png(fig) -> bytes:
    """The figure as PNG bytes; the only metadata is the generator (no timestamp)."""
    import matplotlib

    buf = io.BytesIO()
    soft = f"hwprune {__version__} (matplotlib {matplotlib.__version__})"
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": soft})
    return buf.getvalue()


# --- (a) training ---------------------------------------------------------------------------


def _history_x(history: list[dict]) -> tuple[list[float], dict[str, float]]:
    """A global x (training step across phases) for every history entry, and where each
    phase starts. Each phase counts its steps from 0 (loop.py's ``_fit``), so a phase
    starts where the previous one ended; an entry without "step" takes its index instead."""
    xs: list[float] = []
    starts: dict[str, float] = {}
    offset, current, last = 0.0, None, 0.0
    for k, h in enumerate(history):
        phase = str(h.get("phase", ""))
        if phase != current:
            offset, current = last, phase
        x = offset + float(h.get("step", k))
        xs.append(x)
        starts.setdefault(phase, x)
        last = max(last, x)
    return xs, starts


def plot_training(train: dict) -> Figure | None:
    """Validation accuracy (top) and sparsity (bottom) over the training steps of train.json,
    one colour per phase; mask updates, guard checks and rollbacks marked. None when the
    history is empty."""
    history = [h for h in train.get("history", []) if isinstance(h, dict)]
    if not history:
        return None
    xs, starts = _history_x(history)
    fig, (acc_ax, sp_ax) = _figure(9, 6, rows=2)
    colours = {name: f"C{i % 10}" for i, name in enumerate(starts)}
    for name, start in starts.items():
        pts = [
            (x, 100 * h["val_accuracy"])
            for x, h in zip(xs, history)
            if h.get("phase") == name and h.get("val_accuracy") is not None
        ]
        if pts:
            acc_ax.plot(*zip(*pts), color=colours[name], marker=".", ms=3, lw=1.2, label=name)
        for ax in (acc_ax, sp_ax):
            ax.axvline(start, color="0.8", lw=0.8, zorder=0)
    masks = [(x, h) for x, h in zip(xs, history) if h.get("event") == "mask"]
    guards = [(x, h) for x, h in zip(xs, history) if h.get("event") == "guard"]
    if masks:
        acc_ax.scatter(
            [x for x, _ in masks],
            [100 * h["val_accuracy"] for _, h in masks],
            marker="v",
            color="k",
            zorder=3,
            label="right after a mask update",
        )
    for passed, style, label in ((True, "o", "guard passed"), (False, "X", "guard failed")):
        pts = [(x, h) for x, h in guards if bool(h.get("passed")) is passed]
        if pts:
            acc_ax.scatter(
                [x for x, _ in pts],
                [100 * h["val_accuracy"] for _, h in pts],
                marker=style,
                color="tab:green" if passed else "tab:red",
                zorder=4,
                label=label + ("" if passed else " (rolled back)"),
            )
    acc_ax.set_ylabel("validation accuracy (%)")
    acc_ax.legend(loc="lower right", fontsize="small")
    acc_ax.grid(alpha=0.3)

    target = [(x, 100 * h["target"]) for x, h in zip(xs, history) if h.get("target") is not None]
    if target:
        sp_ax.step(*zip(*target), where="post", color="0.4", ls="--", label="target (schedule)")
    achieved = [(x, 100 * h["sparsity"]) for x, h in masks if h.get("sparsity") is not None]
    if achieved:
        sp_ax.plot(*zip(*achieved), "o", color="tab:purple", label="achieved at a mask update")
    final = train.get("sparsity") or {}
    for v in final.values():
        sp_ax.axhline(100 * v, color="tab:purple", lw=0.6, alpha=0.5)
    if final:
        shown = ", ".join(f"{k} {100 * v:.1f} %" for k, v in final.items())
        sp_ax.set_title(f"final mask sparsity: {shown}", fontsize="small", loc="left")
    sp_ax.set_ylabel("weight sparsity (%)")
    sp_ax.set_xlabel("training step (phases one after another)")
    sp_ax.set_ylim(-2, 102)
    sp_ax.grid(alpha=0.3)
    if target or achieved:
        sp_ax.legend(loc="lower right", fontsize="small")
    how = ", ".join(
        f"{k} {train[k]}" for k in ("method", "schedule", "criterion", "teacher") if k in train
    )
    title = ["Training: validation accuracy and sparsity"]
    if "dense_accuracy" in train and "pruned_accuracy" in train:
        title.append(
            f"test accuracy: dense {100 * train['dense_accuracy']:.2f} %, "
            f"pruned {100 * train['pruned_accuracy']:.2f} %"
        )
    fig.suptitle("\n".join(title + ([how] if how else [])))
    return fig


# --- (b) nonzeros per layer -----------------------------------------------------------------


def _grouped_bars(ax, labels: list[str], series: list[tuple[str, list[float], str]]) -> None:
    """Bars of several series side by side per label, each bar labelled with its value."""
    n = len(series)
    width = 0.8 / n
    for k, (name, values, colour) in enumerate(series):
        pos = [i + (k - (n - 1) / 2) * width for i in range(len(labels))]
        bars = ax.bar(pos, values, width, label=name, color=colour)
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=7, padding=1)
    ax.set_xticks(range(len(labels)), labels)


def plot_nonzeros(manifest: dict) -> Figure | None:
    """Per weight layer: its weights (dense), the nonzero weights left after pruning and
    quantization, and the product terms after the passes. None without weight layers."""
    layers = manifest.get("layers", [])
    if not layers:
        return None
    fig, (ax,) = _figure(max(7, 1.6 * len(layers) + 2), 4.5)
    labels = [
        ly["name"] + (f"\n{ly['kind']} @{ly['positions']}" if ly["positions"] > 1 else "")
        for ly in layers
    ]
    series = [
        ("weights (dense)", [ly["weights"] for ly in layers], "0.65"),
        ("nonzero after pruning", [ly["kernel_nonzeros"] for ly in layers], "tab:blue"),
        ("product terms after passes", [ly["nonzero_weights"] for ly in layers], "tab:orange"),
    ]
    _grouped_bars(ax, labels, series)
    values = [v for _, vs, _ in series for v in vs if v > 0]
    if values and max(values) > 50 * min(values):
        ax.set_yscale("log")  # a first layer 100x the last would flatten the others
    ax.set_ylabel("count")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    w = sum(ly["weights"] for ly in layers)
    nz = sum(ly["kernel_nonzeros"] for ly in layers)
    title = "Weights per layer before and after pruning\n"
    title += f"{nz:,} of {w:,} nonzero ({1 - nz / w:.1%} zero)"
    if any(ly["positions"] > 1 for ly in layers):
        title += "\nconvolutions: kernel counted once, product terms at every position"
    ax.set_title(title)
    return fig


# --- (c) resources per layer ----------------------------------------------------------------


def plot_layer_resources(board_estimate: dict) -> Figure | None:
    """LUT and FF of every costed op on one board (DSP and BRAM18 too when any is used)."""
    layers = board_estimate["layers"]
    if not layers:
        return None
    fig, (ax,) = _figure(max(7, 1.1 * len(layers) + 2), 4.5)
    labels = [f"{c['name']}\n{c['kind']}" for c in layers]
    series = [
        ("LUT", [c["lut"] for c in layers], "tab:blue"),
        ("FF", [c["ff"] for c in layers], "tab:orange"),
    ]
    for key, label, colour in (("dsp", "DSP", "tab:red"), ("bram18", "BRAM18", "tab:green")):
        if any(c[key] for c in layers):
            series.append((label, [c[key] for c in layers], colour))
    _grouped_bars(ax, labels, series)
    ax.set_ylabel("estimated count")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    t = board_estimate["totals"]
    ax.set_title(
        f"Estimated resources per layer on {board_estimate['board']}\n"
        f"total LUT {t['lut']:,}, FF {t['ff']:,}, DSP {t['dsp']:,}, BRAM18 {t['bram18']:,}; "
        f"{t['latency_cycles']} pipeline cycles"
    )
    return fig


# --- (d) utilisation per board --------------------------------------------------------------


def plot_utilization(estimates: dict, board: str | None = None) -> Figure | None:
    """LUT, FF, DSP and BRAM18 utilisation (% of what is available) on every board of
    estimate.json, on a log axis with the 100 % line; boards where the design does not fit
    are named in red, ``board`` in bold."""
    names = list(estimates)
    if not names:
        return None
    from matplotlib.ticker import FuncFormatter

    fig, (ax,) = _figure(max(7, 0.75 * len(names) + 2), 5)
    n = len(UTIL_RESOURCES)
    width = 0.8 / n
    top = 100.0
    for k, (key, label) in enumerate(UTIL_RESOURCES):
        pos = [i + (k - (n - 1) / 2) * width for i in range(len(names))]
        pct = [estimates[b]["utilization_pct"].get(key) for b in names]
        # None: the board has none of a resource the design uses; drawn above the line.
        heights = [200.0 if p is None else max(p, UTIL_FLOOR_PCT) for p in pct]
        unused = all(p == 0 for p in pct)  # 0 % has no height on a log axis
        ax.bar(pos, heights, width, label=label + (" (0 %)" if unused else ""), color=f"C{k}")
        top = max(top, *heights)
        for x, p in zip(pos, pct):
            if p is None:
                ax.annotate("n/a", (x, 200.0), ha="center", va="bottom", fontsize=6)
    ax.axhline(100.0, color="tab:red", ls="--", lw=1, label="100 % (all available)")
    ax.set_yscale("log")
    ax.set_ylim(UTIL_FLOOR_PCT, top * 8)  # room for the legend above the 100 % line
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} %"))
    ax.set_ylabel("estimated utilisation (%, log scale)")
    ticks = [
        b
        + ("*" if estimates[b].get("usable_after_shell") else "")
        + ("" if estimates[b]["fits"] else " (no fit)")
        for b in names
    ]
    ax.set_xticks(range(len(names)), ticks, rotation=40, ha="right")
    for tick, b in zip(ax.get_xticklabels(), names):
        if not estimates[b]["fits"]:
            tick.set_color("tab:red")
        if b == board:
            tick.set_fontweight("bold")
    ax.legend(fontsize="small", ncol=5, loc="upper left")
    ax.grid(axis="y", alpha=0.3, which="both")
    fits = sum(1 for b in names if estimates[b]["fits"])
    ax.set_title(
        f"Estimated utilisation per board: fits on {fits} of {len(names)}\n"
        "(red: does not fit; * = what the platform shell leaves)"
    )
    return fig


# --- all of them ----------------------------------------------------------------------------


def write_plots(build_dir: Path, board: str | None = None) -> list[Path]:
    """Render the plots of a build directory and write them to build_dir/plots/ (replacing
    the folder); return their paths, in PLOT_CAPTIONS order.

    training.png needs train.json (skipped for a compile-only build), nonzeros.png needs
    rtl/manifest.json; layer_resources.png is for ``board`` (default: the board the build was
    compiled for), utilization.png covers every board of estimate.json.
    """
    build_dir = Path(build_dir)
    g, manifest, estimates = read_build(build_dir)
    name = choose_board(g, estimates, board)
    train_json = build_dir / "train.json"
    makers: list[tuple[str, Callable[[], Figure | None]]] = [
        ("layer_resources.png", lambda: plot_layer_resources(estimates[name])),
        ("utilization.png", lambda: plot_utilization(estimates, name)),
    ]
    if manifest is not None:
        makers.insert(0, ("nonzeros.png", lambda: plot_nonzeros(manifest)))
    if train_json.is_file():
        train = json.loads(train_json.read_text())
        makers.insert(0, ("training.png", lambda: plot_training(train)))
    images: dict[str, bytes] = {}
    for fname, make in makers:
        fig = make()
        if fig is not None:
            images[fname] = _png(fig)
    with staged(build_dir) as stage:
        (stage / PLOTS_DIR).mkdir()
        for fname, data in images.items():
            (stage / PLOTS_DIR / fname).write_bytes(data)
    return [build_dir / PLOTS_DIR / f for f in images]
