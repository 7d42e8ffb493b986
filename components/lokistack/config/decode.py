"""Typed conversion between plain YAML values and the schema's dataclasses.

One generic walker serves the config file, the command-line overrides and the runtime config, so
every path reports mistakes the same way: with the full dotted key, what was expected and what was
found (``limits.ingestion_rate_mb: expected a number, got 'fast'``), and a suggestion for a
misspelt key.  A config that fails here never reaches a component.

Scalars may also be given as strings (``"3100"``, ``"true"``), because flags and templated
manifests produce strings; the canonical rendering from :func:`encode` uses real YAML types.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import math
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from lokistack.config import schema, units

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

D = TypeVar("D", bound="DataclassInstance")
N = TypeVar("N", int, float)

REDACTED: typing.Final = "<redacted>"

# Loki's names for blocks that have another name or place here, offered as suggestions.
_LOKI_NAMES: typing.Final[Mapping[str, str]] = {
    "limits_config": "limits",
    "storage_config": "storage",
    "query_range": "frontend",
    "frontend_worker": "querier",
    "ingester.lifecycler": "ring",
    "ingester.wal.flush_on_shutdown": "ingester.flush_on_shutdown",
}

_TRUE_WORDS: typing.Final = frozenset({"true", "t", "1", "yes", "on"})
_FALSE_WORDS: typing.Final = frozenset({"false", "f", "0", "no", "off"})


class ConfigError(Exception):
    """A configuration value that cannot be used, with the dotted key it was found at."""

    def __init__(self, key: str, reason: str, source: str = "") -> None:
        super().__init__(key, reason, source)
        self.key = key
        self.reason = reason
        self.source = source

    def with_source(self, source: str) -> ConfigError:
        """The same error, saying which file or flag set the value."""
        return ConfigError(self.key, self.reason, source)

    def __str__(self) -> str:
        text = (
            f"config error: {self.key}: {self.reason}"
            if self.key
            else f"config error: {self.reason}"
        )
        return f"{text} (in {self.source})" if self.source else text


def _hints(cls: type[object]) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _is_block(hint: object) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _is_bytes(hint: object) -> bool:
    return typing.get_origin(hint) is Annotated and schema.BYTE_SIZE in typing.get_args(hint)[1:]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def describe(value: object) -> str:
    """Show a found value the way the user wrote it, for error messages."""
    shown = type(value).__name__
    if isinstance(value, str):
        shown = f"'{value}'"
    elif isinstance(value, bool):
        shown = "true" if value else "false"
    elif value is None:
        shown = "an empty value"
    elif isinstance(value, int | float):
        shown = str(value)
    elif isinstance(value, list | tuple):
        shown = "a list"
    elif isinstance(value, Mapping):
        shown = "a mapping"
    return shown


def _unknown_key(key: str, name: str, known: list[str]) -> ConfigError:
    if key in _LOKI_NAMES:
        return ConfigError(key, f"unknown key (Lokistack calls this {_LOKI_NAMES[key]})")
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(key, f"unknown key{hint}")


def decode_into(base: D, raw: object, path: str = "") -> D:
    """Return ``base`` with the keys present in ``raw`` replaced by their decoded values.

    Keys absent from ``raw`` keep ``base``'s value, which is how defaults, the file, flags and
    per-tenant overrides layer on one another.  An empty block (``server:``) changes nothing.
    """
    if raw is None:
        return base
    if not isinstance(raw, Mapping):
        where = path or "(top level)"
        raise ConfigError(where, f"expected a block of keys, got {describe(raw)}")
    hints = _hints(type(base))
    known = [field.name for field in dataclasses.fields(base)]
    changes: dict[str, object] = {}
    for name, value in raw.items():
        key = _join(path, str(name))
        if name not in hints:
            raise _unknown_key(key, str(name), known)
        hint = hints[name]
        if _is_block(hint):
            changes[name] = decode_into(getattr(base, name), value, key)
        else:
            changes[name] = decode_value(hint, value, key)
    return dataclasses.replace(base, **changes)


def decode_value(hint: object, value: object, key: str) -> object:
    """Convert one scalar or list to the schema type ``hint``, or raise naming ``key``."""
    if _is_bytes(hint):
        return _decode_bytes(value, key)
    if typing.get_origin(hint) is Literal:
        return _decode_choice(typing.get_args(hint), value, key)
    if typing.get_origin(hint) is tuple:
        return _decode_strings(value, key)
    decoder = _SCALAR_DECODERS.get(hint)
    if decoder is None:
        raise TypeError(f"{key}: the schema uses a type the loader does not know: {hint!r}")
    return decoder(value, key)


def _decode_bool(value: object, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ConfigError(key, f"expected true or false, got {describe(value)}")


def _non_negative(number: N, key: str) -> N:
    if number < 0:
        raise ConfigError(key, f"must not be negative, got {number}")
    return number


def _decode_int(value: object, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return _non_negative(value, key)
    if isinstance(value, float) and value.is_integer():
        return _non_negative(int(value), key)
    if isinstance(value, str):
        try:
            return _non_negative(int(value.strip()), key)
        except ValueError:
            pass
    raise ConfigError(key, f"expected an integer, got {describe(value)}")


def _decode_float(value: object, key: str) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise ConfigError(key, f"expected a number, got {describe(value)}")
    return _non_negative(number, key)


def _decode_str(value: object, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, bool):
        raise ConfigError(
            key, f"expected a string, got {describe(value)} (put the value in quotes)"
        )
    raise ConfigError(key, f"expected a string, got {describe(value)}")


def _decode_duration(value: object, key: str) -> datetime.timedelta:
    if isinstance(value, datetime.timedelta):
        if value < datetime.timedelta(0):
            raise ConfigError(key, "durations cannot be negative")
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return datetime.timedelta(0)
    if isinstance(value, str):
        try:
            return units.parse_duration(value)
        except ValueError as err:
            raise ConfigError(
                key, f"expected a duration like 30s or 1h30m, got '{value}': {err}"
            ) from None
    raise ConfigError(key, f"expected a duration like 30s or 1h30m, got {describe(value)}")


def _decode_bytes(value: object, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return _non_negative(value, key)
    if isinstance(value, str):
        try:
            return units.parse_bytes(value)
        except ValueError as err:
            raise ConfigError(
                key, f"expected a size like 262144 or 256KB, got '{value}': {err}"
            ) from None
    raise ConfigError(key, f"expected a size like 262144 or 256KB, got {describe(value)}")


def _decode_choice(choices: tuple[object, ...], value: object, key: str) -> str:
    if isinstance(value, str) and value in choices:
        return value
    names = [str(choice) for choice in choices]
    close = difflib.get_close_matches(str(value), names, n=1) if isinstance(value, str) else []
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ConfigError(key, f"expected one of {', '.join(names)}; got {describe(value)}{hint}")


def _decode_strings(value: object, key: str) -> tuple[str, ...]:
    if isinstance(value, str):  # comma-separated, as flags give lists
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, list | tuple):
        return tuple(_decode_str(item, f"{key}[{index}]") for index, item in enumerate(value))
    raise ConfigError(key, f"expected a list of strings, got {describe(value)}")


_SCALAR_DECODERS: typing.Final[Mapping[object, Callable[[object, str], object]]] = {
    bool: _decode_bool,
    int: _decode_int,
    float: _decode_float,
    str: _decode_str,
    datetime.timedelta: _decode_duration,
}


def encode(block: DataclassInstance, *, redact: bool = False) -> dict[str, object]:
    """Render a block as plain YAML values in schema order; ``decode_into`` reverses it exactly."""
    hints = _hints(type(block))
    out: dict[str, object] = {}
    for field in dataclasses.fields(block):
        value = getattr(block, field.name)
        hint = hints[field.name]
        if _is_block(hint):
            out[field.name] = encode(value, redact=redact)
        elif redact and field.metadata.get("secret") and value:
            out[field.name] = REDACTED
        elif _is_bytes(hint):
            out[field.name] = units.format_bytes(value)
        elif isinstance(value, datetime.timedelta):
            out[field.name] = units.format_duration(value)
        elif isinstance(value, tuple):
            out[field.name] = list(value)
        else:
            out[field.name] = value
    return out


def keys(cls: type[DataclassInstance], path: str = "") -> Iterator[str]:
    """Every settable dotted key of a block class, in schema order (used by docs and tests)."""
    hints = _hints(cls)
    for field in dataclasses.fields(cls):
        key = _join(path, field.name)
        if _is_block(hints[field.name]):
            yield from keys(hints[field.name], key)
        else:
            yield key


def nest(dotted: str, value: object) -> dict[str, object]:
    """Turn ``a.b.c`` and a value into ``{"a": {"b": {"c": value}}}`` for :func:`decode_into`."""
    head, _, rest = dotted.partition(".")
    return {head: nest(rest, value) if rest else value}
