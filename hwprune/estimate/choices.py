"""Choices compile makes by cost: how each threshold layer is built, and (``auto``) which
kernel lowers each Dense. Both compare the estimator's figures for the whole graph under each
option, so what is chosen is what the estimate and the emitted netlist then cost.
"""

from __future__ import annotations

from dataclasses import replace

from hwprune.estimate.costs import choose_kernels
from hwprune.estimate.fabric import XC7
from hwprune.estimate.report import layer_costs
from hwprune.ir.affine import REWRITES
from hwprune.ir.graph import Graph, Threshold
from hwprune.ir.passes import optimize


def with_kernels(g: Graph) -> Graph:
    """``g`` with ``meta["layer_kernels"]`` and ``meta["kernel_choice"]`` filled when its
    kernel is ``auto`` (per layer, the kernel whose netlist costs fewer LUTs)."""
    if g.meta.get("kernel") != "auto":
        return g
    choice = choose_kernels(g)
    meta = {
        **g.meta,
        "layer_kernels": {name: c["kernel"] for name, c in choice.items()},
        "kernel_choice": choice,
    }
    return replace(g, meta=meta)


# The forms are compared by the 7-series primitive rules without the two grid fits (Threshold
# compare sets, adder cones): those size a design, but were not measured for ranking forms a
# few percent apart, and under them the first threshold layer of tests' cov_cnn2d flips to
# the multiply-add form, which yosys 0.23 builds in 13,365 LUTs against 11,356 (xc7).
CHOICE_FABRIC = replace(XC7, compare_set=None, cone=None)


def _total(g: Graph) -> tuple[int, int]:
    costs = layer_costs(with_kernels(g), CHOICE_FABRIC)
    return sum(c.lut for c in costs), sum(c.ff for c in costs)


def choose_requant(g: Graph) -> Graph:
    """Each Threshold layer as thresholds, as a multiply-add-shift-clip layer or folded into
    the Dense before it (``ir.affine``), whichever the whole graph costs fewer LUTs with (FF
    break a tie); ``meta["requant_choice"]`` records each layer's form and the figures."""
    record = {}
    for name in [op.name for op in g.ops if isinstance(op, Threshold)]:
        options = {"thresholds": g}
        for form, rewrite in REWRITES.items():
            new = rewrite(g, name)
            if new is not None:
                options[form] = replace(optimize(new), meta=g.meta)
        totals = {form: _total(cand) for form, cand in options.items()}
        best = min(options, key=lambda f: totals[f])
        record[name] = {
            "form": best,
            "lut": {f: t[0] for f, t in totals.items()},
            "ff": {f: t[1] for f, t in totals.items()},
        }
        g = options[best]
    return replace(g, meta={**g.meta, "requant_choice": record}) if record else g


def choose(g: Graph) -> Graph:
    """Every choice compile makes by cost, in order: threshold forms, then kernels."""
    return with_kernels(choose_requant(g))
