"""Push validation: service_name discovery, label rules, entry rules, accounting, messages."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest
from lokistack import config
from lokistack.distributor import discard, validation
from lokistack.model import fingerprint
from lokistack.proto import push_pb2

NS = 1_000_000_000
NOW = 1_700_000_000 * NS  # 2023-11-14T22:13:20Z
R = validation.DiscardReason


def _validator(**overrides: Any) -> validation.Validator:
    limits = dataclasses.replace(config.Limits(), **overrides)
    return validation.Validator(lambda tenant: limits)


def _entry(
    stream: push_pb2.StreamAdapter, nanos: int = NOW, line: str = "x", **metadata: str
) -> None:
    entry = stream.entries.add(line=line)
    entry.timestamp.seconds, entry.timestamp.nanos = divmod(nanos, NS)
    for name, value in metadata.items():
        entry.structuredMetadata.add(name=name, value=value)


def _push(*streams: tuple[str, list[dict[str, Any]]]) -> push_pb2.PushRequest:
    request = push_pb2.PushRequest()
    for text, entries in streams:
        stream = request.streams.add(labels=text)
        for entry in entries:
            _entry(stream, **entry)
    return request


def _one(labels: str, validator: validation.Validator | None = None, **entry: Any) -> Any:
    return (validator or _validator()).validate("t", _push((labels, [entry])), NOW)


# -- streams and labels -----------------------------------------------------------------------


def test_valid_stream_identity_and_accounting() -> None:
    result = _validator().validate(
        "tenant-1",
        _push(('{b="2", app="api"}', [{"line": "héllo"}, {"line": "abc", "k": "vv"}])),
        NOW,
    )
    assert result.errors == []
    (stream,) = result.streams
    canonical = '{app="api", b="2", service_name="api"}'
    assert stream.canonical == canonical
    assert stream.labels == (("app", "api"), ("b", "2"), ("service_name", "api"))
    assert stream.fingerprint == fingerprint.fingerprint(canonical)
    assert stream.token == fingerprint.ring_token("tenant-1", canonical)
    assert stream.stream.labels == canonical
    assert stream.lines == 2
    assert stream.bytes == len("héllo".encode()) + 3 + len("k") + len("vv")
    assert (result.valid_bytes(), result.valid_lines()) == (stream.bytes, 2)
    assert result.error_body() == ""


def test_zero_entry_streams_are_skipped_even_with_bad_labels() -> None:
    result = _validator().validate("t", _push(('{a="b"}', []), ("{{", [])), NOW)
    assert (result.streams, result.errors) == ([], [])
    assert not result.discarded_samples


@pytest.mark.parametrize(
    ("labels", "service"),
    [
        ("{}", "unknown_service"),
        ('{job="j", app="a"}', "a"),  # candidate order, not label order
        ('{job="j", container="c"}', "c"),
        ('{k8s_job_name="k"}', "k"),
        ('{other="x"}', "unknown_service"),
    ],
)
def test_service_name_discovery(labels: str, service: str) -> None:
    (stream,) = _one(labels).streams
    assert ("service_name", service) in stream.labels


@pytest.mark.parametrize(
    "labels",
    ['{service_name="mine", app="a"}', '{__aggregated_metric__="x"}', '{__pattern__="x", app="a"}'],
)
def test_service_name_not_injected(labels: str) -> None:
    (stream,) = _one(labels).streams
    assert stream.canonical == _canonical(labels)


def _canonical(text: str) -> str:
    from lokistack.model import labels as model_labels  # noqa: PLC0415

    return model_labels.canonical(model_labels.parse_labels(text))


def test_service_name_discovery_with_custom_list() -> None:
    validator = _validator(discover_service_name=("team",))
    (stream,) = _one('{app="a", team="t"}', validator).streams
    assert ("service_name", "t") in stream.labels


def test_missing_labels_when_discovery_is_off() -> None:
    result = _one("{}", _validator(discover_service_name=()), line="abcd")
    assert result.errors == ["error at least one label pair is required per stream"]
    assert result.discarded_samples == {R.MISSING_LABELS: 1}
    assert result.discarded_bytes == {R.MISSING_LABELS: 4}


def test_unparsable_labels_drop_the_stream() -> None:
    result = _validator().validate(
        "t", _push(('{a.b="c"}', [{"line": "xy"}, {"line": "z"}]), ('{ok="1"}', [{}])), NOW
    )
    assert result.errors == [
        "error parsing labels '{a.b=\"c\"}' with error: "
        "1:3: parse error: unexpected character inside braces: '.'"
    ]
    assert result.discarded_samples == {R.INVALID_LABELS: 2}
    assert result.discarded_bytes == {R.INVALID_LABELS: 3}
    assert [s.canonical for s in result.streams] == ['{ok="1", service_name="unknown_service"}']


def test_too_many_label_names_does_not_count_service_name() -> None:
    names = ", ".join(f'l{i}="v"' for i in range(3))
    assert _one("{" + names + "}", _validator(max_label_names_per_series=3)).streams
    result = _one("{" + names + ', x="v"}', _validator(max_label_names_per_series=3))
    canonical = '{l0="v", l1="v", l2="v", service_name="unknown_service", x="v"}'
    assert result.errors == [f"entry for stream '{canonical}' has 4 label names; limit 3"]
    assert result.discarded_samples == {R.MAX_LABEL_NAMES_PER_SERIES: 1}


def test_label_name_too_long() -> None:
    result = _one('{abcd="v"}', _validator(max_label_name_length=3))
    canonical = '{abcd="v", service_name="unknown_service"}'
    assert result.errors == [f"stream '{canonical}' has label name too long: 'abcd'"]
    assert result.discarded_samples == {R.LABEL_NAME_TOO_LONG: 1}


def test_label_value_too_long_counts_utf8_bytes() -> None:
    validator = _validator(max_label_value_length=15)
    assert _one('{a="ééééééé"}', validator).streams  # 14 bytes
    result = _one('{a="éééééééé"}', validator)  # 16 bytes
    canonical = '{a="éééééééé", service_name="unknown_service"}'
    assert result.errors == [f"stream '{canonical}' has label value too long: 'éééééééé'"]
    assert result.discarded_samples == {R.LABEL_VALUE_TOO_LONG: 1}


def test_duplicate_label_names() -> None:
    result = _one('{a="1", a="2"}', line="xyz")
    canonical = '{a="1", a="2", service_name="unknown_service"}'
    assert result.errors == [f"stream '{canonical}' has duplicate label name: 'a'"]
    assert result.discarded_samples == {R.DUPLICATE_LABEL_NAMES: 1}
    assert result.discarded_bytes == {R.DUPLICATE_LABEL_NAMES: 3}


def test_empty_label_name_is_reported_as_duplicate_like_loki() -> None:
    result = _one('{""="x"}')
    assert result.errors[0].endswith("has duplicate label name: ''")


def test_aggregated_metric_streams_skip_label_validation() -> None:
    assert _one(
        '{__aggregated_metric__="x", a="1", b="2"}', _validator(max_label_names_per_series=1)
    ).streams


# -- entries ------------------------------------------------------------------------------------

STREAM = '{app="a"}'
CANONICAL = '{app="a", service_name="a"}'


def test_too_old() -> None:
    max_age = datetime.timedelta(hours=1)
    oldest = NOW - 3600 * NS
    validator = _validator(reject_old_samples_max_age=max_age)
    assert _one(STREAM, validator, nanos=oldest).streams  # exactly at the bound is accepted
    result = _one(STREAM, validator, nanos=oldest - 1, line="abc")
    assert result.errors == [
        f"entry for stream '{CANONICAL}' has timestamp too old: 2023-11-14T21:13:19Z, "
        "oldest acceptable timestamp is: 2023-11-14T21:13:20Z"
    ]
    assert result.discarded_samples == {R.GREATER_THAN_MAX_SAMPLE_AGE: 1}
    assert result.discarded_bytes == {R.GREATER_THAN_MAX_SAMPLE_AGE: 3}
    assert result.streams == []


def test_old_samples_accepted_when_rejection_is_off() -> None:
    assert _one(STREAM, _validator(reject_old_samples=False), nanos=0).streams


def test_too_new() -> None:
    newest = NOW + 600 * NS
    assert _one(STREAM, nanos=newest).streams
    result = _one(STREAM, nanos=newest + 1)
    assert result.errors == [
        f"entry for stream '{CANONICAL}' has timestamp too new: 2023-11-14T22:23:20Z"
    ]
    assert result.discarded_samples == {R.TOO_FAR_IN_FUTURE: 1}


def test_old_check_comes_before_the_line_check() -> None:
    result = _one(STREAM, _validator(max_line_size=1), nanos=0, line="long")
    assert result.discarded_samples == {R.GREATER_THAN_MAX_SAMPLE_AGE: 1}


def test_line_too_long_counts_utf8_bytes() -> None:
    validator = _validator(max_line_size=4)
    assert _one(STREAM, validator, line="éé").streams  # 4 bytes
    result = _one(STREAM, validator, line="ééé")  # 6 bytes
    assert result.errors == [
        f"max entry size '4' bytes exceeded for stream '{CANONICAL}' "
        "while adding an entry with length '6' bytes"
    ]
    assert result.discarded_samples == {R.LINE_TOO_LONG: 1}
    assert result.discarded_bytes == {R.LINE_TOO_LONG: 6}


def test_line_size_zero_means_unlimited() -> None:
    assert _one(STREAM, _validator(max_line_size=0), line="x" * 300_000).streams


def test_line_truncation() -> None:
    validator = _validator(max_line_size=5, max_line_size_truncate=True)
    request = _push((STREAM, [{"line": "abcdefgh"}, {"line": "abcdé"}, {"line": "ok"}]))
    result = validator.validate("t", request, NOW)
    assert result.errors == []
    lines = [entry.line for entry in result.streams[0].stream.entries]
    assert lines == ["abcde", "abcd", "ok"]  # cut on a character boundary
    assert (result.truncated_lines, result.truncated_bytes) == (2, 3 + 1)
    assert result.valid_bytes() == 5 + 4 + 2


def test_structured_metadata_disallowed() -> None:
    result = _one(STREAM, _validator(allow_structured_metadata=False), line="ab", k="v")
    assert result.errors == [
        f"stream '{CANONICAL}' includes structured metadata, but this feature is disallowed. "
        "Please see `limits_config.structured_metadata` or contact your Loki administrator "
        "to enable it."
    ]
    assert result.discarded_samples == {R.DISALLOWED_STRUCTURED_METADATA: 1}
    assert result.discarded_bytes == {R.DISALLOWED_STRUCTURED_METADATA: 4}


def test_structured_metadata_too_large() -> None:
    validator = _validator(max_structured_metadata_size=4)
    assert _one(STREAM, validator, ab="cd").streams
    assert _one(STREAM, validator, ab="cd", detected_level="info").streams  # not counted
    result = _one(STREAM, validator, ab="cde")
    assert result.errors == [
        f"stream '{CANONICAL}' has structured metadata too large: '5' bytes, limit: '4' bytes. "
        "Please see `limits_config.max_structured_metadata_size` or contact your Loki "
        "administrator to increase it."
    ]
    assert result.discarded_samples == {R.STRUCTURED_METADATA_TOO_LARGE: 1}


def test_structured_metadata_too_many() -> None:
    validator = _validator(max_structured_metadata_entries_count=2)
    assert _one(STREAM, validator, a="1", b="2").streams
    result = _one(STREAM, validator, a="1", b="2", c="3")
    assert result.errors == [
        f"stream '{CANONICAL}' has too many structured metadata labels: '3', limit: '2'. "
        "Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki "
        "administrator to increase it."
    ]
    assert result.discarded_samples == {R.STRUCTURED_METADATA_TOO_MANY: 1}


def test_partial_success_keeps_valid_entries_and_streams() -> None:
    request = _push(
        (STREAM, [{"line": "a"}, {"nanos": 0, "line": "old"}, {"line": "b"}, {"nanos": 0}]),
        ('{bad="1"', [{"line": "zz"}]),
        ('{other="o"}', [{"nanos": NOW + 3600 * NS}]),
        ('{c="c"}', [{"line": "ok"}]),
    )
    result = _validator().validate("t", request, NOW)
    assert [s.canonical for s in result.streams] == [
        CANONICAL,
        '{c="c", service_name="unknown_service"}',
    ]
    kept = result.streams[0]
    assert [e.line for e in kept.stream.entries] == ["a", "b"]
    assert kept.stream.labels == CANONICAL
    assert (kept.lines, kept.bytes) == (2, 2)
    assert result.discarded_samples == {
        R.GREATER_THAN_MAX_SAMPLE_AGE: 2,
        R.INVALID_LABELS: 1,
        R.TOO_FAR_IN_FUTURE: 1,
    }
    assert result.discarded_bytes == {
        R.GREATER_THAN_MAX_SAMPLE_AGE: 4,
        R.INVALID_LABELS: 2,
        R.TOO_FAR_IN_FUTURE: 1,
    }
    old = f"entry for stream '{CANONICAL}' has timestamp too old: 1970-01-01T00:00:00Z, "
    old += "oldest acceptable timestamp is: 2023-11-07T22:13:20Z"
    body = result.error_body()
    assert body.startswith(f"2 errors like: {old}; 1 errors like: error parsing labels")
    assert body.count("errors like:") == 3


# -- grouping, cache, misc -------------------------------------------------------------------


def test_group_errors() -> None:
    assert discard.group_errors([]) == ""
    assert discard.group_errors(["a"]) == "a"
    assert discard.group_errors(["a", "a"]) == "2 errors like: a"
    assert discard.group_errors(["b", "a", "b"]) == "2 errors like: b; 1 errors like: a"


def test_format_rfc3339() -> None:
    assert discard.format_rfc3339(0) == "1970-01-01T00:00:00Z"
    assert discard.format_rfc3339(-1) == "1969-12-31T23:59:59Z"
    assert discard.format_rfc3339(NOW + NS - 1) == "2023-11-14T22:13:20Z"
    assert discard.format_rfc3339(253402300800 * NS) == "10000-01-01T00:00:00Z"


def test_discard_reasons_are_lokis_label_values() -> None:
    values = {reason.value for reason in R}
    assert {
        "line_too_long",
        "rate_limited",
        "stream_limit",
        "per_stream_rate_limit",
        "too_far_behind",
        "greater_than_max_sample_age",
        "too_far_in_future",
        "max_label_names_per_series",
        "label_name_too_long",
        "label_value_too_long",
        "duplicate_label_names",
        "invalid_labels",
        "missing_labels",
        "disallowed_structured_metadata",
        "structured_metadata_too_large",
        "structured_metadata_too_many",
        "request_body_too_large",
        "blocked_ingestion",
        "blocked_ingestion_policy",
        "missing_enforced_labels",
    } == values
    assert isinstance(R.RATE_LIMITED, str)
    assert str(R.RATE_LIMITED) == "rate_limited"


def test_label_cache_follows_limit_changes() -> None:
    current = {"limits": config.Limits(max_label_names_per_series=1)}
    validator = validation.Validator(lambda tenant: current["limits"], cache_size=2)
    request = _push(('{a="1", b="2"}', [{}]))
    assert validator.validate("t", request, NOW).errors
    current["limits"] = config.Limits()
    assert validator.validate("t", _push(('{a="1", b="2"}', [{}])), NOW).streams


def test_label_cache_is_bounded_and_keyed_by_tenant() -> None:
    validator = validation.Validator(lambda tenant: config.Limits(), cache_size=2)
    for text in ('{a="1"}', '{a="2"}', '{a="3"}'):
        validator.validate("t", _push((text, [{}])), NOW)
    assert len(validator._cache) == 2
    first = validator.validate("t1", _push(('{a="1"}', [{}])), NOW).streams[0]
    second = validator.validate("t2", _push(('{a="1"}', [{}])), NOW).streams[0]
    assert first.token == fingerprint.ring_token("t1", first.canonical)
    assert second.token == fingerprint.ring_token("t2", second.canonical)


def test_limits_are_looked_up_per_tenant() -> None:
    limits = {"strict": config.Limits(max_line_size=1), "loose": config.Limits()}
    validator = validation.Validator(limits.__getitem__)
    assert validator.validate("strict", _push((STREAM, [{"line": "ab"}])), NOW).errors
    assert not validator.validate("loose", _push((STREAM, [{"line": "ab"}])), NOW).errors
