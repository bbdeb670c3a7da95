"""A minimal, read-only Kubernetes API client for the router: GET lists and watch streams.

Why it exists: the router discovers replicas from EndpointSlices and reads its policy
ConfigMap through watches, but must never import kopf or the ``kubernetes`` package (an
import-linter contract: the data plane stays small and starts fast). Two verbs are enough:
``get`` (a list, as JSON) and ``watch`` (newline-delimited watch events), over one aiohttp
session per process.

Where the API is (:func:`load_kube_config`):

* ``KUBECONFIG`` set: the first file of the list that exists, its current context's
  cluster (``server``, ``certificate-authority`` / ``-data``, ``insecure-skip-tls-verify``)
  and user (``token`` or ``tokenFile``); relative paths are relative to the file. Client
  certificates and exec plugins are not supported (the message says so).
* else in a pod: ``KUBERNETES_SERVICE_HOST`` / ``_PORT`` and the service account's
  ``token``, ``ca.crt`` and ``namespace`` under
  ``/var/run/secrets/kubernetes.io/serviceaccount``.

Tokens rotate (projected service-account tokens expire within an hour and kubelet rewrites
the file): a token file is re-read whenever its stat (inode, size, mtime) changes, checked
before every request, and after any 401. No token is logged or put in an error message.
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
MAX_EVENT_BYTES = 16 * 1024 * 1024
"""A watch event longer than this is a broken stream (a ConfigMap is at most 1 MiB)."""


class KubeConfigError(ValueError):
    """The API cannot be located or authenticated against (the message says what to fix)."""


class ApiError(Exception):
    """The API answered an error status (or a watch delivered an ERROR event)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class KubeConfig:
    """How to reach the API (see the module docstring)."""

    server: str
    token: str | None = None
    token_file: str | None = None
    ca_file: str | None = None
    ca_data: str | None = None
    """PEM text (decoded from a kubeconfig's certificate-authority-data)."""
    insecure: bool = False
    namespace: str | None = None
    """The context's (or service account's) namespace, when it names one."""

    def __repr__(self) -> str:  # never show a token
        return f"KubeConfig(server={self.server!r}, namespace={self.namespace!r})"


def load_kube_config(
    environ: Mapping[str, str] | None = None, *, service_account_dir: str = SERVICE_ACCOUNT_DIR
) -> KubeConfig:
    """From ``KUBECONFIG`` when set, else the in-cluster service account."""
    env = os.environ if environ is None else environ
    listed = env.get("KUBECONFIG", "")
    if listed:
        paths = [p for p in listed.split(os.pathsep) if p]
        for path in paths:
            if Path(path).is_file():
                return kubeconfig_file(Path(path))
        raise KubeConfigError(f"KUBECONFIG={listed}: no such file")
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeConfigError(
            "no Kubernetes API: set KUBECONFIG, or run in a pod (KUBERNETES_SERVICE_HOST "
            "and KUBERNETES_SERVICE_PORT unset)"
        )
    folder = Path(service_account_dir)
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    namespace_file = folder / "namespace"
    ca = folder / "ca.crt"
    return KubeConfig(
        server=f"https://{host}:{port}",
        token_file=str(folder / "token"),
        ca_file=str(ca) if ca.is_file() else None,
        namespace=namespace_file.read_text().strip() if namespace_file.is_file() else None,
    )


