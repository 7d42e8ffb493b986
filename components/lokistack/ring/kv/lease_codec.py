"""The stored form of a ring member: the ``coordination.k8s.io/v1`` Lease that holds it.

docs/ring.md is the specification (names, labels, annotations, encodings); these pure functions
implement it, in both directions.  :mod:`lokistack.ring.kv.kubernetes` writes and reads Leases
with them.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
import struct
from collections.abc import Mapping
from typing import Any, Final

from lokistack.ring import model

LABEL_RING: Final = "lokistack.dev/ring"
LABEL_PREFIX: Final = "lokistack.dev/ring-prefix"
ANNOTATION_PREFIX: Final = "ring.lokistack.dev/"
ANNOTATION_FORMAT: Final = ANNOTATION_PREFIX + "format"
ANNOTATION_ADDR: Final = ANNOTATION_PREFIX + "addr"
ANNOTATION_ZONE: Final = ANNOTATION_PREFIX + "zone"
ANNOTATION_STATE: Final = ANNOTATION_PREFIX + "state"
ANNOTATION_TOKENS: Final = ANNOTATION_PREFIX + "tokens"
ANNOTATION_REGISTERED: Final = ANNOTATION_PREFIX + "registered"
FORMAT_VERSION: Final = "1"

_MAX_NAME: Final = 253
_MAX_LABEL: Final = 63


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _dns_label_chars(text: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    return re.sub(r"-{2,}", "-", cleaned).strip("-")


def lease_name(lease_prefix: str, ring_name: str, instance_id: str) -> str:
    """``<lease_prefix>-<ring_name>-<instance id>``, made a valid DNS-1123 name.

    An ID that needed changing (upper case, other characters) or shortening gets a hash of the
    original ID appended, so two different IDs never share a Lease.
    """
    head = _dns_label_chars(f"{lease_prefix}-{ring_name}")
    member = _dns_label_chars(instance_id)
    if not member or member != instance_id or len(head) + 1 + len(member) > _MAX_NAME:
        member = f"{member[: _MAX_NAME - len(head) - 11].rstrip('-')}-{_short_hash(instance_id)}"
    return f"{head}-{member.strip('-')}"


def label_value(text: str) -> str:
    """``text`` as a label value (63 characters of ``[A-Za-z0-9._-]``), hashed when altered."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    if cleaned == text and len(cleaned) <= _MAX_LABEL:
        return cleaned
    return f"{cleaned[: _MAX_LABEL - 9].rstrip('-._')}-{_short_hash(text)}".strip("-")


def label_selector(lease_prefix: str, ring_name: str) -> str:
    """The selector that matches exactly one ring's Leases."""
    return f"{LABEL_RING}={label_value(ring_name)},{LABEL_PREFIX}={label_value(lease_prefix)}"


def encode_tokens(tokens: tuple[int, ...]) -> str:
    """Base64 (standard alphabet, padded) of the tokens as packed big-endian uint32."""
    return base64.b64encode(struct.pack(f">{len(tokens)}I", *tokens)).decode("ascii")


def decode_tokens(text: str) -> tuple[int, ...]:
    """The inverse of :func:`encode_tokens`; raises ValueError on a malformed value."""
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) % 4:
        raise ValueError(f"token annotation holds {len(raw)} bytes, not a multiple of 4")
    return struct.unpack(f">{len(raw) // 4}I", raw)


def format_micro_time(seconds: float) -> str:
    """RFC 3339 with exactly six fractional digits, as the API server requires for MicroTime."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(text: object) -> float | None:
    """Unix seconds from a (Micro)Time string, None when absent."""
    if not isinstance(text, str) or not text:
        return None
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def lease_manifest(
    instance: model.InstanceDesc,
    *,
    namespace: str,
    lease_prefix: str,
    ring_name: str,
    lease_duration: datetime.timedelta,
) -> dict[str, Any]:
    """The Lease that stores ``instance`` (the body of the server-side apply)."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": lease_name(lease_prefix, ring_name, instance.id),
            "namespace": namespace,
            "labels": {
                LABEL_RING: label_value(ring_name),
                LABEL_PREFIX: label_value(lease_prefix),
                "app.kubernetes.io/managed-by": "lokistack",
            },
            "annotations": {
                ANNOTATION_FORMAT: FORMAT_VERSION,
                ANNOTATION_ADDR: instance.addr,
                ANNOTATION_ZONE: instance.zone,
                ANNOTATION_STATE: instance.state.name,
                ANNOTATION_TOKENS: encode_tokens(instance.tokens),
                ANNOTATION_REGISTERED: format_micro_time(instance.registered),
            },
        },
        "spec": {
            "holderIdentity": instance.id,
            "leaseDurationSeconds": max(1, round(lease_duration.total_seconds())),
            "acquireTime": format_micro_time(instance.registered),
            "renewTime": format_micro_time(instance.heartbeat),
        },
    }


def instance_from_lease(lease: Mapping[str, Any]) -> model.InstanceDesc:
    """The member a Lease describes; raises ValueError when it is not a valid ring Lease."""
    metadata = lease.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity")
    if not isinstance(holder, str) or not holder:
        raise ValueError("spec.holderIdentity is empty")
    try:
        state = model.InstanceState[annotations.get(ANNOTATION_STATE, "")]
    except KeyError:
        raise ValueError(f"unknown state {annotations.get(ANNOTATION_STATE)!r}") from None
    registered = parse_micro_time(annotations.get(ANNOTATION_REGISTERED))
    if registered is None:
        registered = parse_micro_time(spec.get("acquireTime"))
    return model.InstanceDesc.create(
        holder,
        str(annotations.get(ANNOTATION_ADDR, "")),
        zone=str(annotations.get(ANNOTATION_ZONE, "")),
        state=state,
        tokens=decode_tokens(str(annotations.get(ANNOTATION_TOKENS, ""))),
        heartbeat=parse_micro_time(spec.get("renewTime")) or 0.0,
        registered=registered or 0.0,
    )
