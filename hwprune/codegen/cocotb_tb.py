"""The generated cocotb testbench and its vectors file.

The test module is generated per design (port widths, latency and the layer probes are
constants in it) and reads its data from a JSON vectors file written by ``write_vectors`` from
the golden interpreter, so one build of the RTL can be checked against any number of vector
sets. The in-simulator test, the HDL, the golden data and the pytest launcher stay in separate
files (cocotb's own layout).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from hwprune.builddir import write_atomic
from hwprune.codegen.axis import axis_top_name, byte_width
from hwprune.codegen.harness import OWN_CLOCK, RESET_CYCLES, emit_harness
from hwprune.codegen.verilog import Layer, emit_verilog, top_layers
from hwprune.hw.reuse import reuse_of
from hwprune.ir import golden
from hwprune.ir.graph import Graph
from hwprune.resources import banner

VECTORS_FORMAT = 2  # 2: numpy .npz (1 was JSON)

# Seeded bubbles (cycles with in_valid low) between vectors: the pipeline must keep order
# and drop nothing when the input stream has gaps.
_BUBBLE_PROB = 0.1
_SEED = 0

# The bodies of the generated tests: plain Python, identical for every design; the design's
# constants are written above them. Both share the summary writer; the AXI-Stream test packs
# words itself.
_PACKING = """

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


"""

_SUMMARY = """

