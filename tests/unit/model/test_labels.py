"""Label parsing (Prometheus ParseMetric), the canonical string, edits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokistack.model import labels

# -- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("{}", ()),
        ("  {  }  ", ()),
        ('{a="b"}', (("a", "b"),)),
        ('{b="2", a="1"}', (("a", "1"), ("b", "2"))),
        ('{a="b",}', (("a", "b"),)),
        ('{ a = "b" , c = "d" , }', (("a", "b"), ("c", "d"))),
        ("{a='b'}", (("a", "b"),)),
        ("{a=`b\\n`}", (("a", "b\\n"),)),
        ("{a=`multi\nline`}", (("a", "multi\nline"),)),
        ('{a="x\\ty\\n\\"q\\"\\\\"}', (("a", 'x\ty\n"q"\\'),)),
        ("{a='it\\'s'}", (("a", "it's"),)),
        ('{a="\\a\\b\\f\\r\\v"}', (("a", "\a\b\f\r\v"),)),
        ('{a="\\x41\\101\\u00e9\\U0001F600"}', (("a", "AAé😀"),)),
        ('{a="\\xc3\\xa9"}', (("a", "é"),)),  # escaped bytes that form valid UTF-8
        ('{a="\\xff"}', (("a", "\udcff"),)),  # invalid UTF-8 kept as a surrogate escape
        ('{a="日本語"}', (("a", "日本語"),)),
        ('{a=""}', ()),
        ('{a="", b="c"}', (("b", "c"),)),
        ('{a="x", a=""}', ()),  # Builder semantics: the name is deleted
        ('{a="1", a="2"}', (("a", "1"), ("a", "2"))),  # duplicates survive parsing
        ('foo{a="b"}', (("__name__", "foo"), ("a", "b"))),
        ("foo", (("__name__", "foo"),)),
        ("foo:bar {}", (("__name__", "foo:bar"),)),
        ('foo{__name__="bar"}', (("__name__", "foo"),)),
        ('{"foo"}', (("__name__", "foo"),)),
        ('{"a.b"="c", "é"=\'d\'}', (("a.b", "c"), ("é", "d"))),
        ('# comment\n{a="b"} # trailing', (("a", "b"),)),
        ('{\n\ta="b",\r\n}', (("a", "b"),)),
    ],
)
def test_parse(text: str, expected: labels.Labels) -> None:
    assert labels.parse_labels(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{a="b"', "1:7: parse error: unexpected end of input inside braces"),
        ("{", "1:2: parse error: unexpected end of input inside braces"),
        ('{a="b}', "1:4: parse error: unterminated quoted string"),
        ('{a="b\nc"}', "1:4: parse error: unterminated quoted string"),
        ("{a=`b}", "1:4: parse error: unterminated raw string"),
        ('{a.b="c"}', "1:3: parse error: unexpected character inside braces: '.'"),
        ('{é="c"}', "1:2: parse error: unexpected character inside braces: 'é'"),
        (
            '{a="b" c="d"}',
            '1:8: parse error: unexpected identifier "c" in label set, expected "," or "}"',
        ),
        ("{a}", '1:3: parse error: unexpected "}" in label set, expected "="'),
        ("{a=b}", '1:4: parse error: unexpected identifier "b" in label set, expected string'),
        ("{a=}", '1:4: parse error: unexpected "}" in label set, expected string'),
        ('{a=~"b"}', '1:3: parse error: unexpected <op:=~> in label set, expected "="'),
        ('{a!="b"}', '1:3: parse error: unexpected <op:!=> in label set, expected "="'),
        ('{a!"b"}', "1:3: parse error: unexpected character after '!' inside braces: '\"'"),
        ("{,}", '1:2: parse error: unexpected "," in label set, expected identifier or "}"'),
        (
            '{a="b",,}',
            '1:8: parse error: unexpected "," in label set, expected identifier or "}"',
        ),
        (
            '{"a" "b"}',
            '1:6: parse error: unexpected string "\\"b\\"" in label set, expected "," or "}"',
        ),
        (
            '{"a" "bcdefghijklm"}',
            '1:6: parse error: unexpected string "\\"bcdefghij"... in label set, '
            'expected "," or "}"',
        ),
        ('{a="b"{', "1:7: parse error: unexpected left brace '{'"),
        ('{a="\\q"}', "1:4: parse error: unknown escape sequence U+0071 'q'"),
        ('{a="\\x4g"}', "1:4: parse error: illegal character U+0067 'g' in escape sequence"),
        ('{a="\\8"}', "1:4: parse error: unknown escape sequence U+0038 '8'"),
        ('{a="\\18"}', "1:4: parse error: illegal character U+0038 '8' in escape sequence"),
        ('{a="\\400"}', "1:4: parse error: escape sequence is an invalid Unicode code point"),
        ('{a="\\ud800"}', "1:4: parse error: escape sequence is an invalid Unicode code point"),
        ('{a="\\U00110000"}', "1:4: parse error: escape sequence is an invalid Unicode code point"),
        ('{a="\\', "1:4: parse error: escape sequence not terminated"),
        ('{a="\\x4', "1:4: parse error: escape sequence not terminated"),
        ("{a='\\\"'}", "1:4: parse error: unknown escape sequence U+0022 '\"'"),
        ('{a="\\\n"}', "1:4: parse error: unknown escape sequence U+000A"),
        ('{a="b"}}', "1:8: parse error: unexpected right brace '}'"),
        ('{a="b"} x', '1:9: parse error: unexpected identifier "x"'),
        ('{a="b"}{}', '1:8: parse error: unexpected "{"'),
        ('{a="b"},', '1:8: parse error: unexpected ","'),
        ('{a="b"} $', "1:9: parse error: unexpected character: '$'"),
        ("foo bar", '1:5: parse error: unexpected identifier "bar"'),
        ('"foo"', '1:1: parse error: unexpected string "\\"foo\\""'),
        ("}", "1:1: parse error: unexpected right brace '}'"),
        (
            '\n\n {a="b" c',
            '3:9: parse error: unexpected identifier "c" in label set, expected "," or "}"',
        ),
        ('{é="c"} x', "1:2: parse error: unexpected character inside braces: 'é'"),
        ('{a="é"} x', '1:10: parse error: unexpected identifier "x"'),  # columns count bytes
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(labels.LabelsError) as caught:
        labels.parse_labels(text)
    assert str(caught.value) == message


def test_labels_error_is_a_value_error() -> None:
    assert issubclass(labels.LabelsError, ValueError)


# -- canonical string ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "text"),
    [
        ((), "{}"),
        ((("a", "x"),), '{a="x"}'),
        ((("a", "x"), ("b", "y")), '{a="x", b="y"}'),
        ((("a.b", "x"),), '{"a.b"="x"}'),
        ((("1a", "x"),), '{"1a"="x"}'),
        ((("_", "x"), ("é", "y")), '{_="x", "é"="y"}'),
        ((("", "x"),), '{""="x"}'),
        ((("a", "line\nbreak"),), '{a="line\\nbreak"}'),
    ],
)
def test_canonical(pairs: labels.Labels, text: str) -> None:
    assert labels.canonical(pairs) == text


def test_canonical_of_parsed_invalid_utf8_matches_go() -> None:
    assert labels.canonical(labels.parse_labels('{a="\\xff\\x41"}')) == '{a="\\xffA"}'


def test_with_label_inserts_and_replaces_in_order() -> None:
    base = (("a", "1"), ("c", "3"))
    assert labels.with_label(base, "b", "2") == (("a", "1"), ("b", "2"), ("c", "3"))
    assert labels.with_label(base, "c", "9") == (("a", "1"), ("c", "9"))
    assert labels.with_label(base, "0", "z") == (("0", "z"), ("a", "1"), ("c", "3"))
    assert labels.with_label(base, "a", "") == (("c", "3"),)


def test_get() -> None:
    assert labels.get((("a", "1"),), "a") == "1"
    assert labels.get((("a", "1"),), "b") == ""


# -- properties ---------------------------------------------------------------------------------

_legacy_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,12}", fullmatch=True)
_any_names = st.one_of(_legacy_names, st.text(max_size=8))
_label_sets = st.dictionaries(_any_names, st.text(max_size=20), max_size=8)


@given(_label_sets)
def test_canonical_round_trip(pairs: dict[str, str]) -> None:
    expected = labels.normalize(list(pairs.items()))
    text = labels.canonical(expected)
    assert labels.parse_labels(text) == expected
    assert labels.canonical(labels.parse_labels(text)) == text


@given(st.dictionaries(_legacy_names, st.text(max_size=20), max_size=8))
def test_fast_path_agrees_with_parser(pairs: dict[str, str]) -> None:
    text = labels.canonical(labels.normalize(list(pairs.items())))
    slow = labels.normalize(labels._Parser(text).parse_metric())
    assert labels.parse_labels(text) == slow


@given(st.text(max_size=30))
def test_parse_never_fails_unexpectedly(text: str) -> None:
    try:
        result = labels.parse_labels(text)
    except labels.LabelsError as err:
        assert ": parse error: " in str(err)
    else:
        assert list(result) == sorted(result, key=lambda pair: pair[0])
        assert all(value for _, value in result)
