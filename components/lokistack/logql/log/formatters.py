"""Formatting stages: ``line_format``, ``label_format``, ``decolorize``, ``drop``, ``keep``.

Templates are parsed when the pipeline is built, so a bad template fails the query (Loki's
``invalid line template: …`` / ``invalid template for label 'x': …``); a template that fails
while running keeps the entry with ``__error__=TemplateFormatErr``.
"""

from __future__ import annotations

import re
from typing import Final

from lokistack.logql.log import labels as log_labels
from lokistack.logql.log import template
from lokistack.logql.syntax import ast


class FormatError(ValueError):
    """A template that does not parse, worded as Loki's error."""


class LineFormat:
    """``| line_format "…"``: the line becomes the rendered template."""

    __slots__ = ("_key", "_template")

    def __init__(self, stage: ast.LineFormat) -> None:
        try:
            self._template = template.compile_template("line", stage.template)
        except template.TemplateError as error:
            raise FormatError(f"invalid line template: {error}") from None
        self._key = self._template.simple_key

    def __call__(self, ts: int, line: str, builder: log_labels.LabelsBuilder) -> str | None:
        if self._key is not None:  # "{{.name}}": Loki copies the value, or gives an empty line
            value = builder.get(self._key)
            return "" if value is None else value
        try:
            return self._template.execute(builder.as_dict(), line, ts)
        except template.ExecError as error:
            builder.set_error(log_labels.TEMPLATE_FORMAT_ERR, str(error))
            return line


class LabelFormat:
    """``| label_format dst=src, dst2="{{…}}"``: rename (the source goes) or render.

    All templates of one stage see the labels as they were at its first template, as in Loki.
    """

    __slots__ = ("_formats",)

    def __init__(self, stage: ast.LabelFormat) -> None:
        self._formats: list[tuple[str, str | None, template.Template | None]] = []
        seen: set[str] = set()
        for item in stage.formats:
            if item.name == log_labels.ERROR_LABEL:
                raise FormatError(f"{item.name} cannot be formatted")
            if item.name in seen:
                raise FormatError(
                    f"multiple label name '{item.name}' not allowed in a single format operation"
                )
            seen.add(item.name)
            if item.rename:
                self._formats.append((item.name, item.value, None))
                continue
            try:
                compiled = template.compile_template("label", item.value)
            except template.TemplateError as error:
                raise FormatError(f"invalid template for label '{item.name}': {error}") from None
            self._formats.append((item.name, None, compiled))

    def __call__(self, ts: int, line: str, builder: log_labels.LabelsBuilder) -> str | None:
        data: dict[str, str] | None = None
        for name, source, compiled in self._formats:
            if compiled is None:
                assert source is not None
                value = builder.get(source)
                if value is not None:
                    builder.set_parsed(name, value)
                    builder.delete(source)
                continue
            if data is None:
                data = builder.as_dict()
            try:
                rendered = compiled.execute(data, line, ts)
            except template.ExecError as error:
                builder.set_error(log_labels.TEMPLATE_FORMAT_ERR, str(error))
                continue
            builder.set_parsed(name, rendered)
        return line


# ANSI escape sequences: ESC or CSI, optional intermediate characters, then either an
# OSC-style string ended by BEL or a parameter list ended by a final byte.
_ANSI: Final = re.compile(
    "[\x1b\x9b][\\[\\]()#;?]*"
    "(?:(?:(?:[a-zA-Z0-9]*(?:;[a-zA-Z0-9]*)*)?\x07)"
    "|(?:(?:[0-9]{1,4}(?:;[0-9]{0,4})*)?[0-9A-PRZcf-ntqry=><~]))"
)


def decolorize(_ts: int, line: str, _builder: log_labels.LabelsBuilder) -> str | None:
    """``| decolorize``: strip ANSI colour and cursor sequences."""
    if "\x1b" not in line and "\x9b" not in line:
        return line
    return _ANSI.sub("", line)


class DropLabels:
    """``| drop a, b="v"``: remove labels (by name, or where the matcher matches).

    ``__error__`` and ``__error_details__`` can be dropped too, which clears the error.
    """

    __slots__ = ("_items",)

    def __init__(self, stage: ast.DropLabels) -> None:
        self._items = stage.labels

    def __call__(self, _ts: int, line: str, builder: log_labels.LabelsBuilder) -> str | None:
        for item in self._items:
            name = item.name
            if name == log_labels.ERROR_LABEL:
                if item.matcher is None or item.matcher.matches(builder.err):
                    builder.err = ""
            elif name == log_labels.ERROR_DETAILS_LABEL:
                if item.matcher is None or item.matcher.matches(builder.err_details):
                    builder.err_details = ""
            elif item.matcher is None:
                if builder.get(name) is not None:
                    builder.delete(name)
            elif item.matcher.matches(builder.value(name)):
                builder.delete(name)
        return line


class KeepLabels:
    """``| keep a, b="v"``: remove every other label; the error labels always stay."""

    __slots__ = ("_items",)

    def __init__(self, stage: ast.KeepLabels) -> None:
        self._items = stage.labels

    def __call__(self, _ts: int, line: str, builder: log_labels.LabelsBuilder) -> str | None:
        current = builder.as_dict()
        for name, value in current.items():
            if name in (log_labels.ERROR_LABEL, log_labels.ERROR_DETAILS_LABEL):
                continue
            keep = any(
                item.name == name and (item.matcher is None or item.matcher.matches(value))
                for item in self._items
            )
            if not keep:
                builder.delete(name)
        return line
