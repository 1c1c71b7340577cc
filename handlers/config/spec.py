"""Each setting declared once, as a dataclass field: its annotation is the type, its
``setting(...)`` the default and range, and the docstring on the lines below it the help
(handlers/config/doc.py reads it with ``ast`` for docs/settings.md; editors show it on
hover). One line and its docstring per setting, as in handlers/config/options.py:

    rewrite_max_bytes: int = setting(8 * MiB, low=0, high=GiB, unit="bytes")

``specs(Options)`` then gives each field's ``Spec``: its name in the user's file, the
default, what it accepts, and ``check`` (the one validation of a value, for ``Config``
settings and ``BackendSite`` keywords alike). Fields without ``setting`` are not
settings: nothing reads them from the user's file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

KiB, MiB, GiB = 1024, 1024**2, 1024**3

_SPEC = "web_proxy.setting"


class Kind(NamedTuple):
    """What a value must be: ``expected`` in words, and ``parse``, which returns the value
    to use or raises ValueError (its text, when any, says which part is wrong)."""

    expected: str
    parse: Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class _Declared:
    default: Any
    low: float | None
    high: float | None
    choices: tuple[str, ...]
    kind: Kind | None
    name: str | None
    unit: str | None


def setting(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] = (),
    kind: Kind | None = None,
    name: str | None = None,
    unit: str | None = None,
) -> Any:
    """A dataclass field declared as a setting. ``low``/``high`` bound an ``int`` (whole
    number) or a ``float`` (seconds, above ``low``); ``choices`` the values of a ``str``;
    ``kind`` checks any other type. ``name``: its name in the user's file, when not the
    field's; ``unit`` ("bytes", "seconds") is for the documentation."""
    declared = _Declared(default, low, high, choices, kind, name, unit)
    metadata = {_SPEC: declared}
    if isinstance(default, dict | list | set):
        copy = default.copy
        return dataclasses.field(default_factory=copy, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class Spec(NamedTuple):
    """One setting as declared: ``field`` of the dataclass, ``name`` in the user's file."""

    field: str
    name: str
    type: str
    default: Any
    kind: Kind
    unit: str | None
    low: float | None
    high: float | None
    choices: tuple[str, ...]

    def check(self, value: object) -> Any:
        """The value to use, or ValueError("expected ...")."""
        try:
            return self.kind.parse(value)
        except ValueError as exc:
            detail = f"; {exc}" if str(exc) else ""
            raise ValueError(f"expected {self.kind.expected}{detail}") from None


_declared_by: dict[type, tuple[Spec, ...]] = {}


def specs(cls: type) -> tuple[Spec, ...]:
    """The settings that ``cls`` declares, in declaration order."""
    if cls in _declared_by:
        return _declared_by[cls]
    out = []
    for f in dataclasses.fields(cls):
        declared = f.metadata.get(_SPEC)
        if declared is None:
            continue
        type_text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        kind = declared.kind or _kind_of(type_text, declared)
        out.append(
            Spec(
                f.name,
                declared.name or f.name,
                type_text,
                declared.default,
                kind,
                declared.unit,
                declared.low,
                declared.high,
                declared.choices,
            )
        )
    _declared_by[cls] = tuple(out)
    return _declared_by[cls]


def _kind_of(type_text: str, declared: _Declared) -> Kind:
    low, high = declared.low, declared.high
    if type_text == "bool":
        return BOOL
    if type_text == "int" and low is not None and high is not None:
        return whole_number(int(low), int(high))
    if type_text == "float" and low is not None and high is not None:
        return seconds(low, high)
    if type_text == "str" and declared.choices:
        return one_of(declared.choices)
    if type_text == "str":
        return Kind("a string", _string)
    raise TypeError(f"a setting of type {type_text} needs low and high, choices or a kind")


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError
    return value


BOOL = Kind("True or False", _bool)


def whole_number(low: int, high: int) -> Kind:
    def parse(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError
        return value

    return Kind(f"a whole number from {low:,} to {high:,}", parse)


def seconds(low: float, high: float) -> Kind:
    def parse(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
            raise ValueError
        return float(value)

    return Kind(f"a number of seconds above {low:g}, at most {high:g}", parse)


def one_of(choices: tuple[str, ...]) -> Kind:
    def parse(value: object) -> str:
        if value not in choices:
            raise ValueError
        return str(value)

    return Kind("one of " + ", ".join(repr(c) for c in choices), parse)


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value


__all__ = [
    "BOOL",
    "GiB",
    "KiB",
    "Kind",
    "MiB",
    "Spec",
    "one_of",
    "seconds",
    "setting",
    "specs",
    "whole_number",
]
