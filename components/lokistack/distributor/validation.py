"""Per-tenant validation of a push: labels, service_name, timestamps, sizes, metadata.

Loki's distributor order (reference/loki-write-path.md §3.1): skip streams without entries,
parse the labels (cached), inject ``service_name``, validate the label set, then each entry (too
old, too new, too long, structured metadata). Invalid streams and entries are dropped and
reported; the rest is returned for rate limiting and replication (partial success, §1.7).

Decisions:

- Unparsable labels drop the stream with ``error parsing labels '<l>' with error: <e>``, Loki's
  gRPC behaviour. The HTTP path never gets here with such a stream: ``decode.decode_push``
  already failed the whole request.
- The label cache maps ``(tenant, raw labels string)`` to the parse + service_name + validation
  verdict (bounded LRU, 100k entries, failures included). Each verdict remembers the label limits
  it was computed with; a hit computed under different limits is recomputed, so a runtime limit
  change takes effect on the next push without clearing the cache.
- Label and line lengths are UTF-8 byte lengths, as in Go. ``str.isascii()`` is O(1) in CPython
  (the string caches its ASCII-ness), so the exact byte length costs an encode only for
  non-ASCII text; it is needed anyway for byte accounting (``valid_bytes``).
- With ``max_line_size_truncate``, long lines are cut to at most ``max_line_size`` bytes on a
  character boundary (Go cuts mid-character) and counted in ``truncated_lines``/``_bytes``
  (Loki's ``loki_mutated_*{reason="line_too_long"}``).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable
from typing import Final

from lokistack import config
from lokistack.distributor import discard
from lokistack.model import fingerprint as model_fingerprint
from lokistack.model import labels as model_labels
from lokistack.proto import push_pb2

DiscardReason = discard.DiscardReason

SERVICE_NAME: Final = "service_name"
UNKNOWN_SERVICE: Final = "unknown_service"
AGGREGATED_METRIC_LABEL: Final = "__aggregated_metric__"
PATTERN_LABEL: Final = "__pattern__"
DETECTED_LEVEL: Final = "detected_level"
LABEL_CACHE_SIZE: Final = 100_000
_NS: Final = 1_000_000_000


@dataclasses.dataclass
class ValidatedStream:
    """A stream that passed: identity, its valid entries, and their size for the rate limit."""

    labels: model_labels.Labels
    canonical: str
    fingerprint: int
    token: int
    stream: push_pb2.StreamAdapter
    """Labels rewritten to ``canonical``; only the valid entries."""
    bytes: int = 0
    """Σ UTF-8 bytes of line + structured-metadata names and values (not ``detected_level``)."""
    lines: int = 0


@dataclasses.dataclass
class ValidationResult:
    streams: list[ValidatedStream] = dataclasses.field(default_factory=list)
    discarded_samples: collections.Counter[DiscardReason] = dataclasses.field(
        default_factory=collections.Counter
    )
    discarded_bytes: collections.Counter[DiscardReason] = dataclasses.field(
        default_factory=collections.Counter
    )
    errors: list[str] = dataclasses.field(default_factory=list)
    truncated_lines: int = 0
    truncated_bytes: int = 0

    def valid_bytes(self) -> int:
        return sum(stream.bytes for stream in self.streams)

    def valid_lines(self) -> int:
        return sum(stream.lines for stream in self.streams)

    def error_body(self) -> str:
        """The 400 body Loki sends after storing the valid part (grouped errors)."""
        return discard.group_errors(self.errors)

    def discard(self, reason: DiscardReason, message: str, samples: int, size: int) -> None:
        self.errors.append(message)
        self.discarded_samples[reason] += samples
        self.discarded_bytes[reason] += size


_LabelLimits = tuple[tuple[str, ...], int, int, int]


@dataclasses.dataclass(frozen=True, slots=True)
class _LabelVerdict:
    """The cached outcome for one labels string under one set of label limits."""

    limits: _LabelLimits
    labels: model_labels.Labels = ()
    canonical: str = ""
    fingerprint: int = 0
    token: int = 0
    error: str | None = None
    reason: DiscardReason | None = None


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))


def _metadata_size(metadata: Iterable[push_pb2.LabelPairAdapter]) -> int:
    size = 0
    for pair in metadata:
        name = pair.name
        if name != DETECTED_LEVEL:
            size += _utf8_len(name) + _utf8_len(pair.value)
    return size


def entries_size(entries: Iterable[push_pb2.EntryAdapter]) -> int:
    """Loki's ``EntriesTotalSize``: lines plus structured metadata, in bytes."""
    total = 0
    for entry in entries:
        total += _utf8_len(entry.line)
        metadata = entry.structuredMetadata
        if metadata:
            total += _metadata_size(metadata)
    return total


