"""Frozen value classes made without generating code.

`@value` does what `@dataclass(frozen=True)` does for the plain records it is
used on (fields from the annotations in order, defaults, equality, hashing,
a readable repr, no assignment after construction), with one shared
`__init__` instead of methods compiled per class. A module that declares
dozens of such records (the lowered ruleset's variants) imports in a few
milliseconds instead of tens, which every command that loads a ruleset pays.
Type checkers see it as a dataclass (`dataclass_transform`).
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

_FIELDS = "__value_fields__"
_DEFAULTS = "__value_defaults__"


@dataclass_transform(frozen_default=True)
def value(cls: type[T]) -> type[T]:
    """Make `cls` a frozen value class with the fields its annotations name."""
    names: list[str] = []
    defaults: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for name, kind in klass.__dict__.get("__annotations__", {}).items():
            if str(kind).startswith("ClassVar"):
                continue
            if name not in names:
                names.append(name)
            if name in klass.__dict__:
                defaults[name] = klass.__dict__[name]
    setattr(cls, _FIELDS, tuple(names))
    setattr(cls, _DEFAULTS, defaults)
    for method in (_init, _setattr, _delattr, _eq, _hash, _repr):
        setattr(cls, method.__name__, method)
    return cls


def value_fields(obj: object) -> tuple[str, ...]:
    """The field names of a value class or instance, in declaration order."""
    names: tuple[str, ...] = getattr(obj, _FIELDS)
    return names


def _values(obj: object) -> tuple[Any, ...]:
    return tuple(obj.__dict__[name] for name in value_fields(obj))


def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
    names = value_fields(self)
    kind = type(self).__name__
    if len(args) > len(names):
        raise TypeError(f"{kind}() takes {len(names)} arguments but {len(args)} were given")
    given = dict(zip(names, args, strict=False))
    for name, item in kwargs.items():
        if name not in names or name in given:
            raise TypeError(f"{kind}() got an unexpected or repeated argument {name!r}")
        given[name] = item
    defaults = getattr(self, _DEFAULTS)
    for name in names:
        if name in given:
            self.__dict__[name] = given[name]
        elif name in defaults:
            self.__dict__[name] = defaults[name]
        else:
            raise TypeError(f"{kind}() missing argument {name!r}")


def __setattr__(self: Any, name: str, item: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def __delattr__(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def __eq__(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def __hash__(self: Any) -> int:
    return hash((self.__class__, _values(self)))


def __repr__(self: Any) -> str:
    inner = ", ".join(f"{name}={self.__dict__[name]!r}" for name in value_fields(self))
    return f"{type(self).__name__}({inner})"


_init, _setattr, _delattr, _eq, _hash, _repr = (
    __init__, __setattr__, __delattr__, __eq__, __hash__, __repr__)
