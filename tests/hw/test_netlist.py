"""Node writes its __init__ out (speed: hw.netlist): it must take exactly the fields, in
order, with their defaults, and keep the node a frozen value."""

import dataclasses
import inspect

import pytest

from hwprune.hw.netlist import Node
from hwprune.ir.graph import IntRange, Rounding


def test_init_takes_the_fields_with_their_defaults():
    params = list(inspect.signature(Node.__init__).parameters.values())[1:]
    fields = dataclasses.fields(Node)
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in fields
    ]


def test_node_is_a_frozen_value():
    r = IntRange(-3, 5)
    values = ("rq_0", "requant", r, 1, ("s",), 2, 7, 3, 0, (4,), True, (0, 9), Rounding.FLOOR, 6)
    n = Node(*values)
    assert tuple(getattr(n, f.name) for f in dataclasses.fields(Node)) == values
    assert n == dataclasses.replace(n) and hash(n) == hash(dataclasses.replace(n))
    assert dataclasses.replace(n, tz=2).tz == 2 and n.tz == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        n.tz = 0
