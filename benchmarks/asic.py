"""The fast ASIC estimate (hwprune.estimate.asic_fast) against yosys + OpenSTA on osu018:
its constants fitted on calibration designs, its error measured on other designs.

    .venv/bin/python benchmarks/asic.py [--measure] [--fit] [--only NAME ...] [--timeout S]

Designs: the small and medium ones of benchmarks/estimate.py (``DESIGNS``, imported, not
copied: its calibration designs, seeds 101-123, for the fit; its validation designs, seeds
201-223 and other shapes, and the real models for the check), those whose 7-series
synthesis stayed under ``MAX_XC7_LUT`` LUTs (results/estimate_synth.json): ASIC mapping with
``abc -liberty`` grows faster than the FPGA flow, and a design whose mapping takes more than
``--timeout`` seconds (default 120) is recorded as skipped. Besides, 15 calibration designs
of its own (``_asic_calibration``, seeds 301-315), for the ASIC fit only.

``--measure`` maps each design's emitted Verilog to osu018 with
``hwprune.estimate.asic.synth_asic`` (yosys 0.23: ``synth -flatten -top hwprune_top;
dfflibmap -liberty LIB; abc -liberty LIB; opt_clean -purge; setundef -zero; splitnets
-ports; opt_clean``; OpenSTA 2.0.17 at the library's 200 MHz clock, zero input and output
delays). Results are kept in results/asic_synth.json under the design and the SHA-256 of its
Verilog; a design whose Verilog did not change is not mapped again.

``--fit`` fits the constants of asic_fast (area: scipy.optimize.nnls on relative errors;
critical path: scipy.optimize.least_squares) on the calibration designs only and writes
hwprune/estimate/asic_fit.toml. The report (always) compares the estimate with the measured
figures per design and gives median and 90th-percentile absolute errors on the validation
set: results/asic.md and results/asic.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import estimate as E  # noqa: E402  (benchmarks/estimate.py: designs, builds, RTL hashes)

LIBRARY = "asic:osu018"
RESULTS = ROOT / "benchmarks" / "results"
SYNTH_JSON = RESULTS / "asic_synth.json"
BUILD = ROOT / "build" / "asic-bench"
# Designs whose 7-series synthesis (results/estimate_synth.json) stayed under this many LUTs
# (mapping one of 16k LUTs takes minutes).
MAX_XC7_LUT = 16000
# Real models (tests/models) mapped besides: the two shared models (tfc_2w2a takes about 15
# minutes); the corpus models are larger still.
REAL = ("unsw_nb15_mlp_w2a2", "tfc_2w2a")
# benchmarks/asic_models.py maps the shared models too (results/asic_models.json, its builds in
# build/asic-models/): a run there of the same Verilog is taken instead of mapping it again.
MODELS_JSON = RESULTS / "asic_models.json"
MODELS_BUILD = ROOT / "build" / "asic-models"
# Soft-L1 loss scales of the area fit tried (0: plain least squares); the one with the least
# leave-one-out error on the calibration designs is kept.
F_SCALES = (0.0, 0.03, 0.05, 0.1, 0.2, 0.3)


def _asic_calibration() -> list[E.Design]:
    """More calibration designs, for the ASIC fit only (seeds from 300; not in estimate.py,
    whose FPGA calibration they would change): the generator's families again at other
    sizes, sparsities and bit widths, so that the fit's ten constants rest on twice the
    designs. Built with estimate.py's own helpers."""
    from hwprune.ir.graph import Rounding

    out: list[E.Design] = []
    s = 300

    def add(tag: str, kernel: str, make, reuse: int = 1) -> None:
        label = f"{kernel} R={reuse}" if reuse > 1 else kernel
        build = E._graph_design(make, kernel, reuse)
        out.append(E.Design(f"acal-{tag}-{s}", "calibration", label, build))

    for kernel in ("mac", "adder-graph"):
        for sizes, sp, wb, ab, signed, rnd in (
            ((20, 20, 10), 0.6, 5, 7, True, "FLOOR"),
            ((28, 28, 12, 6), 0.75, 4, 8, False, "HALF_EVEN"),
            ((24, 32, 10), 0.85, 7, 5, True, "FLOOR"),
            ((16, 20, 8), 0.5, 3, 4, False, "FLOOR"),
        ):
            s += 1
            kw = dict(seed=s, sizes=sizes, sparsity=sp, w_bits=wb, act_bits=ab)
            kw |= dict(in_signed=signed, rounding=Rounding[rnd])
            add(kernel, kernel, E._mlp(**kw))
    s += 1
    add("mac-r2", "mac", E._mlp(seed=s, sizes=(20, 20, 10), sparsity=0.7, w_bits=4), 2)
    s += 1
    add("mac-dsp", "mac-dsp", E._mlp(seed=s, sizes=(20, 24, 10), sparsity=0.75, w_bits=5))
    s += 1
    add("cnn", "mac", E._cnn(seed=s, channels=2, side=6, bipolar=True))
    s += 1
    add(
        "mac-in16",
        "mac",
        E._mlp(seed=s, sizes=(16, 24, 12, 5), sparsity=0.75, w_bits=5, in_bits=16, in_signed=True),
    )
    s += 1
    add(
        "thr", "mac", E._thr(seed=s, sizes=(24, 28, 16, 6), n_thresholds=7, w_bits=3, sparsity=0.75)
    )
    s += 1
    add(
        "thr",
        "mac",
        E._thr(seed=s, sizes=(80, 48, 24, 10), n_thresholds=3, w_bits=2, sparsity=0.65),
    )
    s += 1
    add(
        "bnn-pruned",
        "mac",
        E._thr(seed=s, sizes=(96, 48, 24, 10), w_bits=1, sparsity=0.6, bipolar=True),
    )
    return out


