"""Running the operator: in the current loop (the CLI) or in a thread (tests, the demo).

kopf must not be awaited inside pytest-asyncio's loop (on exit it cancels tasks created
after it started, the test's own teardown included), so tests use
:class:`OperatorThread`: its own loop, a stop flag, and a ready flag to wait on.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp.web
import kopf

from tierwise.controller.autoscaling import Autoscaler, AutoscalerSettings
from tierwise.controller.cluster_view import ClusterView
from tierwise.controller.handlers import build_registry, child_router, configure
from tierwise.controller.kube import KubeClient, KubeConfig
from tierwise.controller.metrics import OperatorMetrics
from tierwise.controller.policy_reconcile import PolicyReconciler
from tierwise.controller.reconcile import Reconciler
from tierwise.controller.references import ReferenceChecks
from tierwise.controller.router_render import ManifestRouterRender
from tierwise.controller.webhooks import WebhookSettings, configure_admission
from tierwise.manifests import RenderSettings, RouterRenderSettings, render_model_deployment

T = TypeVar("T")


@dataclass(frozen=True)
class OperatorOptions:
    kube: KubeConfig
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means the whole cluster."""
    liveness: str | None = None
    """kopf's liveness endpoint, e.g. http://0.0.0.0:8080/healthz."""
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    standalone: bool = True
    peering: str | None = None
    """kopf peering object coordinating replicas (only the highest priority one works);
    None with ``standalone`` False: kopf's auto-detection of the peering named default."""
    priority: int | None = None
    """This replica's peering priority; None: kopf's default (0)."""
    render: RenderSettings = field(default_factory=RenderSettings)
    """How engine workloads are rendered (default engine images above all)."""
    debounce_s: float = 0.2
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics, compare=False)
    autoscaler: AutoscalerSettings | None = field(default_factory=AutoscalerSettings)
    """The autoscaling timer's settings; None runs no autoscaling timer at all."""
    router: RouterRenderSettings | None = field(default_factory=RouterRenderSettings)
    """How routers are rendered (their image above all); None reconciles no RoutingPolicy."""
    webhook: WebhookSettings | None = None
    """The admission webhook server; None serves none (needs ``router``)."""


@asynccontextmanager
async def _metrics_server(options: OperatorOptions) -> AsyncIterator[None]:
    if options.metrics_port is None:
        yield
        return

    async def handle(_: aiohttp.web.Request) -> aiohttp.web.Response:
        body = options.metrics.exposition()
        return aiohttp.web.Response(body=body, content_type="text/plain", charset="utf-8")

    app = aiohttp.web.Application()
    app.router.add_get("/metrics", handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, options.metrics_host, options.metrics_port).start()
    try:
        yield
    finally:
        await runner.cleanup()


async def run_operator(
    options: OperatorOptions,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    on_reconciler: Callable[[Reconciler], None] | None = None,
) -> None:
    """Run until the stop flag is set (or a signal arrives when there is none)."""
    metrics = options.metrics
    async with (
        KubeClient(options.kube, on_write=metrics.count_write) as kube,
        _metrics_server(options),
    ):
        view = ClusterView(kube, namespaces=options.namespaces)
        references = ReferenceChecks(kube)
        reconciler = Reconciler(
            kube=kube,
            metrics=metrics,
            render=functools.partial(render_model_deployment, settings=options.render),
            debounce_s=options.debounce_s,
            view=view,
            references=references,
        )
        policies = (
            PolicyReconciler(
                kube=kube,
                metrics=metrics,
                render=ManifestRouterRender(options.router),
                debounce_s=options.debounce_s,
                view=view,
                references=references,
            )
            if options.router is not None
            else None
        )
        scaling = options.autoscaler
        autoscaler = (
            Autoscaler(kube, metrics, scaling, view=view) if scaling is not None else None
        )
        if on_reconciler is not None:
            on_reconciler(reconciler)
        settings = kopf.OperatorSettings()
        configure(settings)
        if options.webhook is not None:
            configure_admission(settings, options.webhook)
        registry = build_registry(
            reconciler,
            options.kube,
            autoscaler=autoscaler,
            policies=policies,
            webhooks=options.webhook is not None,
        )
        view.on_change = child_router(reconciler, policies)
        view.start()
        try:
            await kopf.operator(
                registry=registry,
                settings=settings,
                standalone=options.standalone and options.peering is None,
                peering_name=options.peering,
                priority=options.priority,
                clusterwide=not options.namespaces,
                namespaces=options.namespaces,
                liveness_endpoint=options.liveness,
                stop_flag=stop_flag,
                ready_flag=ready_flag,
            )
        finally:
            await view.close()
            await reconciler.close()
            if policies is not None:
                await policies.close()
            if autoscaler is not None:
                await autoscaler.close()


class OperatorThread:
    """The real operator in a background thread: ``with OperatorThread(options) as op:``."""

    def __init__(self, options: OperatorOptions, *, ready_timeout: float = 30.0) -> None:
        self.options = options
        self.reconciler: Reconciler | None = None
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready_timeout = ready_timeout
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="tierwise-operator", daemon=True)

    @property
    def metrics(self) -> OperatorMetrics:
        return self.options.metrics

    @property
    def writes(self) -> int:
        return self.reconciler.kube.total_writes if self.reconciler is not None else 0

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the operator's loop (where its client session lives)."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the operator is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _main(self) -> None:
        def keep(reconciler: Reconciler) -> None:
            self.reconciler = reconciler
            self._loop = asyncio.get_running_loop()

        try:
            asyncio.run(
                run_operator(
                    self.options, stop_flag=self._stop, ready_flag=self._ready, on_reconciler=keep
                )
            )
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(self._ready_timeout) or self.error is not None:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the operator did not start: {self.error!r}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
