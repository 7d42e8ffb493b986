"""Parser stages: ``json``, ``logfmt``, ``regexp``, ``pattern`` and ``unpack``.

Each parser adds labels through :meth:`.labels.LabelsBuilder.set_parsed_new`, which applies
Loki's rules: keys are sanitized (non-word characters to ``_``, ``_`` before a leading digit), a
key the stream or the metadata already has becomes ``<key>_extracted``, and the first value a
line yields for a key wins. A line the parser cannot read is kept with ``__error__`` set.

JSON is decoded by the C decoder of :mod:`json` with hooks that keep what Loki keeps: numbers as
their raw text, objects as ordered pairs (so a repeated key keeps its first value), arrays
skipped. Parameterised ``json`` reads only the requested paths and returns objects and arrays as
their original text, as Loki does. logfmt lines are split by :mod:`.logfmt`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Final

from lokistack.logql.log import labels as log_labels
from lokistack.logql.log import logfmt
from lokistack.logql.syntax import ast, checks

Stage = Callable[[int, str, log_labels.LabelsBuilder], str | None]
"""A pipeline stage: the (possibly rewritten) line, or ``None`` to drop the entry."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


class _Number(str):
    """A JSON number, kept as its text (Loki never converts them) but told apart from strings."""

    __slots__ = ()


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=tuple, parse_float=_Number, parse_int=_Number, parse_constant=_reject_constant
)
_JSON_SPACE: Final = " \t\n\r"
_KEY_CACHE_LIMIT: Final = 4096


def _clean(value: str) -> str:
    """Loki replaces U+FFFD (its decoder's mark for invalid UTF-8) with a space."""
    if not value.isascii() and "\ufffd" in value:
        return value.replace("\ufffd", " ")
    return value


def _decode_object(line: str) -> tuple[tuple[tuple[str, Any], ...] | None, str]:
    """The top-level object's pairs, or ``None`` and the error text. Trailing text after the
    object is ignored, as Loki's streaming reader never looks at it."""
    start = len(line) - len(line.lstrip(_JSON_SPACE))
    if start >= len(line) or line[start] != "{":
        return None, "Value is not an object"
    try:
        value, _ = _DECODER.raw_decode(line, start)
    except ValueError as error:
        return None, str(error)
    return value, ""