def selected() -> list[E.Design]:
    """The calibration, validation and real designs this benchmark maps, smallest first."""
    fpga = E.load_synth()
    size = {n: (r.get("xc7") or {}).get("lut") for n, r in fpga.items()}
    out = list(_asic_calibration())
    for d in E.DESIGNS:
        if d.group == "real":
            if d.name in REAL:
                out.append(d)
        elif size.get(d.name) is not None and size[d.name] <= MAX_XC7_LUT:
            out.append(d)
    return sorted(out, key=lambda d: (d.group == "real", size.get(d.name) or 0))


def load() -> dict:
    return json.loads(SYNTH_JSON.read_text()) if SYNTH_JSON.exists() else {}


def save(data: dict) -> None:
    tmp = SYNTH_JSON.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(SYNTH_JSON)


def _from_models(name: str, sha: str) -> dict | None:
    """benchmarks/asic_models.py's measurement of ``name`` when it mapped the same Verilog."""
    rtl = MODELS_BUILD / name / "rtl"
    if not MODELS_JSON.is_file() or not rtl.is_dir():
        return None
    rec = json.loads(MODELS_JSON.read_text()).get(name)
    files = {p.name: p.read_text() for p in rtl.glob("*.v")}
    if not rec or "synth" not in rec or E.rtl_sha(files) != sha:
        return None
    syn = {k: v for k, v in rec["synth"].items() if k != "ratio"}
    return {**syn, "wall_seconds": syn["seconds"] + syn["sta"]["seconds"], "rtl_sha256": sha}


def measure(designs: list[E.Design], timeout: float) -> None:
    from hwprune.errors import HwpruneError
    from hwprune.estimate.asic import synth_asic
    from hwprune.libraries import find_library

    lib = find_library(LIBRARY)
    data = load()
    for i, d in enumerate(designs):
        g, files, rtl = E.built(d)  # its Verilog, written as benchmarks/estimate.py does
        sha = E.rtl_sha(files)
        old = data.get(d.name)
        if old and old.get("rtl_sha256") == sha:
            continue
        reused = _from_models(d.name, sha)
        if reused is not None:
            data[d.name] = reused
            save(data)
            print(f"[{i + 1}/{len(designs)}] {d.name}: taken from {MODELS_JSON.name}", flush=True)
            continue
        print(f"[{i + 1}/{len(designs)}] {d.name} ...", flush=True)
        t0 = time.monotonic()
        try:
            rec = synth_asic(rtl, lib, BUILD / d.name / "work", timeout_s=timeout)
        except HwpruneError as e:
            rec = {"error": str(e)[:400]}
        rec["wall_seconds"] = round(time.monotonic() - t0, 2)
        rec["rtl_sha256"] = sha
        data[d.name] = rec
        save(data)
        print(
            f"    {rec.get('area_um2', rec.get('error'))}, "
            f"{(rec.get('sta') or {}).get('critical_path_ns')} ns, {rec['wall_seconds']:.0f} s",
            flush=True,
        )


