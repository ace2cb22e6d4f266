"""The ASIC target catalogue (asic/*.toml): every library loads and is installed, bad files fail
naming the key, and `hwprune boards` / `hwprune estimate --target` use it."""

from pathlib import Path

import pytest

from hwprune.errors import HwpruneError
from hwprune.libraries import find_library, list_libraries, load_library
from tests.test_cli import assert_clean_error, hwprune

ROOT = Path(__file__).resolve().parents[1]


def test_every_library_loads_and_is_installed():
    libs = list_libraries()
    assert [x.target for x in libs] == ["asic:osu018", "asic:osu035", "asic:osu050"]
    for x in libs:
        x.check_installed()  # make deps installs qflow-tech-osu*
        # The file says the Liberty's own nominal voltage (an independent read of the file).
        text = x.liberty.read_text(errors="replace")
        assert f"nom_voltage : {x.voltage:g};" in text
        assert x.process_nm in (180, 350, 500)


def _write(tmp_path: Path, name: str, **changes) -> Path:
    text = (ROOT / "asic" / "osu018.toml").read_text()
    lines = []
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        if key in changes:
            if changes[key] is None:
                continue
            line = f"{key} = {changes[key]}"
        lines.append(line)
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "name,changes,words",
    [
        ("osu018", {"voltage": None}, ["missing key 'voltage'"]),
        ("osu018", {"clock_mhz": "-5.0"}, ["'clock_mhz' must be > 0"]),
        ("osu018", {"liberty": '"osu018.lib"'}, ["'liberty'", "absolute path"]),
        ("other", {}, ["must equal the file name 'other'"]),
        ("osu018", {"process_nm": '"180"'}, ["'process_nm' must be an integer"]),
    ],
)
def test_bad_library_file_names_the_key(tmp_path, name, changes, words):
    with pytest.raises(HwpruneError) as e:
        load_library(_write(tmp_path, name, **changes))
    for w in words:
        assert w in str(e.value)


def test_unknown_key_and_missing_file(tmp_path):
    path = _write(tmp_path, "osu018")
    path.write_text(path.read_text() + 'area_unit = "um2"\n')
    with pytest.raises(HwpruneError, match="unknown key 'area_unit'"):
        load_library(path)
    path = _write(tmp_path, "osu018", verilog='"/nonexistent/cells.v"')
    with pytest.raises(HwpruneError, match="apt-get install qflow-tech-osu018"):
        load_library(path).check_installed()


def test_unknown_target_lists_near_matches():
    with pytest.raises(HwpruneError, match="did you mean asic:osu018"):
        find_library("asic:osu18")


def test_cli_boards_lists_the_asic_targets():
    r = hwprune("boards")
    assert r.returncode == 0, r.stderr
    assert "asic:osu018" in r.stdout and "pynq-z2" in r.stdout


def test_cli_unknown_target_is_one_line(tmp_path):
    model = ROOT / "tests" / "models" / "tfc_2w2a.onnx"
    r = hwprune("estimate", model, "--target", "asic:osu19")
    assert_clean_error(r, "asic:osu19", "asic:osu018")
    r = hwprune("estimate", model, "--target", "asic:osu018", "--synth", "yosys")
    assert_clean_error(r, "--synth needs a build directory")
