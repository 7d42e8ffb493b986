"""The Kubernetes API as the Lease ring store uses it: configuration loading, and aiohttp requests
and watches on the event loop.

The official ``kubernetes`` client is synchronous; a watch held in a thread cannot be interrupted
until its HTTP read returns, which makes a clean ``stop()`` slow and leaks threads in tests.  Here
the official client only *loads* configuration (kubeconfig file or in-cluster service account,
with its token refresh), in a thread (:func:`connect`, :meth:`Connection.auth_headers`); every
API call is an aiohttp request on the event loop (:func:`request`, :func:`watch`), and cancelling
the task that awaits a watch closes its connection at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import pathlib
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp

API_PATH: Final = "/apis/coordination.k8s.io/v1"

_SERVICE_ACCOUNT_NAMESPACE: Final = pathlib.Path(
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

KubeSource = pathlib.Path | str | Callable[[], Any] | None
"""Where the API server and credentials come from: a kubeconfig path, a zero-argument callable
returning a ``kubernetes.client.Configuration`` or ``ApiClient``, or None for in-cluster."""


class KubernetesApiError(Exception):
    """An API request answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kubernetes API error {status}: {message}")
        self.status = status


class GoneError(Exception):
    """The watch's resourceVersion is too old: the cache must be listed again."""


@dataclasses.dataclass(frozen=True)
class Connection:
    host: str
    ssl_context: ssl.SSLContext | None
    server_hostname: str | None
    configuration: Any  # kubernetes.client.Configuration, for its token refresh
    namespace: str  # the context's or the service account's namespace, "" if unknown

    def auth_headers(self) -> dict[str, str]:
        """Blocking: the token refresh hook may read the service account token file."""
        headers = {"Accept": "application/json"}
        for setting in self.configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        return headers


def connect(source: KubeSource) -> Connection:
    """Blocking: load a client configuration and turn it into what aiohttp needs."""
    from kubernetes import client as kube_client  # noqa: PLC0415 - slow import, in a thread
    from kubernetes import config as kube_config  # noqa: PLC0415

    namespace = ""
    configuration: Any
    if source is None:
        configuration = kube_client.Configuration()
        kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        with contextlib.suppress(OSError):
            namespace = _SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    elif isinstance(source, str | pathlib.Path):
        configuration = kube_client.Configuration()
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(source), client_configuration=configuration, persist_config=False
        )
        _, active = kube_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=str(source)
        )
        namespace = str((active or {}).get("context", {}).get("namespace") or "")
    else:
        made = source()
        configuration = getattr(made, "configuration", made)
    context: ssl.SSLContext | None = None
    if str(configuration.host).startswith("https://"):
        if configuration.verify_ssl:
            context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return Connection(
        host=str(configuration.host).rstrip("/"),
        ssl_context=context,
        server_hostname=getattr(configuration, "tls_server_name", None) or None,
        configuration=configuration,
        namespace=namespace,
    )


def open_session(connection: Connection) -> aiohttp.ClientSession:
    """An aiohttp session for ``connection``'s API server (the caller closes it)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=connection.ssl_context or False),
        read_bufsize=2**20,
    )


def newer_or_equal(candidate: str, current: str) -> bool:
    """Whether resourceVersion ``candidate`` is not older than ``current``."""
    try:
        return int(candidate) >= int(current)
    except ValueError:
        return True  # not etcd-style integers: trust the order of arrival


async def request(
    session: aiohttp.ClientSession,
    connection: Connection,
    method: str,
    path: str,
    *,
    request_timeout: float,
    params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
    content_type: str = "application/json",
    ignore: tuple[int, ...] = (),
) -> dict[str, Any] | None:
    """One API call on ``path``: the decoded answer, or None for a status in ``ignore``.

    Raises :class:`KubernetesApiError` for any other status from 300 on.
    """
    headers = await asyncio.to_thread(connection.auth_headers)
    data = None
    if body is not None:
        headers["Content-Type"] = content_type
        data = json.dumps(body).encode()
    async with session.request(
        method,
        connection.host + path,
        params=params,
        data=data,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=request_timeout),
        server_hostname=connection.server_hostname,
    ) as response:
        payload = await response.read()
        if response.status in ignore:
            return None
        if response.status >= 300:
            raise KubernetesApiError(response.status, _status_message(payload))
        decoded: dict[str, Any] = json.loads(payload)
        return decoded


async def watch(
    session: aiohttp.ClientSession,
    connection: Connection,
    path: str,
    *,
    label_selector: str,
    resource_version: str,
    timeout_seconds: int,
    connect_timeout: float,
    on_event: Callable[[Mapping[str, Any]], None],
) -> None:
    """Watch the collection at ``path`` (with bookmarks) from ``resource_version``, passing each
    event to ``on_event``, until the server ends the watch (after about ``timeout_seconds``).

    Raises :class:`GoneError` on 410 Gone and :class:`KubernetesApiError` on other error statuses;
    whatever ``on_event`` raises ends the watch too.
    """
    headers = await asyncio.to_thread(connection.auth_headers)
    params = {
        "labelSelector": label_selector,
        "watch": "1",
        "allowWatchBookmarks": "true",
        "resourceVersion": resource_version,
        "timeoutSeconds": str(timeout_seconds),
    }
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=connect_timeout, sock_read=timeout_seconds + 30
    )
    async with session.get(
        connection.host + path,
        params=params,
        headers=headers,
        timeout=timeout,
        server_hostname=connection.server_hostname,
    ) as response:
        if response.status == 410:
            raise GoneError()
        if response.status >= 300:
            raise KubernetesApiError(response.status, _status_message(await response.read()))
        async for line in response.content:
            if line.strip():
                on_event(json.loads(line))


def _status_message(payload: bytes) -> str:
    """The ``message`` of a Kubernetes Status body, or the raw text."""
    try:
        status = json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace")[:500]
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])
    return payload.decode(errors="replace")[:500]
