"""Per-layer rows of a build (weights from rtl/manifest.json, costs from estimate.json), the
Markdown table of them, and the Markdown sections appended to report.md.

Read-only: nothing here writes a file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from hwprune.errors import HwpruneError
from hwprune.ir.graph import Dense, Graph, Max, from_json

# Row keys, in table order, with the column title and whether the column is a number.
# The weight columns are None for ops that hold no weights (requant, threshold, max).
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("name", "layer", False),
    ("kind", "kind", False),
    ("shape", "shape", False),
    ("weights", "weights", True),
    ("nonzeros", "nonzeros", True),
    ("product_terms", "terms", True),
    ("removed_neurons", "removed", True),
    ("lut", "LUT", True),
    ("ff", "FF", True),
    ("dsp", "DSP", True),
    ("latency_cycles", "cycles", True),
)
# Keys summed into the total row (bram18 too: rows carry it though the table omits it).
SUMMED = (
    "weights",
    "nonzeros",
    "product_terms",
    "removed_neurons",
    "lut",
    "ff",
    "dsp",
    "bram18",
    "latency_cycles",
)
TABLE_NOTE = (
    "weights and nonzeros count a convolution's kernel once (nonzeros after pruning and "
    "quantization); terms are the constant products the hardware computes after the passes "
    "(every position of a convolution); removed = output neurons the passes removed; "
    "shape = inputs x outputs (a convolution: kernel inputs x channels @ positions)."
)

# The plots report_markdown_sections links, by file name, with their captions.
PLOT_CAPTIONS: dict[str, str] = {
    "training.png": "Validation accuracy and sparsity over training",
    "nonzeros.png": "Weights per layer before and after pruning",
    "layer_resources.png": "Estimated resources per layer",
    "utilization.png": "Estimated utilisation on every catalogue board",
}


def _dense_shape(op: Dense, ly: dict) -> str:
    """Imported ``n_in x n_out`` (-> the compiled one when the passes shrank it); for a
    layer applied at several positions (convolution, pooling): kernel inputs x channels @
    positions, as the importer records no kernel geometry beyond these counts."""
    n_in = op.n_in + ly.get("removed_inputs", 0)
    n_out = op.n_out + ly.get("removed_neurons", 0)
    positions = ly.get("positions", 1)
    if positions > 1:
        channels = n_out // positions
        per_channel = ly["weights"] // channels if channels else 0
        return f"{per_channel}x{channels} @{positions}"
    shape = f"{n_in}x{n_out}"
    if (n_in, n_out) != (op.n_in, op.n_out):
        shape += f" -> {op.n_in}x{op.n_out}"
    return shape


def _stream_shape(w) -> str:
    """A stream stage's map shapes: C@HxW -> F@OHxOW."""
    (c, h, wd), (f, oh, ow) = w.in_shape, w.out_shape
    return f"{c}@{h}x{wd} -> {f}@{oh}x{ow}"


def _manifest_like(g: Graph) -> dict[str, dict]:
    """Manifest-shaped entries from the graph alone (a model estimated without a build):
    the importer's kernel counts, the compiled product terms, removals unknown."""
    kernels = g.meta.get("layers", {})
    out = {}
    for op in g.dense_ops():
        k = kernels.get(op.name, {})
        out[op.name] = {
            "kind": k.get("kind", "linear"),
            "weights": k.get("kernel_weights", op.n_in * op.n_out),
            "kernel_nonzeros": k.get("kernel_nonzeros", op.n_terms),
            "positions": k.get("positions", 1),
            "nonzero_weights": op.n_terms,
        }
    return out


