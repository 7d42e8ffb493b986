"""The Go text/template subset: syntax, execution, functions, printf and Go time layouts."""

from __future__ import annotations

import pytest
from lokistack.logql.log import gotime, printf, template

TS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z
DATA = {"app": "api", "level": "error", "n": "42", "msg": "Hello World", "empty": ""}


def render(text: str, data: dict[str, str] | None = None, line: str = "the line") -> str:
    return template.compile_template("line", text).execute(data or dict(DATA), line, TS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("{{.app}}", "api"),
        ("{{ .missing }}|", "|"),
        ("{{.level | upper}}", "ERROR"),
        ("{{ .level | ToUpper | lower }}", "error"),
        ("a {{- ` b ` -}} c", "a b c"),
        ("x {{/* comment */}} y", "x  y"),
        ("x {{- /* comment */ -}} y", "xy"),
        ('{{ if eq .level "error" }}E{{ else if eq .level "warn" }}W{{ else }}I{{ end }}', "E"),
        ('{{ if eq .level "warn" }}W{{ else if eq .level "error" }}E{{ end }}', "E"),
        ("{{ if .empty }}y{{ else }}n{{ end }}", "n"),
        ("{{ with .app }}<{{ . }}>{{ end }}", "<api>"),
        ('{{ $x := .app }}{{ $x }}{{ $x = "b" }}{{ $x }}', "apib"),
        ("{{ range $i, $v := fromJson `[1, 2, 3]` }}{{ $i }}:{{ $v }} {{ end }}", "0:1 1:2 2:3 "),
        (
            '{{ range $k, $v := fromJson `{"b": 2, "a": "x"}` }}{{ $k }}={{ $v }};{{ end }}',
            "a=x;b=2;",
        ),
        ("{{ range 3 }}{{ . }}{{ if eq . 1 }}{{ break }}{{ end }}{{ end }}", "01"),
        ("{{ range fromJson `[]` }}x{{ else }}none{{ end }}", "none"),
        ('{{ (fromJson `{"a": {"b": 1}}`).a.b }}', "1"),
        ("{{ and .app .level }} {{ or .empty .app }} {{ not .empty }}", "error api true"),
        ("{{ len .app }} {{ index .app 0 }}", "3 97"),
        ('{{ print 1 2 "x" 3 }}', "1 2x3"),
        ("{{ __line__ }}", "the line"),
        ("{{ __timestamp__ }}", "2023-11-14 22:13:20.123456789 +0000 UTC"),
        ('{{ __timestamp__ | date "2006-01-02T15:04:05.000Z07:00" }}', "2023-11-14T22:13:20.123Z"),
        ('{{ date "Jan _2 03:04:05.999 PM Mon" __timestamp__ }}', "Nov 14 10:13:20.123 PM Tue"),
        (
            "{{ unixEpoch __timestamp__ }} {{ unixEpochMillis __timestamp__ }}",
            "1700000000 1700000000123",
        ),
        ('{{ toDate "2006-01-02" "2024-03-05" | unixEpoch }}', "1709596800"),
        (
            '{{ toDateInZone "2006-01-02 15:04" "Europe/Paris" "2024-03-05 10:00" | unixEpoch }}',
            "1709629200",
        ),
        ('{{ unixToTime "1700000000" | unixEpoch }}', "1700000000"),
    ],
)
def test_render(text: str, expected: str) -> None:
    assert render(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{{ trimPrefix "Hel" .msg }}|{{ trimSuffix "ld" .msg }}|{{ trimAll "Hd" .msg }}',
            "lo World|Hello Wor|ello Worl",
        ),
        ("{{ trunc 5 .msg }}|{{ trunc -5 .msg }}|{{ substr 1 4 .msg }}", "Hello|World|ell"),
        (
            '{{ replace "o" "0" .msg }}|{{ Replace .msg "o" "0" 1 }}|{{ repeat 2 "ab" }}',
            "Hell0 W0rld|Hell0 World|abab",
        ),
        (
            '{{ contains "World" .msg }} {{ hasPrefix "He" .msg }} {{ hasSuffix "x" .msg }}',
            "true true false",
        ),
        (
            '{{ title "hello wide_world" }}|{{ trim "  x  " }}|{{ TrimSpace " y " }}',
            "Hello Wide_world|x|y",
        ),
        ('{{ indent 2 "a\\nb" }}|{{ nindent 1 "c" }}', "  a\n  b|\n c"),
        ('{{ regexReplaceAll "(\\\\w+) (\\\\w+)" .msg "${2}-$1" }}', "World-Hello"),
        ('{{ regexReplaceAll "a*" "baaac" "-" }}', "-b-c-"),
        ('{{ regexReplaceAllLiteral "o" .msg "$1" }}', "Hell$1 W$1rld"),
        ('{{ count "o" .msg }}', "2"),
        ('{{ urlencode "a b&c" }}|{{ urldecode "a+b%26c" }}', "a+b%26c|a b&c"),
        (
            '{{ b64enc "hi" }}|{{ b64dec "aGk" }}|{{ b64dec "!!" }}',
            "aGk=|hi|illegal base64 data at input byte 0",
        ),
        ('{{ alignLeft 5 "ab" }}|{{ alignRight 5 "ab" }}|{{ alignLeft 1 "ab" }}', "ab   |   ab|a"),
        (
            "{{ add 1 2 .n }} {{ sub 5 7 }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ div -7 2 }}"
            " {{ mod -7 2 }}",
            "45 -2 24 3 -3 -1",
        ),
        ("{{ addf 1.5 2 }} {{ subf 1 0.25 }} {{ mulf 1.1 3 }} {{ divf 1 4 }}", "3.5 0.75 3.3 0.25"),
        ("{{ max 1 5 3 }} {{ min 4 2 }} {{ maxf 1.5 2 }} {{ minf 1.5 2 }}", "5 2 2 1.5"),
        ("{{ floor 1.7 }} {{ ceil 1.2 }} {{ round 1.2345 2 }} {{ round 2.5 0 }}", "1 2 1.23 3"),
        ('{{ int "12" }} {{ int "x" }} {{ float64 "1.5" }} {{ int 3.9 }}', "12 0 1.5 3"),
        ('{{ default "none" .empty }}|{{ default "none" .app }}', "none|api"),
        ('{{ bytes "1KiB" }} {{ duration "1m30s" }} {{ duration_seconds "500ms" }}', "1024 90 0.5"),
        (
            '{{ printf "%s=%d|%5.2f|%-4s|%q|%x|%v|%t|%05d|%%"'
            ' "a" 3 3.14159 "b" "c" 255 1.5 true 42 }}',
            'a=3| 3.14|b   |"c"|ff|1.5|true|00042|%',
        ),
        ('{{ printf "%d %s" "x" }}', "%!d(string=x) %!s(MISSING)"),
        ('{{ printf "%s" "a" "b" }}', "a%!(EXTRA string=b)"),
        ('{{ printf "%v %v" 1000000.0 0.0001 }}', "1e+06 0.0001"),
    ],
)
def test_functions(text: str, expected: str) -> None:
    assert render(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ nosuchfunc }}", 'template: line:1: function "nosuchfunc" not defined'),
        ("{{", "template: line:1: unclosed action"),
        ("a\n{{ .x ", "template: line:2: unclosed action"),
        ("{{ if .a }}x", "template: line:1: unexpected EOF"),
        ("{{ end }}", "template: line:1: unexpected {{end}}"),
        ("{{ }}", "template: line:1: missing value for command"),
        ('{{ define "x" }}{{ end }}', "template: line:1: {{define}} is not supported"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(template.TemplateError) as raised:
        template.compile_template("line", text)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ div 1 0 }}", "at <div 1 0>: error calling div: runtime error: integer divide by zero"),
        ("{{ .app.x }}", "at <.app.x>: can't evaluate field x in type string"),
        ("{{ trunc .n .app }}", "wrong type for value; expected int; got string"),
        ("{{ upper }}", "wrong number of args for upper: want 1 got 0"),
        ('{{ urldecode "%zz" }}', 'error calling urldecode: invalid URL escape "%zz"'),
        ("{{ eq .app 1 }}", "incompatible types for comparison"),
    ],
)
def test_execution_errors(text: str, message: str) -> None:
    with pytest.raises(template.ExecError) as raised:
        render(text)
    assert message in str(raised.value)
    assert str(raised.value).startswith("template: line:1:")


