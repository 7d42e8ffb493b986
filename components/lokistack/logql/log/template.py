"""The Go text/template subset of ``line_format`` and ``label_format``.

Loki runs these templates with Go's ``text/template`` and ``missingkey=zero`` over the entry's
labels, so users write Go templates: ``{{.status}}``, ``{{ .msg | upper }}``, ``{{ if eq .level
"error" }}…{{ else }}…{{ end }}``, ``{{ printf "%-5s" .level }}``. This module lexes, parses and
runs that language: text with ``{{ }}`` actions (trim markers ``{{-``/``-}}``, comments),
pipelines with ``|``, fields (``.a``, chained ``.a.b``), variables (``$``, ``$x :=``, ``$x =``),
literals, parenthesised pipelines, ``if``/``else if``/``else``, ``range`` (lists, maps, integers,
with ``break``/``continue``), ``with``, and the functions of :mod:`.template_funcs`.

Parse errors are worded as Go's (``template: line:1: function "x" not defined``) because Loki
returns them to the user; execution errors follow Go's layout (``template: line:1:2: executing
"line" at <.a.b>: …``) and end up in ``__error_details__``. ``define``/``template``/``block``
(named templates) are not part of what Loki documents and are refused.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any, Final

from lokistack.logql.log import template_funcs as funcs

_TOKEN: Final = re.compile(
    r"""(?P<space>\s+)
    |(?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
    |(?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    |(?P<declare>:=)
    |(?P<string>"(?:[^"\\\n]|\\.)*")
    |(?P<raw>`[^`]*`)
    |(?P<char>'(?:[^'\\\n]|\\.)+')
    |(?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:[0-9][0-9_]*)?\.?[0-9][0-9_]*(?:[eE][+-]?[0-9]+)?))
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<punct>[|(),=.])""",
    re.VERBOSE,
)
_KEYWORDS: Final = frozenset(
    [
        "if",
        "else",
        "end",
        "range",
        "with",
        "break",
        "continue",
        "define",
        "template",
        "block",
        "nil",
        "true",
        "false",
    ]
)


class TemplateError(ValueError):
    """A template that does not parse; ``str()`` is Go's message."""


class ExecError(Exception):
    """A failure while running a template; ``str()`` is Go's message."""


@dataclasses.dataclass(slots=True)
class _Tok:
    kind: str
    text: str
    pos: int
    spaced: bool = False


# -- AST -----------------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Arg:
    """An operand: ``kind`` is field, var, dot, ident, const or pipe; ``fields`` chain after."""

    kind: str
    pos: int
    text: str
    value: Any = None
    fields: tuple[str, ...] = ()


@dataclasses.dataclass(slots=True)
class _Pipe:
    pos: int
    text: str
    cmds: list[list[_Arg]]
    decl: list[str] = dataclasses.field(default_factory=list)
    assign: bool = False


@dataclasses.dataclass(slots=True)
class _Branch:
    kind: str  # "if", "range", "with"
    pipe: _Pipe
    body: list[Any]
    orelse: list[Any]


class _Break(Exception):  # noqa: N818 - control flow, not an error
    pass


class _Continue(Exception):  # noqa: N818 - control flow, not an error
    pass


# -- parsing -------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.items = self._lex()
        self.index = 0
        self.range_depth = 0

    def error(self, pos: int, message: str) -> TemplateError:
        line = self.text.count("\n", 0, pos) + 1
        return TemplateError(f"template: {self.name}:{line}: {message}")

    def _lex(self) -> list[str | list[_Tok]]:
        """Text pieces and actions (lists of tokens), with trim markers applied."""
        text, pos = self.text, 0
        items: list[str | list[_Tok]] = []
        trim_next = False
        while True:
            start = text.find("{{", pos)
            chunk = text[pos:] if start < 0 else text[pos:start]
            if trim_next:
                chunk = chunk.lstrip(" \t\r\n")
            if start < 0:
                items.append(chunk)
                return items
            inner = start + 2
            if text.startswith("-", inner) and text[inner + 1 : inner + 2] in (
                " ",
                "\t",
                "\r",
                "\n",
            ):
                chunk = chunk.rstrip(" \t\r\n")
                inner += 1
            items.append(chunk)
            tokens, pos, trim_next = self._lex_action(inner)
            if tokens is not None:
                items.append(tokens)

    def _lex_action(self, pos: int) -> tuple[list[_Tok] | None, int, bool]:
        text = self.text
        stripped = pos + len(text[pos:]) - len(text[pos:].lstrip(" \t\r\n"))
        if text.startswith("/*", stripped):
            end = text.find("*/", stripped + 2)
            if end < 0:
                raise self.error(pos, "unclosed comment")
            after = end + 2
            for closer, trim in ((" -}}", True), ("}}", False)):
                if text.startswith(closer, after):
                    return None, after + len(closer), trim
            raise self.error(pos, "comment ends before closing delimiter")
        tokens: list[_Tok] = []
        spaced = False
        while True:
            if text.startswith("}}", pos):
                return tokens, pos + 2, False
            if text.startswith("-}}", pos) and spaced:
                return tokens, pos + 3, True
            match = _TOKEN.match(text, pos)
            if pos >= len(text):
                raise self.error(pos, "unclosed action")
            if match is None:
                raise self.error(pos, f"unrecognized character in action: {text[pos]!r}")
            kind = match.lastgroup or ""
            if kind == "space":
                spaced = True
            else:
                tokens.append(_Tok(kind, match.group(), pos, spaced))
                spaced = False
            pos = match.end()

    def parse(self) -> list[Any]:
        nodes, end = self.parse_list()
        if end is not None:
            raise self.error(end.pos, f"unexpected {{{{{end.text}}}}}")
        return nodes

    def parse_list(self) -> tuple[list[Any], _Tok | None]:
        """Nodes up to EOF or an ``{{end}}``/``{{else …}}``, which is returned unconsumed."""
        nodes: list[Any] = []
        while self.index < len(self.items):
            item = self.items[self.index]
            if isinstance(item, str):
                if item:
                    nodes.append(item)
                self.index += 1
                continue
            if not item:
                raise self.error(0, "missing value for command")
            head = item[0]
            if head.kind == "ident" and head.text in ("end", "else"):
                return nodes, head
            self.index += 1
            if head.kind == "ident" and head.text in ("if", "range", "with"):
                nodes.append(self.parse_branch(head.text, item[1:], head))
            elif head.kind == "ident" and head.text in ("break", "continue"):
                if self.range_depth == 0 or len(item) > 1:
                    raise self.error(head.pos, f"{{{{{head.text}}}}} outside {{{{range}}}}")
                nodes.append(head.text)
            elif head.kind == "ident" and head.text in ("define", "template", "block"):
                raise self.error(head.pos, f"{{{{{head.text}}}}} is not supported")
            else:
                nodes.append(self.parse_pipe(item, decl_ok=True))
        return nodes, None

    def parse_branch(self, kind: str, tokens: list[_Tok], head: _Tok) -> _Branch:
        if not tokens:
            raise self.error(head.pos, f"missing value for {kind}")
        pipe = self.parse_pipe(tokens, decl_ok=True)
        self.range_depth += kind == "range"
        body, end = self.parse_list()
        self.range_depth -= kind == "range"
        orelse: list[Any] = []
        if end is None:
            raise self.error(len(self.text), "unexpected EOF")
        action = self.items[self.index]
        assert isinstance(action, list)
        if end.text == "else":
            if len(action) > 1 and action[1].text in ("if", "with"):
                self.index += 1  # "else if": a nested branch that ends at the same {{end}}
                orelse = [self.parse_branch(action[1].text, action[2:], action[1])]
                return _Branch(kind, pipe, body, orelse)
            self.index += 1
            orelse, end = self.parse_list()
            if end is None:
                raise self.error(len(self.text), "unexpected EOF")
            if end.text != "end":
                raise self.error(end.pos, "expected end; found {{else}}")
        self.index += 1
        return _Branch(kind, pipe, body, orelse)

    def parse_pipe(self, tokens: list[_Tok], *, decl_ok: bool) -> _Pipe:
        start = tokens[0].pos if tokens else 0
        end = tokens[-1].pos + len(tokens[-1].text) if tokens else 0
        pipe = _Pipe(start, self.text[start:end], [])
        i = 0
        names: list[str] = []
        while decl_ok and i + 1 < len(tokens) and tokens[i].kind == "var":
            names.append(tokens[i].text)
            if tokens[i + 1].kind == "declare" or tokens[i + 1].text == "=":
                pipe.decl, pipe.assign = names, tokens[i + 1].text == "="
                i += 2
                break
            if tokens[i + 1].text != "," or len(names) == 2:
                break
            i += 2
        cmd: list[_Arg] = []
        while i < len(tokens):
            tok = tokens[i]
            if tok.text == "|":
                if not cmd:
                    raise self.error(tok.pos, "missing value for command")
                pipe.cmds.append(cmd)
                cmd = []
                i += 1
                continue
            arg, i = self.parse_operand(tokens, i)
            cmd.append(arg)
        if not cmd:
            raise self.error(start, "missing value for command")
        pipe.cmds.append(cmd)
        return pipe

    def parse_operand(self, tokens: list[_Tok], i: int) -> tuple[_Arg, int]:
        tok = tokens[i]
        kind, text = tok.kind, tok.text
        if text == "(":
            depth, j = 1, i + 1
            while j < len(tokens) and depth:
                depth += {"(": 1, ")": -1}.get(tokens[j].text, 0)
                j += 1
            if depth:
                raise self.error(tok.pos, "unclosed left paren")
            arg = _Arg("pipe", tok.pos, text, self.parse_pipe(tokens[i + 1 : j - 1], decl_ok=False))
            i = j
        elif kind == "field":
            arg = _Arg("field", tok.pos, text, fields=tuple(text[1:].split(".")))
            i += 1
        elif kind == "var":
            name, *chain = text.split(".")
            arg = _Arg("var", tok.pos, text, name, tuple(chain))
            i += 1
        elif text == ".":
            arg = _Arg("dot", tok.pos, text)
            i += 1
        elif kind == "ident" and text in ("true", "false", "nil"):
            arg = _Arg("const", tok.pos, text, {"true": True, "false": False}.get(text))
            i += 1
        elif kind == "ident" and text not in _KEYWORDS:
            if text not in funcs.FUNCTIONS:
                raise self.error(tok.pos, f'function "{text}" not defined')
            arg = _Arg("ident", tok.pos, text)
            i += 1
        elif kind in ("string", "raw", "char", "number"):
            arg = _Arg("const", tok.pos, text, self.constant(tok))
            i += 1
        else:
            raise self.error(tok.pos, f"unexpected {text!r} in command")
        while i < len(tokens) and tokens[i].kind == "field" and not tokens[i].spaced:
            arg.fields += tuple(tokens[i].text[1:].split("."))
            i += 1
        return arg, i

    def constant(self, tok: _Tok) -> Any:
        try:
            return funcs.parse_constant(tok.kind, tok.text)
        except ValueError as error:
            raise self.error(tok.pos, str(error)) from None


# -- execution -----------------------------------------------------------------------------------


class Template:
    """A parsed template; :meth:`execute` renders it over a label mapping."""

    __slots__ = ("_nodes", "name", "simple_key", "text")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self._nodes = _Parser(name, text).parse()
        self.simple_key: str | None = None
        nodes = self._nodes
        if len(nodes) == 1 and isinstance(nodes[0], _Pipe) and not nodes[0].decl:
            cmds = nodes[0].cmds
            only = cmds[0][0] if len(cmds) == 1 and len(cmds[0]) == 1 else None
            if only is not None and only.kind == "field" and len(only.fields) == 1:
                self.simple_key = only.fields[0]

    def execute(self, data: dict[str, str], line: str, ts: int) -> str:
        """Render; raises :class:`ExecError` with Go's message on a runtime failure."""
        run = _Run(self, data, funcs.Context(line, ts))
        run.walk(self._nodes, data, [("$", data)])
        return "".join(run.out)


def _identity(value: Any) -> Any:
    return value


class _Run:
    __slots__ = ("context", "data", "out", "template")

    def __init__(self, template: Template, data: dict[str, str], context: funcs.Context) -> None:
        self.template = template
        self.data = data
        self.context = context
        self.out: list[str] = []

    def fail(self, pos: int, node: str, message: str) -> ExecError:
        text = self.template.text[:pos]
        line = text.count("\n") + 1
        column = pos - (text.rfind("\n") + 1)
        name = self.template.name
        return ExecError(
            f'template: {name}:{line}:{column}: executing "{name}" at <{node}>: ' + message
        )

    def walk(self, nodes: list[Any], dot: Any, scope: list[tuple[str, Any]]) -> None:
        mark = len(scope)
        for node in nodes:
            if isinstance(node, str):
                if node == "break":
                    raise _Break
                if node == "continue":
                    raise _Continue
                self.out.append(node)
            elif isinstance(node, _Pipe):
                value = self.pipe(node, dot, scope)
                if not node.decl:
                    self.out.append(funcs.go_print(value))
            else:
                self.branch(node, dot, scope)
        del scope[mark:]

    def branch(self, node: _Branch, dot: Any, scope: list[tuple[str, Any]]) -> None:
        mark = len(scope)
        value = self.pipe(node.pipe, dot, scope, declare=node.kind != "range")
        if node.kind == "range":
            items = self.range_items(node, value)
            if not items:
                self.walk(node.orelse, dot, scope)
            for key, item in items:
                names = node.pipe.decl
                if len(names) == 1:
                    scope.append((names[0], item))
                elif len(names) == 2:
                    scope.extend(((names[0], key), (names[1], item)))
                try:
                    self.walk(node.body, item, scope)
                except _Break:
                    break
                except _Continue:
                    continue
                finally:
                    del scope[mark:]
        elif funcs.truth(value):
            self.walk(node.body, value if node.kind == "with" else dot, scope)
        else:
            self.walk(node.orelse, dot, scope)
        del scope[mark:]

    def range_items(self, node: _Branch, value: Any) -> list[tuple[Any, Any]]:
        if value is None:
            return []
        if isinstance(value, dict):
            return [(key, value[key]) for key in sorted(value)]
        if isinstance(value, list):
            return list(enumerate(value))
        if isinstance(value, int) and not isinstance(value, bool):
            return [(i, i) for i in range(value)]
        printed = funcs.go_print(value)
        raise self.fail(node.pipe.pos, node.pipe.text, f"range can't iterate over {printed}")

    def pipe(
        self, pipe: _Pipe, dot: Any, scope: list[tuple[str, Any]], *, declare: bool = True
    ) -> Any:
        value: Any = funcs.MISSING
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, scope, value)
        if pipe.decl and declare:
            if pipe.assign:
                for index in range(len(scope) - 1, -1, -1):
                    if scope[index][0] == pipe.decl[0]:
                        scope[index] = (pipe.decl[0], value)
                        break
                else:
                    raise self.fail(pipe.pos, pipe.text, f'undefined variable "{pipe.decl[0]}"')
            else:
                scope.append((pipe.decl[0], value))
        return value

    def command(self, cmd: list[_Arg], dot: Any, scope: list[tuple[str, Any]], final: Any) -> Any:
        head = cmd[0]
        if head.kind == "ident" and not head.fields:
            lazy: list[Callable[[], Any]] = [
                functools.partial(self.arg, arg, dot, scope) for arg in cmd[1:]
            ]
            if final is not funcs.MISSING:
                lazy.append(functools.partial(_identity, final))
            try:
                return funcs.call(head.text, lazy, self.context)
            except funcs.CallError as error:
                text = " ".join(arg.text for arg in cmd)
                raise self.fail(head.pos, text, str(error)) from None
        if len(cmd) > 1 or final is not funcs.MISSING:
            raise self.fail(head.pos, head.text, f"can't give argument to non-function {head.text}")
        return self.arg(head, dot, scope)

    def arg(self, arg: _Arg, dot: Any, scope: list[tuple[str, Any]]) -> Any:
        kind = arg.kind
        if kind == "const":
            value = arg.value
        elif kind in ("field", "dot"):
            value = dot
        elif kind == "var":
            for name, bound in reversed(scope):
                if name == arg.value:
                    value = bound
                    break
            else:
                raise self.fail(arg.pos, arg.text, f'undefined variable "{arg.value}"')
        elif kind == "pipe":
            value = self.pipe(arg.value, dot, scope)
        else:  # a function used as an operand: call it without arguments
            value = self.command([dataclasses.replace(arg, fields=())], dot, scope, funcs.MISSING)
        for name in arg.fields:
            value = self.field(value, name, arg)
        return value

    def field(self, receiver: Any, name: str, arg: _Arg) -> Any:
        if isinstance(receiver, dict):
            if name in receiver:
                return receiver[name]
            return "" if receiver is self.data else None
        if receiver is None:
            raise self.fail(arg.pos, arg.text, f"nil pointer evaluating interface {{}}.{name}")
        kind = funcs.go_type(receiver)
        raise self.fail(arg.pos, arg.text, f"can't evaluate field {name} in type {kind}")


def compile_template(name: str, text: str) -> Template:
    """Parse ``text``; raises :class:`TemplateError` with Go's message."""
    return Template(name, text)


Render = Callable[[dict[str, str], str, int], str]
