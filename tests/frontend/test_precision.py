"""Input precisions: hls4ml spellings, and quantization checked bit for bit against ap_fixed.

The expected levels come from the ``ap_types`` headers that ship inside hls4ml: one C++
program, compiled once, converts every test double with ``ap_fixed``/``ap_ufixed`` for each
type x rounding x saturation combination and prints the raw bits and ``to_double()``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from hwprune.errors import HwpruneError
from hwprune.frontend.precision import (
    ROUNDING_MODES,
    SATURATION_MODES,
    FixedType,
    parse_precision,
)

# Each case costs g++ about 50 ms (the conversion is instantiated per type and mode), so
# every rounding x saturation combination is tried on the types with unusual I (inside W,
# above W, negative), and the rest get a diagonal that still meets every mode.
ROUNDING = ["TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV"]
SATURATION = ["WRAP", "SAT", "SAT_ZERO", "SAT_SYM"]  # both written out, not taken from the module
FULL_TYPES = [
    (8, 3, True),
    (4, 6, True),
    (5, -1, True),
    (8, 3, False),
    (4, 6, False),
    (5, -1, False),
]
DIAGONAL_TYPES = [(16, 6, True), (6, 0, True), (16, 6, False), (6, 0, False)]
# <8,8> is what int<8> means; 32 bits is the widest width, 1 bit the narrowest.
CORNERS = [
    (8, 8, True, "TRN", "WRAP"),
    (8, 8, False, "RND", "SAT"),
    (32, 16, True, "TRN", "WRAP"),
    (32, 16, True, "RND_CONV", "SAT"),
    (32, 16, True, "RND_MIN_INF", "SAT_SYM"),
    (32, 20, False, "TRN_ZERO", "WRAP"),
    (32, 20, False, "RND_INF", "SAT_ZERO"),
    (1, 1, True, "TRN", "WRAP"),
    (1, 1, True, "RND", "SAT"),
    (1, 0, False, "RND_ZERO", "WRAP"),
    (1, 0, False, "RND_CONV", "SAT_SYM"),
]
CASES = (
    [(w, i, s, q, o) for (w, i, s), q, o in product(FULL_TYPES, ROUNDING, SATURATION)]
    + [
        (w, i, s, q, SATURATION[(k + t) % len(SATURATION)])
        for t, (w, i, s) in enumerate(DIAGONAL_TYPES)
        for k, q in enumerate(ROUNDING)
    ]
    + CORNERS
)


def _ap_types_dir() -> Path:
    """The ap_types headers inside the installed hls4ml, found without importing hls4ml."""
    spec = importlib.util.find_spec("hls4ml")
    assert spec is not None and spec.submodule_search_locations, "hls4ml is not installed"
    path = Path(spec.submodule_search_locations[0]) / "templates" / "vivado" / "ap_types"
    assert (path / "ap_fixed.h").is_file(), f"no ap_fixed.h under {path}"
    return path


def _inputs(rng: np.random.Generator) -> np.ndarray:
    """Doubles that probe every type: in range, exact ties, negative ties, far out of range."""
    values: list[np.ndarray] = []  # made float32 below
    doubles: list[np.ndarray] = []  # kept as float64
    for w, i, signed in dict.fromkeys(c[:3] for c in CASES):
        step = 2.0 ** (i - w)
        lo = -(2 ** (w - 1)) if signed else 0
        hi = 2 ** (w - 1) - 1 if signed else 2**w - 1
        edges = np.array([lo - 1, lo, lo + 1, -1, 0, 1, hi - 1, hi, hi + 1, hi + 2], float)
        levels = np.concatenate([edges, rng.integers(lo - 4, hi + 5, 12).astype(float)])
        # float32 holds k + 0.5 exactly only while |k| < 2**23.
        small = levels[np.abs(levels) < 2**22]
        offsets = [0.0, 0.5, -0.5, 0.25, 0.75, -0.75]
        for f in offsets:
            values.append((levels + f) * step)
        values.append((levels + rng.uniform(-1, 1, levels.size)) * step)
        values.append((small + 0.5) * step)
        values.append((-small - 0.5) * step)
        # Far outside the range: up to 2**24 times the largest level, both signs.
        far = rng.uniform(1, 2**24, 10) * (hi + 1) * step
        values.append(np.concatenate([far, -far]))
        # Doubles with full 53-bit significands 2**1 to 2**W grid steps beyond 2**53: their
        # WRAP residue is not a multiple of 2**W, unlike any float32 that large.
        huge = rng.uniform(1, 2, 6) * 2.0 ** (53 + rng.integers(1, w + 1, 6)) * step
        doubles.append(np.concatenate([huge, -huge]))
    # Magnitudes from float32 subnormals to near float32's maximum.
    wide = 10.0 ** rng.uniform(-45, 38, 100)
    values.append(np.concatenate([wide, -wide]))
    as_f32 = np.concatenate(values).astype(np.float32).astype(np.float64)
    # A few doubles that float32 cannot hold: huge (WRAP must still be right), tiny
    # (double subnormals), and values with ties far down a 53-bit significand.
    extra = [1e300, -1e300, 2.0**-1070, -(2.0**-1070), 5e-324, -5e-324, 0.0, -0.0]
    extra += [(2.0**40 + 0.5) * 2.0**-16, -(2.0**40 + 0.5) * 2.0**-16, 2.0**60 + 2.0**10]
    extra += [(2.0**52 + 1) * 2.0**-30, -(2.0**52 + 3) * 2.0**-40]
    return np.concatenate([as_f32, np.array(extra), *doubles])


def _cpp_program(cases: list[tuple[int, int, bool, str, str]]) -> str:
    """One C++ file converting the input doubles for every case, a line per case."""
    calls = "\n".join(
        f"  run<{'ap_fixed' if s else 'ap_ufixed'}<{w}, {i}, AP_{q}, AP_{o}>, {w}>();"
        for w, i, s, q, o in cases
    )
    return f"""
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "ap_fixed.h"