def layer_rows(g: Graph, manifest: dict | None, board_estimate: dict) -> list[dict]:
    """One row per hardware op of ``g``, in graph order, joined by name.

    ``manifest`` is rtl/manifest.json (None for a model estimated without a build: weights
    then come from ``g.meta["layers"]`` and removals are unknown); ``board_estimate`` is one
    board's entry of estimate.json (its "layers" give the costs). Keys: name, kind, shape,
    weights, nonzeros, product_terms, removed_neurons (None for ops without weights), lut,
    ff, dsp, bram18, latency_cycles, ii.
    """
    if manifest is None:
        dense = _manifest_like(g)
    else:
        dense = {ly["name"]: ly for ly in manifest["layers"]}
    ops = {op.name: op for op in g.ops}
    # A stream stage is costed as one entry named by its ops joined with "+" (its first op
    # the convolution or pooling); the collector gathers the last stage's map.
    stages = {c["name"]: c["name"].split("+") for c in board_estimate["layers"] if c.get("form")}
    covered = {n for names in stages.values() for n in names}
    costed = [c["name"] for c in board_estimate["layers"]]
    extra = set(stages) | {"collector"}
    stray = sorted(set(dense) - set(costed) - covered) + sorted(set(costed) - set(ops) - extra)
    if stray:
        raise HwpruneError(
            f"layers {', '.join(stray)} are not in both the graph and the estimate: the build "
            "directory's files come from different compiles; run 'hwprune compile' again"
        )
    rows = []
    for c in board_estimate["layers"]:
        row: dict = {"name": c["name"], "kind": c["kind"], "shape": ""}
        row |= dict.fromkeys(("weights", "nonzeros", "product_terms", "removed_neurons"))
        op = ops.get(stages.get(c["name"], [c["name"]])[0])
        if c["name"] in stages and isinstance(op, Dense):
            ly = dense[op.name]
            row |= {
                "kind": f"{ly['kind']} stream",
                "shape": _stream_shape(op.window),
                "weights": ly["weights"],
                "nonzeros": ly["kernel_nonzeros"],
                "product_terms": c["product_terms"],
                "removed_neurons": ly.get("removed_neurons"),
            }
        elif c["name"] in stages:
            row |= {"kind": "max stream", "shape": _stream_shape(op.window)}
        elif op is None and stages:  # the collector: the last stage's map, one vector
            row["shape"] = str(g.values[list(stages.values())[-1][-1]].size)
        elif isinstance(op, Dense):
            ly = dense[op.name]
            row |= {
                "kind": ly["kind"],
                "shape": _dense_shape(op, ly),
                "weights": ly["weights"],
                "nonzeros": ly["kernel_nonzeros"],
                "product_terms": ly["nonzero_weights"],
                "removed_neurons": ly.get("removed_neurons"),
            }
        elif isinstance(op, Max):
            row["shape"] = f"{g.values[op.inputs[0]].size} -> {len(op.groups)}"
        else:  # elementwise: as many outputs as inputs
            row["shape"] = str(g.values[op.name].size)
        for key in ("lut", "ff", "dsp", "bram18", "latency_cycles", "ii"):
            row[key] = c[key]
        if stages:  # a stream's latency and II are its control's, not the layers' (hw.stream)
            row["design_latency"] = board_estimate["totals"]["latency_cycles"]
            row["design_ii"] = board_estimate["totals"]["ii"]
        rows.append(row)
    return rows


def layer_totals(rows: Sequence[dict]) -> dict:
    """The total row: sums of the counted columns (None where no row has the column), and
    the pipeline II (the worst op's, as estimate.json's totals)."""
    total: dict = {"name": "total", "kind": "", "shape": ""}
    for key in SUMMED:
        vals = [r[key] for r in rows if r.get(key) is not None]
        total[key] = sum(vals) if vals else None
    total["ii"] = max((r["ii"] for r in rows if r.get("ii") is not None), default=None)
    if rows and rows[0].get("design_latency") is not None:
        total["latency_cycles"] = rows[0]["design_latency"]
        total["ii"] = rows[0]["design_ii"]
    return total


def _cell(value, numeric: bool) -> str:
    if value is None:
        return ""
    return f"{value:,}" if numeric else str(value)