def discover_service_name(
    labels: model_labels.Labels, candidates: tuple[str, ...]
) -> model_labels.Labels:
    """Add ``service_name`` from the first present candidate label, else ``unknown_service``.

    Does nothing when discovery is off (no candidates), when the stream already has a
    ``service_name``, and for Loki's internal aggregated-metric and pattern streams.
    """
    if not candidates:
        return labels
    names = {name for name, _ in labels}
    if SERVICE_NAME in names or AGGREGATED_METRIC_LABEL in names or PATTERN_LABEL in names:
        return labels
    values = dict(labels)
    service = next((values[name] for name in candidates if values.get(name)), UNKNOWN_SERVICE)
    return model_labels.with_label(labels, SERVICE_NAME, service)


def validate_labels(
    labels: model_labels.Labels, stream: str, limits: config.Limits
) -> tuple[DiscardReason, str] | None:
    """Loki's ``ValidateLabels``; ``stream`` is the canonical string used in messages."""
    if not labels:
        return DiscardReason.MISSING_LABELS, discard.MISSING_LABELS_MESSAGE
    names = [name for name, _ in labels]
    if AGGREGATED_METRIC_LABEL in names:
        return None  # Loki's own internal streams are trusted
    count = len(names) - (1 if SERVICE_NAME in names else 0)
    if count > limits.max_label_names_per_series:
        message = discard.too_many_label_names(stream, count, limits.max_label_names_per_series)
        return DiscardReason.MAX_LABEL_NAMES_PER_SERIES, message
    return _validate_pairs(labels, stream, limits)


def _validate_pairs(
    labels: model_labels.Labels, stream: str, limits: config.Limits
) -> tuple[DiscardReason, str] | None:
    last_name = ""  # as in Loki, so an empty name is reported as a duplicate
    for name, value in labels:
        if _utf8_len(name) > limits.max_label_name_length:
            return DiscardReason.LABEL_NAME_TOO_LONG, discard.label_name_too_long(stream, name)
        if _utf8_len(value) > limits.max_label_value_length:
            return DiscardReason.LABEL_VALUE_TOO_LONG, discard.label_value_too_long(stream, value)
        if name == last_name:
            return DiscardReason.DUPLICATE_LABEL_NAMES, discard.duplicate_label_name(stream, name)
        last_name = name
    return None


class Validator:
    """Validates pushes against each tenant's current limits; holds the label cache."""

    def __init__(
        self,
        limits_for: Callable[[str], config.Limits],
        cache_size: int = LABEL_CACHE_SIZE,
    ) -> None:
        self._limits_for = limits_for
        self._cache_size = cache_size
        self._cache: collections.OrderedDict[tuple[str, str], _LabelVerdict] = (
            collections.OrderedDict()
        )

    def validate(self, tenant: str, request: push_pb2.PushRequest, now_ns: int) -> ValidationResult:
        limits = self._limits_for(tenant)
        label_limits: _LabelLimits = (
            limits.discover_service_name,
            limits.max_label_names_per_series,
            limits.max_label_name_length,
            limits.max_label_value_length,
        )
        checker = _EntryChecker(limits, now_ns)
        result = ValidationResult()
        for stream in request.streams:
            entries = stream.entries
            if not entries:
                continue
            verdict = self._labels(tenant, stream.labels, label_limits, limits)
            if verdict.error is not None and verdict.reason is not None:
                result.discard(verdict.reason, verdict.error, len(entries), entries_size(entries))
                continue
            validated = checker.check(stream, verdict, result)
            if validated is not None:
                result.streams.append(validated)
        return result

    def _labels(
        self, tenant: str, raw: str, label_limits: _LabelLimits, limits: config.Limits
    ) -> _LabelVerdict:
        key = (tenant, raw)
        cache = self._cache
        verdict = cache.get(key)
        if verdict is not None and verdict.limits == label_limits:
            cache.move_to_end(key)
            return verdict
        verdict = self._judge(tenant, raw, label_limits, limits)
        cache[key] = verdict
        cache.move_to_end(key)
        if len(cache) > self._cache_size:
            cache.popitem(last=False)
        return verdict

    @staticmethod
    def _judge(
        tenant: str, raw: str, label_limits: _LabelLimits, limits: config.Limits
    ) -> _LabelVerdict:
        try:
            parsed = model_labels.parse_labels(raw)
        except model_labels.LabelsError as err:
            message = discard.invalid_labels(raw, str(err))
            return _LabelVerdict(label_limits, error=message, reason=DiscardReason.INVALID_LABELS)
        labels = discover_service_name(parsed, limits.discover_service_name)
        canonical = model_labels.canonical(labels)
        problem = validate_labels(labels, canonical, limits)
        if problem is not None:
            return _LabelVerdict(label_limits, error=problem[1], reason=problem[0])
        return _LabelVerdict(
            label_limits,
            labels,
            canonical,
            model_fingerprint.fingerprint(canonical),
            model_fingerprint.ring_token(tenant, canonical),
        )