static std::vector<double> xs;

// Raw bits and to_double() of T(x) for every x; hls4ml's testbench converts its float
// inputs the same way (nnet::convert_data in nnet_helpers.h: dst[i] = dstType(src[i])).
template <class T, int W>
void run() {{
  for (double x : xs) {{
    T v = T(x);
    ap_uint<W> raw = v.range(W - 1, 0);
    std::printf("%llu %a ", (unsigned long long)raw.to_uint64(), v.to_double());
  }}
  std::printf("\\n");
}}

int main(int argc, char** argv) {{
  FILE* f = std::fopen(argv[1], "r");
  char buf[64];
  while (std::fscanf(f, "%63s", buf) == 1) xs.push_back(std::strtod(buf, nullptr));
  std::fclose(f);
{calls}
  return 0;
}}
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The test inputs and, per case, the (raw bits, to_double) that ap_fixed gives."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found: it compiles the ap_fixed reference program")
    tmp = tmp_path_factory.mktemp("ap_fixed_ref")
    xs = _inputs(np.random.default_rng(20240611))
    # Hex floats make the hand-over to strtod exact.
    (tmp / "inputs.txt").write_text("\n".join(float(x).hex() for x in xs) + "\n")
    # Instantiating the conversion for every case is what takes g++ long, so the cases are
    # dealt round-robin into one program per CPU (at most 4), compiled side by side; -O0
    # because the programs run in about a second anyway and -O1 doubles the compile time.
    jobs = max(1, min(4, os.cpu_count() or 1))
    parts = [list(range(j, len(CASES), jobs)) for j in range(jobs)]
    compiles = []
    for j, part in enumerate(parts):
        (tmp / f"ref{j}.cpp").write_text(_cpp_program([CASES[k] for k in part]))
        cmd = [gxx, "-std=c++14", "-O0", "-w", f"-I{_ap_types_dir()}", f"ref{j}.cpp"]
        compiles.append(
            subprocess.Popen([*cmd, "-o", f"ref{j}"], cwd=tmp, text=True, stderr=subprocess.PIPE)
        )
    errors = [proc.communicate()[1] for proc in compiles]
    for proc, err in zip(compiles, errors):
        assert proc.returncode == 0, err
    rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for j, part in enumerate(parts):
        run = [str(tmp / f"ref{j}"), "inputs.txt"]
        out = subprocess.run(run, cwd=tmp, check=True, capture_output=True, text=True)
        lines = out.stdout.splitlines()
        assert len(lines) == len(part)
        for k, line in zip(part, lines):
            tokens = line.split()
            raw = np.array([int(t) for t in tokens[0::2]], dtype=np.int64)
            value = np.array([float.fromhex(t) for t in tokens[1::2]])
            rows[k] = (raw, value)
    return xs, [rows[k] for k in range(len(CASES))]


