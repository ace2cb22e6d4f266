"""hls4ml's g++ C-simulation of a written HLS project, called from Python.

The project's own ``build_lib.sh`` compiles the firmware and hls4ml's bridge
(``<project>_bridge.cpp``) into a shared library (with ``CSIM_CFLAGS``, tuned for build time),
and ``<project>_double`` is called through ctypes once per vector, as
``hls4ml.model.graph.ModelGraph.predict`` does. The bridge's interface is double: integers
cross it exactly only below 2**53 in magnitude, which is checked on both sides.

The library is rebuilt only when a source file changed (content hash, not time stamps), and
every run loads a private copy of it: the dynamic loader returns an already loaded library
for a known path, so a rebuilt library under the same name would otherwise be ignored.

``trace_csim`` also returns every layer's output, through the bridge's trace functions (as
``hls4ml.model.graph.ModelGraph.trace`` uses them, without importing hls4ml), keyed by IR op
name via the project's ``hwprune_names.json``; ``first_failing_layer`` compares one vector's
trace with the golden interpreter op by op.

A streaming design's project (io_stream, ``hwprune.hlsgen.stream``) reads its image as a
stream of pixels: the IR input vectors are reordered into that stream as its names file says,
and a stream stage's trace (its pixel stream) back into its op's IR vector.
"""

from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hwprune.errors import HwpruneError

# Constants and a hash of the IR; importing hlsgen.project does not import hls4ml.
from hwprune.hlsgen.project import NAMES_FILE, NAMES_FORMAT, graph_digest
from hwprune.ir import golden
from hwprune.ir.graph import Graph

BUILD_LOG = "csim_build.log"
# g++ flags of the C-simulation library, in place of build_lib.sh's "-O3 -fPIC". Compile time
# dominates: a Dense layer is one unrolled ap_int statement per nonzero weight, and at -O3 g++
# inlines and optimises every ap_int operator of each. tfc_2w2a (22355 terms), firmware file:
# 175 s at -O3 (one compute() per layer; 31 s at -O1 since it is split by row), 14 s with these
# flags, which run a vector in 2.1 ms instead of 0.36 ms: the better trade up to ~10k vectors
# (flow.sim's default is 1000). -fno-inline keeps each ap_int operator one out-of-line call.
# The flags change speed only; C++ defines the values computed (checked against golden).
CSIM_CFLAGS = "-O1 -fno-inline -fPIC"
_CFLAGS_LINE = re.compile(r'^CFLAGS="[^"\n]*"$', re.MULTILINE)
_EXACT = 2**53  # doubles hold every integer of smaller magnitude exactly


def _build_script_values(hls_dir: Path) -> tuple[str, str]:
    """Project name and library stamp, as hls4ml wrote them into build_lib.sh."""
    script = hls_dir / "build_lib.sh"
    if not script.is_file():
        raise HwpruneError(f"{script} is missing: {hls_dir} is not a written hls4ml project")
    text = script.read_text()
    project = re.search(r"^PROJECT=(\w+)\s*$", text, re.MULTILINE)
    stamp = re.search(r"^LIB_STAMP=(\w+)\s*$", text, re.MULTILINE)
    if not (project and stamp):
        raise HwpruneError(f"{script} has no PROJECT= or LIB_STAMP= line; rewrite the project")
    return project.group(1), stamp.group(1)


def _stream_entry(hls_dir: Path) -> dict | None:
    """The ``stream`` entry of a streaming project's names file, None for io_parallel."""
    names = hls_dir / NAMES_FILE
    if not names.is_file():
        return None
    return json.loads(names.read_text()).get("stream")


def _top_ports(hls_dir: Path, project: str) -> list[tuple[str, str, int]]:
    """(type, name, size) of each port of the top function, from firmware/<project>.h."""
    header = hls_dir / "firmware" / f"{project}.h"
    m = re.search(rf"\bvoid\s+{project}\s*\(([^)]*)\)", header.read_text())
    if not m:
        raise HwpruneError(f"{header} declares no top function {project}(...)")
    ports = []
    for param in m.group(1).split(","):
        pm = re.fullmatch(r"\s*(\w+)\s+(\w+)\s*\[\s*(\d+)\s*\]\s*", param)
        if not pm:
            raise HwpruneError(
                f"{header}: top-level port {param.strip()!r} is not a 1-D array; run_csim "
                f"handles io_parallel projects with one input and one output"
            )
        ports.append((pm.group(1), pm.group(2), int(pm.group(3))))
    if len(ports) != 2:
        raise HwpruneError(f"{header}: expected one input and one output port, got {len(ports)}")
    return ports


