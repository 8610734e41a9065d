"""Typed, bounded config sections: what a setting's value must be, checked in one place.

Why on the field and not in the code that uses it: the config file, the environment and a remote
settings message from customs all pass the same check, so a value refused in the file cannot arrive
by the downlink (or be loaded again after a restart). The sections themselves are in
:mod:`prescreen.ops.sections`; reading a file into them is :mod:`prescreen.ops.config`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar

from prescreen.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Bounds:
    """What one setting's value must be beyond its type: in a range, one of a list, or a pattern.

    Why on the field and not in the code that uses it: the config file, the environment and a
    remote settings message from customs all pass the same check in one place, so a value refused
    in the file cannot arrive by the downlink (or be loaded again after a restart).
    Every number must also be finite, whether or not it has bounds.
    """

    min: float | None = None  # inclusive
    max: float | None = None  # inclusive
    above: float | None = None  # exclusive lower bound (a timeout of 0 is no timeout)
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    # Choices known only at run time (the scale protocols shipped), asked for when checking.
    choices_of: Callable[[], tuple[str, ...]] | None = None

    def allowed(self) -> tuple[str, ...]:
        """The values a string may take (empty: any)."""
        return self.choices or (self.choices_of() if self.choices_of is not None else ())

    def problem(self, value: object) -> str | None:
        """What is wrong with ``value`` (of the right type already), or None."""
        if isinstance(value, float) and not math.isfinite(value):
            return "a finite number"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.above is not None and not value > self.above:
                high = "" if self.max is None else f" and at most {self.max:g}"
                return f"above {self.above:g}{high}"
            if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
                low = "" if self.min is None else f"at least {self.min:g}"
                high = "" if self.max is None else f"at most {self.max:g}"
                return " and ".join(p for p in (low, high) if p)
        if isinstance(value, tuple):
            return next(filter(None, map(self.problem, value)), None)
        if isinstance(value, str):
            allowed = self.allowed()
            if allowed and value not in allowed:
                return "one of " + ", ".join(allowed)
            if self.pattern is not None and not re.fullmatch(self.pattern, value):
                return f"a string matching {self.pattern}"
        return None


_NO_BOUNDS = Bounds()


def bounded(default: Any, **bounds: Any) -> Any:
    """A dataclass field with :class:`Bounds` (``bounded(15.0, min=0, max=100)``)."""
    return dataclasses.field(default=default, metadata={"bounds": Bounds(**bounds)})


def bounds_of(section: type[Section], key: str) -> Bounds:
    """The bounds of ``section.key`` (none beyond finiteness when the field declares none)."""
    for field in dataclasses.fields(section):
        if field.name == key:
            found: Bounds = field.metadata.get("bounds", _NO_BOUNDS)
            return found
    raise ConfigError(f"unknown key '{section.SECTION}.{key}'")


def check_value(section: type[Section], key: str, value: object) -> Any:
    """``value`` as ``section.key`` holds it (an integer where a number is expected becomes a float),
    or an error if it is of the wrong type or outside the field's bounds. The one check for the
    file, the environment and the downlink.

    Raises:
        ConfigError: names the key, what it must be, and what it got.
    """
    tp = typing.get_type_hints(section).get(key)
    if tp is None or key == "SECTION":
        raise ConfigError(f"unknown key '{section.SECTION}.{key}'")
    if not accepts(tp, value):
        raise ConfigError(
            f"'{section.SECTION}.{key}' must be {describe(tp)}, got {type(value).__name__} {value!r}"
        )
    if tp is float:
        value = float(value)  # type: ignore[arg-type]  # _accepts let only int and float through
    elif isinstance(value, list):
        value = tuple(value)  # a TOML array; sections are frozen
    problem = bounds_of(section, key).problem(value)
    if problem is not None:
        raise ConfigError(f"'{section.SECTION}.{key}' must be {problem}, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Section:
    """A config section: every value checked against its field's bounds whenever one is made.

    Checking in ``__post_init__`` means ``dataclasses.replace`` (the downlink, the demo) passes the
    same rules as the file; :meth:`relations` adds rules between keys of one section.
    """

    SECTION: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            problem = bounds_of(type(self), field.name).problem(value)
            if problem is not None:
                raise ConfigError(f"'{self.SECTION}.{field.name}' must be {problem}, got {value!r}")
        problem = self.relations()
        if problem is not None:
            raise ConfigError(f"[{self.SECTION}]: {problem}")

    def relations(self) -> str | None:
        """What is wrong between this section's keys, or None (override per section)."""
        return None


def describe(tp: Any) -> str:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return " or ".join(describe(a) for a in typing.get_args(tp) if a is not type(None))
    if typing.get_origin(tp) is tuple:
        return "a list of strings"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def accepts(tp: Any, value: object) -> bool:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return any(accepts(a, value) for a in typing.get_args(tp) if a is not type(None))
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typing.get_origin(tp) is tuple:  # tuple[str, ...]: a TOML array of strings
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    return isinstance(value, tp)