class JSONParser:
    """``| json``: every field, nested objects flattened with ``_``, arrays and nulls skipped."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[str, dict[str, str]] = {}  # prefix -> raw key -> label name

    def __call__(self, _ts: int, line: str, builder: log_labels.LabelsBuilder) -> str | None:
        pairs, error = _decode_object(line)
        if pairs is None:
            builder.set_error(log_labels.JSON_PARSER_ERR, error)
            return line
        found: list[tuple[str, str]] = []
        self._walk(pairs, "", found)
        builder.set_parsed_new_many(found)
        return line

    def _key(self, prefix: str, raw: str) -> str:
        """The label name of field ``raw`` under the flattened ``prefix``.

        Blank parts are skipped, and only the first part gets ``_`` before a leading digit.
        """
        part = log_labels.sanitize_key(raw)
        if prefix and part:
            if "0" <= raw.strip()[0] <= "9":
                part = part[1:]
            return f"{prefix}_{part}"
        return prefix or part

    def _walk(
        self, pairs: tuple[tuple[str, Any], ...], prefix: str, found: list[tuple[str, str]]
    ) -> None:
        """Append ``(label, value)`` for every scalar field, depth first, in document order."""
        keys = self._keys.get(prefix)
        if keys is None:
            keys = {}
            if len(self._keys) < _KEY_CACHE_LIMIT:
                self._keys[prefix] = keys
        append = found.append
        for raw, value in pairs:
            kind = type(value)
            if kind is str:
                text = value if value.isascii() else _clean(value)
            elif kind is _Number:
                text = str.__str__(value)
            elif kind is tuple:
                self._walk(value, self._key(prefix, raw), found)
                continue
            elif value is True:
                text = "true"
            elif value is False:
                text = "false"
            else:
                continue  # null and arrays are skipped
            key = keys.get(raw)
            if key is None:
                key = self._key(prefix, raw)
                if len(keys) < _KEY_CACHE_LIMIT:
                    keys[raw] = key
            if key:
                append((key, text))


def _json_value_at(line: str, path: checks.JSONPath) -> tuple[bool, str]:  # noqa: PLR0911
    """The value at ``path`` as Loki's expression parser renders it, and whether it exists.

    The walk reads keys with the C string scanner and skips other values with ``raw_decode``,
    so that an object or array result is the line's own text.
    """
    pos = len(line) - len(line.lstrip(_JSON_SPACE))
    end = len(line)
    for step in path:
        if pos >= end:
            return False, ""
        if isinstance(step, str):
            if line[pos] != "{":
                return False, ""
            pos = _find_member(line, pos, step)
        else:
            if line[pos] != "[":
                return False, ""
            pos = _find_element(line, pos, step)
        if pos < 0:
            return False, ""
    value, stop = _DECODER.raw_decode(line, pos)
    if value is None:
        return True, ""
    if type(value) is str:
        return True, _clean(value)
    return True, line[pos:stop]


def _skip_space(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in _JSON_SPACE:
        pos += 1
    return pos


def _find_member(line: str, pos: int, wanted: str) -> int:
    """Position of the value of the first member ``wanted`` of the object at ``pos``, or -1."""
    pos = _skip_space(line, pos + 1)
    while pos < len(line) and line[pos] == '"':
        key, pos = json.decoder.scanstring(line, pos + 1)  # type: ignore[attr-defined]
        pos = _skip_space(line, pos)
        if pos >= len(line) or line[pos] != ":":
            raise ValueError("expected ':' after object key")
        pos = _skip_space(line, pos + 1)
        if key == wanted:
            return pos
        _, pos = _DECODER.raw_decode(line, pos)
        pos = _skip_space(line, pos)
        if pos < len(line) and line[pos] == ",":
            pos = _skip_space(line, pos + 1)
    return -1


def _find_element(line: str, pos: int, wanted: int) -> int:
    """Position of element ``wanted`` of the array at ``pos``, or -1."""
    pos = _skip_space(line, pos + 1)
    index = 0
    while pos < len(line) and line[pos] != "]":
        if index == wanted:
            return pos
        _, pos = _DECODER.raw_decode(line, pos)
        pos = _skip_space(line, pos)
        if pos < len(line) and line[pos] == ",":
            pos = _skip_space(line, pos + 1)
        index += 1
    return -1


class JSONExpressionParser:
    """``| json a="x.y", b="list[0]"``: only these paths; a missing one gives an empty label."""

    __slots__ = ("_params",)

    def __init__(self, params: Sequence[ast.LabelExtraction]) -> None:
        self._params = [(param.name, param.json_path) for param in params]

    def __call__(self, _ts: int, line: str, builder: log_labels.LabelsBuilder) -> str | None:
        if not line:
            return line
        if line[0] not in '"{[':
            builder.set_error(log_labels.JSON_PARSER_ERR)
            return line
        for name, path in self._params:
            try:
                found, value = _json_value_at(line, path)
            except ValueError as error:
                builder.set_error(log_labels.JSON_PARSER_ERR, str(error))
                found, value = False, ""
            if found:
                key = name + log_labels.DUPLICATE_SUFFIX if builder.taken(name) else name
                builder.set_parsed(key, value)
            elif builder.get(name) is None:
                builder.set_parsed(name, "")
        return line


class UnpackParser:
    """``| unpack``: string fields become labels and ``_entry`` replaces the line.

    As in Loki, labels are only added when the object has an ``_entry`` (a line packed by
    Promtail's ``pack`` stage); other fields are ignored.
    """

    __slots__ = ()

    def __call__(self, _ts: int, line: str, builder: log_labels.LabelsBuilder) -> str | None:
        if not line:
            return line
        if line[0] != "{":
            builder.set_error(log_labels.JSON_PARSER_ERR, "expecting json object(6), but it is not")
            return line
        pairs, error = _decode_object(line)
        if pairs is None:
            builder.set_error(log_labels.JSON_PARSER_ERR, error)
            return line
        entry: str | None = None
        found: list[tuple[str, str]] = []
        for raw, value in pairs:
            if type(value) is not str:
                continue
            if raw == "_entry":
                entry = value
                continue
            key = raw + log_labels.DUPLICATE_SUFFIX if builder.taken(raw) else raw
            if key in builder.extracted:
                continue
            found.append((log_labels.sanitize_key(key), _clean(value)))
        if entry is None:
            return line
        for key, value in found:
            builder.set_parsed(key, value)
        return entry


class RegexpParser:
    """``| regexp "(?P<name>…)"``: named groups of the first match; no match adds nothing."""

    __slots__ = ("_groups", "_search")

    def __init__(self, stage: ast.RegexpParser) -> None:
        self._search = stage.regex.search
        index = stage.regex.groupindex
        self._groups = [
            (index[name], log_labels.sanitize_key(name))
            for name in checks.check_regexp_parser(stage.pattern)
        ]

    def __call__(self, _ts: int, line: str, builder: log_labels.LabelsBuilder) -> str | None:
        match = self._search(line)
        if match is None:
            return line
        for group, key in self._groups:
            if key:
                builder.set_parsed_new(key, match.group(group) or "")
        return line


class PatternParser:
    """``| pattern "<ip> <_> <status>"``: Loki's ``pattern.Matcher.Matches``.

    The leading literal must start the line; each capture runs to the next occurrence of the
    literal after it, and a capture whose literal is missing takes the rest of the line, after
    which matching stops (a short line fills only the leading captures).
    """

    __slots__ = ("_names", "_nodes")

    def __init__(self, stage: ast.PatternParser) -> None:
        self._nodes = stage.nodes
        self._names = [n.text for n in self._nodes if n.capture and n.text != "_"]

    def matches(self, line: str) -> list[str]:
        nodes = self._nodes
        if not line or not nodes:
            return []
        pos, index = 0, 0
        if not nodes[0].capture:
            if not line.startswith(nodes[0].text):
                return []
            pos, index = len(nodes[0].text), 1
        captures: list[str] = []
        while index < len(nodes):
            named = nodes[index].text != "_"
            if index + 1 == len(nodes):
                if named:
                    captures.append(line[pos:])
                return captures
            literal = nodes[index + 1].text
            found = line.find(literal, pos)
            if found < 0:
                if named:
                    captures.append(line[pos:])
                return captures
            if named:
                captures.append(line[pos:found])
            pos = found + len(literal)
            index += 2
        return captures

    def __call__(self, _ts: int, line: str, builder: log_labels.LabelsBuilder) -> str | None:
        for name, value in zip(self._names, self.matches(line), strict=False):
            builder.set_parsed_new(name, value)
        return line


# -- logfmt --------------------------------------------------------------------------------------


class LogfmtParser:
    """``| logfmt [--strict] [--keep-empty]``: every pair; empty values only with --keep-empty."""

    __slots__ = ("_keep_empty", "_keys", "_strict")

    def __init__(self, stage: ast.LogfmtParser) -> None:
        self._strict = stage.strict
        self._keep_empty = stage.keep_empty
        self._keys: dict[str, str] = {}

    def __call__(self, _ts: int, line: str, builder: log_labels.LabelsBuilder) -> str | None:
        pairs, error = logfmt.logfmt_pairs(line, self._strict)
        keys = self._keys
        keep_empty = self._keep_empty
        found: list[tuple[str, str]] = []
        for raw, value in pairs:
            key = keys.get(raw)
            if key is None:
                key = log_labels.sanitize_key(raw)
                if len(keys) < _KEY_CACHE_LIMIT:
                    keys[raw] = key
            if key and (value or keep_empty):
                found.append((key, value if value.isascii() else _clean(value)))
        builder.set_parsed_new_many(found)
        if self._strict and error is not None:
            builder.set_error(log_labels.LOGFMT_PARSER_ERR, error)
        return line


class LogfmtExpressionParser:
    """``| logfmt host, fwd="fwd_ip"``: only the named keys; a missing one gives ``""``."""

    __slots__ = ("_params", "_strict")

    def __init__(self, stage: ast.LogfmtParser) -> None:
        self._strict = stage.strict
        self._params: dict[str, list[str]] = {}
        for param in stage.params:
            self._params.setdefault(param.expression, []).append(param.name)

    def __call__(self, _ts: int, line: str, builder: log_labels.LabelsBuilder) -> str | None:
        for names in self._params.values():
            for name in names:
                if not builder.taken(name):
                    builder.set_parsed(name, "")
        pairs, error = logfmt.logfmt_pairs(line, self._strict)
        for raw, value in pairs:
            for name in self._params.get(log_labels.sanitize_key(raw), ()):
                key = name + log_labels.DUPLICATE_SUFFIX if builder.taken(name) else name
                builder.set_parsed(key, _clean(value))
        if self._strict and error is not None:
            builder.set_error(log_labels.LOGFMT_PARSER_ERR, error)
        return line


def build(stage: ast.Stage) -> Stage | None:
    """The stage callable of a parser AST node, or ``None`` if ``stage`` is not a parser."""
    if isinstance(stage, ast.JSONParser):
        return JSONExpressionParser(stage.params) if stage.params else JSONParser()
    if isinstance(stage, ast.LogfmtParser):
        return LogfmtExpressionParser(stage) if stage.params else LogfmtParser(stage)
    if isinstance(stage, ast.RegexpParser):
        return RegexpParser(stage)
    if isinstance(stage, ast.PatternParser):
        return PatternParser(stage)
    if isinstance(stage, ast.UnpackParser):
        return UnpackParser()
    return None
