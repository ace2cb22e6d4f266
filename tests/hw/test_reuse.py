"""A stream kernel's Dense shared over R cycles (hw.reuse), worked by hand."""

from __future__ import annotations

from hwprune.hw.reuse import share
from hwprune.ir.graph import Dense, IntRange, Row, Value


def test_terms_dealt_into_slots_of_r_phases():
    # Row 0: three terms at R = 2 -> slot 0 takes terms 0 and 1, slot 1 term 2 and an idle
    # phase; row 1: one term -> one slot. x in [0, 15].
    x = Value((IntRange(0, 15),) * 3, 0)
    op = Dense("d", ("x",), 3, (Row(4, (0, 1, 2), (3, -2, 5)), Row(-1, (1,), (7,))), 0)
    sd = share(op, x, 2, None)
    r0, r1 = sd.rows
    assert r0.slots == (((0, 3), (1, -2)), ((2, 5), None))
    assert r1.slots == (((1, 7), None),)
    assert sd.multipliers == 3 and sd.n_terms == 4
    # Phase 0 adds 3x0 and 5x2: [0, 120]; phase 1 adds -2x1: [-30, 120]; plus the bias 4.
    assert r0.total == IntRange(-26, 124)
    assert r0.acc == IntRange(-30, 124)
    assert r1.total == IntRange(-1, 104) and r1.acc == IntRange(-1, 105)


def test_r_above_the_terms_is_one_slot_per_row():
    x = Value((IntRange(-8, 7),) * 2, 0)
    op = Dense("d", ("x",), 2, (Row(0, (0, 1), (1, 1)),), 0)
    sd = share(op, x, 4, None)
    assert sd.rows[0].slots == (((0, 1), (1, 1), None, None),)
