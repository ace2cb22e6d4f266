"""The default job end to end: the bit-exactness ladder, the zero-term invariant, a testbench
that can fail, and estimates on every board. The job runs once (session fixture)."""

import json
import re
import shutil

from hwprune.frontend.qonnx import import_qonnx
from hwprune.ir import golden
from hwprune.names import TOP
from hwprune.report import zeros_per_layer
from tests.qonnx_ref import quantized_weight_nonzeros

LEVELS = ["brevitas", "qonnx", "csim", "rtl (icarus)", "rtl axi-stream (icarus)"]


def test_ladder_is_bit_exact(default_run):
    _, cfg, report = default_run
    names = [lv.name for lv in report.sim.levels]
    assert names == LEVELS
    for lv in report.sim.levels:
        assert lv.skipped is None
        assert lv.passed, lv.first_mismatch
        # corner vectors (all min, all max; zeros coincide with all-min for unsigned inputs)
        assert lv.vectors >= cfg.sim.vectors + 2


def test_pruned_to_at_least_80_percent_and_accurate(default_run):
    _, _, report = default_run
    per_layer = zeros_per_layer(report.design.manifest)
    zeros = sum(z for z, _ in per_layer.values())
    total = sum(n for _, n in per_layer.values())
    assert zeros / total >= 0.80
    assert report.train.pruned_accuracy >= 0.90  # digits: a linear model reaches ~96 %


def test_product_terms_equal_nonzero_weights(default_run):
    out, _, report = default_run
    from hwprune.codegen.verilog import count_product_terms as v_terms
    from hwprune.hlsgen import count_product_terms as hls_terms

    man = json.loads((out / "rtl" / "manifest.json").read_text())
    layers = man["layers"]
    assert [ly["nonzero_weights_imported"] for ly in layers] == quantized_weight_nonzeros(
        out / "model.onnx"
    )
    verilog = {}
    for f in (out / "rtl").glob("*.v"):
        verilog.update(v_terms(f.read_text()))
    hls = hls_terms(out / "hls")
    compiled = {op.name: op.n_terms for op in report.graph.dense_ops()}
    for ly in layers:
        name = ly["name"]
        assert ly["product_terms_verilog"] == verilog[name] == compiled[name]
        assert ly["product_terms_hls"] == hls[name] == compiled[name]
        assert ly["nonzero_weights"] == compiled[name]
        # every removed term belonged to a removed neuron or read a constant neuron
        assert ly["nonzero_weights"] <= ly["nonzero_weights_imported"]


def test_corrupted_weight_makes_testbench_fail(default_run, tmp_path):
    from hwprune.codegen.cocotb_tb import write_vectors
    from hwprune.sim.rtl import run_rtl

    out, _, report = default_run
    rtl = tmp_path / "rtl"
    shutil.copytree(out / "rtl", rtl)
    product = re.compile(r"^\s*p_\d+_\d+ = (-?)(.*); // w=-?\d+$", re.M)
    for f in sorted(rtl.glob("*.v")):
        text = f.read_text()
        m = product.search(text)
        if m:
            # Flip the sign of the leading shift-and-add term: the hardware changes, the
            # weight comment does not.
            flipped = "" if m.group(1) else "-"
            f.write_text(text[: m.start(1)] + flipped + text[m.start(2) :])
            break
    else:
        raise AssertionError("no product term found in the emitted Verilog")
    g = report.graph
    vec = tmp_path / "vectors.npz"
    write_vectors(vec, g, golden.stimulus_vectors(g, 300, 1))
    r = run_rtl(rtl, tmp_path / "work", vec, "icarus", TOP)
    assert not r.passed
    assert r.first_mismatch is not None and "vector" in r.first_mismatch


def test_estimates_for_every_board(default_run):
    out, _, report = default_run
    est = json.loads((out / "estimate.json").read_text())
    for board in ("pynq-z2", "zcu104", "arty-a7-35t"):
        e = est[board]
        assert set(e["totals"]) >= {"lut", "ff", "dsp", "bram18", "latency_cycles", "ii"}
        assert isinstance(e["fits"], bool)
        assert len(e["layers"]) >= 3
    assert (out / "report.md").read_text().count("PASS") == len(LEVELS)


def test_reimport_is_stable(default_run):
    out, _, report = default_run
    from hwprune.ir.passes import optimize

    assert optimize(import_qonnx(out / "model.onnx")).ops == report.graph.ops
