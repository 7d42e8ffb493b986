"""Loki's discard reasons and the exact texts of its write-path validation errors.

Clients and dashboards depend on both: the reasons are the ``reason`` label of
``loki_discarded_samples_total``/``loki_discarded_bytes_total``, and the messages are the body of
the 400 answer (reference/loki-write-path.md §3.3-3.4, ``pkg/validation/validate.go``).
"""

from __future__ import annotations

import enum
from typing import Final


class DiscardReason(enum.StrEnum):
    """Why samples were dropped; the value (also ``str()``) is Loki's metric label."""

    REQUEST_BODY_TOO_LARGE = "request_body_too_large"
    INVALID_LABELS = "invalid_labels"
    MISSING_LABELS = "missing_labels"
    RATE_LIMITED = "rate_limited"
    LINE_TOO_LONG = "line_too_long"
    STREAM_LIMIT = "stream_limit"
    PER_STREAM_RATE_LIMIT = "per_stream_rate_limit"
    TOO_FAR_BEHIND = "too_far_behind"
    GREATER_THAN_MAX_SAMPLE_AGE = "greater_than_max_sample_age"
    TOO_FAR_IN_FUTURE = "too_far_in_future"
    MAX_LABEL_NAMES_PER_SERIES = "max_label_names_per_series"
    LABEL_NAME_TOO_LONG = "label_name_too_long"
    LABEL_VALUE_TOO_LONG = "label_value_too_long"
    DUPLICATE_LABEL_NAMES = "duplicate_label_names"
    DISALLOWED_STRUCTURED_METADATA = "disallowed_structured_metadata"
    STRUCTURED_METADATA_TOO_LARGE = "structured_metadata_too_large"
    STRUCTURED_METADATA_TOO_MANY = "structured_metadata_too_many"
    BLOCKED_INGESTION = "blocked_ingestion"
    BLOCKED_INGESTION_POLICY = "blocked_ingestion_policy"
    MISSING_ENFORCED_LABELS = "missing_enforced_labels"


MISSING_LABELS_MESSAGE: Final = "error at least one label pair is required per stream"
_NS: Final = 1_000_000_000


def invalid_labels(raw: str, error: str) -> str:
    return f"error parsing labels '{raw}' with error: {error}"


def too_many_label_names(stream: str, count: int, limit: int) -> str:
    return f"entry for stream '{stream}' has {count} label names; limit {limit}"


def label_name_too_long(stream: str, name: str) -> str:
    return f"stream '{stream}' has label name too long: '{name}'"


def label_value_too_long(stream: str, value: str) -> str:
    return f"stream '{stream}' has label value too long: '{value}'"


def duplicate_label_name(stream: str, name: str) -> str:
    return f"stream '{stream}' has duplicate label name: '{name}'"


def too_old(stream: str, timestamp_ns: int, oldest_ns: int) -> str:
    return (
        f"entry for stream '{stream}' has timestamp too old: {format_rfc3339(timestamp_ns)}, "
        f"oldest acceptable timestamp is: {format_rfc3339(oldest_ns)}"
    )


def too_new(stream: str, timestamp_ns: int) -> str:
    return f"entry for stream '{stream}' has timestamp too new: {format_rfc3339(timestamp_ns)}"


def line_too_long(limit: int, stream: str, length: int) -> str:
    return (
        f"max entry size '{limit}' bytes exceeded for stream '{stream}' "
        f"while adding an entry with length '{length}' bytes"
    )


def structured_metadata_disallowed(stream: str) -> str:
    return (
        f"stream '{stream}' includes structured metadata, but this feature is disallowed. "
        "Please see `limits_config.structured_metadata` or contact your Loki administrator to "
        "enable it."
    )


def structured_metadata_too_large(stream: str, size: int, limit: int) -> str:
    return (
        f"stream '{stream}' has structured metadata too large: '{size}' bytes, limit: "
        f"'{limit}' bytes. Please see `limits_config.max_structured_metadata_size` or contact "
        "your Loki administrator to increase it."
    )


def structured_metadata_too_many(stream: str, count: int, limit: int) -> str:
    return (
        f"stream '{stream}' has too many structured metadata labels: '{count}', limit: "
        f"'{limit}'. Please see `limits_config.max_structured_metadata_entries_count` or contact "
        "your Loki administrator to increase it."
    )


def group_errors(errors: list[str]) -> str:
    """Loki's ``GroupedErrors``: one error as is, else ``<n> errors like: <msg>`` per message.

    Loki iterates a Go map, so its order is random; ours is the order of first occurrence.
    """
    if len(errors) == 1:
        return errors[0]
    counts: dict[str, int] = {}
    for error in errors:
        counts[error] = counts.get(error, 0) + 1
    return "; ".join(f"{count} errors like: {message}" for message, count in counts.items())


def format_rfc3339(timestamp_ns: int) -> str:
    """Go's ``time.Unix(0, ns).UTC().Format(time.RFC3339)``: seconds precision, ``Z``.

    Works for any integer (Python's datetime stops at year 9999; a protobuf timestamp does not).
    """
    seconds = timestamp_ns // _NS
    days, rest = divmod(seconds, 86400)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    year_text = f"-{-year:04d}" if year < 0 else f"{year:04d}"
    return f"{year_text}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day number counted from 1970-01-01 (proleptic Gregorian)."""
    days += 719468
    era = days // 146097
    day_of_era = days - era * 146097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    return year, month, day
