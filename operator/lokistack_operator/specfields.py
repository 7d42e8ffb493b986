"""Field declarations shared by the typed LokiStack spec, its decoder and the CRD generator.

Every field of the spec dataclasses (:mod:`lokistack_operator.spec`) is declared with
:func:`field`, which records its description and its validation (minimum, pattern, format...)
next to the Python type.  Two consumers read these declarations, so they cannot drift apart:

- :func:`decode_dataclass` turns the ``spec`` mapping of a LokiStack into the dataclasses,
  applying defaults and raising :class:`SpecError` with the full field path on bad input;
- ``tools/gencrd.py`` turns the same declarations into the CRD's OpenAPI v3 schema.

JSON names are the camelCase form of the attribute names (``ingestion_rate`` is
``ingestionRate``) unless a field gives its own (``global`` is a Python keyword).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import types
import typing
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from lokistack import config

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

D = TypeVar("D", bound="DataclassInstance")
K = TypeVar("K")
V = TypeVar("V")

Kind = Literal["plain", "quantity", "duration", "date", "object"]
"""How a field's value is checked beyond its Python type:
``quantity`` a Kubernetes resource quantity (``500m``, ``2Gi``, or an integer), ``duration`` a
Loki duration (``3m``), ``date`` a ``YYYY-MM-DD`` date, ``object`` an opaque Kubernetes object
kept as given (for example a PodAntiAffinity)."""

METADATA_KEY: Final = "lokistack"

QUANTITY_PATTERN: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
DURATION_PATTERN: Final = r"^(([0-9]+(\.[0-9]+)?)(ns|us|ms|s|m|h|d|w|y))+$"
DATE_PATTERN: Final = r"^([0-9]{4})(-([0-9]{2})){2}$"


@dataclasses.dataclass(frozen=True)
class Rule:
    """A CEL rule for ``x-kubernetes-validations``; ``rule`` sees the field's value as ``self``."""

    rule: str
    message: str
    field_path: str = ""  # where the API server reports the error, relative to ``self``


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    description: str
    json_name: str = ""
    kind: Kind = "plain"
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    list_map_keys: tuple[str, ...] = ()  # list items are unique by these keys
    rules: tuple[Rule, ...] = ()