class _EntryChecker:
    """The per-entry limits of one tenant at one instant, with the loop that applies them."""

    def __init__(self, limits: config.Limits, now_ns: int) -> None:
        self.reject_old = limits.reject_old_samples
        max_age_ns = int(limits.reject_old_samples_max_age.total_seconds() * _NS)
        grace_ns = int(limits.creation_grace_period.total_seconds() * _NS)
        self.oldest_ns = now_ns - max_age_ns
        self.newest_ns = now_ns + grace_ns
        # Whole seconds strictly between these bounds cannot fail either time check, so the
        # nanoseconds are read only near a bound.
        self.low_seconds = self.oldest_ns // _NS if self.reject_old else -(1 << 80)
        self.high_seconds = self.newest_ns // _NS
        self.max_line = limits.max_line_size
        self.truncate = limits.max_line_size_truncate and self.max_line > 0
        self.allow_metadata = limits.allow_structured_metadata
        self.max_metadata_size = limits.max_structured_metadata_size
        self.max_metadata_count = limits.max_structured_metadata_entries_count

    def check(
        self,
        stream: push_pb2.StreamAdapter,
        verdict: _LabelVerdict,
        result: ValidationResult,
    ) -> ValidatedStream | None:
        entries = stream.entries
        canonical = verdict.canonical
        low, high = self.low_seconds, self.high_seconds
        max_line = self.max_line or (1 << 62)
        failed: list[int] = []
        total = 0
        for index, entry in enumerate(entries):
            timestamp = entry.timestamp
            seconds = timestamp.seconds
            line = entry.line
            size = len(line) if line.isascii() else len(line.encode("utf-8", "surrogateescape"))
            if size > max_line and self.truncate:
                size = self._truncate(entry, line, size, result)
            metadata = entry.structuredMetadata
            metadata_size = _metadata_size(metadata) if metadata else 0
            problem = None
            if not low < seconds < high:
                problem = self._check_time(seconds * _NS + timestamp.nanos, canonical)
            if problem is None and size > max_line:
                problem = (
                    DiscardReason.LINE_TOO_LONG,
                    discard.line_too_long(self.max_line, canonical, size),
                )
            if problem is None and metadata:
                problem = self._check_metadata(len(metadata), metadata_size, canonical)
            if problem is None:
                total += size + metadata_size
            else:
                result.discard(problem[0], problem[1], 1, size + metadata_size)
                failed.append(index)
        if len(failed) == len(entries):
            return None
        if failed:
            skip = set(failed)
            kept = push_pb2.StreamAdapter(labels=canonical, hash=stream.hash)
            kept.entries.extend(e for i, e in enumerate(entries) if i not in skip)
            stream = kept
        else:
            stream.labels = canonical
        return ValidatedStream(
            verdict.labels,
            canonical,
            verdict.fingerprint,
            verdict.token,
            stream,
            bytes=total,
            lines=len(entries) - len(failed),
        )

    def _check_time(self, timestamp_ns: int, stream: str) -> tuple[DiscardReason, str] | None:
        if self.reject_old and timestamp_ns < self.oldest_ns:
            message = discard.too_old(stream, timestamp_ns, self.oldest_ns)
            return DiscardReason.GREATER_THAN_MAX_SAMPLE_AGE, message
        if timestamp_ns > self.newest_ns:
            return DiscardReason.TOO_FAR_IN_FUTURE, discard.too_new(stream, timestamp_ns)
        return None

    def _check_metadata(
        self, count: int, size: int, stream: str
    ) -> tuple[DiscardReason, str] | None:
        if not self.allow_metadata:
            message = discard.structured_metadata_disallowed(stream)
            return DiscardReason.DISALLOWED_STRUCTURED_METADATA, message
        if self.max_metadata_size and size > self.max_metadata_size:
            message = discard.structured_metadata_too_large(stream, size, self.max_metadata_size)
            return DiscardReason.STRUCTURED_METADATA_TOO_LARGE, message
        if self.max_metadata_count and count > self.max_metadata_count:
            message = discard.structured_metadata_too_many(stream, count, self.max_metadata_count)
            return DiscardReason.STRUCTURED_METADATA_TOO_MANY, message
        return None

    def _truncate(
        self, entry: push_pb2.EntryAdapter, line: str, size: int, result: ValidationResult
    ) -> int:
        cut = line.encode("utf-8", "surrogateescape")[: self.max_line]
        entry.line = cut.decode("utf-8", "ignore")
        result.truncated_lines += 1
        result.truncated_bytes += size - self.max_line
        return len(entry.line.encode("utf-8"))
