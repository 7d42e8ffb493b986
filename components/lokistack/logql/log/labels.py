"""The label set of one log entry while the pipeline runs over it.

Loki's ``LabelsBuilder`` keeps three categories: the stream's labels (never modified, only
masked), structured metadata and labels added by stages ("parsed"). A name lives in at most one
added category, and when categories meet, the base name goes to the stream label, then metadata,
then parsed, while the loser is added as ``<name>_extracted`` (parsers check the stream and the
metadata before setting; metadata checks the stream). The conformance scripts fix this: a parsed
``tri`` next to stream and metadata ``tri`` gives ``tri`` from the stream and ``tri_extracted``
from the parser.

``__error__`` and ``__error_details__`` are held apart from the labels: only string filters,
``drop`` and templates see them, and they join the result labels at the end.

A builder is created only for pipelines whose stages read or write labels; a pipeline of line
filters passes the stream's label tuple through untouched (see :mod:`.pipeline`).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Final

from lokistack.chunk import block
from lokistack.model import labels as model_labels

ERROR_LABEL: Final = "__error__"
ERROR_DETAILS_LABEL: Final = "__error_details__"
DUPLICATE_SUFFIX: Final = "_extracted"

JSON_PARSER_ERR: Final = "JSONParserErr"
LOGFMT_PARSER_ERR: Final = "LogfmtParserErr"
LABEL_FILTER_ERR: Final = "LabelFilterErr"
SAMPLE_EXTRACTION_ERR: Final = "SampleExtractionErr"
TEMPLATE_FORMAT_ERR: Final = "TemplateFormatErr"

Labels = model_labels.Labels
"""A sorted ``(name, value)`` tuple; pipeline results may hold empty values (``| json a="x"``
with no ``x`` gives ``a=""``), unlike stream label sets."""

_BY_NAME: Final = operator.itemgetter(0)


def sanitize_key(key: str) -> str:
    """Loki's ``sanitizeLabelKey``: trim, ``_`` before a leading digit, non-word chars to ``_``."""
    key = key.strip()
    if not key:
        return key
    if key.isascii() and key.isidentifier():
        return key
    if "0" <= key[0] <= "9":
        key = "_" + key
    return "".join(
        ch if ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch == "_") else "_"
        for ch in key
    )


def with_metadata(base: dict[str, str], metadata: block.Metadata) -> Labels:
    """The labels of an entry that no stage touches: stream labels plus structured metadata.

    A metadata name that is also a stream label is added as ``<name>_extracted``; a later
    duplicate name overwrites an earlier one, as Loki's builder does.
    """
    return LabelsBuilder(base, metadata).labels()


def to_labels(mapping: dict[str, str]) -> Labels:
    """A label mapping as the sorted tuple the rest of the system uses."""
    return tuple(sorted(mapping.items(), key=_BY_NAME))


class LabelsBuilder:
    """The mutable label set of one entry; see the module docstring for the precedence rules.

    ``base`` is the stream's label mapping, shared by every entry of the stream and never
    modified; deletions of stream labels are recorded in ``deleted``.
    """

    __slots__ = ("base", "deleted", "err", "err_details", "extracted", "metadata", "parsed")

    def __init__(self, base: dict[str, str], metadata: block.Metadata = ()) -> None:
        self.base = base
        self.metadata: dict[str, str] = {}
        self.parsed: dict[str, str] = {}
        self.deleted: set[str] = set()
        self.extracted: set[str] = set()
        self.err = ""
        self.err_details = ""
        for name, value in metadata:
            self.add_metadata(name, value)

    # -- reading ---------------------------------------------------------------------------

    def get(self, name: str) -> str | None:
        """The value of ``name``, or ``None`` when absent (stream labels are never empty)."""
        value = self.parsed.get(name)
        if value is not None:
            return value
        value = self.metadata.get(name)
        if value is not None:
            return value
        if name in self.deleted:
            return None
        return self.base.get(name) or None

    def value(self, name: str) -> str:
        """What a string filter compares: ``__error__`` reads the error, absent reads ``""``."""
        if name == ERROR_LABEL:
            return self.err
        if name == ERROR_DETAILS_LABEL:
            found = self.get(name)
            return found if found is not None else ""
        found = self.get(name)
        return "" if found is None else found

    def taken(self, name: str) -> bool:
        """Whether a parser must add ``name`` as ``<name>_extracted``: the stream or metadata
        already has it (Loki's ``BaseHas || HasInCategory(StructuredMetadata)``)."""
        return name in self.base or name in self.metadata

    def as_dict(self) -> dict[str, str]:
        """Every label plus the error labels, as templates see them."""
        result = self.base.copy()
        if self.deleted or self.metadata or self.parsed:
            for name in self.deleted:
                result.pop(name, None)
            result.update(self.metadata)
            result.update(self.parsed)
        if self.err:
            result[ERROR_LABEL] = self.err
        if self.err_details:
            result[ERROR_DETAILS_LABEL] = self.err_details
        return result

    def labels(self) -> Labels:
        """The result label set, sorted, with ``__error__``/``__error_details__`` if set."""
        return to_labels(self.as_dict())

    def names(self) -> list[str]:
        """The names of the current labels, without the error labels."""
        return [name for name in self.as_dict() if name not in (ERROR_LABEL, ERROR_DETAILS_LABEL)]

    # -- writing ---------------------------------------------------------------------------

    def add_metadata(self, name: str, value: str) -> None:
        """Loki's ``Add(StructuredMetadataLabel, …)`` for one pair."""
        if name in self.base:
            name += DUPLICATE_SUFFIX
        if name == ERROR_LABEL:
            self.err = value
        elif name == ERROR_DETAILS_LABEL:
            self.err_details = value
        elif name not in self.parsed:
            self.metadata[name] = value

    def set_parsed(self, name: str, value: str) -> None:
        """Set a label added by a stage; it masks a stream or metadata label of that name."""
        self.metadata.pop(name, None)
        self.parsed[name] = value
        self.extracted.add(name)

    def set_parsed_new(self, name: str, value: str) -> None:
        """A parser's ``Set``: ``_extracted`` on a clash, skipped if this line already has it.

        The "already has it" check is Loki's ``Extracted`` hint: the first value a line yields
        for a key wins, across all parser stages of the pipeline.
        """
        if name in self.base or name in self.metadata:
            name += DUPLICATE_SUFFIX
        if name in self.extracted:
            return
        self.metadata.pop(name, None)
        self.parsed[name] = value
        self.extracted.add(name)

    def set_parsed_new_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        """:meth:`set_parsed_new` for each pair, in order (one call per parsed line)."""
        base, metadata, parsed, extracted = self.base, self.metadata, self.parsed, self.extracted
        for name, value in pairs:
            if name in base or name in metadata:
                name += DUPLICATE_SUFFIX  # noqa: PLW2901 - the rule renames the key
            if name in extracted:
                continue
            if metadata:
                metadata.pop(name, None)
            parsed[name] = value
            extracted.add(name)

    def delete(self, name: str) -> None:
        """Remove ``name`` from every category."""
        self.metadata.pop(name, None)
        self.parsed.pop(name, None)
        self.deleted.add(name)

    def delete_many(self, names: Iterable[str]) -> None:
        for name in names:
            self.delete(name)

    def set_error(self, err: str, details: str | None = None) -> None:
        """Record a stage failure (Loki's ``SetErr`` and, when given, ``SetErrorDetails``).

        Stages that must not hide an earlier, more useful error check ``err`` first.
        """
        self.err = err
        if details is not None:
            self.err_details = details
