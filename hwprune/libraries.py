"""The standard-cell library catalogue (ASIC targets): one TOML file per library in the
top-level ``asic/`` folder, shipped inside the wheel like ``boards/``.

A target is named ``asic:<name>`` wherever a board name is accepted (``hwprune estimate
--target asic:osu018``). A library file holds::

    name = "osu018"               # equals the file name without .toml
    description = "OSU 180 nm standard cells (MOSIS SCN6M_SUBM.10), typical corner"
    process_nm = 180              # the process node
    voltage = 1.8                 # nominal supply (the Liberty file's nom_voltage)
    corner = "typical"            # the Liberty file's operating conditions
    clock_mhz = 200.0             # default clock: what OpenSTA times against
    liberty = "/usr/share/qflow/tech/osu018/osu018_stdcells.lib"   # as installed
    lef = "/usr/share/qflow/tech/osu018/osu018_stdcells.lef"
    verilog = "/usr/share/qflow/tech/osu018/osu018_stdcells.v"     # cell models (gate sim)
    package = "qflow-tech-osu018" # the Debian package that installs the three files
    source = "where the files and figures come from"

Every key is checked when the file is loaded; the paths are checked when a flow needs them
(``Library.check_installed``), so the catalogue lists on a machine without the files.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwprune.boards import read_toml
from hwprune.errors import HwpruneError
from hwprune.resources import data_dir

PREFIX = "asic:"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "description": str,
    "process_nm": int,
    "voltage": (int, float),
    "corner": str,
    "clock_mhz": (int, float),
    "liberty": str,
    "lef": str,
    "verilog": str,
    "package": str,
    "source": str,
}


@dataclass(frozen=True)
class Library:
    """One standard-cell library as installed (see the module docstring)."""

    name: str
    description: str
    process_nm: int
    voltage: float
    corner: str
    clock_mhz: float
    liberty: Path
    lef: Path
    verilog: Path
    package: str
    source: str

    @property
    def target(self) -> str:
        """The name a user writes: ``asic:<name>``."""
        return PREFIX + self.name

    def check_installed(self) -> None:
        """Raise HwpruneError with the install command when a file of the library is missing."""
        for what in ("liberty", "lef", "verilog"):
            path = getattr(self, what)
            if not path.is_file():
                raise HwpruneError(
                    f"{self.target}: its {what} file {path} is not installed; install it with "
                    f"'sudo apt-get install {self.package}' (or 'make deps')"
                )


def _kind(t: type | tuple[type, ...]) -> str:
    return "a number" if isinstance(t, tuple) else {str: "a string", int: "an integer"}[t]


def _is(value: Any, t: type | tuple[type, ...]) -> bool:
    return not isinstance(value, bool) and isinstance(value, t)


def load_library(path: str | Path) -> Library:
    """Load and validate one library file; raise HwpruneError naming the file, key and fix."""
    path = Path(path)
    doc = read_toml(path, "library")
    for key in doc:
        if key not in _KEYS:
            raise HwpruneError(
                f"{path}: unknown key '{key}'; remove it or use one of: {', '.join(_KEYS)}"
            )
    for key, t in _KEYS.items():
        if key not in doc:
            raise HwpruneError(f"{path}: missing key '{key}'; add it ({_kind(t)})")
        if not _is(doc[key], t):
            raise HwpruneError(
                f"{path}: key '{key}' must be {_kind(t)}, got {doc[key]!r}; fix the value"
            )
        if t is str and not doc[key].strip():
            raise HwpruneError(f"{path}: key '{key}' is empty; fill it in")
    name = doc["name"]
    if not _NAME.fullmatch(name) or name != path.stem:
        raise HwpruneError(
            f"{path}: key 'name' is {name!r} but must equal the file name {path.stem!r} "
            "(lower case letters, digits and -); rename the file or fix the name"
        )
    for key in ("process_nm", "voltage", "clock_mhz"):
        v = doc[key]
        if not (v > 0 and math.isfinite(v)):
            raise HwpruneError(f"{path}: key '{key}' must be > 0, got {v!r}; fix the value")
    for key in ("liberty", "lef", "verilog"):
        if not Path(doc[key]).is_absolute():
            raise HwpruneError(
                f"{path}: key '{key}' is {doc[key]!r}; give the absolute path the package "
                "installs it at"
            )
    return Library(
        name=name,
        description=doc["description"],
        process_nm=doc["process_nm"],
        voltage=float(doc["voltage"]),
        corner=doc["corner"],
        clock_mhz=float(doc["clock_mhz"]),
        liberty=Path(doc["liberty"]),
        lef=Path(doc["lef"]),
        verilog=Path(doc["verilog"]),
        package=doc["package"],
        source=doc["source"],
    )


def list_libraries() -> list[Library]:
    """Every library of the catalogue (``data_dir("asic")``), by name."""
    return sorted((load_library(p) for p in data_dir("asic").glob("*.toml")), key=lambda x: x.name)


def is_asic(target: str) -> bool:
    """Whether ``target`` names a standard-cell library (``asic:<name>``) rather than a board."""
    return target.startswith(PREFIX)


def find_library(target: str) -> Library:
    """The library ``asic:<name>`` names; an unknown name lists the near ones."""
    name = target[len(PREFIX) :] if is_asic(target) else target
    libs = list_libraries()
    for lib in libs:
        if lib.name == name:
            return lib
    near = difflib.get_close_matches(name, [x.name for x in libs], n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(PREFIX + n for n in near)}?" if near else "choose one of"
    raise HwpruneError(
        f"unknown ASIC target {target!r}; {hint} "
        f"(libraries: {', '.join(x.target for x in libs)}; 'hwprune boards' lists them)"
    )
