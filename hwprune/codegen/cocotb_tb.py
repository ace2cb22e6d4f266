"""The generated cocotb testbench and its vectors file.

The test module is generated per design (port widths, latency and the layer probes are
constants in it) and reads its data from a JSON vectors file written by ``write_vectors`` from
the golden interpreter, so one build of the RTL can be checked against any number of vector
sets. The in-simulator test, the HDL, the golden data and the pytest launcher stay in separate
files (cocotb's own layout).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwprune.builddir import write_atomic
from hwprune.codegen.axis import axis_top_name, byte_width
from hwprune.codegen.verilog import Layer, emit_verilog, layers
from hwprune.ir import golden
from hwprune.ir.graph import Graph
from hwprune.resources import banner

VECTORS_FORMAT = 1

# Seeded bubbles (cycles with in_valid low) between vectors: the pipeline must keep order
# and drop nothing when the input stream has gaps.
_BUBBLE_PROB = 0.1
_RESET_CYCLES = 3
_SEED = 0

# The bodies of the generated tests: plain Python, identical for every design; the design's
# constants are written above them. Both tests share the packing helpers.
_HELPERS = """

def _pack(vec, bits):
    mask = (1 << bits) - 1
    word = 0
    for i, v in enumerate(vec):
        word |= (int(v) & mask) << (i * bits)
    return word


def _unpack(word, bits, size, signed):
    mask = (1 << bits) - 1
    out = []
    for i in range(size):
        v = (word >> (i * bits)) & mask
        if signed and v >> (bits - 1):
            v -= 1 << bits
        out.append(v)
    return out


def _write_summary(n_vec, n_outputs, n_checked, n_bad, first):
    # The JSON summary run_rtl reads, to $HWPRUNE_RESULTS.
    summary = dict(
        top=TOP,
        n_vectors=n_vec,
        n_outputs=n_outputs,
        n_checked=n_checked,
        n_mismatched=n_bad,
        latency_cycles=LATENCY,
        passed=first is None,
        first_mismatch=first,
    )
    if os.environ.get("HWPRUNE_RESULTS"):
        with open(os.environ["HWPRUNE_RESULTS"], "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\\n")


"""

# The body of the plain top's test.
_BODY = (
    _HELPERS
    + '''def _raw(handle):
    """The handle's value as an unsigned int, or None while any bit is X or Z."""
    v = handle.value
    return int(str(v), 2) if v.is_resolvable else None


def _first_diff(expected, raw, bits, signed):
    """(index, got) of the first element that differs, or None when all agree."""
    if raw is None:
        return 0, None
    got = _unpack(raw, bits, len(expected), signed)
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        if e != g:
            return i, g
    return None


def _mismatch(reason, vector, layer=None, index=None, expected=None, got=None, inp=None):
    return dict(
        reason=reason,
        vector=vector,
        layer=layer,
        index=index,
        expected=expected,
        got=got,
        input=inp,
    )


def _locate(v, drive, sampled, expected, inputs):
    """The first layer whose register disagrees for vector v, probed when v was in it."""
    for j, lay in enumerate(LAYERS):
        k = drive + lay["end_cycle"]
        raw = sampled[k][j] if k < len(sampled) else None
        exp = expected[lay["value"]][v]
        diff = _first_diff(exp, raw, lay["bits"], lay["signed"])
        if diff is not None:
            i, got = diff
            return _mismatch("value", v, lay["label"], i, exp[i], got, inputs[v])
    return None


