"""Fixed-point input precisions, spelt as hls4ml spells them, and bit-exact quantization to them.

``parse_precision("fixed<16,6,RND,SAT>")`` gives a :class:`FixedType`; its
:meth:`FixedType.quantize` turns float data into the integer levels that Vivado/Vitis HLS
``ap_fixed<16,6,AP_RND,AP_SAT>`` holds after conversion from ``double`` (the constructor
``ap_fixed_base(double)`` in the ``ap_types`` headers). The level of a value is its raw
two's-complement (or unsigned) bit pattern read as an integer: ``value = level * 2**exp``.

Accepted spellings follow hls4ml 1.3.0 (``FPGABackend._convert_ap_type`` and
``RoundingMode``/``SaturationMode.from_string`` in ``hls4ml/model/types.py``): ``fixed<W,I>``,
``ufixed<W,I>``, ``int<W>``, ``uint<W>``, each with an optional ``ap_`` prefix, and for the
fixed types up to two more fields, the rounding and the saturation mode, with or without
``AP_``. Words are case-insensitive and whitespace around them is ignored. hls4ml's fifth field
(saturation bits, used only by the wrapping modes) is refused rather than silently changed.

``int<W>`` is ``fixed<W,W>`` (truncate, wrap), as hls4ml's ``IntegerPrecisionType`` reports it.
Note that the C++ ``ap_int<W>(double)`` constructor is not that conversion: it truncates
toward zero. The levels here are the ``ap_fixed<W,W>`` ones.

This module imports neither hls4ml nor torch: the frontend has to load without them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hwprune.errors import HwpruneError

# Rounding (ap_q_mode) and saturation (ap_o_mode) names hls4ml accepts, defaults first.
# AP_WRAP_SM exists in the ap_types headers but hls4ml's SaturationMode has no member for it.
ROUNDING_MODES = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV")
SATURATION_MODES = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")
MAX_WIDTH = 32

_SPELLING_HINT = (
    "write fixed<W,I>, ufixed<W,I>, int<W> or uint<W>, optionally with rounding and "
    "saturation (fixed<16,6,RND,SAT>)"
)
_SPELLING = re.compile(r"\s*(?:ap_)?(u?)(fixed|int)\s*<(.*)>\s*", re.IGNORECASE | re.DOTALL)
_INT = re.compile(r"[+-]?[0-9]+")

# Each rounding mode decides, for a magnitude strictly between two grid points, whether it
# moves up to the next level: arguments are (beyond half, exactly half, negative, lower
# magnitude odd). Working on magnitudes keeps the table symmetric; TRN is floor, so a
# negative value's magnitude goes up.
_ROUND_UP: dict[str, Callable[..., np.ndarray]] = {
    "TRN": lambda gt, tie, neg, odd: neg,
    "TRN_ZERO": lambda gt, tie, neg, odd: np.zeros_like(gt),
    "RND": lambda gt, tie, neg, odd: gt | (tie & ~neg),
    "RND_ZERO": lambda gt, tie, neg, odd: gt,
    "RND_INF": lambda gt, tie, neg, odd: gt | tie,
    "RND_MIN_INF": lambda gt, tie, neg, odd: gt | (tie & neg),
    "RND_CONV": lambda gt, tie, neg, odd: gt | (tie & odd),
}


def _problem(width: int, integer: int, signed: bool, rounding: str, saturation: str) -> str | None:
    """What is wrong with these type parameters (message and fix), or None if they are fine."""
    for name, value in (("width", width), ("integer bits", integer)):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be an int, got {value!r}"
    if not 1 <= width <= MAX_WIDTH:
        # Levels are int64 and their values float64 (exact up to 53 bits); 32 bits keeps that
        # with room to spare and is the widest input port the generated hardware takes.
        return (
            f"width {width} is outside 1..{MAX_WIDTH}; input levels must stay exact in "
            f"int64/float64 and fit the hardware input port, so use 1 to {MAX_WIDTH} bits"
        )
    if integer - width < -1022 or integer > 1024:
        # Keeps every representable value a normal float64, so levels_to_float is exact.
        return (
            f"integer bits {integer} put the grid outside float64's range; "
            "use -1022 <= I-W and I <= 1024"
        )
    if rounding not in ROUNDING_MODES:
        return f"unknown rounding mode {rounding!r}; use one of {', '.join(ROUNDING_MODES)}"
    if saturation not in SATURATION_MODES:
        return f"unknown saturation mode {saturation!r}; use one of {', '.join(SATURATION_MODES)}"
    if signed and width == 1 and saturation == "SAT_SYM":
        # The range [-hi, hi] is {0} here, yet ap_fixed<1,I,Q,AP_SAT_SYM> turns underflow
        # into -1; refusing is clearer than copying that corner.
        return "a 1-bit signed type has no symmetric range; use SAT or a width of 2 or more"
    return None


@dataclass(frozen=True)
class FixedType:
    """An ``ap_fixed``/``ap_ufixed`` type: W total bits, I integer bits (sign included).

    I may be negative or larger than W, as ``ap_fixed`` allows: the grid step is
    ``2**(I - W)`` either way. ``rounding`` and ``saturation`` are hls4ml's mode names
    without the ``AP_`` prefix.
    """

    width: int
    integer: int
    signed: bool
    rounding: str = "TRN"
    saturation: str = "WRAP"

    def __post_init__(self) -> None:
        problem = _problem(self.width, self.integer, self.signed, self.rounding, self.saturation)
        if problem is not None:
            sign = "" if self.signed else "u"
            raise HwpruneError(f"{sign}fixed<{self.width},{self.integer}>: {problem}")

    @property
    def exp(self) -> int:
        """Power of two of one level step: a level ``k`` means ``k * 2**exp``."""
        return self.integer - self.width

    @property
    def hi(self) -> int:
        """Largest level."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lo(self) -> int:
        """Smallest level a conversion can give (``-hi`` for signed SAT_SYM)."""
        if not self.signed:
            return 0
        if self.saturation == "SAT_SYM":
            return -self.hi
        return -(1 << (self.width - 1))

    @property
    def step(self) -> float:
        """Value of one level step, ``2.0**exp``."""
        return float(np.ldexp(1.0, self.exp))

    def spelling(self) -> str:
        """The canonical hls4ml spelling: defaults left out, ``int<W>`` for integer types.

        ``parse_precision(t.spelling()) == t`` holds for every type.
        """
        sign = "" if self.signed else "u"
        modes = [self.rounding, self.saturation]
        # Drop trailing defaults only: a saturation mode needs the rounding field before it.
        while modes and modes[-1] in ("TRN", "WRAP"):
            modes.pop()
        if not modes and self.integer == self.width:
            return f"{sign}int<{self.width}>"
        return f"{sign}fixed<{','.join(map(str, [self.width, self.integer, *modes]))}>"

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Integer levels (int64, same shape) of ``x`` converted as ``ap_fixed(double)`` does.

        Each element is taken as a double (float32 converts exactly), rounded to the grid
        ``2**exp`` by the rounding mode, and the level is then brought into range by the
        saturation mode. The arithmetic is exact for every finite double, however large:
        no double rounding and a correct WRAP result far outside the range. NaN and
        infinity have no ap_fixed value and are refused.
        """
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise HwpruneError(
                f"{self.spelling()}: cannot quantize data of dtype {arr.dtype}; pass real numbers"
            )
        xd = arr.astype(np.float64)
        bad = ~np.isfinite(xd)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise HwpruneError(
                f"{self.spelling()}: {int(bad.sum())} input value(s) are NaN or infinite "
                f"(first at index {first}); ap_fixed has no such value, so clean the data first"
            )

        # x = m * 2**e exactly with 0.5 <= |m| < 1; |m| * 2**53 is an integer below 2**53
        # (at least 2**52 unless x is 0, subnormals included), so in grid steps
        # x = +-mant * 2**shift with integers only.
        m, e = np.frexp(xd)
        neg = m < 0
        mant = np.abs(np.ldexp(m, 53)).astype(np.int64)
        shift = e.astype(np.int64) - 53 - self.exp

        # Below the grid (shift < 0): split the magnitude into whole steps q and the dropped
        # part r out of 2**d. Past d = 60 the dropped part is below a quarter step whatever
        # d is (mant < 2**53), so clamping d keeps every rounding decision and the shifts
        # inside int64.
        d = np.clip(-shift, 0, 60)
        q = mant >> d
        r = mant & ((np.int64(1) << d) - 1)
        half = (np.int64(1) << d) >> 1
        inexact = r != 0
        up = _ROUND_UP[self.rounding](r > half, r == half, neg, (q & 1) == 1) & inexact
        magnitude = q + up.astype(np.int64)
        level = np.where(neg, -magnitude, magnitude)

        # Above the grid (shift > 0) the level is +-mant * 2**shift >= 2**53: always out of
        # range, and too large for int64, so it is flagged and only its residue is computed.
        big = (shift > 0) & (mant != 0)
        mask = np.int64((1 << self.width) - 1)
        s = np.clip(shift, 0, self.width)
        big_residue = (mant & (mask >> s)) << s  # (mant * 2**shift) mod 2**W, exact
        raw = np.where(big, np.where(neg, -big_residue, big_residue), level) & mask

        if self.saturation == "WRAP":
            if self.signed:
                return np.where(raw > self.hi, raw - (1 << self.width), raw)
            return raw
        over = np.where(big, ~neg, level > self.hi)
        under = np.where(big, neg, level < self.lo)
        if self.saturation == "SAT_ZERO":
            return np.where(over | under, 0, level).astype(np.int64)
        # SAT and SAT_SYM differ only in lo, which already holds -hi for signed SAT_SYM.
        return np.where(over, self.hi, np.where(under, self.lo, level)).astype(np.int64)

    def levels_to_float(self, levels: np.ndarray) -> np.ndarray:
        """The real values of ``levels`` as float64, exactly (``level * 2**exp``).

        float64 rather than float32: a level of up to 32 bits does not fit float32's
        24-bit significand.
        """
        return np.ldexp(np.asarray(levels, dtype=np.float64), self.exp)


def parse_precision(text: str, where: str = "--input-type") -> FixedType:
    """Parse an hls4ml precision such as ``fixed<16,6>``, ``ap_ufixed<8,3,RND,SAT>`` or ``int<8>``.

    ``where`` names the place the text came from (a CLI flag or a TOML key) so that the
    one-line error says where to fix it.
    """

    def fail(problem: str) -> HwpruneError:
        return HwpruneError(f"{where} {text!r}: {problem}")

    match = _SPELLING.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise fail(f"not a precision; {_SPELLING_HINT}")
    unsigned, kind = match.group(1), match.group(2).lower()
    sign = "u" if unsigned else ""
    fields = [f.strip() for f in match.group(3).split(",")]
    if not _INT.fullmatch(fields[0]):
        raise fail(f"width {fields[0]!r} is not an integer; {_SPELLING_HINT}")
    width = int(fields[0])

    if kind == "int":
        if len(fields) > 1:
            # hls4ml parses such fields and then drops them; refusing avoids a silent change.
            raise fail(
                f"{sign}int<W> takes only the width; for rounding or saturation write "
                f"{sign}fixed<{width},{width},rounding,saturation>"
            )
        integer, modes = width, []
    else:
        if len(fields) < 2:
            raise fail(f"{sign}fixed needs W and I; write {sign}fixed<{width},I>")
        if len(fields) > 4:
            raise fail(
                "saturation bits (a fifth field) are not supported; "
                f"write {sign}fixed<W,I,rounding,saturation>"
            )
        if not _INT.fullmatch(fields[1]):
            raise fail(f"integer bits {fields[1]!r} is not an integer; {_SPELLING_HINT}")
        integer = int(fields[1])
        # hls4ml's from_string: strip an AP_ prefix, compare upper-case.
        modes = [f.upper().removeprefix("AP_") for f in fields[2:]]
    rounding = modes[0] if modes else "TRN"
    saturation = modes[1] if len(modes) > 1 else "WRAP"
    problem = _problem(width, integer, not unsigned, rounding, saturation)
    if problem is not None:
        raise fail(problem)
    return FixedType(width, integer, not unsigned, rounding, saturation)
