"""The error of a push body Loki would refuse, shared by the protobuf and JSON decoders.

A module of its own so that :mod:`~lokistack.distributor.decode` (the entry point, which
re-exports :class:`PushDecodeError`) and :mod:`~lokistack.distributor.decode_json` both raise it
without importing each other. Callers use ``decode.PushDecodeError``.
"""

from __future__ import annotations


class PushDecodeError(Exception):
    """A push body Loki would refuse: ``status`` and ``message`` are its HTTP answer.

    ``reason`` is the discard reason to count the request under, when Loki counts one.
    """

    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


def bad_request(message: str) -> PushDecodeError:
    """A 400 answering ``message``, counted under no discard reason."""
    return PushDecodeError(400, message)