@cocotb.test()
async def test_vectors(dut):
    """Drive every vector (with seeded bubbles) and compare every layer bit-exactly."""
    with open(os.environ["HWPRUNE_VECTORS"]) as f:
        doc = json.load(f)
    inputs, expected = doc["inputs"], doc["expected"]
    assert all(len(x) == IN_SIZE for x in inputs), f"vectors must have {IN_SIZE} elements"
    n_vec = len(inputs)

    rng = random.Random(SEED)
    plan = []
    for v in range(n_vec):
        while rng.random() < BUBBLE_PROB:
            plan.append(None)
        plan.append(v)

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.in_data.value = 0
    for _ in range(RESET_CYCLES):
        await FallingEdge(dut.clk)
    dut.rst.value = 0

    # Sample at falling edges (everything settled after the rising edge), then drive the
    # inputs the next rising edge captures. A vector driven at falling edge n is in layer L's
    # register at falling edge n + end_cycle(L).
    probes = [getattr(dut, lay["signal"]) for lay in LAYERS]
    sampled, outputs, drive = [], [], []
    for n in range(len(plan) + LATENCY + 1):
        await FallingEdge(dut.clk)
        if str(dut.out_valid.value) == "1":
            outputs.append((n, _raw(dut.out_data)))
        sampled.append([_raw(h) for h in probes])
        item = plan[n] if n < len(plan) else None
        if item is None:
            dut.in_valid.value = 0
            dut.in_data.value = rng.getrandbits(IN_BITS * IN_SIZE)
        else:
            dut.in_valid.value = 1
            dut.in_data.value = _pack(inputs[item], IN_BITS)
            drive.append(n)

    # Every layer register is checked for every vector, not only when the output is wrong: a
    # clip further on can hide an internal error these vectors happen not to expose.
    first, n_checked, n_bad = None, 0, 0
    for v in range(n_vec):
        bad = None
        if v < len(outputs):
            n_checked += 1
            cycle, raw = outputs[v]
            if cycle != drive[v] + LATENCY:
                bad = _mismatch("latency", v, None, None, LATENCY, cycle - drive[v], inputs[v])
        bad = bad or _locate(v, drive[v], sampled, expected, inputs)
        if bad is None and v < len(outputs):
            exp = expected[OUT_VALUE][v]
            diff = _first_diff(exp, raw, OUT_BITS, OUT_SIGNED)
            if diff is not None:
                i, got = diff
                bad = _mismatch("value", v, "out_data", i, exp[i], got, inputs[v])
        if bad is not None:
            n_bad += 1
            first = first or bad
    if first is None and len(outputs) != n_vec:
        first = _mismatch("count", min(len(outputs), n_vec), expected=n_vec, got=len(outputs))

    _write_summary(n_vec, len(outputs), n_checked, n_bad, first)

    if first is not None:
        if first["reason"] == "count":
            msg = f"{first['got']} outputs for {first['expected']} input vectors"
        elif first["reason"] == "latency":
            v, got, exp = first["vector"], first["got"], first["expected"]
            msg = f"vector {v}: came out after {got} cycles, expected {exp}"
        else:
            v, layer, i, exp = first["vector"], first["layer"], first["index"], first["expected"]
            got = "X" if first["got"] is None else first["got"]
            msg = f"vector {v}: layer {layer} element {i}: expected {exp}, got {got}"
            msg += f" ({n_bad} of {n_vec} vectors wrong)"
        raise AssertionError(msg)