def _stream_ports(hls_dir: Path, project: str, entry: dict) -> list[tuple[str, str, int]]:
    """(element type, name, size) of the input and output streams of a streaming project's
    top function, the sizes in the IR's vectors (``entry``, the names file's)."""
    header = hls_dir / "firmware" / f"{project}.h"
    m = re.search(rf"\bvoid\s+{project}\s*\(([^)]*)\)", header.read_text())
    ports = re.findall(r"hls::stream<\s*(\w+)\s*>\s*&\s*(\w+)", m.group(1)) if m else []
    if len(ports) != 2:
        raise HwpruneError(f"{header}: expected an input and an output stream, got {ports}")
    (in_t, in_name), (out_t, out_name) = ports
    return [(in_t, in_name, int(entry["ir_inputs"])), (out_t, out_name, int(entry["outputs"]))]


def _int_type_range(hls_dir: Path, type_name: str) -> tuple[int, int] | None:
    """The value range of an ap_int/ap_uint typedef in defines.h (of the elements, for an
    io_stream nnet::array), None for other types."""
    text = (hls_dir / "firmware" / "defines.h").read_text()
    m = re.search(rf"typedef\s+ap_(u?)int<(\d+)>\s+{type_name}\s*;", text) or re.search(
        rf"typedef\s+nnet::array<\s*ap_(u?)int<(\d+)>\s*,[^;>]*>\s+{type_name}\s*;", text
    )
    if not m:
        return None
    bits = int(m.group(2))
    return (0, 2**bits - 1) if m.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _build_script(hls_dir: Path) -> str:
    """build_lib.sh's text with CSIM_CFLAGS as its base compiler flags."""
    text = (hls_dir / "build_lib.sh").read_text()
    if len(_CFLAGS_LINE.findall(text)) != 1:
        raise HwpruneError(
            f'{hls_dir / "build_lib.sh"} has no single CFLAGS="..." line: this hls4ml version '
            f"is not supported"
        )
    return _CFLAGS_LINE.sub(f'CFLAGS="{CSIM_CFLAGS}"', text)