def rows(designs: list[E.Design]) -> list[dict]:
    """Every measured design: its features (asic_fast.design_features), measured figures."""
    from hwprune.estimate.asic_fast import design_features

    data = load()
    out = []
    for d in designs:
        rec = data.get(d.name)
        if not rec or "error" in rec:
            continue
        g, files = d.build(BUILD / d.name)
        if rec["rtl_sha256"] != E.rtl_sha(files):
            continue  # measured on other Verilog: --measure again
        out.append(
            {
                "name": d.name,
                "group": d.group,
                "kernel": d.kernel,
                "graph": g,
                "features": design_features(g),
                "measured": rec,
            }
        )
    return out


def fit(rs: list[dict], lib) -> dict:
    """The constants of asic_fast for ``lib`` from the calibration rows."""
    import numpy as np
    from scipy.optimize import least_squares, nnls

    from hwprune.estimate.asic_fast import AREA_TERMS, dff_area, layer_delay_terms

    cal = [r for r in rs if r["group"] == "calibration"]
    # Combinational area: nonnegative µm² per term, relative residuals (each design weighs
    # the same whatever its size).
    a = np.array(
        [
            [sum(lf["area_terms"].get(t, 0) for lf in r["features"]) for t in AREA_TERMS]
            for r in cal
        ],
        dtype=float,
    )
    y = np.array([r["measured"]["area_um2"]["combinational"] for r in cal], dtype=float)
    seq = np.array([sum(lf["ff_bits"] for lf in r["features"]) * dff_area(lib) for r in cal])
    total = y + np.array([r["measured"]["area_um2"]["sequential"] for r in cal])

    def solve(idx, f_scale):
        """nnls, then (f_scale > 0) robustly: soft-L1 from the nnls start, so a few designs
        abc shrinks far below their netlist do not drag every term."""
        m = a[idx] / y[idx, None]
        c, _ = nnls(m, np.ones(len(idx)))
        if f_scale:
            c = least_squares(
                lambda c: m @ c - 1.0,
                c + 1e-6,
                bounds=(0.0, np.inf),
                loss="soft_l1",
                f_scale=f_scale,
            ).x
        return c

    # The loss scale by leave-one-out on the calibration designs (total area error).
    loo = {}
    for fs in F_SCALES:
        errs = []
        for i in range(len(cal)):
            c = solve(np.array([j for j in range(len(cal)) if j != i]), fs)
            errs.append(abs((a[i] @ c + seq[i]) / total[i] - 1.0))
        loo[fs] = (statistics.median(errs), _q(errs, 0.9))
    best = min(F_SCALES, key=lambda fs: loo[fs][0])
    coef = solve(np.arange(len(cal)), best)
    area = {t: round(float(c), 3) for t, c in zip(AREA_TERMS, coef)}

    # Critical path: the design's is the worst layer's, t0 + sum(k * term); its loss scale by
    # leave-one-out too (the shared and streamed designs' 25-2,700 ns paths pull a small one).
    names = layer_delay_terms()
    feats = [[[lf["delay_terms"][n] for n in names] for lf in r["features"]] for r in cal]
    meas = np.array([r["measured"]["sta"]["critical_path_ns"] for r in cal])

    def path(c, fs):
        return max(c[0] + np.dot(c[1:], f) for f in fs)

    def solve_delay(idx, f_scale):
        def residual(c):
            return np.array([path(c, feats[i]) / meas[i] - 1.0 for i in idx])

        x0 = np.array([1.0] + [0.1] * len(names))
        kw = {"loss": "soft_l1", "f_scale": f_scale} if f_scale else {}
        return least_squares(residual, x0, bounds=(0.0, np.inf), **kw).x

    dloo = {}
    for fs in F_SCALES:
        errs = []
        for i in range(len(cal)):
            c = solve_delay([j for j in range(len(cal)) if j != i], fs)
            errs.append(abs(path(c, feats[i]) / meas[i] - 1.0))
        dloo[fs] = (statistics.median(errs), _q(errs, 0.9))
    dbest = min(F_SCALES, key=lambda fs: dloo[fs][0])
    x = solve_delay(list(range(len(cal))), dbest)
    delay = {"t0": round(float(x[0]), 4)}
    delay |= {n: round(float(v), 4) for n, v in zip(names, x[1:])}
    return {
        "dff_area_um2": dff_area(lib),
        "area": area,
        "delay": delay,
        "designs": len(cal),
        "f_scale": best,
        "loo_area": {"median": round(loo[best][0], 4), "p90": round(loo[best][1], 4)},
        "delay_f_scale": dbest,
        "loo_delay": {"median": round(dloo[dbest][0], 4), "p90": round(dloo[dbest][1], 4)},
        "tool": cal[0]["measured"]["tool"] if cal else "",
    }


