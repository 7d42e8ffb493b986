"""The parser's view of the token stream: look-ahead, expectations and yacc-worded errors.

Loki's syntax errors come from goyacc: ``syntax error: unexpected X``, followed by
``, expecting A or B`` when at most four tokens could have come next, at the position of the
unexpected token. The parser passes the tokens it would accept wherever that set is the one
yacc computes, so the common messages (``unexpected $end, expecting } or ,``) match Loki's.
"""

from __future__ import annotations

from collections.abc import Iterable

from lokistack.logql.syntax import errors, lexer, tokens

Kind = tokens.Kind


class Cursor:
    """Tokens with unbounded look-ahead; reaching an ERROR token raises its error."""

    def __init__(self, text: str) -> None:
        self._lexer = lexer.Lexer(text)
        self._ahead: list[tokens.Token] = []

    def peek(self, offset: int = 0) -> tokens.Token:
        """The token ``offset`` places ahead, without consuming it."""
        while len(self._ahead) <= offset:
            token = self._lexer.next_token()
            self._ahead.append(token)
            if token.kind is Kind.ERROR:
                break
        token = self._ahead[min(offset, len(self._ahead) - 1)]
        if token.kind is Kind.ERROR and token.error is not None:
            raise token.error
        return token

    def kind(self, offset: int = 0) -> Kind:
        """The kind of the token ``offset`` places ahead."""
        return self.peek(offset).kind

    def at(self, *kinds: Kind) -> bool:
        """Whether the next token is one of ``kinds``."""
        return self.peek().kind in kinds

    def advance(self) -> tokens.Token:
        """Consume and return the next token."""
        token = self.peek()
        if token.kind is not Kind.EOF:
            self._ahead.pop(0)
        return token

    def accept(self, kind: Kind) -> tokens.Token | None:
        """Consume the next token if it is of ``kind``."""
        return self.advance() if self.at(kind) else None

    def expect(self, kind: Kind, expecting: Iterable[Kind] | None = None) -> tokens.Token:
        """Consume a token of ``kind``, or fail naming what was expected (default: ``kind``)."""
        if not self.at(kind):
            raise self.error(expecting if expecting is not None else (kind,))
        return self.advance()

    def name(self, expecting: Iterable[Kind] = (Kind.IDENTIFIER,)) -> str:
        """Consume an identifier (a real one: Loki's stray-character identifiers are refused)."""
        token = self.peek()
        if token.kind is not Kind.IDENTIFIER or not token.is_name:
            raise self.error(expecting)
        self.advance()
        return token.text

    def string(self) -> str:
        """Consume a string literal and return its value."""
        return str(self.expect(Kind.STRING).value)

    def error(self, expecting: Iterable[Kind] = ()) -> errors.ParseError:
        """A syntax error at the next token."""
        token = self.peek()
        message = f"syntax error: unexpected {tokens.display(token.kind)}"
        wanted = sorted(set(expecting))
        if 0 < len(wanted) <= 4:
            message += ", expecting " + " or ".join(tokens.display(kind) for kind in wanted)
        return errors.ParseError(message, token.line, token.col)
