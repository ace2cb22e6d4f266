"""The board catalogue: one declarative TOML file per board in the top-level ``boards/`` folder.

The catalogue is exactly the ``*.toml`` files of ``data_dir("boards")`` (also shipped inside
the wheel); there is no registration in code. Every key is validated when a file is loaded,
so a typo fails at once with a one-line message naming the file, the key and the fix, instead
of turning into a board with 0 LUTs.

A board file holds (one resource vocabulary everywhere: lut, ff, dsp, bram18, uram)::

    name = "pynq-z2"              # equals the file name without .toml
    vendor = "amd"                # FPGA vendor of the family
    part = "xc7z020clg400-1"      # must look like a part of `family`
    family = "xc7"
    lut = 53200                   # resources a design may use (integers >= 0)
    ff = 106400
    dsp = 220
    bram18 = 280                  # 18 Kb block RAM halves (a BRAM36 counts 2)
    uram = 0
    clock_mhz = 100.0             # default clock, turns latency cycles into ns
    source = "where the figures come from"
    # optional
    description = "TUL PYNQ-Z2 (Zynq-7000)"
    usable_after_shell = true     # lut..uram are what a platform shell leaves (Alveo)
    [device]                      # whole-device totals, for reference only
    lut = 871680
    ...

What the five resources count on each vendor's fabric (each board file says it again):

- AMD (xc7, UltraScale+, Versal): lut = LUT6, ff = flip-flops, dsp = DSP48E1/E2 or DSP58
  slices, bram18 = 18 Kb block RAM halves, uram = 288 Kb UltraRAM blocks.
- Lattice iCE40: lut = ff = logic cells (a LUT4, a flip-flop and a carry each), dsp = SB_MAC16
  blocks, bram18 = the 4 Kb EBR blocks' bits in whole 18 Kb equivalents (rounded down),
  uram = 0 (the UltraPlus SPRAM is named in the description; hwprune's designs use no block
  RAM).
- Lattice ECP5: lut = LUT4, ff = flip-flops, dsp = MULT18X18D, bram18 = DP16KD (18 Kb).
- Intel (Cyclone V, Arria 10, Agilex 7): lut = ALMs (Quartus' "Logic utilization (in ALMs)"
  denominator; an ALM holds one 6-input LUT or two adder bits, so a LUT-count estimate
  against ALMs errs on the safe side), ff = ALM registers, dsp = variable-precision DSP blocks,
  bram18 = the M10K/M20K blocks' bits in whole 18 Kb (18,432-bit) equivalents (rounded
  down), uram = 0.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwprune.errors import HwpruneError
from hwprune.resources import data_dir

RESOURCES: tuple[str, ...] = ("lut", "ff", "dsp", "bram18", "uram")


@dataclass(frozen=True)
class Family:
    """A device family: its vendor, a pattern every part name of it matches, an example."""

    vendor: str
    part: re.Pattern[str]
    example: str


# Part-name grammars from the vendors' ordering-information tables:
# xc7<a|k|s|v|z><size><speed/temp letters><package><pins>-<speed grade><temp suffix>
# (UG475 / DS180 "Ordering Information"), and for UltraScale+
# xc<zu..|k26|vu..p|u..>-<package><pins>-<speed grade>[L|LV]-<temperature> (DS890).
FAMILIES: dict[str, Family] = {
    "xc7": Family(
        "amd",
        re.compile(r"xc7[akszv]\d+[a-z]*-?[a-z]{2,4}\d{3,4}-\d[a-z]{0,2}", re.I),
        "xc7z020clg400-1",
    ),
    "zynq-ultrascale-plus": Family(
        "amd",
        re.compile(r"xc(zu\d+(eg|ev|cg|dr)|k\d+)-[a-z]{4}\d{3,4}-\d(l|lv)?-[ceiq]", re.I),
        "xczu7ev-ffvc1156-2-e",
    ),
    "virtex-ultrascale-plus": Family(
        "amd",
        re.compile(r"xc(vu\d+p|u\d+c?)-[a-z]{4}\d{4}-\d(l|lv)?-[ceiq]", re.I),
        "xcvu9p-flga2104-2L-e",
    ),
    # Versal, as Vivado names the ordering code (XCVC1902-2MSEVSVA2197 on the VCK190):
    # xcv<c|e|m|p|h><size>-<package><pins>-<speed grade><voltage/power>-<temperature>[-S|-ES1]
    # (DS950 / DS955 "Ordering Information").
    "versal": Family(
        "amd",
        re.compile(r"xcv[cemph]\d{4}-[a-z]{4}\d{3,4}-\d[a-z]{1,2}-[ceiq](-s|-es\d)?", re.I),
        "xcvc1902-vsva2197-2MP-e-S",
    ),
    # iCE40<LP|HX|UL|UP><size>K-<package code><pins>[I][TR] (iCE40 LP/HX and UltraPlus data
    # sheets, "Ordering Information").
    "ice40": Family(
        "lattice",
        re.compile(r"ice40(lp|hx|ul|up)\d+k?-[a-z]{2,3}\d{2,3}[a-z]*", re.I),
        "iCE40UP5K-SG48",
    ),
    # LFE5U|LFE5UM|LFE5UM5G-<12|25|45|85>F-<speed grade><package><pins><C|I> (ECP5 family
    # data sheet FPGA-DS-02012, "Ordering Information").
    "ecp5": Family(
        "lattice",
        re.compile(r"lfe5(u|um|um5g)-(12|25|45|85)f-[678][a-z]{2}\d{3}[ci]", re.I),
        "LFE5U-85F-6BG381C",
    ),
    # 5C<E|GX|GT|SE|SX|ST><transceivers/variant><member>[transceiver speed]<package type><pins>
    # <temp><speed>[N|ES|SC] (Cyclone V device overview, "Sample Ordering Code").
    "cyclone-v": Family(
        "intel",
        re.compile(r"5c(e|gx|gt|se|sx|st)[a-z0-9]{3,6}[fmu]\d{2,3}[aci]\d[a-z]*", re.I),
        "5CSEBA6U23I7",
    ),
    # 10A<X|T|S><member><transceiver count><transceiver speed><package type><pins><temp>
    # <fabric speed><power option>[G] (Arria 10 device overview, "Sample Ordering Code").
    "arria-10": Family(
        "intel",
        re.compile(r"10a[xts]\d{3}[a-z]\d[fu]\d{2}[eim]\d[a-z0-9]*", re.I),
        "10AX115S2F45I1SG",
    ),
    # AG<F|I|M><transceiver><density>R<package><variant><fabric speed><temp><power>[V][Rn]
    # (Agilex 7 device overview, "Sample Ordering Code").
    "agilex-7": Family(
        "intel",
        re.compile(r"ag[fim][a-z]\d{3}r\d{2}[a-z]\d[eiac]\d[a-z0-9]*", re.I),
        "AGFB014R24B2E2V",
    ),
}

_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "vendor": str,
    "part": str,
    "family": str,
    **{r: int for r in RESOURCES},
    "clock_mhz": (int, float),
    "source": str,
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "description": str,
    "usable_after_shell": bool,
    "device": dict,
}


@dataclass(frozen=True)
class Resources:
    """An amount of each FPGA resource."""

    lut: int
    ff: int
    dsp: int
    bram18: int
    uram: int

    def as_dict(self) -> dict[str, int]:
        """The amounts keyed by the resource vocabulary (lut, ff, dsp, bram18, uram)."""
        return {r: getattr(self, r) for r in RESOURCES}


@dataclass(frozen=True)
class Board:
    """One catalogue entry, as loaded and validated from its TOML file.

    ``lut``..``uram`` are what a design may use; for Alveo cards (``usable_after_shell``)
    that is what the platform shell leaves, and ``device`` holds the whole-device totals.
    """

    name: str
    vendor: str
    part: str
    family: str
    lut: int
    ff: int
    dsp: int
    bram18: int
    uram: int
    clock_mhz: float
    source: str
    description: str = ""
    usable_after_shell: bool = False
    device: Resources | None = None

    @property
    def available(self) -> dict[str, int]:
        """The resources a design may use, keyed lut, ff, dsp, bram18, uram."""
        return {r: getattr(self, r) for r in RESOURCES}


def _type_name(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return "a number"
    return {str: "a string", int: "an integer", bool: "true or false", dict: "a table"}[t]


def _is(value: Any, t: type | tuple[type, ...]) -> bool:
    # TOML booleans are Python bools, which are ints too: never accept one as a count.
    if isinstance(value, bool) and t is not bool:
        return False
    return isinstance(value, t)


def _resources(path: Path, table: dict, prefix: str) -> dict[str, int]:
    """Validate the lut..uram keys of ``table`` (non-negative integers)."""
    out = {}
    for r in RESOURCES:
        key = f"{prefix}{r}"
        if r not in table:
            raise HwpruneError(f"{path}: missing key '{key}'; add {key} = <count>")
        v = table[r]
        if not _is(v, int) or v < 0:
            raise HwpruneError(
                f"{path}: key '{key}' must be a non-negative integer, got {v!r}; fix the value"
            )
        out[r] = v
    return out


def read_toml(path: Path, what: str) -> dict:
    """The TOML document at ``path``; HwpruneError naming the file (a ``what`` file) when it
    cannot be read or parsed."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise HwpruneError(f"{path}: cannot read {what} file ({e.strerror})") from e
    except tomllib.TOMLDecodeError as e:
        msg = str(e).replace("\n", " ")
        raise HwpruneError(f"{path}: not valid TOML ({msg}); fix the syntax") from e