@pytest.mark.parametrize("index", range(len(CASES)), ids=lambda k: "-".join(map(str, CASES[k])))
def test_quantize_matches_ap_fixed(reference, index):
    xs, rows = reference
    w, i, signed, q, o = CASES[index]
    raw_ref, value_ref = rows[index]
    t = FixedType(w, i, signed, q, o)
    levels = t.quantize(xs)
    assert levels.dtype == np.int64 and levels.shape == xs.shape
    assert ((t.lo <= levels) & (levels <= t.hi)).all()
    raw = levels & ((1 << w) - 1)
    bad = np.flatnonzero(raw != raw_ref)
    assert bad.size == 0, (
        f"{t.spelling()}: {bad.size} mismatches, e.g. x={xs[bad[0]]!r} "
        f"gives raw {raw[bad[0]]}, ap_fixed {raw_ref[bad[0]]}"
    )
    np.testing.assert_array_equal(t.levels_to_float(levels), value_ref)


def test_float32_input_matches_float64(reference):
    xs, _ = reference
    xs = xs[np.abs(xs) < 2.0**127]
    x32 = xs.astype(np.float32)
    exact = x32.astype(np.float64) == xs
    for t in (FixedType(8, 3, True, "RND_CONV", "SAT"), FixedType(16, 6, False)):
        np.testing.assert_array_equal(t.quantize(x32[exact]), t.quantize(xs[exact]))


def test_hand_worked_cases():
    # fixed<8,3>: step 1/32. 3.99 -> 127.68 steps; -4.1 -> -131.2 steps.
    x = np.array([[3.99, -4.1], [1 / 64, -1 / 64]], dtype=np.float32)
    assert parse_precision("fixed<8,3>").quantize(x).tolist() == [[127, 124], [0, -1]]
    assert parse_precision("fixed<8,3,RND,SAT>").quantize(x).tolist() == [[127, -128], [1, 0]]
    assert parse_precision("fixed<8,3,RND_CONV,SAT_SYM>").quantize(x).tolist() == [
        [127, -127],
        [0, 0],
    ]
    assert parse_precision("ufixed<8,3,TRN,SAT>").quantize(x).tolist() == [[127, 0], [0, 0]]


