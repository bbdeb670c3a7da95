"""The one module that talks to the Kubernetes API, asynchronously, over one session.

The reconcile runs on kopf's asyncio loop, where the synchronous ``kubernetes`` client
would block every other handler; this is a small aiohttp client with only the verbs the
operator needs: server-side apply, get, list by label, delete, status merge patch and
events. ``kubernetes.config`` is used only to resolve where the API server is and how to
authenticate (``KUBECONFIG`` read at call time, then ``~/.kube/config``, then in-cluster).

Every write is counted by verb and kind (:attr:`KubeClient.writes`, and an optional
callback for the metrics), which is how tests prove that a second reconcile writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import orjson

from tierwise.controller.credentials import KubeConfig, load_config
from tierwise.controller.resources import EVENT, Resource, resource_of

log = logging.getLogger(__name__)
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_CONTENT_TYPE = "application/merge-patch+json"
METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
"""Ask for an object's metadata only: no Secret data crosses the wire or sits in memory."""
TOKEN_REFRESH_S = 60.0
_EVENT_MESSAGE_LIMIT = 1024
__all__ = ["ApiError", "KubeClient", "KubeConfig", "load_config"]


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


def _ssl_context(cfg: KubeConfig) -> ssl.SSLContext | bool:
    if not cfg.server.startswith("https"):
        return True
    if cfg.insecure:
        return False
    context = ssl.create_default_context(cafile=cfg.ca_path)
    if cfg.cert_path and cfg.key_path:
        context.load_cert_chain(cfg.cert_path, cfg.key_path)
    return context


def _read_token(path: str) -> str | None:
    """The token in ``path``; None on a read error (the last token is kept, and the server
    says 401 if it expired). A few bytes once a minute: not worth a thread."""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


WriteHook = Callable[[str, str], None]
Items = list[dict[str, Any]]


