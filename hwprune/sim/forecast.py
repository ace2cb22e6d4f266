"""How long ``hwprune sim`` will take on a design, said before it starts when that is long.

Each level's time is a build (skipped when DIR/cache/ holds it) and a run per vector, both
growing with the size of what is built: the Verilog for the simulators, the HLS parameters
(one C++ statement per product) for the C-simulation, the weights for qonnx. The rates are
measured on this machine (2 cores) with ``benchmarks/sim.py`` (results/sim.md): they are the
order of magnitude a user plans by, not a promise.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hwprune.hw.stream import plan
from hwprune.ir.graph import Dense, Graph
from hwprune.names import TOP

MB = 1_000_000

# (seconds fixed, seconds per MB) of a build; seconds per vector per MB of a run.
# Verilator: digits (0.19 MB of Verilog) 10 s, tfc_2w2a (3.3 MB) 38 s, the 490-256-256-256-12
# MLP (34 MB, -O0 above rtl.BIG_DESIGN_BYTES) 150 s on 2 cores; runs 25,000, 6,100 and 250
# vectors/s. Icarus: 1,270, 384 and 75 vectors/s on digits, unsw_nb15 (0.68 MB) and tfc, whose
# build takes 10 s; iverilog had not finished the MLP's Verilog (then 48.6 MB) after 11 min,
# hence the steep build rate. C-sim: parameters.h of 9 MB (221k products) 199 s of g++, 28 ms
# a vector.
BUILD = {"verilator": (10.0, 6.0), "icarus": (1.0, 14.0), "csim": (3.0, 22.0)}
RUN = {"verilator": 1.2e-4, "icarus": 4.1e-3, "csim": 3.1e-3}
AXIS_PER_VECTOR = 0.015  # cocotb driving the AXI-Stream top, per vector (Python per cycle)
QONNX_PER_WEIGHT = 8e-8  # seconds per weight and vector (the MLP: 259k weights, 47 vectors/s)

WARN_SECONDS = 180.0  # say so before starting when the levels will take longer than this


def forecast(build_dir: Path, g: Graph, n: int, simulator: str, levels: list[str]) -> dict:
    """Expected seconds per level (and of its build, when it is not cached)."""
    from hwprune.codegen.axis import axis_top_name
    from hwprune.sim import csim, rtl

    build_dir = Path(build_dir)
    cache = build_dir / "cache"
    out: dict[str, tuple[float, float]] = {}
    rtl_mb = rtl.design_bytes(build_dir / "rtl") / MB
    p = plan(g)
    cycles = 1 if p is None else p.interval
    for level in levels:
        if level == "qonnx":
            weights = sum(_weights(op) for op in g.ops if isinstance(op, Dense))
            out[level] = (0.0, n * weights * QONNX_PER_WEIGHT)
        elif level == "csim":
            params = build_dir / "hls" / "firmware" / "parameters.h"
            mb = params.stat().st_size / MB if params.is_file() else 0.0
            built = csim.is_built(build_dir / "hls", cache / "csim")
            fixed, per_mb = BUILD["csim"]
            out[level] = (0.0 if built else fixed + per_mb * mb, n * RUN["csim"] * mb)
        elif level in ("rtl", "rtl-axis"):
            top = TOP if level == "rtl" else axis_top_name(TOP)
            nv = n if level == "rtl" else min(n, 2000)
            built = rtl.is_built(build_dir / "rtl", simulator, top, cache / "rtl")
            fixed, per_mb = BUILD[simulator]
            # A streamed design takes a pixel, not an image, per cycle: an image costs its
            # interval in cycles (pessimistic: most of its logic idles in most of them; the
            # 28x28 CNN ran 2 images/s in Icarus, forecast 0.4).
            beats = 1 if p is None else p.n_pixels  # AXI-Stream beats per vector
            if level == "rtl-axis" and p is not None:
                nv = min(n, 2000 // p.n_pixels + 1)  # the AXI test's images (stream_tb)
            run = nv * RUN[simulator] * max(rtl_mb, 0.05) * cycles
            if level == "rtl-axis":
                run += nv * beats * AXIS_PER_VECTOR
            out[level] = (0.0 if built else fixed + per_mb * rtl_mb, run)
    return out


def _weights(op: Dense) -> int:
    """The weights qonnx multiplies per vector: a convolution's kernel (its ``Window``), a
    dense layer's matrix."""
    if op.window is None:
        return op.n_in * len(op.rows)
    w = op.window
    (c, _, _), (f, oh, ow) = w.in_shape, w.out_shape
    return f * (c // w.groups) * w.kernel[0] * w.kernel[1] * oh * ow


def warn_if_long(build_dir: Path, g: Graph, n: int, simulator: str, levels: list[str]) -> None:
    """One line on stderr when the levels will take over WARN_SECONDS: the time of each,
    and the option that runs fewer."""
    from hwprune.sim import rtl

    build_dir = Path(build_dir)
    try:
        est = forecast(build_dir, g, n, simulator, levels)
    except OSError:
        return
    # The C-simulation's and the RTL level's builds run side by side (ladder._start_builds).
    builds = {lv: b for lv, (b, _) in est.items()}
    side = max(builds.pop("csim", 0.0), builds.pop("rtl", 0.0))
    total = side + sum(builds.values()) + sum(r for _, r in est.values())
    if total < WARN_SECONDS:
        return
    parts = []
    for level, (b, r) in est.items():
        built = f" (build {_t(b)})" if b >= 1 else ""
        parts.append(f"{level} {_t(b + r)}{built}")
    if len(est) > 1:
        slowest = max(est, key=lambda lv: sum(est[lv]))
        keep = [lv for lv in levels if lv != slowest]
        hint = f"to run fewer levels, use --levels {','.join(keep)}"
    else:  # one level: fewer vectors, unless the (cached) build is most of it
        ((b, r),) = est.values()
        k = max(1, int(n * max(WARN_SECONDS - b, 0.0) / r)) if r > 0 else n
        hint = (
            "most of it the build, which the next run reuses"
            if b >= r or k >= n
            else f"for a shorter run, use --vectors {k}"
        )
    mb = rtl.design_bytes(build_dir / "rtl")
    print(
        f"hwprune sim: this design ({mb / MB:.1f} MB of Verilog) will take about {_t(total)} "
        f"here: {', '.join(parts)}; {hint}",
        file=sys.stderr,
        flush=True,
    )


def _t(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