def test_modes_are_hls4mls():
    types = pytest.importorskip("hls4ml.model.types")
    assert list(ROUNDING_MODES) == list(types.RoundingMode.__members__)
    assert list(SATURATION_MODES) == list(types.SaturationMode.__members__)


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("fixed<16,6>", "fixed<16,6>"),
        ("ap_fixed<16,6>", "fixed<16,6>"),
        ("  AP_UFIXED < 8 , 3 , AP_RND , AP_SAT >  ", "ufixed<8,3,RND,SAT>"),
        ("fixed<8,3,RND_CONV,SAT_SYM>", "fixed<8,3,RND_CONV,SAT_SYM>"),
        ("fixed<8,3,rnd_min_inf,sat_zero>", "fixed<8,3,RND_MIN_INF,SAT_ZERO>"),
        ("fixed<8,3,TRN,SAT>", "fixed<8,3,TRN,SAT>"),
        ("fixed<8,3,RND,WRAP>", "fixed<8,3,RND>"),
        ("fixed<8,3,AP_TRN,AP_WRAP>", "fixed<8,3>"),
        ("fixed<4,6>", "fixed<4,6>"),
        ("ufixed<5,-1,RND_INF>", "ufixed<5,-1,RND_INF>"),
        ("fixed<8,8>", "int<8>"),
        ("ap_int<8>", "int<8>"),
        ("uint<4>", "uint<4>"),
        ("ap_uint<32>", "uint<32>"),
        ("fixed<8,8,TRN_ZERO>", "fixed<8,8,TRN_ZERO>"),
    ],
)
def test_spellings_round_trip(text, canonical):
    t = parse_precision(text)
    assert t.spelling() == canonical
    assert parse_precision(canonical) == t


def test_int_is_fixed_with_all_integer_bits():
    assert parse_precision("int<8>") == parse_precision("fixed<8,8>")
    assert parse_precision("int<8>") == FixedType(8, 8, True, "TRN", "WRAP")
    assert parse_precision("uint<8>") == parse_precision("ufixed<8,8>")
    t = parse_precision("fixed<16,6,RND,SAT>")
    assert (t.width, t.integer, t.signed, t.rounding, t.saturation) == (16, 6, True, "RND", "SAT")
    assert (t.exp, t.lo, t.hi, t.step) == (-10, -(2**15), 2**15 - 1, 2.0**-10)
    assert parse_precision("fixed<8,3,RND,SAT_SYM>").lo == -127
    assert parse_precision("ufixed<8,3,RND,SAT_SYM>").lo == 0


@pytest.mark.parametrize(
    "text, why",
    [
        ("fixd<16,6>", "not a precision"),
        ("float", "not a precision"),
        ("ac_fixed<16,6,true>", "not a precision"),
        ("fixed<16>", "needs W and I"),
        ("fixed<16.5,6>", "not an integer"),
        ("fixed<16,x>", "not an integer"),
        ("fixed<0,0>", "outside 1..32"),
        ("fixed<40,6>", "outside 1..32"),
        ("uint<64>", "outside 1..32"),
        ("int<8,RND>", "takes only the width"),
        ("fixed<16,6,RND,SATURATE>", "unknown saturation mode"),
        ("fixed<16,6,ROUND>", "unknown rounding mode"),
        ("fixed<16,6,RND,WRAP_SM>", "unknown saturation mode"),
        ("fixed<16,6,RND,SAT,2>", "saturation bits"),
        ("fixed<1,1,TRN,SAT_SYM>", "no symmetric range"),
    ],
)
def test_bad_spellings(text, why):
    with pytest.raises(HwpruneError) as info:
        parse_precision(text, where="input_type")
    message = str(info.value)
    assert message.startswith(f"input_type {text!r}: ")
    assert why in message and "\n" not in message


def test_bad_types():
    with pytest.raises(HwpruneError, match="outside 1..32"):
        FixedType(33, 3, True)
    with pytest.raises(HwpruneError, match="unknown rounding mode 'AP_RND'"):
        FixedType(8, 3, True, "AP_RND")
    with pytest.raises(HwpruneError, match="float64's range"):
        FixedType(8, 2000, True)


def test_non_finite_and_non_real_input_refused():
    t = parse_precision("fixed<8,3>")
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(HwpruneError, match=r"NaN or infinite \(first at index \(1,\)\)"):
            t.quantize(np.array([0.0, bad], dtype=np.float32))
    with pytest.raises(HwpruneError, match="dtype complex128"):
        t.quantize(np.array([1j]))