def layer_table(rows: Sequence[dict]) -> str:
    """A Markdown table of ``layer_rows`` plus a total row, padded so that it also reads as
    a fixed-width table in a terminal (names left-aligned, numbers right-aligned)."""
    cells = [[title for _, title, _ in COLUMNS]]
    for r in [*rows, layer_totals(rows)]:
        cells.append([_cell(r.get(key), num) for key, _, num in COLUMNS])
    widths = [max(3, *(len(line[k]) for line in cells)) for k in range(len(COLUMNS))]
    nums = [num for _, _, num in COLUMNS]

    def line(cs: list[str]) -> str:
        padded = [c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cs, widths, nums)]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if n else (":" + "-" * (w + 1)) for w, n in zip(widths, nums)
        )
        + "|"
    )
    lines = [line(cells[0]), rule, *(line(cs) for cs in cells[1:])]
    return "\n".join(lines) + "\n"


# --- reading a build directory ---------------------------------------------------------------


def _read_text(path: Path, how: str) -> str:
    if not path.is_file():
        raise HwpruneError(f"{path} is missing; {how}")
    return path.read_text()


def read_build(build_dir: Path) -> tuple[Graph, dict | None, dict]:
    """(graph, manifest or None, estimates per board) of a compiled build directory."""
    build_dir = Path(build_dir)
    how = f"run 'hwprune compile MODEL.onnx -o {build_dir}' first"
    g = from_json(_read_text(build_dir / "ir.json", how))
    man = build_dir / "rtl" / "manifest.json"
    manifest = json.loads(man.read_text()) if man.is_file() else None
    estimates = json.loads(_read_text(build_dir / "estimate.json", how))
    return g, manifest, estimates


def choose_board(g: Graph, estimates: dict, board: str | None) -> str:
    """``board``, or the one the build was compiled for; an error lists the boards the
    estimate holds when the name is not among them."""
    name = board or g.meta.get("board") or next(iter(estimates), None)
    if name not in estimates:
        raise HwpruneError(
            f"board {name!r} is not in estimate.json; choose one of: {', '.join(estimates)}"
        )
    return name


def load_layer_rows(build_dir: Path, board: str | None = None) -> list[dict]:
    """``layer_rows`` of a build directory for ``board`` (default: the compile's board)."""
    g, manifest, estimates = read_build(build_dir)
    return layer_rows(g, manifest, estimates[choose_board(g, estimates, board)])


def report_markdown_sections(
    build_dir: Path, board: str | None = None, plots: Sequence[Path] | None = None
) -> str:
    """Markdown to append to report.md: the per-layer table for ``board`` (default: the
    compile's board) and links to the plots, relative to the build directory.

    ``plots`` are the files ``write_plots`` returned; None links those of PLOT_CAPTIONS that
    exist in build_dir/plots/.
    """
    build_dir = Path(build_dir)
    g, manifest, estimates = read_build(build_dir)
    name = choose_board(g, estimates, board)
    rows = layer_rows(g, manifest, estimates[name])
    return layer_section(rows, name) + plots_section(build_dir, plots)


def layer_section(rows: Sequence[dict], board: str) -> str:
    """The per-layer table as a report.md section, with its note."""
    return "\n".join(
        [f"## Per-layer estimate ({board})", "", layer_table(rows).rstrip(), "", TABLE_NOTE, ""]
    )


def plots_section(build_dir: Path, plots: Sequence[Path] | None = None) -> str:
    """Links to the plots (relative to the build directory) as a report.md section; ``plots``
    None links those of PLOT_CAPTIONS that exist in build_dir/plots/."""
    build_dir = Path(build_dir)
    if plots is None:
        plots = [build_dir / "plots" / f for f in PLOT_CAPTIONS]
        plots = [p for p in plots if p.is_file()]
    if not plots:
        return ""
    lines = ["", "## Plots", ""]
    for p in plots:
        rel = Path(p).resolve().relative_to(build_dir.resolve()).as_posix()
        caption = PLOT_CAPTIONS.get(Path(p).name, Path(p).stem)
        lines += [f"![{caption}]({rel})", ""]
    return "\n".join(lines).rstrip() + "\n"