def load_board(path: str | Path) -> Board:
    """Load and validate one board file; raise HwpruneError naming the file, key and fix."""
    path = Path(path)
    doc = read_toml(path, "board")

    allowed = {**_REQUIRED, **_OPTIONAL}
    for key in doc:
        if key not in allowed:
            raise HwpruneError(
                f"{path}: unknown key '{key}'; remove it or use one of: {', '.join(allowed)}"
            )
    for key, t in _REQUIRED.items():
        if key not in doc:
            raise HwpruneError(f"{path}: missing key '{key}'; add it ({_type_name(t)})")
    for key, t in allowed.items():
        if key in doc and not _is(doc[key], t):
            raise HwpruneError(
                f"{path}: key '{key}' must be {_type_name(t)}, got {doc[key]!r}; fix the value"
            )
    for key in ("name", "vendor", "part", "family", "source"):
        if not doc[key].strip():
            raise HwpruneError(f"{path}: key '{key}' is empty; fill it in")

    name = doc["name"]
    if not _NAME.fullmatch(name) or name != path.stem:
        raise HwpruneError(
            f"{path}: key 'name' is {name!r} but must equal the file name {path.stem!r} "
            "(lower case letters, digits and -); rename the file or fix the name"
        )
    family = FAMILIES.get(doc["family"])
    if family is None:
        raise HwpruneError(
            f"{path}: key 'family' is {doc['family']!r}; use one of: {', '.join(FAMILIES)}"
        )
    if doc["vendor"] != family.vendor:
        raise HwpruneError(
            f"{path}: key 'vendor' is {doc['vendor']!r} but family {doc['family']!r} is made "
            f'by {family.vendor!r}; set vendor = "{family.vendor}"'
        )
    if not family.part.fullmatch(doc["part"]):
        raise HwpruneError(
            f"{path}: key 'part' is {doc['part']!r}, which does not look like a "
            f"{doc['family']} part; use the full ordering code, e.g. {family.example!r}"
        )
    avail = _resources(path, doc, "")
    clock = doc["clock_mhz"]
    if not (clock > 0 and math.isfinite(clock)):
        raise HwpruneError(f"{path}: key 'clock_mhz' must be > 0, got {clock!r}; fix the value")

    device = None
    if "device" in doc:
        table = doc["device"]
        for key in table:
            if key not in RESOURCES:
                raise HwpruneError(
                    f"{path}: unknown key 'device.{key}'; use only: {', '.join(RESOURCES)}"
                )
        device = Resources(**_resources(path, table, "device."))
    usable = doc.get("usable_after_shell", False)
    if usable and device is None:
        raise HwpruneError(
            f"{path}: usable_after_shell = true needs a [device] table with the whole-device "
            "totals; add it"
        )

    return Board(
        name=name,
        vendor=doc["vendor"],
        part=doc["part"],
        family=doc["family"],
        clock_mhz=float(clock),
        source=doc["source"],
        description=doc.get("description", ""),
        usable_after_shell=usable,
        device=device,
        **avail,
    )