def write_fit(lib, consts: dict) -> None:
    from hwprune.estimate.asic_fast import FIT_FILE, _fits

    old = dict(_fits())
    old[lib.name] = consts
    lines = [
        "# Fitted constants of the fast ASIC estimate (hwprune.estimate.asic_fast), per",
        "# standard-cell library. Written by `.venv/bin/python benchmarks/asic.py --fit` from",
        "# the yosys + OpenSTA runs in benchmarks/results/asic_synth.json on the calibration",
        "# designs only (validation: benchmarks/results/asic.md).",
        "#   area.*: µm² of combinational cells per unit of each term (asic_fast.AREA_TERMS)",
        "#   delay.*: ns; a layer's critical path is t0 + sum(k * term) (asic_fast.DELAY_TERMS)",
        "#   dff_area_um2: the library's flip-flop cell (Liberty), for the record",
        "",
    ]
    for name in sorted(old):
        c = old[name]
        lines.append(f"[{name}]")
        lines.append(f"designs = {c['designs']}")
        lines.append(f"f_scale = {c['f_scale']}")
        lines.append(
            f"loo_area = {{ median = {c['loo_area']['median']}, p90 = {c['loo_area']['p90']} }}"
        )
        if "loo_delay" in c:
            lines.append(f"delay_f_scale = {c['delay_f_scale']}")
            d = c["loo_delay"]
            lines.append(f"loo_delay = {{ median = {d['median']}, p90 = {d['p90']} }}")
        lines.append(f'tool = "{c["tool"]}"')
        lines.append(f"dff_area_um2 = {c['dff_area_um2']}")
        for sect in ("area", "delay"):
            lines.append("")
            lines.append(f"[{name}.{sect}]")
            lines += [f"{k} = {v}" for k, v in c[sect].items()]
        lines.append("")
    FIT_FILE.write_text("\n".join(lines))
    _fits.cache_clear()


def _err(est: float, meas: float) -> float:
    return (est - meas) / meas


_q = E._q  # the quantile benchmarks/estimate.py reports with (linear interpolation)


def report(rs: list[dict], lib, skipped: dict) -> dict:
    from hwprune.estimate.asic_fast import asic_estimate
    from hwprune.estimate.costs import clear_caches

    out = []
    for r in rs:
        clear_caches()
        t0 = time.perf_counter()
        est = asic_estimate(r["graph"], lib)
        secs = time.perf_counter() - t0
        m = r["measured"]
        out.append(
            {
                "name": r["name"],
                "group": r["group"],
                "kernel": r["kernel"],
                "estimate": {
                    "area_um2": est["area_um2"],
                    "critical_path_ns": est["critical_path_ns"],
                },
                "measured": {
                    "area_um2": m["area_um2"],
                    "critical_path_ns": m["sta"]["critical_path_ns"],
                    "cell_count": m["cell_count"],
                },
                "error": {
                    "area": _err(est["area_um2"]["total"], m["area_um2"]["total"]),
                    "combinational": _err(
                        est["area_um2"]["combinational"], m["area_um2"]["combinational"]
                    ),
                    "sequential": _err(est["area_um2"]["sequential"], m["area_um2"]["sequential"])
                    if m["area_um2"]["sequential"]
                    else 0.0,
                    "delay": _err(est["critical_path_ns"], m["sta"]["critical_path_ns"]),
                },
                "estimate_seconds": round(secs, 4),
                "synth_seconds": round(m["seconds"] + m["sta"]["seconds"], 2),
            }
        )
    summary = {}
    for group in ("calibration", "validation", "real"):
        g = [o for o in out if o["group"] == group]
        if not g:
            continue
        s = {"designs": len(g)}
        for k in ("area", "combinational", "sequential", "delay"):
            ab = [abs(o["error"][k]) for o in g]
            s[k] = {"median": statistics.median(ab), "p90": _q(ab, 0.9), "max": max(ab)}
        summary[group] = s
    return {
        "library": lib.target,
        "tools": {"yosys": "0.23", "opensta": "2.0.17"},
        "flow": (
            "synth -flatten -top hwprune_top; dfflibmap -liberty LIB; abc -liberty LIB; "
            "opt_clean -purge; setundef -zero; splitnets -ports; opt_clean; "
            f"OpenSTA at {lib.clock_mhz:g} MHz, zero input/output delay"
        ),
        "summary": summary,
        "designs": out,
        "skipped": skipped,
        "time": {
            "estimate_seconds_total": round(sum(o["estimate_seconds"] for o in out), 3),
            "synth_seconds_total": round(sum(o["synth_seconds"] for o in out), 1),
        },
    }


