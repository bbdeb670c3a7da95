"""An embedded, emulated Kubernetes cluster on 127.0.0.1 for tests and the demo.

Integration tests run the real kopf operator and real clients over real HTTP,
but there is no cluster (and no Docker) in CI. :class:`EmulatedCluster` starts
:class:`~tierwise.local.emulator.EmulatedApiServer` on a free local port, creates
the ``default`` namespace, optionally runs the Deployment controller from
:mod:`tierwise.local.workloads`, and writes a kubeconfig pointing at itself.

Two ways to run it:

* ``with EmulatedCluster() as cluster:`` — in a background thread with its own
  event loop. Use this with blocking clients (the ``kubernetes`` package,
  kubectl) and when kopf runs in another thread: nothing can deadlock.
* ``async with EmulatedCluster() as cluster:`` — in the current event loop, for
  async clients only (a blocking call from that loop would hang both sides).

The ``kubernetes`` client reads ``KUBECONFIG`` when it loads a config, not per
request: build clients from :meth:`EmulatedCluster.api_client` or from
``cluster.kubeconfig_path`` explicitly instead of relying on the environment.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import pathlib
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import aiohttp.web
import kmock
import yaml

from tierwise.local.emulator import EmulatedApiServer
from tierwise.local.resources import CRD_RESOURCE, NAMESPACE_RESOURCE

if TYPE_CHECKING:
    import kubernetes.client

    from tierwise.local.endpointslice_controller import EndpointSliceController
    from tierwise.local.serviceproxy import ServiceProxy
    from tierwise.local.workloads import DeploymentController, WorkloadBackend

T = TypeVar("T")
CONTEXT_NAME = "tierwise-local"


def kubeconfig(url: str, *, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig document with one context for the emulated cluster."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CONTEXT_NAME, "cluster": {"server": url}}],
        "users": [{"name": CONTEXT_NAME, "user": {"token": "emulated"}}],
        "contexts": [
            {
                "name": CONTEXT_NAME,
                "context": {"cluster": CONTEXT_NAME, "user": CONTEXT_NAME, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT_NAME,
    }


class EmulatedCluster:
    """The emulated API server plus its controllers, on a free port (see module docs)."""

    def __init__(
        self,
        *,
        workloads: WorkloadBackend | None = None,
        namespaces: Iterable[str] = ("default",),
        port: int = 0,
        bookmark_interval: float = 1.0,
        kubeconfig_path: str | pathlib.Path | None = None,
        endpoint_slices: bool | None = None,
        max_termination_grace: float = 5.0,
    ) -> None:
        self.backend = workloads
        self.namespaces = tuple(namespaces)
        self.server = EmulatedApiServer(bookmark_interval=bookmark_interval)
        self.controller: DeploymentController | None = None
        self.endpoint_slices: EndpointSliceController | None = None
        self._run_endpoint_slices = (
            workloads is not None if endpoint_slices is None else endpoint_slices
        )
        self.max_termination_grace = max_termination_grace
        self._proxy: ServiceProxy | None = None
        self._port = port
        self._requested_kubeconfig = kubeconfig_path
        self._tmpdir: str | None = None
        self._runner: aiohttp.web.ServerRunner | None = None
        self._url: str | None = None
        self._kubeconfig: pathlib.Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- facts -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the cluster is not running")
        return self._url

    @property
    def kubeconfig_path(self) -> pathlib.Path:
        if self._kubeconfig is None:
            raise RuntimeError("the cluster is not running")
        return self._kubeconfig

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the cluster is not running")
        return self._loop

    # -- lifecycle: in the current loop --------------------------------------------------------
    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    # -- lifecycle: in a background thread ------------------------------------------------------
    def __enter__(self) -> Self:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name="tierwise-emulated-cluster", daemon=True
        )
        self._thread.start()
        try:
            self.call(self._start())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self.call(self._stop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
                self._loop = self._thread = None

    def call(self, coro: Awaitable[T], timeout: float | None = 30) -> T:
        """Run a coroutine on the cluster's loop from another thread and wait for it."""
        if self._thread is None:
            raise RuntimeError("call() is for a cluster running in its own thread")

        async def wrapper() -> T:
            return await coro

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(
            wrapper(), self.loop
        )
        return future.result(timeout)

    async def _start(self) -> None:
        await self.server.__aenter__()
        self._runner = aiohttp.web.ServerRunner(
            aiohttp.web.Server(self.server), shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"
        for namespace in self.namespaces:
            self.create_now(NAMESPACE_RESOURCE, None, {"metadata": {"name": namespace}})
        self._write_kubeconfig()
        if self.backend is not None:
            from tierwise.local.workloads import ClusterAware, ClusterHandle

            if isinstance(self.backend, ClusterAware):
                self.backend.bind(ClusterHandle(self.server.store, self.kubeconfig_path, self.url))
            from tierwise.local.workloads import DeploymentController

            self.controller = DeploymentController(
                self.server, self.backend, max_termination_grace=self.max_termination_grace
            )
            await self.controller.start()
        if self._run_endpoint_slices:
            from tierwise.local.endpointslice_controller import EndpointSliceController

            self.endpoint_slices = EndpointSliceController(self.server)
            await self.endpoint_slices.start()

    async def _stop(self) -> None:
        if self._proxy is not None:
            await self._proxy.aclose()
            self._proxy = None
        if self.endpoint_slices is not None:
            await self.endpoint_slices.stop()
            self.endpoint_slices = None
        if self.controller is not None:
            await self.controller.stop()
            self.controller = None
        self.server.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.server.active:
            await self.server.__aexit__(None, None, None)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        self._url = None

    def _write_kubeconfig(self) -> None:
        if self._requested_kubeconfig is not None:
            path = pathlib.Path(self._requested_kubeconfig)
        else:
            self._tmpdir = tempfile.mkdtemp(prefix="tierwise-local-")
            path = pathlib.Path(self._tmpdir) / "kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig(self.url)))
        self._kubeconfig = path

    # -- conveniences --------------------------------------------------------------------------
    def create_now(
        self, resource: kmock.resource | str, namespace: str | None, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Create an object directly in the store; only from the cluster's own loop."""
        return self.server.store.create(kmock.resource(resource), namespace, body)

    def service_url(self, namespace: str, name: str, port: int | str | None = None) -> str:
        """``http://127.0.0.1:N``, reaching the Service's ready endpoints (a kube-proxy
        stand-in, :mod:`tierwise.local.serviceproxy`): stable for the cluster's life, each
        connection to one endpoint, round robin. ``port``: the Service port's number or
        name (default: its first port; a name works before the Service exists).
        """
        from tierwise.local.serviceproxy import ServiceProxy

        def listen() -> int:
            if self._proxy is None:
                self._proxy = ServiceProxy(self.server.store)
            return self._proxy.listen(namespace, name, port)

        return f"http://127.0.0.1:{self._on_loop(listen)}"

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the cluster's loop: directly from it, else through :meth:`call`."""
        if self._thread is not None and threading.current_thread() is not self._thread:

            async def run() -> T:
                return fn()

            return self.call(run())
        self.loop  # noqa: B018  # raises when the cluster is not running
        return fn()

    def api_client(self) -> kubernetes.client.ApiClient:
        """A ``kubernetes`` ApiClient for this cluster; close it (``with``) when done."""
        import kubernetes.client

        configuration = kubernetes.client.Configuration(host=self.url)
        return kubernetes.client.ApiClient(configuration)

    def install_crds(self, documents: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """POST CustomResourceDefinitions (as a client would) so their kinds get served."""
        created: list[dict[str, Any]] = []
        for document in documents:
            if document.get("kind") == "CustomResourceDefinition":
                created.append(self._run(self._post_crd(document)))
        return created

    def install_crd_files(self, paths: Iterable[str | pathlib.Path]) -> list[dict[str, Any]]:
        """Install every CRD found in the given YAML files (e.g. ``crds/*.yaml``)."""
        documents: list[Mapping[str, Any]] = []
        for path in paths:
            documents.extend(d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d)
        return self.install_crds(documents)

    async def _post_crd(self, document: Mapping[str, Any]) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            res = CRD_RESOURCE
            url = f"{self.url}/apis/{res.group}/{res.version}/{res.plural}"
            async with session.post(url, json=document) as response:
                body: dict[str, Any] = await response.json()
                if response.status >= 400:
                    raise RuntimeError(f"installing a CRD failed: {body.get('message')}")
                return body

    def _run(self, coro: Awaitable[T]) -> T:
        if self._thread is not None:
            return self.call(coro)
        raise RuntimeError("in the async mode, await the client call directly")