'''
)


def emit_testbench(g: Graph, top: str = "hwprune_top") -> dict[str, str]:
    """The cocotb test modules ``test_{top}.py`` for the design ``emit_verilog(g, top)``, and
    ``test_{top}_axis.py`` for its AXI-Stream top (``emit_axis_testbench``).

    It reads the vectors file named by env var ``HWPRUNE_VECTORS`` and writes a JSON summary
    to ``HWPRUNE_RESULTS`` (n_vectors, n_checked, passed, first_mismatch).
    """
    lays = layers(g, top)
    (inp,) = g.inputs
    xv, yv = g.values[inp.name], g.values[g.outputs[0]]
    probes = [_probe(g, lay) for lay in lays]
    head = [
        banner("#").rstrip("\n"),
        f'"""cocotb test of {top}: every vector in $HWPRUNE_VECTORS, bit-exact, every layer."""',
        "",
        "import json",
        "import os",
        "import random",
        "",
        "import cocotb",
        "from cocotb.clock import Clock",
        "from cocotb.triggers import FallingEdge",
        "",
        f"TOP = {_py(top)}",
        f"IN_BITS = {xv.range.bits}",
        f"IN_SIZE = {xv.size}",
        f"OUT_VALUE = {_py(g.outputs[0])}",
        f"OUT_BITS = {yv.range.bits}",
        f"OUT_SIGNED = {yv.range.signed}",
        f"LATENCY = {sum(lay.cycles for lay in lays)}",
        f"SEED = {_SEED}",
        f"BUBBLE_PROB = {_BUBBLE_PROB}",
        f"RESET_CYCLES = {_RESET_CYCLES}",
        "# One entry per layer: the top-level wire exposing its output register.",
        "LAYERS = [",
        *(f"    {_py(p)}," for p in probes),
        "]",
    ]
    return {f"test_{top}.py": "\n".join(head) + "\n" + _BODY, **emit_axis_testbench(g, top)}


# The AXI-Stream test: frames of 1..MAX_FRAME vectors (TLAST on each frame's last beat),
# seeded pauses on the source (bubbles) and on the sink (back-pressure).
_PAUSE_PROB = 0.3
_MAX_FRAME = 4

_AXIS_BODY = (
    _HELPERS
    + '''def _pauses(seed):
    rng = random.Random(seed)
    while True:
        yield rng.random() < PAUSE_PROB


def _mismatch(reason, vector, index=None, expected=None, got=None, inp=None):
    layer = "m_axis_tdata" if reason == "value" else "m_axis_tlast"
    return dict(
        reason=reason, vector=vector, layer=layer, index=index, expected=expected, got=got,
        input=inp,
    )


