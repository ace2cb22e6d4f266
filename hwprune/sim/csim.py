"""hls4ml's g++ C-simulation of a written HLS project, called from Python.

The project's own ``build_lib.sh`` compiles the firmware and hls4ml's bridge
(``<project>_bridge.cpp``) into a shared library, and ``<project>_double`` is called through
ctypes once per vector, as ``hls4ml.model.graph.ModelGraph.predict`` does. The bridge's
interface is double: integers cross it exactly only below 2**53 in magnitude, which is
checked on both sides.

The library is rebuilt only when a source file changed (content hash, not time stamps), and
every run loads a private copy of it: the dynamic loader returns an already loaded library
for a known path, so a rebuilt library under the same name would otherwise be ignored.
"""

from __future__ import annotations

import _ctypes
import ctypes
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from hwprune.errors import HwpruneError

BUILD_LOG = "csim_build.log"
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


def _int_type_range(hls_dir: Path, type_name: str) -> tuple[int, int] | None:
    """The value range of an ap_int/ap_uint typedef in defines.h, None for other types."""
    text = (hls_dir / "firmware" / "defines.h").read_text()
    m = re.search(rf"typedef\s+ap_(u?)int<(\d+)>\s+{type_name}\s*;", text)
    if not m:
        return None
    bits = int(m.group(2))
    return (0, 2**bits - 1) if m.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _source_digest(hls_dir: Path, project: str) -> str:
    digest = hashlib.sha256()
    sources = [hls_dir / "build_lib.sh", hls_dir / f"{project}_bridge.cpp"]
    sources += sorted(p for p in (hls_dir / "firmware").rglob("*") if p.is_file())
    for path in sources:
        if path.suffix != ".so" and not path.name.endswith(".sha256"):
            digest.update(path.relative_to(hls_dir).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_csim(hls_dir: Path) -> Path:
    """Compile the project's C-simulation library with its own build_lib.sh (g++).

    Returns the library path. Skips the build when no source changed since the last one.
    A failed build raises ``HwpruneError`` with the first compiler error and the log path.
    """
    hls_dir = Path(hls_dir).resolve()
    project, stamp = _build_script_values(hls_dir)
    lib = hls_dir / "firmware" / f"{project}-{stamp}.so"
    record = lib.with_name(lib.name + ".sha256")
    digest = _source_digest(hls_dir, project)
    if lib.is_file() and record.is_file() and record.read_text() == digest:
        return lib
    if shutil.which("g++") is None:
        raise HwpruneError("g++ is not installed; the C-simulation needs it (apt-get install g++)")
    log = hls_dir / BUILD_LOG
    record.unlink(missing_ok=True)
    proc = subprocess.run(
        ["bash", "build_lib.sh"], cwd=hls_dir, capture_output=True, text=True, check=False
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
    return lib


def run_csim(hls_dir: Path, inputs: np.ndarray) -> np.ndarray:
    """Run hls4ml's g++ C-simulation of a written project on a batch of integer inputs.

    ``inputs`` has shape (batch, n_in) and holds integers; returns int64 outputs of shape
    (batch, n_out). Builds the library first if needed (see ``build_csim``).
    """
    hls_dir = Path(hls_dir).resolve()
    project, _ = _build_script_values(hls_dir)
    (in_type, _, n_in), (_, _, n_out) = _top_ports(hls_dir, project)
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
    xd = np.ascontiguousarray(x, dtype=np.float64)
    out = np.zeros((x.shape[0], n_out), dtype=np.float64)

    lib = build_csim(hls_dir)
    with tempfile.TemporaryDirectory(prefix="hwprune-csim-") as tmp:
        private = Path(tmp) / lib.name
        shutil.copyfile(lib, private)
        dll = ctypes.CDLL(str(private), mode=ctypes.RTLD_LOCAL)
        try:
            top = getattr(dll, f"{project}_double")
            top.restype = None
            # Raw addresses rather than ndpointer argtypes: the per-call checks would cost
            # more than the simulated network.
            top.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            x_addr, x_step = xd.ctypes.data, xd.strides[0]
            y_addr, y_step = out.ctypes.data, out.strides[0]
            for i in range(x.shape[0]):
                top(x_addr + i * x_step, y_addr + i * y_step)
        finally:
            _ctypes.dlclose(dll._handle)

    if out.size and np.abs(out).max() >= _EXACT:
        # A value that large may have been rounded on its way into the double.
        raise HwpruneError(
            "an output reached 2**53 in magnitude and may not be exact through the double bridge"
        )
    if np.any(out != np.round(out)):
        raise HwpruneError("the C-simulation returned non-integer outputs: a type is not integer")
    return out.astype(np.int64)
