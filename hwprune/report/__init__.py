"""The human-readable report of a build directory (no torch, no hls4ml).

    layer_rows(g, manifest, board_estimate)   -> list[dict]   one row per hardware op
    layer_table(rows)                         -> str          Markdown, also fine in a terminal
    load_layer_rows(build_dir, board)         -> list[dict]   the same, read from the files
    read_build(build_dir)                     -> (graph, manifest | None, estimates)
    write_plots(build_dir, board)             -> list[Path]   build_dir/plots/*.png
    report_markdown_sections(build_dir, board, plots) -> str  table + plot links for report.md
    write_html(markdown_text, build_dir)      -> Path         build_dir/report.html, standalone
    summary(train, sim, design, seconds)      -> str          the main job's closing text

Read-only analyses (tables) are kept apart from the writers (plots, html); matplotlib is
imported only when a plot is drawn.
"""

from hwprune.report.html import markdown_to_html, write_html
from hwprune.report.plots import write_plots
from hwprune.report.summary import summary, zeros_per_layer
from hwprune.report.tables import (
    PLOT_CAPTIONS,
    layer_rows,
    layer_section,
    layer_table,
    layer_totals,
    load_layer_rows,
    plots_section,
    read_build,
    report_markdown_sections,
)

__all__ = [
    "PLOT_CAPTIONS",
    "layer_rows",
    "layer_table",
    "layer_section",
    "layer_totals",
    "load_layer_rows",
    "markdown_to_html",
    "plots_section",
    "read_build",
    "report_markdown_sections",
    "summary",
    "write_html",
    "write_plots",
    "zeros_per_layer",
]
