"""A kube-proxy stand-in: one stable local address per Service port, forwarding to endpoints.

Why it exists: clients on a cluster reach "the router through its Service", and keep
reaching it while pods come and go; tests and the demo on the embedded cluster want the
same, without knowing which pod (and local port) serves at the moment.
:meth:`EmulatedCluster.service_url <tierwise.local.cluster.EmulatedCluster.service_url>`
asks :class:`ServiceProxy` for ``http://127.0.0.1:<port>``: the port is bound once per
(namespace, Service, port name) and kept for the cluster's life. Each new TCP connection is
forwarded, bytes as they come, to one endpoint from the Service's EndpointSlices at that
moment, round robin: the endpoints with ``conditions.ready`` not false, else (as kube-proxy
does since Kubernetes 1.26) the serving ones among the terminating. The slice port with
the Service port's name gives the endpoint's port. With no endpoint the connection is
closed at once (kube-proxy rejects it).

It runs on the cluster's loop and reads the store there, at connect time; the listening
socket is bound synchronously, so the URL works as soon as it is returned (connections
wait in the backlog until the loop accepts them).

Not modelled: the Service's ClusterIP and port (the address is 127.0.0.1 with a port of
its own), session affinity, traffic policies, topology, UDP, retries on another endpoint
when one refuses (kube-proxy does not retry either).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import kmock

from tierwise.local.endpointslices import ENDPOINTSLICES, SERVICE_NAME_LABEL, SERVICES
from tierwise.local.store import ObjectStore

PortKey = tuple[str, str, str]  # namespace, Service, port name
Target = tuple[str, int]
_CHUNK = 64 * 1024


def endpoint_targets(slices: Iterable[Mapping[str, Any]], port_name: str) -> list[Target]:
    """Where a Service port's traffic may go: ready endpoints, else serving terminating ones."""
    ready: list[Target] = []
    serving: list[Target] = []
    for obj in slices:
        ports = [p for p in obj.get("ports") or [] if (p.get("name") or "") == port_name]
        if not ports or ports[0].get("port") is None:
            continue
        number = int(ports[0]["port"])
        for ep in obj.get("endpoints") or []:
            conditions = ep.get("conditions") or {}
            for address in (ep.get("addresses") or [])[:1]:
                if conditions.get("ready") is not False:
                    ready.append((str(address), number))
                elif conditions.get("serving") and conditions.get("terminating"):
                    serving.append((str(address), number))
    return sorted(ready) or sorted(serving)


def service_port_name(service: Mapping[str, Any], port: int | str | None) -> str:
    """The name of the Service port ``port`` (None: the first; a number or a name)."""
    meta = service.get("metadata") or {}
    ports = (service.get("spec") or {}).get("ports") or []
    for each in ports:
        if port is None or each.get("port") == port or (each.get("name") or "") == port:
            return str(each.get("name") or "")
    listed = ", ".join(f"{p.get('name') or '(unnamed)'}={p.get('port')}" for p in ports)
    raise LookupError(
        f"Service {meta.get('namespace')}/{meta.get('name')} has no port "
        f"{port!r} (its ports: {listed or 'none'})"
    )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # half-close: the other direction may still be talking
    except (ConnectionError, OSError):
        writer.close()


class ServiceProxy:
    """Listens on one local port per Service port and forwards connections (module docs)."""

    def __init__(self, store: ObjectStore, *, host: str = "127.0.0.1") -> None:
        self.store = store
        self.host = host
        self._ports: dict[PortKey, int] = {}
        self._servers: list[asyncio.Server] = []
        self._sockets: list[socket.socket] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._next: dict[PortKey, int] = {}
        self.connections = 0

    def listen(self, namespace: str, service: str, port: int | str | None = None) -> int:
        """The local port for a Service port (bound on first use); on the cluster's loop.

        A port given by name works before the Service exists; ``None`` (the first port) and
        a number need the Service, to find the port's name.
        """
        if isinstance(port, str):
            name = port
        else:
            try:
                obj = self.store.get(SERVICES, namespace, service, shared=True)
            except kmock.KubernetesError as e:
                raise LookupError(
                    f"Service {namespace}/{service} does not exist (yet): wait "
                    "for it, or name the port"
                ) from e
            name = service_port_name(obj, port)
        key = (namespace, service, name)
        if key not in self._ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, 0))
            sock.listen(128)
            sock.setblocking(False)
            self._sockets.append(sock)
            self._ports[key] = sock.getsockname()[1]
            self._spawn(self._serve(key, sock))
        return self._ports[key]

    def pick(self, key: PortKey) -> Target | None:
        """The next endpoint for a connection to ``key`` (round robin), or None."""
        namespace, service, port_name = key
        slices = self.store.iter_labelled(ENDPOINTSLICES, namespace, (SERVICE_NAME_LABEL, service))
        targets = endpoint_targets(slices, port_name)
        if not targets:
            return None
        index = self._next.get(key, 0)
        self._next[key] = index + 1
        return targets[index % len(targets)]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, key: PortKey, sock: socket.socket) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            await self._forward(key, reader, writer)

        self._servers.append(await asyncio.start_server(handle, sock=sock))

    async def _forward(
        self, key: PortKey, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        target = self.pick(key)
        upstream: asyncio.StreamWriter | None = None
        try:
            if target is None:
                return
            try:
                up_reader, upstream = await asyncio.open_connection(*target)
            except OSError:
                return
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        finally:
            for each in (upstream, writer):
                if each is not None:
                    each.close()
                    with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                        await each.wait_closed()

    async def aclose(self) -> None:
        """Stop listening and cut every forwarded connection."""
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sock in self._sockets:
            sock.close()
        self._servers.clear()
        self._sockets.clear()
        self._ports.clear()
