"""Canonical signed digits (hw/csd.py), checked by their defining properties."""

from hwprune.hw.csd import csd_digits, trailing_zeros


def test_hand_worked_digits():
    assert csd_digits(0) == ()
    assert csd_digits(1) == ((0, 1),)
    assert csd_digits(7) == ((0, -1), (3, 1))  # 8 - 1
    assert csd_digits(11) == ((0, -1), (2, -1), (4, 1))  # 16 - 4 - 1
    assert csd_digits(-7) == ((0, 1), (3, -1))


def test_value_non_adjacency_and_fewest_digits():
    for n in range(-1024, 1025):
        d = csd_digits(n)
        assert sum(s << p for p, s in d) == n
        positions = [p for p, _ in d]
        assert all(b - a >= 2 for a, b in zip(positions, positions[1:]))  # non-adjacent form
        # no signed-binary form has fewer nonzero digits: NAF weight <= plain binary weight,
        # and for 2^k - 1 it is 2 where binary needs k
        assert len(d) <= bin(abs(n)).count("1")


def test_trailing_zeros():
    assert [trailing_zeros(n) for n in (0, 1, 2, 12, -8, 96)] == [0, 0, 1, 2, 3, 5]