class KubeClient:
    """Async Kubernetes client; use as ``async with KubeClient(cfg) as kube:``."""

    def __init__(self, config: KubeConfig, *, on_write: WriteHook | None = None) -> None:
        self.config = config
        self.writes: Counter[tuple[str, str]] = Counter()
        self.reads: Counter[tuple[str, str]] = Counter()
        """Reads by verb (get, get_metadata, list, watch) and kind, as tests count them."""
        self._on_write = on_write
        self._session: aiohttp.ClientSession | None = None
        self._token = config.token
        self._token_read_at = 0.0

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(ssl=_ssl_context(self.config), limit=64)
        timeout = aiohttp.ClientTimeout(total=60)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def total_writes(self) -> int:
        return sum(self.writes.values())

    # -- reads -----------------------------------------------------------------------------
    async def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        self.reads[("get", resource.kind)] += 1
        try:
            return await self._request("GET", resource.object_path(namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self, resource: Resource, namespace: str | None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects matching the selector; empty when the kind is not served (no CRD)."""
        try:
            items, _ = await self.list_versioned(resource, namespace, label_selector=label_selector)
        except ApiError as error:
            if error.status == 404:
                return []
            raise
        return items

    async def list_versioned(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        resource_version: str | None = None,
    ) -> tuple[Items, str]:
        """Objects matching the selector and the list's resourceVersion (where a watch
        starts); ``resource_version="0"`` lets the server answer from its watch cache.
        Raises :class:`ApiError` (404 when the kind is not served)."""
        params = {"labelSelector": label_selector} if label_selector else {}
        if resource_version is not None:
            params["resourceVersion"] = resource_version
        self.reads[("list", resource.kind)] += 1
        body = await self._request(
            "GET", resource.collection_path(namespace), params=params or None
        )
        items: list[dict[str, Any]] = body.get("items") or []
        for item in items:  # list items come without apiVersion/kind
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", resource.kind)
        version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        return items, version

    async def exists(self, resource: Resource, namespace: str, name: str) -> bool:
        """Whether the object exists, asking for its metadata only (PartialObjectMetadata):
        for a Secret, its data is never sent to the operator."""
        self.reads[("get_metadata", resource.kind)] += 1
        try:
            await self._request(
                "GET", resource.object_path(namespace, name), accept=METADATA_ACCEPT
            )
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    async def watch(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        label_selector: str | None,
        resource_version: str,
        timeout_s: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """The watch events (``{"type", "object"}``) after ``resource_version`` until the
        server ends the stream (``timeout_s``); bookmarks included. Raises
        :class:`ApiError` for a refused watch; a ``410 Gone`` arrives as an ERROR event."""
        if self._session is None:
            raise RuntimeError("KubeClient is not open; use it as an async context manager")
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        if label_selector:
            params["labelSelector"] = label_selector
        self.reads[("watch", resource.kind)] += 1
        await self._fresh_credentials()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=timeout_s + 30)
        url = self.config.server + resource.collection_path(namespace)
        async with self._session.get(
            url, params=params, headers=self._headers(None), timeout=timeout
        ) as response:
            if response.status >= 400:
                raw = await response.read()
                if response.status == 401:
                    await self._fresh_credentials(rejected=True)
                message = raw[:200].decode(errors="replace")
                raise ApiError(response.status, response.reason or "", message)
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        event = orjson.loads(line)
                        if isinstance(event, dict):
                            yield event

    async def resource_served(self, group_version_path: str, plural: str) -> bool:
        """Whether discovery lists ``plural`` under ``/apis/GROUP/VERSION`` (a CRD installed)."""
        try:
            body = await self._request("GET", group_version_path)
        except ApiError as error:
            if error.status in (403, 404):
                return False
            raise
        return any(r.get("name") == plural for r in body.get("resources") or [])

    # -- writes ----------------------------------------------------------------------------
    async def apply(self, obj: Mapping[str, Any], *, manager: str) -> dict[str, Any]:
        """Server-side apply (force: Tierwise owns what it applies)."""
        resource = resource_of(obj)
        meta = obj["metadata"]
        path = resource.object_path(meta["namespace"], meta["name"])
        params = {"fieldManager": manager, "force": "true"}
        self._count("apply", resource.kind)
        return await self._request(
            "PATCH", path, params=params, body=obj, content_type=APPLY_CONTENT_TYPE
        )

    async def patch_status(
        self, resource: Resource, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the status subresource (only the fields given)."""
        path = resource.object_path(namespace, name) + "/status"
        self._count("patch_status", resource.kind)
        return await self._request(
            "PATCH", path, body={"status": status}, content_type=MERGE_CONTENT_TYPE
        )

    async def patch_annotations(
        self, resource: Resource, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> bool:
        """Merge-patch annotations onto an object; False if it is already gone."""
        self._count("patch", resource.kind)
        body = {"metadata": {"annotations": dict(annotations)}}
        try:
            await self._request(
                "PATCH",
                resource.object_path(namespace, name),
                body=body,
                content_type=MERGE_CONTENT_TYPE,
            )
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    async def delete(self, resource: Resource, namespace: str, name: str) -> bool:
        """Delete in the background (children go by owner references); False if absent."""
        self._count("delete", resource.kind)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        try:
            await self._request("DELETE", resource.object_path(namespace, name), body=body)
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    async def post_event(
        self, involved: Mapping[str, Any], *, type: str, reason: str, message: str
    ) -> dict[str, Any]:
        """A core/v1 Event about ``involved`` (an object with apiVersion, kind, metadata)."""
        meta = involved["metadata"]
        namespace = meta.get("namespace") or self.config.namespace
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta["name"],
                "namespace": namespace,
                "uid": meta.get("uid"),
            },
            "type": type,
            "reason": reason,
            "message": message[:_EVENT_MESSAGE_LIMIT],
            "source": {"component": "tierwise"},
            "reportingComponent": "tierwise",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self._count("create", EVENT.kind)
        return await self._request("POST", EVENT.collection_path(namespace), body=event)

    # -- plumbing --------------------------------------------------------------------------
    def _count(self, verb: str, kind: str) -> None:
        self.writes[(verb, kind)] += 1
        if self._on_write is not None:
            self._on_write(verb, kind)

    def _headers(
        self, content_type: str | None, accept: str = "application/json"
    ) -> dict[str, str]:
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    async def _fresh_credentials(self, *, rejected: bool = False) -> None:
        """Re-read a rotated token file (every minute), or re-resolve expired credentials
        (an exec plugin runs again); both at once after the server said 401 (``rejected``)."""
        path = self.config.token_file
        if path and (rejected or time.monotonic() - self._token_read_at > TOKEN_REFRESH_S):
            self._token = _read_token(path) or self._token
            self._token_read_at = time.monotonic()
            return
        if self.config.reload is None or not (rejected or self.config.expired()):
            return
        try:
            fresh = await asyncio.to_thread(self.config.refreshed)
        except Exception as error:  # a broken kubeconfig: keep the last credentials
            log.warning("re-resolving the API credentials failed: %r", error)
            return
        self.config, self._token = fresh, fresh.token

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
    ) -> dict[str, Any]:
        if self._session is None:
            raise RuntimeError("KubeClient is not open; use it as an async context manager")
        data = orjson.dumps(body) if body is not None else None
        if data is not None and content_type is None:
            content_type = "application/json"
        await self._fresh_credentials()
        for attempt in (1, 2):
            url = self.config.server + path
            async with self._session.request(
                method,
                url,
                params=params,
                data=data,
                headers=self._headers(content_type, accept),
            ) as response:
                raw = await response.read()
                status, reason = response.status, response.reason or ""
            if status == 401 and attempt == 1:  # rotated or expired: resolve again, retry once
                await self._fresh_credentials(rejected=True)
                continue
            break
        parsed: Any = orjson.loads(raw) if raw else {}
        if status >= 400:
            message = parsed.get("message", "") if isinstance(parsed, dict) else str(raw[:200])
            raise ApiError(status, reason, message)
        return parsed if isinstance(parsed, dict) else {}
