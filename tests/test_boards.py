"""The board catalogue: every board loads, bad files fail naming the key, the wheel ships it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hwprune.boards import FAMILIES, RESOURCES, get_board, list_boards, load_board
from hwprune.errors import HwpruneError
from hwprune.libraries import list_libraries

ROOT = Path(__file__).resolve().parents[1]

# Figures copied from /work/shared/boards-reference.md (an independent source).
REFERENCE = {
    "pynq-z2": ("xc7z020clg400-1", 53200, 106400, 220, 280, 0),
    "zcu104": ("xczu7ev-ffvc1156-2-e", 230400, 460800, 1728, 624, 96),
    "arty-a7-35t": ("xc7a35ticsg324-1L", 20800, 41600, 90, 100, 0),
    "ultra96-v2": ("xczu3eg-sbva484-1-i", 70560, 141120, 360, 432, 0),
    "zcu102": ("xczu9eg-ffvb1156-2-e", 274080, 548160, 2520, 1824, 0),
    "kv260": ("xck26-sfvc784-2LV-c", 117120, 234240, 1248, 288, 64),
    "arty-a7-100t": ("xc7a100ticsg324-1L", 63400, 126800, 240, 270, 0),
    "basys3": ("xc7a35tcpg236-1", 20800, 41600, 90, 100, 0),
    "nexys-a7-100t": ("xc7a100tcsg324-1", 63400, 126800, 240, 270, 0),
    "zcu106": ("xczu7ev-ffvc1156-2-e", 230400, 460800, 1728, 624, 96),
    "cmod-a7-35t": ("xc7a35tcpg236-1", 20800, 41600, 90, 100, 0),
    # Lattice (nextpnr reports): iCE40 logic cells are LUT4 + FF; 30 EBR x 4,096 bits =
    # 122,880 bits = 6.67 18 Kb (18,432-bit) blocks -> 6. ECP5: one FF per LUT4.
    "icebreaker": ("iCE40UP5K-SG48", 5280, 5280, 8, 6, 0),
    "ulx3s-85f": ("LFE5U-85F-6BG381C", 83640, 83640, 156, 208, 0),
    "ulx3s-45f": ("LFE5U-45F-6BG381C", 43848, 43848, 72, 108, 0),
    "ulx3s-25f": ("LFE5U-25F-6BG381C", 24288, 24288, 28, 56, 0),
    "orangecrab-25f": ("LFE5U-25F-8MG285C", 24288, 24288, 28, 56, 0),
    # Intel: lut = ALMs, ff = 4 registers per ALM, 2,713 M20K x 20,480 bits / 18,432 =
    # 3,014.4 -> 3,014.
    "arria10-gx-devkit": ("10AX115S2F45I1SG", 427200, 1708800, 1518, 3014, 0),
}

# The family each of the catalogue's non-AMD boards must carry: the open-flow estimators are
# keyed on exactly "ice40" and "ecp5".
FAMILY = {
    "icebreaker": "ice40",
    "ulx3s-85f": "ecp5",
    "ulx3s-45f": "ecp5",
    "ulx3s-25f": "ecp5",
    "orangecrab-25f": "ecp5",
    "de10-nano": "cyclone-v",
    "arria10-gx-devkit": "arria-10",
    "agilex7-f-devkit": "agilex-7",
    "vck190": "versal",
}

GOOD = """\
name = "{name}"
vendor = "amd"
part = "xc7z020clg400-1"
family = "xc7"
lut = 53200
ff = 106400
dsp = 220
bram18 = 280
uram = 0
clock_mhz = 100.0
source = "test"
"""


def _write(tmp_path: Path, text: str, name: str = "my-board") -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(text.format(name=name))
    return p


def _replace_line(key: str, line: str | None) -> str:
    """GOOD with the line of ``key`` replaced by ``line`` (dropped when None)."""
    out = []
    for ln in GOOD.splitlines():
        if ln.startswith(f"{key} ="):
            if line is not None:
                out.append(line)
        else:
            out.append(ln)
    return "\n".join(out) + "\n"


def test_every_board_loads_and_is_listed_by_name():
    boards = list_boards()
    names = [b.name for b in boards]
    assert names == sorted(p.stem for p in (ROOT / "boards").glob("*.toml"))
    assert len(names) == len(set(names)) >= 20
    for b in boards:
        assert FAMILIES[b.family].part.fullmatch(b.part), b.name
        assert FAMILIES[b.family].vendor == b.vendor, b.name
        assert b.lut > 0 and b.ff > 0 and b.dsp > 0 and b.bram18 > 0 and b.clock_mhz > 0
        assert set(b.available) == set(RESOURCES)
    by_name = {b.name: b for b in boards}
    for name, family in FAMILY.items():
        assert by_name[name].family == family, name
    assert {b.vendor for b in boards} == {"amd", "lattice", "intel"}


def test_every_family_example_is_a_part_of_that_family_only():
    for name, fam in FAMILIES.items():
        assert fam.part.fullmatch(fam.example), name
        others = [k for k, f in FAMILIES.items() if k != name and f.part.fullmatch(fam.example)]
        assert others == [], (name, others)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_board_figures_match_the_reference_table(name):
    b = get_board(name)
    part, lut, ff, dsp, bram18, uram = REFERENCE[name]
    assert (b.part, b.lut, b.ff, b.dsp, b.bram18, b.uram) == (part, lut, ff, dsp, bram18, uram)
    assert not b.usable_after_shell


def test_alveo_cards_use_the_usable_after_shell_figures():
    u50 = get_board("alveo-u50")
    # boards-reference.md: FINN usable after shell 742,560 LUT, 2,256 BRAM18, 608 URAM,
    # 5,352 DSP; whole device (XCVU35P) 871,680 LUT.
    assert (u50.lut, u50.bram18, u50.uram, u50.dsp) == (742560, 2256, 608, 5352)
    assert u50.device is not None and u50.device.lut == 871680
    for b in list_boards():
        if b.name.startswith("alveo-"):
            assert b.usable_after_shell and b.device is not None
            for r in RESOURCES:
                assert getattr(b, r) <= getattr(b.device, r), (b.name, r)


def test_good_file_loads(tmp_path):
    b = load_board(_write(tmp_path, GOOD))
    assert b.name == "my-board" and b.lut == 53200 and b.clock_mhz == 100.0


@pytest.mark.parametrize(
    ("key", "line", "expect"),
    [
        ("lut", None, "missing key 'lut'"),
        ("source", None, "missing key 'source'"),
        ("dsp", "dsp = -1", "key 'dsp' must be a non-negative integer"),
        ("ff", 'ff = "lots"', "key 'ff' must be an integer"),
        ("uram", "uram = true", "key 'uram' must be an integer"),
        ("bram18", "bram18 = 1.5", "key 'bram18' must be an integer"),
        ("clock_mhz", "clock_mhz = 0", "key 'clock_mhz' must be > 0"),
        ("clock_mhz", "clock_mhz = inf", "key 'clock_mhz' must be > 0"),
        ("part", 'part = "xczu7ev-ffvc1156-2-e"', "key 'part' .* does not look like a xc7 part"),
        ("part", 'part = "xc7z020"', "key 'part'"),
        ("family", 'family = "spartan9"', "key 'family' is 'spartan9'; use one of"),
        ("vendor", 'vendor = "intel"', "key 'vendor'"),
        ("name", 'name = "other-name"', "key 'name' is 'other-name' but must equal"),
    ],
)
def test_bad_file_names_file_and_key(tmp_path, key, line, expect):
    path = _write(tmp_path, _replace_line(key, line))
    with pytest.raises(HwpruneError, match=expect) as info:
        load_board(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg


def test_unknown_key_is_rejected(tmp_path):
    path = _write(tmp_path, GOOD + "luts = 5\n")
    with pytest.raises(HwpruneError, match="unknown key 'luts'; remove it or use one of: name"):
        load_board(path)


def test_device_table_is_validated(tmp_path):
    device = "usable_after_shell = true\n[device]\nlut = 1\nff = 1\ndsp = 1\nbram18 = 1\n"
    with pytest.raises(HwpruneError, match="missing key 'device.uram'"):
        load_board(_write(tmp_path, GOOD + device))
    with pytest.raises(HwpruneError, match="unknown key 'device.luts'"):
        load_board(_write(tmp_path, GOOD + device + "uram = 0\nluts = 3\n"))
    with pytest.raises(HwpruneError, match="needs a \\[device\\] table"):
        load_board(_write(tmp_path, GOOD + "usable_after_shell = true\n"))
    b = load_board(_write(tmp_path, GOOD + device + "uram = 0\n"))
    assert b.usable_after_shell and b.device is not None and b.device.lut == 1


def test_invalid_toml_is_one_line(tmp_path):
    path = _write(tmp_path, GOOD + "lut = = 3\n")
    with pytest.raises(HwpruneError, match="not valid TOML") as info:
        load_board(path)
    assert "\n" not in str(info.value)


def test_get_board_reads_the_named_file_and_nothing_outside_the_catalogue():
    # get_board reads boards/<name>.toml directly; the result is the catalogue's board.
    for b in list_boards():
        assert get_board(b.name) == b
    for path_like in ("../boards/pynq-z2", "boards/pynq-z2", "./pynq-z2"):
        with pytest.raises(HwpruneError, match="unknown board"):
            get_board(path_like)


def test_unknown_board_lists_the_valid_ones_when_none_is_near():
    with pytest.raises(HwpruneError) as info:
        get_board("nosuch")
    msg = str(info.value)
    assert msg.startswith("unknown board 'nosuch': no board name, part or description is near")
    assert msg.endswith("(see 'hwprune boards')") and "\n" not in msg
    listed = msg.split("choose one of: ")[1].removesuffix(" (see 'hwprune boards')")
    assert listed.split(", ") == [b.name for b in list_boards()]
    for name in ("pynq-z2", "zcu104", "arty-a7-35t", "icebreaker"):
        assert name in msg


@pytest.mark.parametrize(
    ("typed", "near"),
    [
        # case and punctuation only
        ("pynqz2", ["pynq-z2", "pynq-z1"]),
        ("PYNQ-Z2", ["pynq-z2", "pynq-z1"]),
        ("de10 nano", ["de10-nano"]),
        # a close spelling
        ("pynq-z9", ["pynq-z2", "pynq-z1"]),
        ("icebraker", ["icebreaker"]),
        # part of a name, of a part or of a family
        ("ulx3s", ["ulx3s-85f", "ulx3s-45f", "ulx3s-25f"]),
        ("xc7z020", ["pynq-z1", "pynq-z2"]),
        ("ecp5", ["orangecrab-25f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f"]),
        ("10AX115", ["arria10-gx-devkit"]),
    ],
)
def test_unknown_board_names_the_near_matches_first(typed, near):
    with pytest.raises(HwpruneError) as info:
        get_board(typed)
    msg = str(info.value)
    assert msg == (
        f"unknown board {typed!r}; did you mean {', '.join(near)}? "
        f"('hwprune boards' lists all {len(list_boards())})"
    )


_WHEEL_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import hwprune, hwprune.boards, hwprune.libraries, hwprune.resources
print(json.dumps({
    "pkg": hwprune.__file__,
    "data": str(hwprune.resources.data_dir("boards")),
    "asic": str(hwprune.resources.data_dir("asic")),
    "boards": {b.name: [b.family, b.part, *b.available.values()]
               for b in hwprune.boards.list_boards()},
    "libraries": {x.target: [x.process_nm, str(x.liberty)]
                  for x in hwprune.libraries.list_libraries()},
}))
"""


