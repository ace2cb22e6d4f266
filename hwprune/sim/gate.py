"""Gate-level simulation: the netlist ``map_to_library`` wrote (``mapped.v``, the library's
cells), simulated with Icarus through the design's own generated cocotb testbench and harness.

``run_gate_level(rtl_dir, mapped_v, cells_v, work_dir, vectors)`` assembles a simulation
folder ``work_dir/src`` and hands it to ``rtl.run_rtl`` (same build, same run, same summary)::

    {top}.v                 a wrapper named like the RTL top, with its bus ports, around the
                            netlist (yosys' ``splitnets -ports`` made one port per bit)
    {top}_gates.v           mapped.v with its module renamed {top} -> {top}_gates
    cells_<name>.v          a copy of the library's cell models (the file is not edited)
    tb/{top}_bench.v        the harness, byte for byte
    test_{top}.py           the testbench, its LAYERS narrowed to the output layer (below)

The RTL layer modules are not compiled. Icarus builds the cell models as they are: it skips
their ``specify`` blocks (delays and timing checks; ``-gspecify`` is not given), so the run is
zero-delay, and of each ``min:typ:max`` delay it takes ``typ`` (a warning per delay in the
build log, nothing else). The harness runs its own clock, as for the RTL.

What the netlist can show: the harness reads each layer's output register by a hierarchical
name (``u_top.dense0_q``), which the flattened, purged netlist no longer has. The wrapper
drives the probe the RTL top wires to ``out_data`` (``assign out_data = <probe>;``) from the
netlist's ``out_data`` port, and every other probe with X; the testbench copy checks only the
layers the wrapper can drive (the output layer, read from its own result file), every vector,
bit-exact, plus ``out_valid``'s latency and count as the RTL run does. Registers start at X,
as in RTL simulation (the RTL has no initial values; its only reset, the valid pipeline's
synchronous one, is ordinary logic in the netlist), and the harness holds ``rst`` for
``RESET_CYCLES`` before the first vector.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

from hwprune.codegen.harness import bench_name
from hwprune.errors import HwpruneError
from hwprune.names import TOP
from hwprune.sim.rtl import RtlResult, run_rtl

_RTL_PORT = re.compile(r"^\s*(input|output)\s+wire\s+(?:\[(\d+):0\]\s+)?(\w+)", re.M)
_NET_PORT = re.compile(r"^\s*(input|output)\s+\\?([A-Za-z_]\w*)(?:\[(\d+)\])?\s*;", re.M)
_RTL_WIRE = re.compile(r"^\s*wire\s+(?:\[(\d+):0\]\s+)?(\w+)\s*;", re.M)
_OUT_ASSIGN = re.compile(r"^\s*assign\s+out_data\s*=\s*(\w+)\s*;", re.M)
_PROBE = re.compile(r"\bu_top\.(\w+)")
_LAYERS = re.compile(r"^LAYERS = \[\n(.*?)^\]\n", re.M | re.S)
_LAYER_FILE = 'f"hwprune_layer{k}.hex"'


def _rtl_ports(top_v: Path, top: str) -> list[tuple[str, str, int]]:
    """(direction, name, width) of the RTL top's ports, in order."""
    text = top_v.read_text()
    m = re.search(rf"^module\s+{re.escape(top)}\s*\((.*?)\);", text, re.M | re.S)
    if m is None:
        raise HwpruneError(f"{top_v}: no module {top}; write the RTL with write_rtl")
    return [(d, n, int(hi) + 1 if hi else 1) for d, hi, n in _RTL_PORT.findall(m.group(1))]


def _net_ports(text: str) -> dict[tuple[str, int | None], str]:
    """{(name, bit or None): direction} of the netlist's (split) ports."""
    return {(n, None if b == "" else int(b)): d for d, n, b in _NET_PORT.findall(text)}


def _wrapper(
    top: str, ports: list[tuple[str, str, int]], net: dict, probes: dict[str, tuple[int, str]]
) -> str:
    """The ``top`` module around ``{top}_gates``: bus ports, per-bit connections, probes."""
    conns = []
    for d, name, width in ports:
        bits = [(name, None)] if width == 1 and (name, None) in net else []
        bits = bits or [(name, i) for i in range(width)]
        for n, i in bits:
            if net.get((n, i)) != d:
                where = n if i is None else f"{n}[{i}]"
                raise HwpruneError(
                    f"the mapped netlist has no {d} port {where} of the RTL top {top}; "
                    "map this build's rtl folder with map_to_library"
                )
            conns.append(f"        .{n} ({n})" if i is None else f"        .\\{n}[{i}] ({n}[{i}])")
    decl = [f"    {d} wire {f'[{w - 1}:0] ' if w > 1 else ''}{n}" for d, n, w in ports]
    lines = [
        "// Written by hwprune.sim.gate: the gate-level netlist behind the RTL top's ports.",
        "`timescale 1ns / 1ps",
        f"module {top} (",
        ",\n".join(decl),
        ");",
        f"    {top}_gates u_gates (",
        ",\n".join(conns),
        "    );",
        "    // The harness' layer probes: the output layer's is the netlist's out_data; the",
        "    // others were flattened away (X, and not checked).",
    ]
    for name, (width, src) in probes.items():
        lines.append(f"    wire [{width - 1}:0] {name} = {src};")
    lines += ["endmodule", ""]
    return "\n".join(lines)