def _p(x: float) -> str:
    return f"{100 * x:+.1f} %"


def _a(x: float) -> str:
    return f"{100 * x:.1f} %"


def write_report(res: dict, consts: dict) -> None:
    (RESULTS / "asic.json").write_text(json.dumps(res, indent=1) + "\n")
    L = [
        "# Fast ASIC estimate vs yosys + OpenSTA (osu018)",
        "",
        "Written by `.venv/bin/python benchmarks/asic.py` (`--measure --fit` to redo the "
        "synthesis and the fit).",
        "",
        f"Measured: yosys 0.23 mapping to {res['library']} (OSU 180 nm cells, Liberty "
        "/usr/share/qflow/tech/osu018/osu018_stdcells.lib) and OpenSTA 2.0.17: "
        f"`{res['flow']}` (hwprune.estimate.asic.synth_asic). Area = sum of the cells' "
        "Liberty areas; critical path = clock period - worst slack.",
        "",
        "Estimated: hwprune.estimate.asic_fast.asic_estimate on the compiled graph, no "
        "synthesis: the FPGA estimator's per-category netlist counts on CHOICE_FABRIC "
        "without DSPs (uncalibrated) times fitted µm² per term, flip-flop bits times the "
        "library's DFFPOSX1 area, and per layer a critical path from its adder levels "
        "between registers and its widest adder. Constants (hwprune/estimate/asic_fit.toml) "
        "fitted on the calibration designs only.",
        "",
        "## Model constants",
        "",
        f"- dff area: {consts['dff_area_um2']} µm²",
        "- combinational area (µm² per unit): "
        + ", ".join(f"{k} {v}" for k, v in consts["area"].items()),
        f"- area fit: soft-L1 scale {consts['f_scale']} chosen by leave-one-out on the "
        f"calibration designs (LOO total-area error median {_a(consts['loo_area']['median'])}, "
        f"p90 {_a(consts['loo_area']['p90'])})",
        "- delay (ns): " + ", ".join(f"{k} {v}" for k, v in consts["delay"].items()),
        f"- delay fit: soft-L1 scale {consts.get('delay_f_scale')} (0: plain least squares) "
        "chosen by leave-one-out (LOO critical-path error median "
        f"{_a(consts.get('loo_delay', {}).get('median', float('nan')))})",
        "",
        "## Summary (absolute % error)",
        "",
        "| set | designs | area median | area p90 | comb. median | seq. median | "
        "delay median | delay p90 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for group, s in res["summary"].items():
        L.append(
            f"| {group} | {s['designs']} | {_a(s['area']['median'])} | {_a(s['area']['p90'])} "
            f"| {_a(s['combinational']['median'])} | {_a(s['sequential']['median'])} "
            f"| {_a(s['delay']['median'])} | {_a(s['delay']['p90'])} |"
        )
    t = res["time"]
    L += [
        "",
        f"Time: estimate {t['estimate_seconds_total']:.2f} s for all designs (cold caches), "
        f"synthesis + STA {t['synth_seconds_total']:.0f} s.",
        "",
        "## Per design",
        "",
        "| design | set | kernel | est. area µm² | meas. area µm² | err | est. comb. | "
        "meas. comb. | est. seq. | meas. seq. | est. ns | meas. ns | err | est. s | synth s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in res["designs"]:
        e, m = o["estimate"], o["measured"]
        L.append(
            f"| {o['name']} | {o['group']} | {o['kernel']} | {e['area_um2']['total']:,.0f} "
            f"| {m['area_um2']['total']:,.0f} | {_p(o['error']['area'])} "
            f"| {e['area_um2']['combinational']:,.0f} | {m['area_um2']['combinational']:,.0f} "
            f"| {e['area_um2']['sequential']:,.0f} | {m['area_um2']['sequential']:,.0f} "
            f"| {e['critical_path_ns']:.2f} | {m['critical_path_ns']:.2f} "
            f"| {_p(o['error']['delay'])} | {o['estimate_seconds']:.3f} "
            f"| {o['synth_seconds']:.0f} |"
        )
    L += [
        "",
        "## Notes",
        "",
        "- The fit never sees a validation design; the loss scale is chosen by leave-one-out "
        "on the calibration designs, whose LOO error (above) is the fairer expectation for "
        "a new design than the in-sample calibration rows.",
        "- 2-bit networks (the *-105/110/205/210 designs: 2-bit weights and activations) map "
        "to far less than their netlist: abc proves much of their logic constant and drops "
        "the registers feeding it (fewer DFFPOSX1 than live register bits), which no rule "
        "of the netlist sees; they are the large over-estimates.",
        "- Shared (R > 1) and streamed designs time at 25-2,700 ns: abc -liberty inserts no "
        "buffers, so their phase-select / enable net drives hundreds of loads and OpenSTA's "
        "extrapolated slew dominates; the fanout terms only roughly follow that.",
        "- The real models are the two shared models (set `real`; tfc_2w2a maps in about "
        "15 minutes, taken from benchmarks/asic_models.py's run of the same Verilog when there "
        "is one); the corpus models are larger still and not mapped. Both are under-estimated "
        "by 15-20 %. A per-module mapping of the benchmark designs (synth without -flatten, "
        "one module per layer; a side experiment, not in this script) located it: the Dense "
        "layers of threshold networks, 2-bit inputs times 2-bit weights summed in long narrow "
        "adder trees, map to 1.4-2x what the fit gives their `adder_narrow` LUTs, while their "
        "Threshold modules come within about 20 %. The fit's `compare` term is 0 because the "
        "calibration designs' compares are explained by the other terms.",
        "- Calibration: estimate.py's calibration designs (seeds 101-123) and this script's own "
        "(`acal-*`, seeds 301-315: the same families at other sizes, sparsities and widths). "
        "With the first 25 alone the validation area median was 5.7 %; the 15 added designs "
        "brought it under 5 % with the model unchanged.",
        f"- Target (issue 15): validation area median <= 5 %: "
        f"{'met' if res['summary']['validation']['area']['median'] <= 0.05 else 'not met'} "
        f"({_a(res['summary']['validation']['area']['median'])}).",
    ]
    if res["skipped"]:
        L += ["", "## Not measured", ""]
        L += [f"- {n}: {why}" for n, why in res["skipped"].items()]
    (RESULTS / "asic.md").write_text("\n".join(L) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure", action="store_true")
    ap.add_argument("--fit", action="store_true")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args(argv)
    from hwprune.estimate.asic_fast import lib_constants
    from hwprune.libraries import find_library

    lib = find_library(LIBRARY)
    designs = [d for d in selected() if not args.only or d.name in args.only]
    if args.measure:
        measure(designs, args.timeout)
    rs = rows(designs)
    if args.fit:
        write_fit(lib, fit(rs, lib))
    data = load()
    skipped = {
        d.name: data[d.name]["error"].split(";")[0]
        for d in designs
        if "error" in data.get(d.name, {})
    }
    res = report(rs, lib, skipped)
    write_report(res, lib_constants(lib))
    for group, s in res["summary"].items():
        print(
            f"{group}: {s['designs']} designs, area median {_a(s['area']['median'])} "
            f"p90 {_a(s['area']['p90'])}, delay median {_a(s['delay']['median'])} "
            f"p90 {_a(s['delay']['p90'])}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
