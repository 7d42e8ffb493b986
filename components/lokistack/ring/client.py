"""gRPC channels to ring members (ingesters), as the distributor and the querier open them.

Both send and receive up to Loki's ingester-client message size, and reconnect quickly to an
ingester that restarts at the same address (a StatefulSet pod keeps its name and DNS entry).
"""

from __future__ import annotations

from typing import Final

import grpc

MAX_MESSAGE_SIZE: Final = 100 * 1024 * 1024  # Loki's ingester client default, both directions


def ingester_channel(address: str) -> grpc.aio.Channel:
    """A new channel to the ingester at ``address`` (``host:port``); the caller closes it."""
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
            ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ],
    )