def test_every_board_loads_from_an_installed_wheel(tmp_path):
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("hatchling (the build backend) is not installed: pip install hatchling")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("hwprune-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
        # The estimator's calibrated constants and measured fits ship beside it
        # (estimate.fabric).
        for data in ("calibration.toml", "threshold_fit.toml", "cone_fit.toml", "asic_fit.toml"):
            assert f"hwprune/estimate/{data}" in z.namelist()
    # Run from tmp_path with -I so that neither the checkout nor PYTHONPATH is on sys.path.
    out = subprocess.run(
        [sys.executable, "-I", "-c", _WHEEL_SCRIPT, str(site)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    got = json.loads(out.stdout)
    assert Path(got["pkg"]).is_relative_to(site)
    assert Path(got["data"]) == site / "hwprune" / "_data" / "boards"
    # Every board file of the checkout ships, loads and validates from the wheel, same figures.
    assert got["boards"] == {
        b.name: [b.family, b.part, *b.available.values()] for b in list_boards()
    }
    assert len(got["boards"]) >= 20
    # The ASIC targets (asic/*.toml) ship the same way.
    assert Path(got["asic"]) == site / "hwprune" / "_data" / "asic"
    assert got["libraries"] == {x.target: [x.process_nm, str(x.liberty)] for x in list_libraries()}
    assert "asic:osu018" in got["libraries"]
    assert {"ice40", "ecp5", "cyclone-v", "arria-10", "versal"} <= {
        family for family, *_ in got["boards"].values()
    }
