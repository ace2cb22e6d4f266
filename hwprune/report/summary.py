"""The text the main job ends with: accuracy, zeros, the ladder's verdict, the host boundary,
the estimate per board and the per-layer table (report.md without its plots)."""

from __future__ import annotations

from hwprune.estimate import format_table
from hwprune.report.tables import layer_rows, layer_section
from hwprune.resources import banner


def zeros_per_layer(manifest: dict) -> dict[str, tuple[int, int]]:
    """Layer -> (zero weights, weights) after quantization (a convolution's kernel once)."""
    return {
        ly["name"]: (ly["weights"] - ly["kernel_nonzeros"], ly["weights"])
        for ly in manifest["layers"]
    }


def summary(train, sim, design, seconds: float | None = None) -> str:
    """``train``: a TrainReport; ``sim``: the SimReport; ``design``: the compiled Design with
    its estimates (every board)."""
    from hwprune.sim.ladder import host_boundary  # numpy: not for `hwprune estimate`'s table

    lines = [banner("<!--").replace("\n", " -->\n").rstrip(), "# hwprune run", ""]
    lines.append(
        f"Accuracy (test set): dense QAT {train.dense_accuracy:.2%}, "
        f"pruned {train.pruned_accuracy:.2%}"
    )
    if train.sparsity:
        shown = ", ".join(f"{k} {v:.1%}" for k, v in train.sparsity.items())
        lines.append(f"Mask sparsity per pruned layer: {shown}")
    zeros = zeros_per_layer(design.manifest)
    lines += ["", "Zero weights per layer (after quantization):", ""]
    for name, (z, n) in zeros.items():
        lines.append(f"  {name:<8} {z:>5} / {n:<5} zero ({z / n:.1%})")
    total_z = sum(z for z, _ in zeros.values())
    total_n = sum(n for _, n in zeros.values())
    lines.append(f"  {'total':<8} {total_z:>5} / {total_n:<5} zero ({total_z / total_n:.1%})")
    lines += ["", "Bit-exactness vs golden interpreter:", ""]
    for lv in sim.levels:
        verdict = "SKIP " + lv.skipped if lv.skipped else ("PASS" if lv.passed else "FAIL")
        lines.append(f"  {lv.name:<16} {verdict:<6} {lv.vectors} vectors, {lv.seconds:.1f} s")
    g = design.graph
    lines += ["", "Assumed at the host boundary:", ""] + [f"  {t}" for t in host_boundary(g)]
    lines += ["", "Estimate per board:", "", "```", format_table(design.estimates), "```", ""]
    if design.asic:  # config compile.asic: the ASIC targets beside the boards
        from hwprune.estimate.asic_report import format_asic_table

        lines += [
            "ASIC (area in mm², Fmax and power: yosys-mapped netlist timed and powered by "
            "OpenSTA at the library's clock and default activity):",
            "",
            "```",
            format_asic_table(design.asic),
            "```",
            "",
        ]
    board = g.meta.get("board")
    rows = layer_rows(g, design.manifest, design.estimates[board])
    lines.append(layer_section(rows, board).rstrip())
    if seconds is not None:
        lines += ["", f"Total time {seconds:.0f} s"]
    return "\n".join(lines) + "\n"