def _write_summary(n_vec, n_outputs, n_checked, n_bad, first, seconds=None):
    # The JSON summary run_rtl reads, to $HWPRUNE_RESULTS; ``seconds``: where the time went.
    summary = dict(
        seconds=seconds,
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

# The harness's file helpers: numpy in, numpy out (the stream test shares them).
_FILES = '''
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# ASCII -> nibble; 255 for anything else (X or Z bits, which Icarus writes as x or z)
_NIBBLE = np.full(256, 255, dtype=np.uint8)
_NIBBLE[_HEX] = np.arange(16)
_NIBBLE[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16)


def _bus_bytes(values, bits):
    """``values`` (n, size) packed as buses (element i at bits [i*bits +: bits]): (n, bytes),
    little-endian."""
    n, size = values.shape
    dt = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if np.iinfo(t).bits >= bits)
    v = (values.astype(np.int64) & ((1 << bits) - 1)).astype(dt)
    b = ((v[:, :, None] >> np.arange(bits, dtype=dt)) & dt(1)).astype(np.uint8)
    return np.packbits(b.reshape(n, size * bits), axis=1, bitorder="little")


def _hex_digits(width):
    return (width + 3) // 4


def _write_stimulus(path, valid, values, bits):
    """One line per cycle, "<valid> <hex bus>", all rows at once."""
    n, size = values.shape
    digits = _hex_digits(size * bits)
    be = _bus_bytes(values, bits)[:, ::-1]  # most significant byte first
    nib = np.stack([be >> 4, be & 15], axis=2).reshape(n, -1)[:, -digits:]
    lines = np.empty((n, digits + 3), dtype=np.uint8)
    lines[:, 0] = np.where(valid, ord("1"), ord("0"))
    lines[:, 1] = ord(" ")
    lines[:, 2:-1] = _HEX[nib]
    lines[:, -1] = ord("\\n")
    lines.tofile(path)


def _read_hex(path, width):
    """A results file of one ``width``-bit hex word per line: (n, bytes) little-endian and a
    mask of the rows holding X or Z bits (those read as zero)."""
    digits = _hex_digits(width)
    raw = np.fromfile(path, dtype=np.uint8)
    rows = raw.reshape(-1, digits + 1)[:, :digits]
    nib = _NIBBLE[rows]
    bad = (nib == 255).any(axis=1)
    nib[nib == 255] = 0
    if digits % 2:
        nib = np.concatenate([np.zeros((len(nib), 1), dtype=np.uint8), nib], axis=1)
    be = (nib[:, 0::2] << 4) | nib[:, 1::2]
    return np.ascontiguousarray(be[:, ::-1]), bad


def _element(row_bytes, bits, index, signed):
    word = int.from_bytes(row_bytes.tobytes(), "little")
    v = (word >> (index * bits)) & ((1 << bits) - 1)
    return v - (1 << bits) if signed and v >> (bits - 1) else v


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


def _first_bad(expected, got_bytes, xmask, bits, signed, layer, v, inputs):
    """The mismatch of vector v in one layer's results (its first differing element)."""
    exp = [int(e) for e in expected[v]]
    if xmask[v]:
        return _mismatch("value", v, layer, 0, exp[0], None, inputs[v])
    for i, e in enumerate(exp):
        g = _element(got_bytes[v], bits, i, signed)
        if g != e:
            return _mismatch("value", v, layer, i, e, g, inputs[v])
    return None
'''

# The body of the plain top's test; the harness streams the vectors.
_BODY = (
    _SUMMARY
    + _FILES
    + '''

@cocotb.test()
async def test_vectors(dut):
    """Stream every vector (with seeded bubbles) through the harness, then compare every
    layer's register of every vector bit-exactly."""
    t0 = time.perf_counter()
    doc = np.load(os.environ["HWPRUNE_VECTORS"])
    inputs = doc["inputs"]
    assert inputs.shape[1] == IN_SIZE, f"vectors must have {IN_SIZE} elements"
    n_vec = len(inputs)

    # Seeded bubbles: before each vector, a geometric number of cycles with in_valid low.
    rng = np.random.default_rng(SEED)
    gaps = rng.geometric(1.0 - BUBBLE_PROB, n_vec) - 1 if BUBBLE_PROB > 0 else np.zeros(n_vec)
    # At reuse factor R the top takes a vector per R cycles at most: R - 1 more bubbles.
    gaps = gaps + (REUSE - 1)
    drive = np.cumsum(gaps + 1) - 1  # the cycle (input line) of each vector
    n_lines = int(drive[-1]) + 1 if n_vec else 0
    noise = rng.integers(0, 1 << IN_BITS, size=(n_lines, IN_SIZE))
    noise[drive] = inputs
    valid = np.zeros(n_lines, dtype=bool)
    valid[drive] = True
    _write_stimulus("hwprune_in.hex", valid, noise, IN_BITS)

    t1 = time.perf_counter()
    if os.environ.get(OWN_CLOCK) != "1":  # else the harness clocks itself
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.start.value = 0
    await Timer(20, unit="ns")  # two clock periods
    dut.start.value = 1
    # Generous: twice the cycles the stream needs.
    budget = 2 * (n_lines + LATENCY + RESET_CYCLES + 10) * 10
    try:
        await with_timeout(RisingEdge(dut.done), budget, "ns")
    except SimTimeoutError:
        pass
    t2 = time.perf_counter()

    first, n_bad = None, 0
    bad_any = np.zeros(n_vec, dtype=bool)
    # Every layer register is checked for every vector, not only when the output is wrong: a
    # clip further on can hide an internal error these vectors happen not to expose.
    per_layer = []
    for k, lay in enumerate(LAYERS):
        exp = doc["expected/" + lay["value"]]
        got, xs = _read_hex(f"hwprune_layer{k}.hex", exp.shape[1] * lay["bits"])
        if len(got) != n_vec:
            n_got = min(len(got), n_vec)
            first = first or _mismatch("count", n_got, lay["label"], None, n_vec, len(got))
            break
        wrong = (got != _bus_bytes(exp, lay["bits"])).any(axis=1) | xs
        per_layer.append((lay, exp, got, xs, wrong))
        bad_any |= wrong
    # the cycle of every out_valid, 32-bit hex
    cyc, _ = _read_hex("hwprune_out.hex", 32)
    outs = cyc.view("<u4").ravel().astype(np.int64)
    if first is None and len(outs) != n_vec:
        first = _mismatch("count", min(len(outs), n_vec), None, None, n_vec, len(outs))
    late = np.zeros(n_vec, dtype=bool)
    if first is None:
        late = outs - drive != LATENCY
    n_bad = int((bad_any | late).sum())
    if first is None and n_bad:
        v = int(np.flatnonzero(bad_any | late)[0])
        if late[v]:
            took = int(outs[v] - drive[v])
            first = _mismatch("latency", v, None, None, LATENCY, took, inputs[v].tolist())
        else:
            for lay, exp, got, xs, wrong in per_layer:
                if wrong[v]:
                    bits, signed, label = lay["bits"], lay["signed"], lay["label"]
                    first = _first_bad(exp, got, xs, bits, signed, label, v, inputs.tolist())
                    break

    n_checked = 0 if first is not None and first["reason"] == "count" else n_vec
    t3 = time.perf_counter()
    seconds = dict(stimulus=t1 - t0, simulate=t2 - t1, compare=t3 - t2)
    _write_summary(n_vec, len(outs), n_checked, n_bad, first, seconds)

    if first is not None:
        if first["reason"] == "count":
            where = f" from layer {first['layer']}" if first["layer"] else ""
            msg = f"{first['got']} results{where} for {first['expected']} input vectors"
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
    lays = top_layers(g, top)
    (inp,) = g.inputs
    xv, yv = g.values[inp.name], g.values[g.outputs[0]]
    probes = [_probe(g, lay) for lay in lays]
    head = [
        *vector_test_head(top, "every vector in $HWPRUNE_VECTORS, bit-exact, every layer"),
        f"TOP = {_py(top)}",
        f"IN_BITS = {xv.range.bits}",
        f"IN_SIZE = {xv.size}",
        f"OUT_VALUE = {_py(g.outputs[0])}",
        f"OUT_BITS = {yv.range.bits}",
        f"OUT_SIGNED = {yv.range.signed}",
        f"LATENCY = {lays[-1].end_cycle}",
        f"REUSE = {reuse_of(g)}  # a vector per this many cycles at most",
        f"SEED = {_SEED}",
        f"BUBBLE_PROB = {_BUBBLE_PROB}",
        f"RESET_CYCLES = {RESET_CYCLES}",
        f"OWN_CLOCK = {_py(OWN_CLOCK)}  # set to 1 when the harness runs its own clock",
        "# One entry per layer: the top-level wire exposing its output register.",
        "LAYERS = [",
        *(f"    {_py(p)}," for p in probes),
        "]",
    ]
    return {
        f"test_{top}.py": "\n".join(head) + "\n" + _BODY,
        **emit_harness(g, top),
        **emit_axis_testbench(g, top),
    }


# The AXI-Stream test: frames of 1..MAX_FRAME vectors (TLAST on each frame's last beat),
# seeded pauses on the source (bubbles) and on the sink (back-pressure).
_PAUSE_PROB = 0.3
_MAX_FRAME = 4
# The AXI-Stream level checks the interface (handshakes, back-pressure, TLAST) on at most this
# many vectors: cocotbext-axi is Python per beat (about 1,000 vectors/s with Icarus).
AXIS_MAX_VECTORS = 2000

_AXIS_BODY = (
    _PACKING
    + _SUMMARY
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
    doc = np.load(os.environ["HWPRUNE_VECTORS"])
    # The interface on the first MAX_VECTORS vectors: cocotbext-axi drives every beat from
    # Python; the plain top's test checks the datapath on all of them at simulator speed.
    inputs = doc["inputs"][:MAX_VECTORS].tolist()
    expected = doc["expected/" + OUT_VALUE][:MAX_VECTORS].tolist()
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
    lays = top_layers(g, top)
    (inp,) = g.inputs
    xv, yv = g.values[inp.name], g.values[g.outputs[0]]
    name = axis_top_name(top)
    head = [
        *axis_test_head(name, "vector"),
        f"TOP = {_py(name)}",
        f"IN_BITS = {xv.range.bits}",
        f"IN_BYTES = {byte_width(xv.size * xv.range.bits) // 8}",
        f"OUT_VALUE = {_py(g.outputs[0])}",
        f"OUT_BITS = {yv.range.bits}",
        f"OUT_BYTES = {byte_width(yv.size * yv.range.bits) // 8}",
        f"OUT_SIGNED = {yv.range.signed}",
        f"LATENCY = {lays[-1].end_cycle}",
        f"SEED = {_SEED}",
        f"PAUSE_PROB = {_PAUSE_PROB}",
        f"MAX_FRAME = {_MAX_FRAME}",
        f"MAX_VECTORS = {AXIS_MAX_VECTORS}",
        f"RESET_CYCLES = {RESET_CYCLES}",
    ]
    return {f"test_{name}.py": "\n".join(head) + "\n" + _AXIS_BODY}


def axis_test_head(name: str, what: str) -> list[str]:
    """The first lines of an AXI-Stream test module: banner, docstring, imports."""
    return [
        banner("#").rstrip("\n"),
        f'"""cocotb test of {name}: every {what} in $HWPRUNE_VECTORS through AXI-Stream."""',
        "",
        "import json",
        "import os",
        "import random",
        "",
        "import cocotb",
        "from cocotb.clock import Clock",
        "from cocotb.triggers import ClockCycles, SimTimeoutError, with_timeout",
        "import numpy as np",
        "from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource",
        "",
    ]


def vector_test_head(top: str, what: str) -> list[str]:
    """The first lines of a harness test module: banner, docstring, imports."""
    return [
        banner("#").rstrip("\n"),
        f'"""cocotb test of {top}: {what}."""',
        "",
        "import json",
        "import os",
        "import time",
        "",
        "import cocotb",
        "import numpy as np",
        "from cocotb.clock import Clock",
        "from cocotb.triggers import RisingEdge, SimTimeoutError, Timer, with_timeout",
        "",
    ]


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
    """Write the vectors file (numpy ``.npz``): ``inputs`` and, from the golden interpreter,
    ``expected/<value>`` for every layer output the top exposes (the graph output included),
    each an int64 array of one row per vector; ``format`` is ``VECTORS_FORMAT``.

    ``inputs`` is an integer array of shape (n, input size) inside the input's range. A
    streaming design's file holds each stage's pixels instead (``stream_tb``).
    """
    from hwprune.hw.stream import plan

    if (p := plan(g)) is not None:
        from hwprune.codegen.stream_tb import write_stream_vectors

        return write_stream_vectors(path, g, p, inputs)
    inputs = np.asarray(inputs, dtype=np.int64)
    vals = golden.run(g, inputs)
    names = [lay.value for lay in top_layers(g)] + [g.outputs[0]]
    arrays = {"format": np.array(VECTORS_FORMAT), "inputs": inputs}
    arrays |= {f"expected/{n}": np.asarray(vals[n], dtype=np.int64) for n in dict.fromkeys(names)}
    save_vectors(path, arrays)


def save_vectors(path: Path, arrays: dict) -> None:
    """Write a vectors file (``np.savez``) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


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