def list_boards() -> list[Board]:
    """Every board of the catalogue (the TOML files in ``data_dir("boards")``), by name."""
    return list(_catalogue())


@functools.cache
def _catalogue() -> tuple[Board, ...]:
    # Read once per process: the files ship with the package, and every config check of
    # compile.board asks for the names (a sweep checks thousands of points before it starts).
    # Boards are frozen, so sharing them is safe.
    return tuple(
        sorted((load_board(p) for p in data_dir("boards").glob("*.toml")), key=lambda b: b.name)
    )


def _squash(text: str) -> str:
    """Lower case, letters and digits only: 'PYNQ-Z2', 'pynq_z2' and 'pynqz2' all agree."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def near_boards(name: str, boards: list[Board]) -> list[str]:
    """The names of the boards ``name`` probably meant, best first.

    First the names equal to ``name`` but for case and punctuation ('pynqz2'), then close
    spellings of the name (difflib, 'pynq-z9' -> pynq-z2), then boards whose name, part,
    family or description contains it ('ulx3s', 'xc7z020', 'ecp5', 'de10 nano'). Queries of
    fewer than 3 letters and digits match no part or description: 'z' is in too many.
    """
    names = [b.name for b in boards]
    q = _squash(name)
    out = [b.name for b in boards if q and _squash(b.name) == q]
    out += difflib.get_close_matches(name.lower(), names, n=4, cutoff=0.6)
    if len(q) >= 3:
        out += [
            b.name
            for b in boards
            if any(q in _squash(t) for t in (b.name, b.part, b.family, b.description))
        ]
    return list(dict.fromkeys(out))


def get_board(name: str) -> Board:
    """The catalogue board called ``name``; otherwise a one-line HwpruneError naming the
    near matches (``near_boards``) or, when there are none, every board."""
    # A board's file is usually named after it: read that one file, not the catalogue.
    own = data_dir("boards") / f"{name}.toml"
    if _squash(name) and Path(name).name == name and own.is_file():
        b = load_board(own)
        if b.name == name:
            return b
    boards = list_boards()
    for b in boards:
        if b.name == name:
            return b
    near = near_boards(name, boards)
    if near:
        raise HwpruneError(
            f"unknown board {name!r}; did you mean {', '.join(near)}? "
            f"('hwprune boards' lists all {len(boards)})"
        )
    choices = ", ".join(b.name for b in boards)
    raise HwpruneError(
        f"unknown board {name!r}: no board name, part or description is near it; choose one "
        f"of: {choices} (see 'hwprune boards')"
    )
