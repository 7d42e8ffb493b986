"""The HTTP side every query API server shares: parameters in, plain-text errors and JSON out.

The querier and the query frontend answer the same routes; both read parameters as Loki's codec
does and write errors as Loki's ``WriteError`` does (reference §1.11).
"""

from __future__ import annotations

import urllib.parse

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from lokistack.loghttp import encoding


class RequestError(Exception):
    """An error answered with ``status`` and ``message`` as the plain-text body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> web.Response:
    """Go's ``http.Error``: the message and a newline, as plain text."""
    return web.Response(
        status=status,
        text=message + "\n",
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=body, headers={"Content-Type": encoding.JSON_CONTENT_TYPE}
    )


async def request_params(request: web.Request) -> MultiDictProxy[str]:
    """For POST, the form body's parameters, then the URL's: Go's ``ParseForm`` order, so a
    body value wins over a URL value of the same name.

    As ``ParseForm``, only url-encoded bodies are read (multipart ones are ignored), and bytes
    that are not UTF-8 do not fail the request: they become U+FFFD and fail (or match nothing)
    in the parameter checks, as the raw bytes do in Loki.
    """
    merged: MultiDict[str] = MultiDict()
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        body = (await request.read()).decode("utf-8", "replace")
        for key, value in urllib.parse.parse_qsl(body, keep_blank_values=True, errors="replace"):
            merged.add(key, value)
    merged.extend(request.query)
    return MultiDictProxy(merged)