def test_simple_key_is_recognised() -> None:
    assert template.compile_template("line", "{{.message}}").simple_key == "message"
    assert template.compile_template("line", "{{.a.b}}").simple_key is None


def test_go_time_layouts() -> None:
    moment = gotime.GoTime(TS)
    assert moment.format("Monday, 02-Jan-06 15:04:05 MST") == "Tuesday, 14-Nov-23 22:13:20 UTC"
    assert moment.format("2006-01-02T15:04:05.999999999Z07:00") == "2023-11-14T22:13:20.123456789Z"
    assert moment.format("_2 __2 002 .000000 ,9 3PM -0700") == "14 318 318 .123456 ,1 10PM +0000"
    parsed = gotime.parse("2006-01-02T15:04:05.000-07:00", "2024-03-05T10:00:00.250+02:00")
    assert parsed.ns == 1709625600 * 10**9 + 250_000_000
    with pytest.raises(ValueError, match="cannot parse"):
        gotime.parse("2006-01-02", "nope")
    assert str(gotime.GoTime.zero()) == "0001-01-01 00:00:00 +0000 UTC"


def test_printf_values() -> None:
    assert printf.sprint(None, 1.0, [1, "a"], {"k": None}) == "<nil> 1 [1 a] map[k:<nil>]"
    assert printf.sprintf("%T %T %T", 1, "s", gotime.GoTime(0)) == "int string time.Time"
    assert printf.sprintf("%+d|%x|%X|%08.3f|%e", 5, "hi", 255, -3.14159, 1234.5) == (
        "+5|6869|FF|-003.142|1.234500e+03"
    )
