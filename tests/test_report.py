"""The report of a build directory: the per-layer table against the files compile wrote, the
plots, report.html standing alone."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hwprune import api
from hwprune.boards import get_board
from hwprune.errors import HwpruneError
from hwprune.estimate import estimate_boards
from hwprune.report import (
    layer_rows,
    layer_table,
    layer_totals,
    load_layer_rows,
    markdown_to_html,
    report_markdown_sections,
    write_html,
    write_plots,
)
from hwprune.report.plots import _history_x
from tests.frontend.op_models import build_conv_variants
from tests.graphs import random_mlp

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# A history as hwprune/train/loop.py writes it: per-epoch entries, a mask update (step 0 of
# its phase), guard checks, one failed and rolled back.
HISTORY = [
    {"phase": "train (dense QAT)", "epoch": e, "step": 10 * e, "target": 0.0, "val_accuracy": a}
    for e, a in ((1, 0.6), (2, 0.8), (3, 0.9))
] + [
    {"phase": "fine-tune", "event": "mask", "step": 0, "target": 0.5, "sparsity": 0.5,
     "val_accuracy": 0.7},
    {"phase": "fine-tune", "epoch": 1, "step": 10, "target": 0.5, "val_accuracy": 0.88},
    {"phase": "fine-tune", "event": "guard", "step": 10, "val_accuracy": 0.88, "passed": True},
    {"phase": "fine-tune", "event": "mask", "step": 10, "target": 0.75, "sparsity": 0.75,
     "val_accuracy": 0.6},
    {"phase": "fine-tune", "epoch": 2, "step": 20, "target": 0.75, "val_accuracy": 0.7},
    {"phase": "fine-tune", "event": "guard", "step": 20, "val_accuracy": 0.7, "passed": False,
     "rolled_back": True},
]  # fmt: skip


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """Compiled hand-written model: Conv (group 2, dilation 2) -> threshold -> MaxPool ->
    MatMul -> requant, so Dense, Threshold, Max and Requant ops all have rows."""
    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "build"
    api.compile(build_conv_variants(tmp / "m.onnx", 0), out)
    return out


def _files(build: Path) -> tuple:
    g = api.load_graph(build)
    manifest = json.loads((build / "rtl" / "manifest.json").read_text())
    estimates = json.loads((build / "estimate.json").read_text())
    return g, manifest, estimates


def test_rows_join_manifest_and_estimate(build):
    g, manifest, estimates = _files(build)
    est = estimates["pynq-z2"]
    rows = layer_rows(g, manifest, est)
    assert [r["name"] for r in rows] == [c["name"] for c in est["layers"]]
    dense = {ly["name"]: ly for ly in manifest["layers"]}
    for r, c in zip(rows, est["layers"]):
        for key in ("lut", "ff", "dsp", "bram18", "latency_cycles"):
            assert r[key] == c[key]
        if r["name"] in dense:
            ly = dense[r["name"]]
            assert (r["weights"], r["nonzeros"]) == (ly["weights"], ly["kernel_nonzeros"])
            assert r["product_terms"] == ly["product_terms_verilog"] == c["product_terms"]
        else:
            assert r["weights"] is r["nonzeros"] is r["product_terms"] is None
    # The model's threshold layer is built as comparators or as a multiply-add (a requant
    # layer), whichever compile found cheaper; the table names what was built.
    forms = {c["form"] for c in (manifest["requant_choice"] or {}).values()}
    kinds = {"conv2d", "max", "linear", "requant"} | ({"threshold"} & {f[:-1] for f in forms})
    assert {r["kind"] for r in rows} == kinds
    # Hand-worked from the model: weights (6, 2, 3, 3) in 2 groups = 18 inputs per channel,
    # a 7x7 input, dilation 2, pads (1, 2) -> 6x6 positions; MaxPool 3/2 ceil -> 3x3 x 6.
    shapes = {r["name"]: r["shape"] for r in rows}
    assert shapes["conv0"] == "18x6 @36"
    assert shapes["maxpool0"] == "216 -> 54"
    assert shapes["dense0"] == "54x4"
    total = layer_totals(rows)
    for key in ("lut", "ff", "dsp", "bram18", "latency_cycles", "ii"):
        assert total[key] == est["totals"][key]
    assert total["weights"] == sum(ly["weights"] for ly in manifest["layers"])
    assert total["product_terms"] == sum(ly["nonzero_weights"] for ly in manifest["layers"])


def test_table_lines_up_and_ends_with_the_estimate_totals(build):
    rows = load_layer_rows(build, "pynq-z2")
    est = json.loads((build / "estimate.json").read_text())["pynq-z2"]
    lines = layer_table(rows).splitlines()
    assert len(lines) == 2 + len(rows) + 1  # header, rule, rows, total
    assert len({len(x) for x in lines}) == 1  # fixed width: reads as a table in a terminal
    assert re.fullmatch(r"\|[-:|]+\|", lines[1])
    cells = [[c.strip() for c in x.strip("|").split("|")] for x in lines]
    head = cells[0]
    total = dict(zip(head, cells[-1]))
    assert total["layer"] == "total"
    assert total["LUT"] == f"{est['totals']['lut']:,}"
    assert total["FF"] == f"{est['totals']['ff']:,}"
    assert total["cycles"] == str(est["totals"]["latency_cycles"])
    thr = dict(zip(head, next(c for c in cells if c[0] == "thr0")))
    assert thr["weights"] == thr["nonzeros"] == thr["terms"] == ""
    assert thr["LUT"] != ""


def test_shape_shows_what_the_passes_removed():
    g = random_mlp(0, sizes=(16, 12, 8, 5))
    est = estimate_boards(g, [get_board("pynq-z2")])["pynq-z2"]
    # As compile's manifest would say had the passes removed 2 neurons of dense0 (so 2
    # inputs of dense1): the imported layers were 2 wider.
    manifest = {
        "layers": [
            {"name": op.name, "kind": "linear", "weights": 0, "kernel_nonzeros": 0,
             "positions": 1, "nonzero_weights": op.n_terms, "removed_neurons": rn,
             "removed_inputs": ri}
            for op, (rn, ri) in zip(g.dense_ops(), ((2, 0), (0, 2), (0, 0)))
        ]
    }  # fmt: skip
    shapes = {r["name"]: r["shape"] for r in layer_rows(g, manifest, est)}
    assert shapes == {
        "dense0": "16x14 -> 16x12",
        "act0": "12",
        "dense1": "14x8 -> 12x8",
        "act1": "8",
        "dense2": "8x5",
    }
    # Without a manifest (a model estimated directly): compiled counts, removals unknown.
    rows = layer_rows(g, None, est)
    assert [r["product_terms"] for r in rows if r["weights"] is not None] == [
        op.n_terms for op in g.dense_ops()
    ]
    assert all(r["removed_neurons"] is None for r in rows)


def test_files_of_different_compiles_are_refused(build):
    g, manifest, estimates = _files(build)
    other = estimate_boards(random_mlp(0), [get_board("pynq-z2")])["pynq-z2"]
    with pytest.raises(HwpruneError, match="different compiles"):
        layer_rows(g, manifest, other)
    with pytest.raises(HwpruneError, match="choose one of: .*alveo-u250"):
        load_layer_rows(build, "no-such-board")


def test_history_steps_continue_across_phases():
    xs, starts = _history_x(HISTORY)
    # The dense phase ends at step 30; fine-tune counts from 0 again, so it starts at 30.
    assert xs == [10, 20, 30, 30, 40, 40, 40, 50, 50]
    assert starts == {"train (dense QAT)": 10, "fine-tune": 30}


def _png_ok(p: Path) -> None:
    data = p.read_bytes()
    assert data[:8] == PNG_SIGNATURE, p
    assert len(data) > 10_000, p  # a drawn figure, not an empty canvas


def test_plots_one_per_subject_and_html_stands_alone(build, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    plots = write_plots(build)
    names = [p.name for p in plots]
    assert names == ["nonzeros.png", "layer_resources.png", "utilization.png"]  # no train.json
    for p in plots:
        _png_ok(p)

    (build / "train.json").write_text(
        json.dumps({"dense_accuracy": 0.9, "pruned_accuracy": 0.88, "method": "standard",
                    "sparsity": {"linear0": 0.75}, "history": HISTORY})
    )  # fmt: skip
    plots = write_plots(build, "basys3")
    assert [p.name for p in plots] == ["training.png", *names]
    for p in plots:
        _png_ok(p)
    assert len({p.read_bytes() for p in plots}) == len(plots)
    assert sorted(x.name for x in (build / "plots").iterdir()) == sorted(p.name for p in plots)

    md = "# hwprune run\n\n" + report_markdown_sections(build, "basys3", plots)
    assert "## Per-layer estimate (basys3)" in md
    assert all(f"(plots/{p.name})" in md for p in plots)
    page = write_html(md, build)
    assert page == build / "report.html"
    doc = page.read_text()
    refs = _References()
    refs.feed(doc)
    assert refs.tags.isdisjoint({"script", "link", "iframe", "object"})
    assert refs.urls and all(u.startswith("data:") for u in refs.urls)
    imgs = [u for u in refs.urls if u.startswith("data:image/png;base64,")]
    assert len(imgs) == len(plots)
    assert base64.b64decode(imgs[0].split(",", 1)[1]) == plots[0].read_bytes()
    est = json.loads((build / "estimate.json").read_text())["basys3"]
    table = doc[doc.index("<table>") : doc.index("</table>")]
    assert table.count("<tr>") == 1 + len(est["layers"]) + 1
    assert f'<td class="num">{est["totals"]["lut"]:,}</td>' in table
    assert all(f"<td>{c['name']}</td>" in table for c in est["layers"])


class _References(HTMLParser):
    """Every src / href value and every tag name of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.add(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v is not None]


def test_markdown_of_summary_is_kept_readable(tmp_path):
    text = (
        "<!-- Generated by hwprune. Do not edit. -->\n# run\n\nAccuracy: a < b\nnext line\n\n"
        "board  LUT  fits\n-----  ---  ----\npynq   12   yes\n\n"
        "![missing](plots/none.png)\n\n![remote](https://example.org/x.png)\n\n- `ir.json` **ok**\n"
    )
    body = markdown_to_html(text, tmp_path)
    assert "Generated" not in body  # comments dropped (the page has its own banner)
    assert "<h1>run</h1>" in body
    assert "<p>Accuracy: a &lt; b<br>\nnext line</p>" in body
    assert "<pre>board  LUT  fits\n-----  ---  ----\npynq   12   yes</pre>" in body
    assert "src=" not in body and body.count('class="missing"') == 2
    assert "<li><code>ir.json</code> <strong>ok</strong></li>" in body


def test_matplotlib_is_imported_only_to_draw():
    code = "import sys, hwprune.report; print('matplotlib' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