@cocotb.test()
async def test_axis(dut):
    """Stream every vector through the AXI-Stream top under random bubbles and
    back-pressure; compare every output and every frame boundary (TLAST) bit-exactly."""
    with open(os.environ["HWPRUNE_VECTORS"]) as f:
        doc = json.load(f)
    inputs, expected = doc["inputs"], doc["expected"][OUT_VALUE]
    n_vec = len(inputs)
    rng = random.Random(SEED)
    frames, v = [], 0
    while v < n_vec:
        k = rng.randint(1, MAX_FRAME)
        frames.append(list(range(v, min(n_vec, v + k))))
        v += k

    cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
    source = AxiStreamSource(
        AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn, reset_active_level=False
    )
    sink = AxiStreamSink(
        AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn, reset_active_level=False
    )
    source.set_pause_generator(_pauses(SEED + 1))
    sink.set_pause_generator(_pauses(SEED + 2))
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, RESET_CYCLES)
    dut.aresetn.value = 1
    for fr in frames:
        data = b"".join(_pack(inputs[j], IN_BITS).to_bytes(IN_BYTES, "little") for j in fr)
        await source.send(AxiStreamFrame(data))

    # Generous: every cycle paused on both sides would still finish.
    budget = (n_vec * 4 + LATENCY + 100) * 10
    first, n_checked, n_bad = None, 0, 0
    for fr in frames:
        try:
            rx = await with_timeout(sink.recv(), budget, "ns")
        except SimTimeoutError:
            first = first or _mismatch("count", fr[0], expected=n_vec, got=n_checked)
            break
        data = bytes(rx.tdata)
        if len(data) != len(fr) * OUT_BYTES:  # TLAST early or late
            first = first or _mismatch("tlast", fr[0], None, len(fr), len(data) // OUT_BYTES)
            n_bad += 1
            break
        for k, j in enumerate(fr):
            word = int.from_bytes(data[k * OUT_BYTES : (k + 1) * OUT_BYTES], "little")
            got = _unpack(word, OUT_BITS, len(expected[j]), OUT_SIGNED)
            n_checked += 1
            diff = next((i for i, (e, g) in enumerate(zip(expected[j], got)) if e != g), None)
            if diff is not None:
                n_bad += 1
                first = first or _mismatch(
                    "value", j, diff, expected[j][diff], got[diff], inputs[j]
                )

    _write_summary(n_vec, n_checked, n_checked, n_bad, first)
    if first is not None:
        v, i = first["vector"], first["index"]
        if first["reason"] == "value":
            msg = f"vector {v}: m_axis_tdata element {i}: expected {first['expected']}, "
            msg += f"got {first['got']} ({n_bad} of {n_vec} vectors wrong)"
        elif first["reason"] == "tlast":
            msg = f"frame starting at vector {v}: TLAST after {first['got']} beats, "
            msg += f"expected {first['expected']}"
        else:
            msg = f"{first['got']} outputs for {n_vec} input vectors (timed out)"
        raise AssertionError(msg)
'''
)


def emit_axis_testbench(g: Graph, top: str = "hwprune_top") -> dict[str, str]:
    """The cocotb test ``test_{top}_axis.py`` of the AXI-Stream top (``codegen.axis``), driven
    by cocotbext-axi's AxiStreamSource and AxiStreamSink; same vectors file and summary as
    ``emit_testbench``."""
    lays = layers(g, top)
    (inp,) = g.inputs
    xv, yv = g.values[inp.name], g.values[g.outputs[0]]
    name = axis_top_name(top)
    head = [
        banner("#").rstrip("\n"),
        f'"""cocotb test of {name}: every vector in $HWPRUNE_VECTORS through AXI-Stream."""',
        "",
        "import json",
        "import os",
        "import random",
        "",
        "import cocotb",
        "from cocotb.clock import Clock",
        "from cocotb.triggers import ClockCycles, SimTimeoutError, with_timeout",
        "from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource",
        "",
        f"TOP = {_py(name)}",
        f"IN_BITS = {xv.range.bits}",
        f"IN_BYTES = {byte_width(xv.size * xv.range.bits) // 8}",
        f"OUT_VALUE = {_py(g.outputs[0])}",
        f"OUT_BITS = {yv.range.bits}",
        f"OUT_BYTES = {byte_width(yv.size * yv.range.bits) // 8}",
        f"OUT_SIGNED = {yv.range.signed}",
        f"LATENCY = {sum(lay.cycles for lay in lays)}",
        f"SEED = {_SEED}",
        f"PAUSE_PROB = {_PAUSE_PROB}",
        f"MAX_FRAME = {_MAX_FRAME}",
        f"RESET_CYCLES = {_RESET_CYCLES}",
    ]
    return {f"test_{name}.py": "\n".join(head) + "\n" + _AXIS_BODY}


def _py(v: object) -> str:
    """A Python literal in ruff's format (double quotes); json.dumps escapes like Python."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def _probe(g: Graph, lay: Layer) -> dict:
    v = g.values[lay.value]
    return {
        "label": lay.label,
        "value": lay.value,
        "signal": lay.signal,
        "bits": v.range.bits,
        "signed": v.range.signed,
        "end_cycle": lay.end_cycle,
    }


def write_vectors(path: Path, g: Graph, inputs: np.ndarray) -> None:
    """Write the vectors file: the inputs and, from the golden interpreter, the expected
    value of every layer output the top exposes (the graph output included).

    ``inputs`` is an integer array of shape (n, input size) inside the input's range.
    """
    inputs = np.asarray(inputs, dtype=np.int64)
    vals = golden.run(g, inputs)
    names = [lay.value for lay in layers(g)] + [g.outputs[0]]
    doc = {
        "format": VECTORS_FORMAT,
        "inputs": inputs.tolist(),
        "expected": {n: vals[n].tolist() for n in dict.fromkeys(names)},
    }
    write_atomic(Path(path), json.dumps(doc, separators=(",", ":")) + "\n")


def write_rtl(g: Graph, rtl_dir: Path, top: str = "hwprune_top") -> list[Path]:
    """Write ``emit_verilog(g, top)`` and ``emit_testbench(g, top)`` into ``rtl_dir``.

    Each file is written atomically; returns the written paths in name order.
    """
    files = {**emit_verilog(g, top), **emit_testbench(g, top)}
    paths = []
    for name in sorted(files):
        write_atomic(Path(rtl_dir) / name, files[name])
        paths.append(Path(rtl_dir) / name)
    return paths