def field(
    description: str,
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    **info: Any,
) -> Any:
    """A dataclass field with its spec metadata; without a default the field is required."""
    metadata = {METADATA_KEY: FieldInfo(description=description, **info)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


T = TypeVar("T")


@typing.dataclass_transform(
    frozen_default=True, kw_only_default=True, field_specifiers=(dataclasses.field, field)
)
def spec_dataclass(cls: type[T]) -> type[T]:
    """A frozen, keyword-only dataclass whose fields are declared with :func:`field`."""
    return dataclasses.dataclass(frozen=True, kw_only=True)(cls)


def info_of(item: dataclasses.Field[Any]) -> FieldInfo:
    found = item.metadata.get(METADATA_KEY)
    if not isinstance(found, FieldInfo):
        raise TypeError(f"spec field {item.name} is not declared with specfields.field()")
    return found


def camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def json_name(item: dataclasses.Field[Any]) -> str:
    return info_of(item).json_name or camel(item.name)


def hints(cls: type[object]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def is_dataclass_type(hint: object) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def optional_inner(hint: object) -> object | None:
    """``X`` for ``X | None``, else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args: list[object] = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return None


class SpecError(ValueError):
    """A LokiStack spec value that cannot be used, with the path of the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def describe(value: object) -> str:  # noqa: PLR0911 - one answer per JSON type
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


class FrozenMap(Mapping[K, V]):
    """A read-only, hashable mapping that pickles and deep-copies (unlike MappingProxyType)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[K, V] | None = None) -> None:
        self._items: dict[K, V] = dict(items or {})

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"

    def __reduce__(self) -> tuple[type[FrozenMap[K, V]], tuple[dict[K, V]]]:
        return (type(self), (self._items,))


def freeze(value: Any) -> Any:
    """A read-only deep copy of plain JSON values (mappings become :class:`FrozenMap`)."""
    if isinstance(value, Mapping):
        return FrozenMap({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain, mutable JSON values from :func:`freeze`'s output (for manifests)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


def decode_dataclass(cls: type[D], raw: object, path: str) -> D:
    """Build ``cls`` from a mapping keyed by JSON names; absent or null fields keep defaults."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SpecError(path, f"expected an object, got {describe(raw)}")
    fields = dataclasses.fields(cls)
    known = {json_name(item): item for item in fields}
    for key in raw:
        if key not in known:
            expected = ", ".join(sorted(known))
            raise SpecError(f"{path}.{key}", f"unknown field (expected one of: {expected})")
    field_hints = hints(cls)
    values: dict[str, Any] = {}
    for name, item in known.items():
        value = raw.get(name)
        child = f"{path}.{name}"
        if value is None:
            required = (
                item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
            )
            if required:
                raise SpecError(child, "required field is missing")
            continue
        values[item.name] = decode_value(field_hints[item.name], value, child, info_of(item))
    return cls(**values)


def decode_value(  # noqa: PLR0911 - one branch per supported type
    hint: object, value: object, path: str, info: FieldInfo
) -> Any:
    inner = optional_inner(hint)
    if inner is not None:
        return decode_value(inner, value, path, info)
    if is_dataclass_type(hint):
        return decode_dataclass(typing.cast("type[DataclassInstance]", hint), value, path)
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            expected = ", ".join(str(choice) for choice in choices)
            raise SpecError(
                path, f"unsupported value {describe(value)}: expected one of {expected}"
            )
        return value
    if origin is tuple:
        return _decode_list(typing.get_args(hint)[0], value, path, info)
    if origin is Mapping:
        return _decode_map(typing.get_args(hint)[1], value, path, info)
    if hint is bool:
        if not isinstance(value, bool):
            raise SpecError(path, f"expected true or false, got {describe(value)}")
        return value
    if hint is int:
        return _decode_int(value, path, info)
    if hint is str:
        return _decode_str(value, path, info)
    raise TypeError(f"unsupported spec type {hint!r} at {path}")


def _decode_int(value: object, path: str, info: FieldInfo) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(path, f"expected an integer, got {describe(value)}")
    if info.minimum is not None and value < info.minimum:
        raise SpecError(path, f"must be at least {info.minimum}, got {value}")
    if info.maximum is not None and value > info.maximum:
        raise SpecError(path, f"must be at most {info.maximum}, got {value}")
    return value


def _decode_str(value: object, path: str, info: FieldInfo) -> str:
    if info.kind == "quantity" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise SpecError(path, f"expected a string, got {describe(value)}")
    if info.max_length is not None and len(value) > info.max_length:
        raise SpecError(path, f"must be at most {info.max_length} characters long")
    if info.kind == "quantity" and not re.fullmatch(QUANTITY_PATTERN, value):
        raise SpecError(path, f"not a resource quantity (like 500m or 2Gi): {value!r}")
    if info.kind == "duration":
        try:
            if not re.fullmatch(DURATION_PATTERN, value):
                raise ValueError(value)
            parsed = config.parse_duration(value)
        except ValueError:
            raise SpecError(path, f"not a duration (like 3m or 1h30m): {value!r}") from None
        if parsed <= datetime.timedelta(0):
            raise SpecError(path, f"must be longer than zero, got {value!r}")
    if info.kind == "date":
        try:
            ok = bool(re.fullmatch(DATE_PATTERN, value)) and bool(
                datetime.date.fromisoformat(value)
            )
        except ValueError:
            ok = False
        if not ok:
            raise SpecError(path, f"not a date in the form YYYY-MM-DD: {value!r}")
    if info.pattern is not None and not re.search(info.pattern, value):
        raise SpecError(path, f"invalid value {value!r}: must match {info.pattern}")
    return value


def _decode_list(item_hint: object, value: object, path: str, info: FieldInfo) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise SpecError(path, f"expected a list, got {describe(value)}")
    if info.min_items is not None and len(value) < info.min_items:
        raise SpecError(path, f"must have at least {info.min_items} item(s)")
    if info.max_items is not None and len(value) > info.max_items:
        raise SpecError(path, f"must have at most {info.max_items} items")
    item_info = dataclasses.replace(info, min_items=None, max_items=None, list_map_keys=())
    items = tuple(
        decode_value(item_hint, item, f"{path}[{index}]", item_info)
        for index, item in enumerate(value)
    )
    if info.list_map_keys:
        seen: dict[tuple[Any, ...], int] = {}
        for index, item in enumerate(items):
            key = tuple(getattr(item, name) for name in info.list_map_keys)
            if key in seen:
                names = ", ".join(camel(name) for name in info.list_map_keys)
                raise SpecError(f"{path}[{index}]", f"duplicate {names} (same as item {seen[key]})")
            seen[key] = index
    return items


def _decode_map(value_hint: object, value: object, path: str, info: FieldInfo) -> Any:
    if not isinstance(value, Mapping):
        raise SpecError(path, f"expected an object, got {describe(value)}")
    if info.kind == "object" and value_hint is Any:
        return freeze(value)
    result: dict[str, Any] = {}
    for key in sorted(value, key=str):
        if not isinstance(key, str):
            raise SpecError(path, f"keys must be strings, got {describe(key)}")
        result[key] = decode_value(value_hint, value[key], f"{path}.{key}", info)
    return FrozenMap(result)