def _narrow_test(text: str, keep: set[str], test_path: Path) -> str:
    """The testbench with LAYERS narrowed to the probes in ``keep``, each still read from
    its own result file."""
    m = _LAYERS.search(text)
    if m is None or text.count(_LAYER_FILE) != 1:
        raise HwpruneError(
            f"{test_path}: not the testbench hwprune.sim.gate knows (no LAYERS list or layer "
            "file name); regenerate it with write_rtl"
        )
    entries = [ast.literal_eval(line.strip().rstrip(",")) for line in m.group(1).splitlines()]
    kept = [{**e, "file": k} for k, e in enumerate(entries) if e["signal"] in keep]
    if not kept:
        raise HwpruneError(f"{test_path}: no layer of the testbench is visible at the ports")
    body = "".join(f"    {e!r},\n" for e in kept)
    text = text[: m.start(1)] + body + text[m.end(1) :]
    return text.replace(_LAYER_FILE, "f\"hwprune_layer{lay.get('file', k)}.hex\"")


def prepare_gate_sources(
    rtl_dir: Path, mapped_v: Path, cells_v: Path, src_dir: Path, top: str = TOP
) -> Path:
    """Write the simulation folder (module docstring) into ``src_dir``; returns it."""
    rtl_dir, mapped_v, cells_v, src_dir = map(Path, (rtl_dir, mapped_v, cells_v, src_dir))
    bench = rtl_dir / "tb" / f"{bench_name(top)}.v"
    test = rtl_dir / f"test_{top}.py"
    for path, what in (
        (rtl_dir / f"{top}.v", "the RTL top"),
        (bench, "the harness"),
        (test, "the testbench"),
        (mapped_v, "the mapped netlist (map_to_library writes it)"),
        (cells_v, "the library's cell models"),
    ):
        if not path.is_file():
            raise HwpruneError(f"{path} is missing: {what}")
    netlist, n = re.subn(
        rf"^module\s+{re.escape(top)}\s*\(",
        f"module {top}_gates(",
        mapped_v.read_text(),
        flags=re.M,
    )
    if n != 1:
        raise HwpruneError(f"{mapped_v}: no module {top}; map the design with map_to_library")
    rtl_top = (rtl_dir / f"{top}.v").read_text()
    out = _OUT_ASSIGN.search(rtl_top)
    widths = {name: int(hi) + 1 if hi else 1 for hi, name in _RTL_WIRE.findall(rtl_top)}
    probes = {}
    for name in dict.fromkeys(_PROBE.findall(bench.read_text())):
        if name not in widths:
            raise HwpruneError(f"{bench} reads u_top.{name}, which {top}.v does not declare")
        src = (
            "out_data"
            if out is not None and out.group(1) == name
            else f"{{{widths[name]}{{1'bx}}}}"
        )
        probes[name] = (widths[name], src)
    shown = {n for n, (_, src) in probes.items() if src == "out_data"}

    shutil.rmtree(src_dir, ignore_errors=True)
    (src_dir / "tb").mkdir(parents=True)
    ports = _rtl_ports(rtl_dir / f"{top}.v", top)
    (src_dir / f"{top}.v").write_text(_wrapper(top, ports, _net_ports(netlist), probes))
    (src_dir / f"{top}_gates.v").write_text(netlist)
    shutil.copyfile(cells_v, src_dir / f"cells_{cells_v.name}")
    shutil.copyfile(bench, src_dir / "tb" / bench.name)
    (src_dir / test.name).write_text(_narrow_test(test.read_text(), shown, test))
    return src_dir


def run_gate_level(
    rtl_dir: Path,
    mapped_v: Path,
    cells_v: Path,
    work_dir: Path,
    vectors: Path,
    top: str = TOP,
    cache_dir: Path | None = None,
) -> RtlResult:
    """Simulate ``mapped_v`` (``map_to_library``'s netlist of ``rtl_dir``) on the cell models
    ``cells_v`` with Icarus, through ``rtl_dir``'s testbench and harness, on ``vectors``
    (module docstring). The simulation folder is ``work_dir/src``, the run's files and logs
    ``work_dir/sim``; a mismatch is ``passed=False``, as for ``run_rtl``."""
    work_dir = Path(work_dir)
    src = prepare_gate_sources(rtl_dir, mapped_v, cells_v, work_dir / "src", top)
    return run_rtl(src, work_dir / "sim", vectors, "icarus", top, cache_dir=cache_dir)