def kubeconfig_file(path: Path) -> KubeConfig:
    """The current context of a kubeconfig file (the minimal subset the router needs)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise KubeConfigError(f"{path}: cannot read kubeconfig: {exc}") from None
    if not isinstance(doc, dict):
        raise KubeConfigError(f"{path}: a kubeconfig must be a mapping")
    current = doc.get("current-context")
    context = _named(doc, "contexts", "context", current, path)
    cluster = _named(doc, "clusters", "cluster", context.get("cluster"), path)
    user = _named(doc, "users", "user", context.get("user"), path) if context.get("user") else {}
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("http://", "https://")):
        raise KubeConfigError(f"{path}: cluster {context.get('cluster')!r} has no http(s) server")
    base = path.parent
    token_file = user.get("tokenFile")
    if not user.get("token") and not token_file and (user.get("exec") or user.get("client-key")):
        raise KubeConfigError(
            f"{path}: user {context.get('user')!r} authenticates with a client certificate or "
            "an exec plugin; the router supports token and tokenFile only"
        )
    ca_file = cluster.get("certificate-authority")
    ca_data = cluster.get("certificate-authority-data")
    return KubeConfig(
        server=server.rstrip("/"),
        token=user.get("token") or None,
        token_file=str(base / token_file) if token_file else None,
        ca_file=str(base / ca_file) if ca_file else None,
        ca_data=base64.b64decode(ca_data).decode() if ca_data else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        namespace=context.get("namespace") or None,
    )


def _named(doc: dict[str, Any], section: str, key: str, name: Any, path: Path) -> dict[str, Any]:
    for item in doc.get(section) or []:
        if isinstance(item, dict) and item.get("name") == name:
            value = item.get(key) or {}
            if isinstance(value, dict):
                return value
    raise KubeConfigError(f"{path}: no {section[:-1]} named {name!r} (current context)")


class _Token:
    """The bearer token, re-read from its file whenever the file changes."""

    def __init__(self, config: KubeConfig) -> None:
        self._fixed = config.token
        self._file = config.token_file
        self._stamp: tuple[int, int, int] | None = None
        self._value: str | None = config.token

    def header(self) -> str | None:
        if self._file is None:
            return f"Bearer {self._fixed}" if self._fixed else None
        try:
            st = os.stat(self._file)
        except OSError:
            self._stamp, self._value = None, self._fixed
        else:
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            if stamp != self._stamp:
                try:
                    self._value = Path(self._file).read_text(encoding="utf-8").strip() or None
                except OSError:
                    self._value = None
                self._stamp = stamp
        return f"Bearer {self._value}" if self._value else None

    def refused(self) -> None:
        """The API refused the token (401): read the file again next time."""
        self._stamp = None


class KubeApi:
    """GET and watch against one API server; build and close it inside a running loop."""

    def __init__(self, config: KubeConfig, *, connect_timeout_s: float = 5.0) -> None:
        self.config = config
        self._token = _Token(config)
        self._connect_timeout_s = connect_timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            ssl_arg: ssl.SSLContext | bool = True
            if self.config.insecure:
                ssl_arg = False
            elif self.config.ca_file or self.config.ca_data:
                ssl_arg = ssl.create_default_context(
                    cafile=self.config.ca_file, cadata=self.config.ca_data
                )
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ssl_arg), raise_for_status=False
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "tierwise-router"}
        auth = self._token.header()
        if auth is not None:
            headers["Authorization"] = auth
        return headers

    async def get(
        self, path: str, params: Mapping[str, str], *, timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """GET ``path`` (a list); :class:`ApiError` for an error status."""
        timeout = aiohttp.ClientTimeout(total=timeout_s, connect=self._connect_timeout_s)
        async with self._client().get(
            self.config.server + path, params=params, headers=self._headers(), timeout=timeout
        ) as response:
            body = await response.read()
            if response.status != 200:
                raise self._error(response.status, body)
        doc = orjson.loads(body)
        if not isinstance(doc, dict):
            raise ApiError(500, "BadResponse", f"GET {path}: not a JSON object")
        return doc

    @contextlib.asynccontextmanager
    async def watch(
        self, path: str, params: Mapping[str, str], *, read_timeout_s: float
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Open a watch; the block gets its events (``{"type", "object"}``) until the
        server ends the stream. Raises :class:`ApiError` when the server refuses it.

        ``read_timeout_s``: silence after which the connection counts as dead (the server
        sends bookmarks when asked, and ends the watch at ``timeoutSeconds``)."""
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self._connect_timeout_s, sock_read=read_timeout_s
        )
        query = {**params, "watch": "true"}
        async with self._client().get(
            self.config.server + path, params=query, headers=self._headers(), timeout=timeout
        ) as response:
            if response.status != 200:
                raise self._error(response.status, await response.read())
            yield _events(response.content)

    def _error(self, status: int, body: bytes) -> ApiError:
        if status == 401:
            self._token.refused()
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            return ApiError(status, str(doc.get("reason") or ""), str(doc.get("message") or ""))
        return ApiError(status, "", body[:200].decode("utf-8", "replace"))


async def _events(content: aiohttp.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """Newline-delimited JSON events, however the chunks are cut (lines may be long)."""
    held = bytearray()
    async for chunk in content.iter_any():
        held += chunk
        start = 0
        while (end := held.find(b"\n", start)) >= 0:
            line = held[start:end]
            start = end + 1
            if line.strip():
                yield _event(line)
        del held[:start]
        if len(held) > MAX_EVENT_BYTES:
            raise ApiError(500, "BadResponse", "watch event too long")
    if held.strip():
        yield _event(held)


def _event(line: bytes | bytearray) -> dict[str, Any]:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ApiError(500, "BadResponse", f"watch event is not JSON: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
        raise ApiError(500, "BadResponse", "watch event without an object")
    return event
