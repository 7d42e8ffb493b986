"""The per-entry label builder: precedence, ``_extracted``, deletion and errors."""

from __future__ import annotations

import pytest
from lokistack.logql.log import labels


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("level", "level"),
        ("a-b", "a_b"),
        ("9x", "_9x"),
        (" padded ", "padded"),
        ("a.b.c", "a_b_c"),
        ("é", "_"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_sanitize_key(key: str, expected: str) -> None:
    assert labels.sanitize_key(key) == expected


def test_metadata_clashing_with_a_stream_label_is_extracted() -> None:
    builder = labels.LabelsBuilder({"app": "a", "sm": "s"}, (("sm", "m"), ("md", "m")))
    assert builder.labels() == (("app", "a"), ("md", "m"), ("sm", "s"), ("sm_extracted", "m"))


def test_parsed_labels_lose_the_base_name_to_stream_and_metadata() -> None:
    builder = labels.LabelsBuilder({"app": "a", "tri": "s"}, (("tri", "m"), ("md", "m")))
    for key in ("tri", "md", "new"):
        builder.set_parsed_new(key, "p")
    assert builder.labels() == (
        ("app", "a"),
        ("md", "m"),
        ("md_extracted", "p"),
        ("new", "p"),
        ("tri", "s"),
        ("tri_extracted", "p"),
    )


def test_the_first_parsed_value_of_a_key_wins() -> None:
    builder = labels.LabelsBuilder({"app": "a"})
    builder.set_parsed_new("dup", "first")
    builder.set_parsed_new("dup", "second")
    assert builder.get("dup") == "first"


def test_set_parsed_overrides_and_delete_masks_stream_labels() -> None:
    builder = labels.LabelsBuilder({"app": "a", "method": "get"})
    builder.set_parsed("method", "get!")
    assert builder.get("method") == "get!"
    builder.delete("app")
    assert builder.get("app") is None
    assert builder.labels() == (("method", "get!"),)


def test_empty_values_are_present_but_absent_labels_read_empty() -> None:
    builder = labels.LabelsBuilder({"app": "a"}, (("name", ""),))
    assert builder.get("name") == ""
    assert builder.get("missing") is None
    assert builder.value("missing") == ""
    assert ("name", "") in builder.labels()


def test_errors_join_the_labels_and_only_strings_read_them() -> None:
    builder = labels.LabelsBuilder({"app": "a"})
    builder.set_error(labels.JSON_PARSER_ERR, "bad")
    assert builder.get("__error__") is None
    assert builder.value("__error__") == "JSONParserErr"
    assert builder.labels() == (
        ("__error__", "JSONParserErr"),
        ("__error_details__", "bad"),
        ("app", "a"),
    )
    assert "__error__" not in builder.names()


def test_with_metadata_without_metadata_is_the_stream() -> None:
    assert labels.with_metadata({"a": "1"}, ()) == (("a", "1"),)
    assert labels.with_metadata({"a": "1"}, (("a", "2"),)) == (("a", "1"), ("a_extracted", "2"))
