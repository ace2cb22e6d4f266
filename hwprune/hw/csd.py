"""Canonical signed digits: the one implementation the kernels, the emitter and the
estimator share."""

from __future__ import annotations


def csd_digits(n: int) -> tuple[tuple[int, int], ...]:
    """Canonical signed digits of n: (position, +1 or -1), LSB first, sum(d << p) == n.

    The non-adjacent form has the fewest nonzero digits of any signed-binary form
    (Reitwiesner 1960), so shift-and-add by it uses the fewest adders: 7 = 8 - 1 (2 digits,
    not 3). A negative n gets the digits of -n negated; 0 has none.
    """
    m = abs(n)
    sign = -1 if n < 0 else 1
    digits = []
    pos = 0
    while m:
        if m & 1:
            d = 2 - (m & 3)  # +1 when m = 1 mod 4, -1 when m = 3 mod 4
            digits.append((pos, sign * d))
            m -= d
        m >>= 1
        pos += 1
    return tuple(digits)


def trailing_zeros(n: int) -> int:
    """Number of trailing zero bits of a nonzero integer (its power-of-two factor); 0 for 0."""
    return (n & -n).bit_length() - 1 if n else 0
