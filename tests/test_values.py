"""Frozen value classes (statewall.values) behave as frozen dataclasses do."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError
from typing import ClassVar

import pytest

from statewall.values import value, value_fields


@value
class Base:
    kind: ClassVar[str] = "base"
    low: int
    high: int = 65535


@value
class Child(Base):
    neg: bool = False


def test_fields_defaults_equality_and_hash() -> None:
    assert value_fields(Child) == ("low", "high", "neg")
    a = Child(1)
    assert (a.low, a.high, a.neg) == (1, 65535, False)
    assert a == Child(1, 65535, False) == Child(low=1, neg=False)
    assert a != Child(2) and a != Base(1)
    assert hash(a) == hash(Child(1)) and len({a, Child(1), Child(2)}) == 2
    assert repr(a) == "Child(low=1, high=65535, neg=False)"
    assert pickle.loads(pickle.dumps(a)) == a


def test_frozen_and_checked_arguments() -> None:
    a = Child(1)
    with pytest.raises(FrozenInstanceError):
        a.low = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing argument 'low'"):
        Child()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 3 arguments"):
        Child(1, 2, True, 4)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected or repeated argument 'low'"):
        Child(1, low=2)  # type: ignore[misc]
