"""The push API over HTTP: ``POST /loki/api/v1/push`` and the legacy ``/api/prom/push``.

Answers as Loki does: 204 on success, plain-text bodies ending in a newline with
``X-Content-Type-Options: nosniff`` otherwise, 401 ``no org id`` when auth is on and the tenant
header is missing, 413 for bodies over ``distributor.max_recv_msg_size`` (refused from the
Content-Length before reading when the client sends one).
"""

from __future__ import annotations

import logging

from aiohttp import web

from lokistack.distributor import decode
from lokistack.distributor import distributor as distributor_mod
from lokistack.loghttp import requests
from lokistack.model import tenant as model_tenant

log = logging.getLogger(__name__)

PUSH_PATH = "/loki/api/v1/push"
LEGACY_PUSH_PATH = "/api/prom/push"


class PushHandler:
    def __init__(
        self,
        distributor: distributor_mod.Distributor,
        auth_enabled: bool,
        decode_limits: decode.DecodeLimits,
    ) -> None:
        self.distributor = distributor
        self.auth_enabled = auth_enabled
        self.decode_limits = decode_limits

    def routes(self) -> list[web.RouteDef]:
        return [web.post(PUSH_PATH, self.push), web.post(LEGACY_PUSH_PATH, self.push)]

    async def push(self, request: web.Request) -> web.Response:
        try:
            tenant = model_tenant.tenant_from_header(
                request.headers.get("X-Scope-OrgID"), self.auth_enabled
            )
        except model_tenant.TenantError as error:
            status = 401 if str(error) == "no org id" else 400
            return requests.error_response(status, str(error))

        limit = self.decode_limits.max_recv_msg_size
        length = request.content_length
        if length is not None and length > limit:
            return self._too_large(tenant, length, limit)
        body = await self._read_body(request, limit)
        if body is None:
            return self._too_large(tenant, length or limit + 1, limit)

        try:
            push_request = decode.decode_push(
                body,
                content_type=request.headers.get("Content-Type"),
                content_encoding=request.headers.get("Content-Encoding"),
                legacy_json=request.path.lower().find("/loki/api/v1") < 0,
                limits=self.decode_limits,
            )
        except decode.PushDecodeError as error:
            if error.reason:
                distributor_mod.DISCARDED_BYTES.labels(error.reason, tenant).inc(len(body))
            return requests.error_response(error.status, error.message)

        try:
            await self.distributor.push(tenant, push_request)
        except distributor_mod.PushError as failure:
            return requests.error_response(failure.status, failure.message)
        return web.Response(status=204)

    def _too_large(self, tenant: str, size: int, limit: int) -> web.Response:
        distributor_mod.DISCARDED_BYTES.labels("request_body_too_large", tenant).inc(size)
        return requests.error_response(
            413,
            f"request body too large: message size too large than max ({size} vs {limit})",
        )

    @staticmethod
    async def _read_body(request: web.Request, limit: int) -> bytes | None:
        """The whole body, or None as soon as it exceeds ``limit`` bytes."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