def _source_digest(hls_dir: Path, project: str) -> str:
    digest = hashlib.sha256()
    # The flags are part of what was built: changing them rebuilds.
    digest.update(CSIM_CFLAGS.encode() + b"\0")
    sources = [hls_dir / "build_lib.sh", hls_dir / f"{project}_bridge.cpp"]
    sources += sorted(p for p in (hls_dir / "firmware").rglob("*") if p.is_file())
    for path in sources:
        if path.suffix != ".so" and not path.name.endswith(".sha256"):
            digest.update(path.relative_to(hls_dir).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


class _Build:
    """Where a project's C-simulation library goes, and the state of what is built."""

    def __init__(self, hls_dir: Path, cache_dir: Path | None) -> None:
        project, stamp = _build_script_values(hls_dir)
        self.lib = hls_dir / "firmware" / f"{project}-{stamp}.so"
        self.record = self.lib.with_name(self.lib.name + ".sha256")
        self.digest = _source_digest(hls_dir, project)
        self.cached = Path(cache_dir) / f"{self.digest[:32]}.so" if cache_dir is not None else None

    def current(self) -> bool:
        """The project's library was built from these sources."""
        return (
            self.lib.is_file() and self.record.is_file() and self.record.read_text() == self.digest
        )

    def in_cache(self) -> bool:
        return self.cached is not None and self.cached.is_file()


def is_built(hls_dir: Path, cache_dir: Path | None = None) -> bool:
    """Whether ``build_csim`` would find its library built (here or in ``cache_dir``)."""
    try:
        b = _Build(Path(hls_dir).resolve(), cache_dir)
    except (HwpruneError, OSError):
        return False
    return b.current() or b.in_cache()


def build_csim(hls_dir: Path, cache_dir: Path | None = None) -> Path:
    """Compile the project's C-simulation library with its own build_lib.sh (g++), with the
    base flags replaced by CSIM_CFLAGS.

    Returns the library path. Skips the build when no source changed since the last one, in
    this project or, with ``cache_dir``, in the last project built there with the same
    sources (a compile rewrites hls/ with the same bytes; the library is kept under its
    sources' digest). A failed build raises ``HwpruneError`` with the first compiler error
    and the log path.
    """
    hls_dir = Path(hls_dir).resolve()
    b = _Build(hls_dir, cache_dir)
    lib, record, digest, cached = b.lib, b.record, b.digest, b.cached
    if b.current():
        return lib
    if b.in_cache():
        shutil.copyfile(cached, lib)
        record.write_text(digest)
        return lib
    if shutil.which("g++") is None:
        raise HwpruneError("g++ is not installed; the C-simulation needs it (apt-get install g++)")
    log = hls_dir / BUILD_LOG
    record.unlink(missing_ok=True)
    # The edited script runs from memory (the project keeps hls4ml's file); $0 stays the
    # script's own path, from which it finds its directory.
    proc = subprocess.run(
        ["bash", "-c", _build_script(hls_dir), str(hls_dir / "build_lib.sh")],
        cwd=hls_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not lib.is_file():
        lines = (proc.stdout + proc.stderr).splitlines()
        # g++ reports "file:line:col: error: ..." (or "fatal error:"); the first is the cause.
        first = next(
            (ln for ln in lines if re.search(r"\berror\b", ln)), lines[-1] if lines else ""
        )
        raise HwpruneError(
            f"the C-simulation build of {hls_dir} failed: {first.strip()} (full log: {log})"
        )
    record.write_text(digest)
    if cached is not None:  # the one library kept: this one
        cached.parent.mkdir(parents=True, exist_ok=True)
        for old in cached.parent.glob("*.so"):
            old.unlink()
        shutil.copyfile(lib, cached)
    return lib


def _checked_inputs(hls_dir: Path, project: str, inputs: np.ndarray) -> tuple[np.ndarray, int]:
    """The inputs as a contiguous float64 (batch, bridge inputs) array for the bridge, and
    n_out. IR input vectors (batch, n_in); a streaming project's are reordered into its
    input stream (its names file's ``stream.input``: the IR element of each stream element,
    -1 for a 0)."""
    entry = _stream_entry(hls_dir)
    if entry is None:
        ports = _top_ports(hls_dir, project)
    else:
        ports = _stream_ports(hls_dir, project, entry)
    (in_type, _, n_in), (_, _, n_out) = ports
    x = np.asarray(inputs)
    if x.ndim != 2 or x.shape[1] != n_in:
        raise HwpruneError(f"inputs must have shape (batch, {n_in}), got {x.shape}")
    if x.size and not np.issubdtype(x.dtype, np.integer):
        if not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
            raise HwpruneError("inputs must be integers: the hardware is integer-only")
    if x.size and np.abs(x).max() >= _EXACT:
        raise HwpruneError("inputs of magnitude 2**53 or more cannot cross the double bridge")
    bounds = _int_type_range(hls_dir, in_type)
    if x.size and bounds and (x.min() < bounds[0] or x.max() > bounds[1]):
        # The bridge would wrap them silently into the input type.
        raise HwpruneError(f"inputs outside the project's input type {in_type} {list(bounds)}")
    if entry is not None:
        order = np.array(entry["input"], dtype=np.int64)
        x = np.where(order >= 0, x[:, np.maximum(order, 0)], 0)
    return np.ascontiguousarray(x, dtype=np.float64), n_out


@contextlib.contextmanager
def _loaded(lib: Path) -> Iterator[ctypes.CDLL]:
    """A private copy of the library, loaded, and unloaded on exit."""
    with tempfile.TemporaryDirectory(prefix="hwprune-csim-") as tmp:
        private = Path(tmp) / lib.name
        shutil.copyfile(lib, private)
        dll = ctypes.CDLL(str(private), mode=ctypes.RTLD_LOCAL)
        try:
            yield dll
        finally:
            _ctypes.dlclose(dll._handle)


def _top_function(dll: ctypes.CDLL, project: str):
    top = getattr(dll, f"{project}_double")
    top.restype = None
    # Raw addresses rather than ndpointer argtypes: the per-call checks would cost more than
    # the simulated network.
    top.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    return top


def _exact_ints(values: np.ndarray, what: str) -> np.ndarray:
    """Doubles from the bridge as int64, refusing any that may not be exact integers."""
    if values.size and np.abs(values).max() >= _EXACT:
        # A value that large may have been rounded on its way into the double.
        raise HwpruneError(
            f"a value of {what} reached 2**53 in magnitude and may not be exact through the "
            f"double bridge"
        )
    if np.any(values != np.round(values)):
        raise HwpruneError(
            f"the C-simulation returned non-integers for {what}: a type is not integer"
        )
    return values.astype(np.int64)


def run_csim(
    hls_dir: Path, inputs: np.ndarray, cache_dir: Path | None = None, tick=None
) -> np.ndarray:
    """Run hls4ml's g++ C-simulation of a written project on a batch of integer inputs.

    ``inputs`` has shape (batch, n_in) and holds integers; returns int64 outputs of shape
    (batch, n_out). Builds the library first if needed (see ``build_csim``, which keeps it in
    ``cache_dir``); ``tick(n)`` is called with the vectors done every 64 vectors.
    """
    hls_dir = Path(hls_dir).resolve()
    project, _ = _build_script_values(hls_dir)
    xd, n_out = _checked_inputs(hls_dir, project, inputs)
    out = np.zeros((xd.shape[0], n_out), dtype=np.float64)
    lib = build_csim(hls_dir, cache_dir)
    with _loaded(lib) as dll:
        top = _top_function(dll, project)
        x_addr, x_step = xd.ctypes.data, xd.strides[0]
        y_addr, y_step = out.ctypes.data, out.strides[0]
        for i in range(xd.shape[0]):
            if tick is not None and i % 64 == 0:
                tick(i)
            top(x_addr + i * x_step, y_addr + i * y_step)
    return _exact_ints(out, "the output")


# --- per-layer traces -------------------------------------------------------------------------


class _TraceData(ctypes.Structure):
    """The bridge's ``struct trace_data``: a layer name and its output buffer."""

    _fields_ = [("name", ctypes.c_char_p), ("data", ctypes.c_void_p)]


# The bridge's allocate_trace_storage holds one such line per traced layer (hls4ml's writer).
_TRACE_INSERT = re.compile(
    r"trace_outputs\s*->\s*insert\s*\(\s*std::pair\s*<\s*std::string\s*,\s*void\s*\*\s*>\s*\(\s*"
    r'"(\w+)"\s*,\s*\(\s*void\s*\*\s*\)\s*malloc\s*\(\s*(\d+(?:\s*\*\s*\d+)*)\s*\*\s*element_size'
    r"\s*\)"
)


_REWRITE = "rewrite it with hwprune.hlsgen.write_hls_project"


def _names_doc(hls_dir: Path) -> dict:
    names_file = hls_dir / NAMES_FILE
    if not names_file.is_file():
        raise HwpruneError(
            f"{names_file} is missing: the project was not written with tracing; {_REWRITE}"
        )
    doc = json.loads(names_file.read_text())
    if doc.get("format") != NAMES_FORMAT:
        raise HwpruneError(
            f"{names_file} has format {doc.get('format')}, not {NAMES_FORMAT}; {_REWRITE}"
        )
    return doc


def _traced_layers(hls_dir: Path, project: str) -> list[tuple[str, str, int, list | None]]:
    """(IR name, hls4ml name, size, order) per traced layer, in graph order, from NAMES_FILE,
    checked against the layers the bridge allocates trace storage for. ``order`` (a stream
    stage's) places each element of the op's IR vector in the layer's trace, else None."""
    traced = [
        (d["ir"], d["hls"], int(d["size"]), d.get("order"))
        for d in _names_doc(hls_dir)["ops"]
        if d["traced"]
    ]
    bridge = hls_dir / f"{project}_bridge.cpp"
    allocated = [
        (n, int(np.prod([int(f) for f in k.split("*")])))
        for n, k in _TRACE_INSERT.findall(bridge.read_text())
    ]
    listed = sorted((h, k) for _, h, k, _ in traced)
    if sorted(allocated) != listed or len(set(allocated)) != len(allocated):
        raise HwpruneError(
            f"{bridge} allocates trace storage for {sorted(allocated)} but {NAMES_FILE} lists "
            f"{listed}; {_REWRITE}"
        )
    return traced


def trace_csim(hls_dir: Path, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Every traced layer's output in the C-simulation of a batch of integer inputs.

    Returns IR op name -> int64 array of shape (batch, size), in graph order: every op but the
    graph input (projects written by ``write_hls_project`` trace all others; a streaming
    project's stages only their last op, the one whose value the stage streams). Uses the
    bridge's trace functions as ``hls4ml.model.graph.ModelGraph.trace`` does: tracing is
    switched on only inside this call, so ``run_csim`` is not slowed. Meant for small
    batches (diagnosis); inputs are checked as by ``run_csim``.
    """
    hls_dir = Path(hls_dir).resolve()
    project, _ = _build_script_values(hls_dir)
    traced = _traced_layers(hls_dir, project)
    xd, n_out = _checked_inputs(hls_dir, project, inputs)
    batch = xd.shape[0]
    traces = {hls: np.zeros((batch, size), dtype=np.float64) for _, hls, size, _ in traced}
    out = np.zeros((batch, n_out), dtype=np.float64)
    lib = build_csim(hls_dir)
    with _loaded(lib) as dll:
        top = _top_function(dll, project)
        allocate, collect, free = (
            dll.allocate_trace_storage,
            dll.collect_trace_output,
            dll.free_trace_storage,
        )
        allocate.argtypes, allocate.restype = [ctypes.c_size_t], None
        collect.argtypes, collect.restype = [ctypes.POINTER(_TraceData)], None
        free.argtypes, free.restype = [], None
        entries = (_TraceData * len(traced))()
        allocate(ctypes.sizeof(ctypes.c_double))
        try:
            # The buffers stay in place until free_trace_storage: collect their addresses once.
            collect(entries)
            buffers = {}
            for e in entries:
                name = (e.name or b"").decode()
                if name not in traces or not e.data:
                    raise HwpruneError(f"the bridge returned an unknown trace buffer {name!r}")
                size = traces[name].shape[1]
                buffers[name] = np.ctypeslib.as_array((ctypes.c_double * size).from_address(e.data))
            for i in range(batch):
                top(xd.ctypes.data + i * xd.strides[0], out.ctypes.data + i * out.strides[0])
                for name, buf in buffers.items():
                    traces[name][i] = buf
        finally:
            free()
    return {
        ir: _exact_ints(traces[hls] if order is None else traces[hls][:, order], f"layer {ir!r}")
        for ir, hls, _, order in traced
    }


def first_failing_layer(hls_dir: Path, g: Graph, x_vector: np.ndarray) -> dict | None:
    """The first op, in graph order, whose C-simulation output differs from golden on one
    input vector: ``{"layer": IR op name, "index": element, "expected": golden value, "got":
    C-simulation value}``, or None if every traced layer agrees.

    ``g`` must be the graph the project was written from (checked by its digest).
    """
    hls_dir = Path(hls_dir).resolve()
    x = np.asarray(x_vector)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] != 1:
        raise HwpruneError(f"give one input vector, got an array of shape {np.shape(x_vector)}")
    if _names_doc(hls_dir).get("graph") != graph_digest(g):
        raise HwpruneError(
            f"{hls_dir} was not written from this graph (its {NAMES_FILE} records another "
            f"graph digest); give the graph the project was written from, or rewrite it"
        )
    got = trace_csim(hls_dir, x)
    want = golden.run(g, x)
    for name in got:
        w, t = want[name][0], got[name][0]
        bad = np.flatnonzero(w != t)
        if bad.size:
            i = int(bad[0])
            return {"layer": name, "index": i, "expected": int(w[i]), "got": int(t[i])}
    return None
