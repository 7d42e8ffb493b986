"""The ring status page, as data and as HTML, without any web framework.

The HTTP server maps ``GET /ring`` (and ``/distributor/ring``) to these functions: JSON when the
client asks for it, a small table otherwise, like Loki's ring page.  Keeping them pure makes the
page testable without a server and keeps aiohttp out of the ring package.  Every value that comes
from the store (IDs, addresses, zones) is escaped: a member's ID is whatever its pod was named.
"""

from __future__ import annotations

import datetime
import html
from typing import Any

from lokistack.ring import ring as ring_module


def _iso(seconds: float) -> str:
    if seconds <= 0:
        return ""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def ring_status(ring: ring_module.Ring, now: float) -> dict[str, Any]:
    """A JSON-able description of the ring for the status page and ``/ring`` API clients."""
    ownership = ring.ownership()
    timeout = ring.heartbeat_timeout.total_seconds()
    instances = []
    for instance in ring.instances():
        instances.append(
            {
                "id": instance.id,
                "addr": instance.addr,
                "zone": instance.zone,
                "state": instance.state.name,
                "tokens": len(instance.tokens),
                "ownership_percent": round(ownership.get(instance.id, 0.0) * 100, 2),
                "heartbeat": _iso(instance.heartbeat),
                "heartbeat_ago_seconds": round(max(0.0, now - instance.heartbeat), 3),
                "registered": _iso(instance.registered),
                "healthy": instance.heartbeat_healthy(timeout, now),
            }
        )
    return {
        "name": ring.name,
        "replication_factor": ring.replication_factor,
        "heartbeat_timeout_seconds": ring.heartbeat_timeout.total_seconds(),
        "zone_awareness_enabled": ring.zone_awareness_enabled,
        "tokens_total": ring.snapshot().tokens_total(),
        "healthy_instances": ring.healthy_instances_count(now),
        "instances": instances,
    }


_COLUMNS = (
    ("id", "Instance ID"),
    ("zone", "Availability zone"),
    ("state", "State"),
    ("addr", "Address"),
    ("registered", "Registered at"),
    ("heartbeat_ago_seconds", "Last heartbeat (s ago)"),
    ("tokens", "Tokens"),
    ("ownership_percent", "Ownership (%)"),
    ("healthy", "Healthy"),
)


def ring_status_html(status: dict[str, Any]) -> str:
    """A small self-contained HTML page of :func:`ring_status`'s output."""
    escape = html.escape
    name = escape(str(status.get("name", "")))
    rows = []
    for instance in status.get("instances", []):
        cells = "".join(f"<td>{escape(str(instance.get(key, '')))}</td>" for key, _ in _COLUMNS)
        css = "healthy" if instance.get("healthy") else "unhealthy"
        rows.append(f'<tr class="{css}">{cells}</tr>')
    header = "".join(f"<th>{escape(title)}</th>" for _, title in _COLUMNS)
    summary = (
        f"{escape(str(len(status.get('instances', []))))} members, "
        f"{escape(str(status.get('healthy_instances', 0)))} with a fresh heartbeat, "
        f"{escape(str(status.get('tokens_total', 0)))} tokens, "
        f"replication factor {escape(str(status.get('replication_factor', '')))}"
    )
    body = "\n".join(rows) if rows else f'<tr><td colspan="{len(_COLUMNS)}">no members</td></tr>'
    return (
        "<!DOCTYPE html>\n"
        f'<html><head><meta charset="utf-8"><title>{name} ring status</title>'
        "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
        "tr.unhealthy{background:#fdd}</style></head>\n"
        f"<body><h1>{name} ring status</h1><p>{summary}</p>\n"
        f"<table><thead><tr>{header}</tr></thead><tbody>\n{body}\n</tbody></table></body></html>\n"
    )
