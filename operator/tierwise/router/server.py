"""The router process: OpenAI-compatible endpoints, table installs, background tasks.

Why it exists: one object, built by :func:`create_app`, owns everything a router
process has — the HTTP server, the upstream pool, metrics, live replica loads, the
current routing table — and a lifespan (:meth:`RouterApp.running`) that starts and stops
every background task (load scraping, table watching) with it. No globals.

Endpoints: ``POST /v1/chat/completions`` and ``/v1/completions`` (routed and proxied),
``GET /v1/models`` (the policy's model aliases), ``/healthz`` (the process is up),
``/readyz`` (a table is installed and the router is not shutting down, even with every
replica down or scaled to zero: it holds requests for a tier at zero, which is what wakes
it; the body names the table's version, the policy document's and the healthy replicas),
``/metrics`` (Prometheus text).

Table changes: :meth:`RouterApp.install` builds a new :class:`~tierwise.router.pipeline
.Snapshot` (targets with API keys read from their files, replica loads kept by URL, the
balancer kept while ``spec.balancing`` is unchanged so prefix indexes survive) and swaps
it in with one assignment; requests in flight finish on the snapshot they started with.
A table that cannot be installed (unreadable key file) raises and the old one stays. A
classifier that cannot load does not stop the table: its rules fail closed (they never
match) and ``/readyz`` and ``classifier_info`` say so (:mod:`tierwise.router
.tier_quality_service`); no lexical stand-in replaces the configured model unless
``--classifier hashing`` asks for it. The table watcher (:meth:`RouterApp.running` with a
:class:`TableSource`) polls the source's stamp and the Secret files every
``watch_interval_s``, reloads at once on SIGHUP, and — for sources fed by API watches —
``coalesce_s`` after the source signals a change (a burst of endpoint events becomes one
table). A rebuilt table whose version did not change is not installed again, unless a
Secret file changed: external API keys and client keys are re-read when their mounted
files change (kubelet rewrites them when the Secret rotates).

Client authentication: when the table's ``spec.router.auth`` names a Secret, its mounted
file (``{secrets_dir}/{name}/{key}``) is read with every install and the model endpoints
(``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``) answer 401
``invalid_api_key`` without an accepted ``Authorization: Bearer`` key; ``/healthz``,
``/readyz`` and ``/metrics`` stay open. Without ``auth`` the routes call the proxy
directly (no per-request cost). A change of the keys file reloads the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tierwise.api.routing_policy import ClassifierSpec
from tierwise.router.auth import AccessKeys, keys_file
from tierwise.router.balance import Balancer, make_balancer
from tierwise.router.classifier import (
    Classifier,
    ClassifierUnavailableError,
    EmbeddingClassifier,
    HashingEmbedder,
    SentenceTransformerEmbedder,
)
from tierwise.router.classifier_metrics import ClassifierMetrics
from tierwise.router.discovery.files import file_stamp
from tierwise.router.http.client import UpstreamPool
from tierwise.router.http.errors import JSON, ErrorKind, send_error, send_status_error
from tierwise.router.http.proxy_env import ProxyConfig
from tierwise.router.http.server import (
    Handler,
    HttpServer,
    Request,
    ResponseWriter,
    ServerLimits,
)
from tierwise.router.loadwatch import LoadBook, Scraper, scraping
from tierwise.router.metrics import RouterMetrics
from tierwise.router.pipeline import Proxy, Snapshot
from tierwise.router.table import RoutingTable, TableHolder
from tierwise.router.tier_quality_service import (
    ClassifierState,
    ClassifierStatus,
    QualityScorer,
    artifact_path,
)
from tierwise.router.upstream import KeyStore, make_target
from tierwise.router.worker_peers import Peers

log = logging.getLogger(__name__)

TableLoader = Callable[[], RoutingTable]
"""Reads the table's source again (a table file, or policy + endpoints files)."""


class ClassifierBackend(StrEnum):
    AUTO = "auto"  # the packaged MiniLM model; when it cannot load, category rules fail closed
    MINILM = "minilm"
    HASHING = "hashing"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    limits: ServerLimits = field(default_factory=ServerLimits)
    pending_wait_s: float = 30.0
    upstream_timeout_s: float = 600.0
    connect_timeout_s: float = 5.0
    scrape_interval_s: float = 1.0
    scrape_timeout_s: float = 0.5
    shutdown_grace_s: float = 30.0
    watch_interval_s: float = 0.5
    coalesce_s: float = 0.02
    """After a pushed change (an API watch event), wait this long for more, then build one
    table for all of them."""
    classifier: ClassifierBackend = ClassifierBackend.AUTO
    reuse_port: bool = False
    secrets_dir: str | None = None
    """Folder where Secrets are mounted as NAME/KEY files (client API keys)."""
    ca_file: str | None = None
    """Extra CA certificates for external APIs (on top of the system bundle)."""
    proxies: ProxyConfig = field(default_factory=ProxyConfig)
    """Forward proxies for external APIs (the CLI reads HTTPS_PROXY & co.)."""
    namespace: str = "default"
    """The router's namespace (``namespace`` label of the demand metrics)."""
    classifier_dir: str | None = None
    """Where tier classifier artefacts are mounted (ConfigMaps as NAME/KEY files);
    default /etc/tierwise/classifiers."""


@dataclass(frozen=True, slots=True)
class TableSource:
    """Where the table comes from: ``load`` reads it, ``stamp`` changes when it may have."""

    load: TableLoader
    stamp: Callable[[], object]
    changed: asyncio.Event | None = None
    """Set by a source fed by watches when something changed: the table is rebuilt
    ``coalesce_s`` later instead of at the next poll."""
    blocking: bool = True
    """``load`` reads files: run it in a worker thread (False: in-memory state, which
    only the event loop may read)."""


class RouterApp:
    """A router process's state (see the module docstring). Build inside a running loop."""

    def __init__(self, table: RoutingTable, settings: Settings) -> None:
        self.settings = settings
        self.metrics = RouterMetrics(settings.namespace)
        self.pool = UpstreamPool(
            connect_timeout_s=settings.connect_timeout_s, ca_file=settings.ca_file
        )
        self.book = LoadBook()
        self.proxy = Proxy(
            self.pool, self.metrics, self.book, pending_wait_s=settings.pending_wait_s
        )
        self.holder = TableHolder(table)
        self.server = HttpServer(self.handle, send_status_error, settings.limits)
        self.port = 0
        self.shutting_down = False
        self._models = b""
        self._classifier: tuple[ClassifierSpec | None, Classifier | None, ClassifierStatus | None]
        self._classifier = (None, None, None)
        self.classifier_metrics = ClassifierMetrics(self.metrics.registry)
        self._scoring = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tier-quality")
        self._quality: tuple[object, QualityScorer] | None = None
        self.access: AccessKeys | None = None
        self._secret_files: tuple[str, ...] = ()
        self._secrets_seen: object = None
        self.peers: Peers | None = None
        """Sibling workers (``--workers``): /metrics and /readyz then answer for all."""
        self._routes: dict[str, tuple[str, Handler]] = {
            "/v1/chat/completions": ("POST", self.proxy.handle),
            "/v1/completions": ("POST", self.proxy.handle),
            "/v1/models": ("GET", self._list_models),
            "/healthz": ("GET", self._healthz),
            "/readyz": ("GET", self._readyz),
            "/metrics": ("GET", self._metrics),
        }

    async def install(self, table: RoutingTable) -> None:
        """Swap in ``table``; raise (keeping the old one) when it cannot be used."""
        secret_files = table.key_files()
        auth = table.spec.router.auth
        if auth is not None:
            secret_files.append(keys_file(auth, table.secrets_dir or self.settings.secrets_dir))
        watched = [*secret_files, *self._artifact_files(table)]
        seen = _stamps(watched)  # before reading: a change after it reloads again
        keys = KeyStore()
        timeout = self.settings.upstream_timeout_s
        targets = {
            ep.url: make_target(ep, keys, default_timeout_s=timeout, proxies=self.settings.proxies)
            for tier in table.tiers
            for ep in tier.endpoints
        }
        classifier, category_status = await self._classifier_for(table.spec.classifier)
        quality = await self._quality_for(table)
        access = None
        if auth is not None:
            access = await asyncio.to_thread(AccessKeys.from_file, secret_files[-1])
        current = self.proxy.snapshot
        balancer: Balancer
        if current is not None and current.table.spec.balancing == table.spec.balancing:
            balancer = current.balancer
        else:
            balancer = make_balancer(table.spec.balancing)
        retain = getattr(balancer, "retain", None)
        if retain is not None:
            retain(set(targets))
        loads = self.book.sync(table)
        self.holder.swap(table)
        self._models = _models_body(table)
        self.metrics.declare_tiers(t.name for t in table.tiers)
        self.metrics.table_version = table.version
        self.metrics.policy_version = table.policy_version
        self.metrics.count_endpoints(table)
        self.proxy.install(Snapshot(table, loads, targets, balancer, classifier, quality))
        statuses = [category_status] if category_status is not None else []
        self.classifier_metrics.set_statuses(
            statuses + ([quality.status] if quality is not None else [])
        )
        self._guard(access)
        self._secret_files = tuple(watched)
        self._secrets_seen = seen
        log.info(
            "routing table %s installed: %s",
            table.version,
            ", ".join(f"{t.name}={len(t.endpoints)}" for t in table.tiers),
        )

    async def _classifier_for(
        self, spec: ClassifierSpec | None
    ) -> tuple[Classifier | None, ClassifierStatus | None]:
        if spec is None or not spec.categories:
            return None, None
        if self._classifier[0] == spec:
            return self._classifier[1], self._classifier[2]
        classifier, status = await asyncio.to_thread(self._build_classifier, spec)
        self._classifier = (spec, classifier, status)
        return classifier, status

    def _build_classifier(self, spec: ClassifierSpec) -> tuple[Classifier | None, ClassifierStatus]:
        """The category classifier; the model failing to load fails closed, never hashing."""
        if self.settings.classifier is ClassifierBackend.HASHING:
            hashing = EmbeddingClassifier(spec, HashingEmbedder())
            return hashing, ClassifierStatus("categories", "hashing", ClassifierState.READY)
        try:
            model = EmbeddingClassifier(spec, SentenceTransformerEmbedder.load(spec.model))
        except ClassifierUnavailableError as exc:
            if self.settings.classifier is ClassifierBackend.MINILM:
                raise
            log.error("category classifier failed, category rules will not match: %s", exc)
            return None, ClassifierStatus(
                "categories", spec.model, ClassifierState.FAILED, str(exc)
            )
        return model, ClassifierStatus("categories", spec.model, ClassifierState.READY)

    def _artifact_files(self, table: RoutingTable) -> list[str]:
        """The tier classifier's artefact file: a new policy pins a new sha256 before
        kubelet has refreshed the mounted ConfigMap, so its change must rebuild it."""
        classifier = table.spec.classifier
        if classifier is None or classifier.tier_quality is None:
            return []
        return [artifact_path(classifier.tier_quality, self.settings.classifier_dir)]

    async def _quality_for(self, table: RoutingTable) -> QualityScorer | None:
        """The learned tier classifier, rebuilt when its spec, the rules or its file change."""
        spec = table.spec
        if spec.classifier is None or spec.classifier.tier_quality is None:
            return None
        files = self._artifact_files(table)
        key = (
            spec.classifier.tier_quality,
            tuple(spec.rules),
            self.settings.classifier_dir,
            _stamps(files),
        )
        if self._quality is not None and self._quality[0] == key:
            return self._quality[1]
        scorer = await asyncio.to_thread(
            QualityScorer.build,
            spec,
            classifier_dir=self.settings.classifier_dir,
            executor=self._scoring,
            metrics=self.classifier_metrics,
        )
        self._quality = (key, scorer)
        return scorer

    async def reload(self, source: TableSource, *, force: bool = False) -> bool:
        """Read ``source`` and install it (unless its version is the one in use and not
        ``force``); on failure log, count, keep the old table."""
        try:
            table = await asyncio.to_thread(source.load) if source.blocking else source.load()
            if not force and table.version == self.holder.current.version:
                return True
            await self.install(table)
        except Exception as exc:  # any bad input must leave the router serving
            self.metrics.reloads["error"] += 1
            log.error(
                "routing table rejected, keeping version %s: %s", self.holder.current.version, exc
            )
            return False
        self.metrics.reloads["ok"] += 1
        return True

    def _guard(self, access: AccessKeys | None) -> None:
        """Route the model endpoints through the key check only when auth is on."""
        self.access = access
        for path, method, handler in (
            ("/v1/chat/completions", "POST", self.proxy.handle),
            ("/v1/completions", "POST", self.proxy.handle),
            ("/v1/models", "GET", self._list_models),
        ):
            guarded = handler if access is None else self._authenticated(handler)
            self._routes[path] = (method, guarded)

    def _authenticated(self, handler: Handler) -> Handler:
        async def check(request: Request, writer: ResponseWriter) -> None:
            access = self.access
            authorization = request.headers.get("authorization")
            if access is None or access.accepts(authorization):
                await handler(request, writer)
                return
            reason = "missing" if not authorization else "invalid"
            self.metrics.auth_failures[reason] += 1
            message = (
                "Missing API key: send it as 'Authorization: Bearer KEY'"
                if reason == "missing"
                else "Incorrect API key provided"
            )
            status = send_error(
                writer, ErrorKind.UNAUTHORIZED, message, headers=[("www-authenticate", "Bearer")]
            )
            self.metrics.observe_request(
                "", "", "", status, duration_s=time.monotonic() - request.received_at
            )

        return check

    # -- requests ----------------------------------------------------------------------
    async def handle(self, request: Request, writer: ResponseWriter) -> None:
        route = self._routes.get(request.path)
        if route is None:
            send_error(writer, ErrorKind.NOT_FOUND, f"No route for {request.path}")
            return
        if request.method != route[0]:
            send_error(
                writer,
                ErrorKind.METHOD,
                f"Use {route[0]} for {request.path}",
                headers=[("allow", route[0])],
            )
            return
        await route[1](request, writer)

    async def _list_models(self, request: Request, writer: ResponseWriter) -> None:
        writer.send(200, JSON, self._models)

    async def _healthz(self, request: Request, writer: ResponseWriter) -> None:
        writer.send(200, JSON, b'{"status":"ok"}')

    async def _readyz(self, request: Request, writer: ResponseWriter) -> None:
        """Ready once a table is installed, until shutdown. Not "some replica is healthy":
        a router whose tiers are all scaled to zero must stay behind its Service, or the
        request that would wake them could never arrive (it holds such requests and the
        operator reads that demand); with no usable tier it answers 503 itself, fast."""
        snap = self.proxy.snapshot
        ready = self.local_ready()
        if ready and self.peers is not None:
            ready = await self.peers.all_ready()
        healthy = (
            sum(1 for loads in snap.loads.values() for load in loads if load.healthy)
            if snap is not None
            else 0
        )
        version = snap.table.version if snap is not None else ""
        policy = snap.table.policy_version if snap is not None else ""
        classifiers = [c.to_dict() for c in self.classifier_metrics.statuses.values()]
        body = orjson.dumps(
            {
                "ready": ready,
                "tableVersion": version,
                "policyVersion": policy,
                "healthyReplicas": healthy,
                "classifiers": classifiers,
            }
        )
        writer.send(200 if ready else 503, JSON, body)

    def local_ready(self) -> bool:
        """This process has a table and is not shutting down."""
        return not self.shutting_down and self.proxy.snapshot is not None

    def local_metrics(self) -> bytes:
        """This process's metrics (Prometheus text)."""
        return generate_latest(self.metrics.registry)

    async def _metrics(self, request: Request, writer: ResponseWriter) -> None:
        body = self.local_metrics() if self.peers is None else await self.peers.metrics()
        writer.send(200, [("content-type", CONTENT_TYPE_LATEST)], body)

    # -- lifespan ----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def running(self, source: TableSource | None = None) -> AsyncIterator[int]:
        """Serve until the block exits; yield the bound port. Drains on exit."""
        if self.proxy.snapshot is None:
            await self.install(self.holder.current)
        scraper = Scraper(
            self.book,
            self.pool,
            interval_s=self.settings.scrape_interval_s,
            timeout_s=self.settings.scrape_timeout_s,
        )
        self.port = await self.server.start(
            self.settings.host, self.settings.port, reuse_port=self.settings.reuse_port
        )
        watcher = None
        if source is not None:
            watcher = asyncio.get_running_loop().create_task(self._watch(source))
        reaper = asyncio.get_running_loop().create_task(self.pool.reap())
        try:
            if self.peers is not None:
                await self.peers.start()
            async with scraping(scraper):
                yield self.port
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            self.shutting_down = True
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await self.server.shutdown(self.settings.shutdown_grace_s)
            if self.peers is not None:  # after the drain: scrapes still count this worker
                await self.peers.stop()
            await self.pool.close()
            self._scoring.shutdown(wait=False, cancel_futures=True)

    async def _watch(self, source: TableSource) -> None:
        """Poll ``source.stamp`` and the Secret files, reload on change; SIGHUP reloads at
        once; a pushed change (``source.changed``) reloads after ``coalesce_s``."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        pushed = source.changed or asyncio.Event()
        hup = {"forced": False}

        def on_hup() -> None:
            hup["forced"] = True
            wake.set()

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, on_hup)
        stamp = source.stamp()
        try:
            while True:
                await _first_of(wake, pushed, self.settings.watch_interval_s)
                if pushed.is_set():
                    await asyncio.sleep(self.settings.coalesce_s)
                was_pushed, forced = pushed.is_set(), hup["forced"]
                pushed.clear()
                wake.clear()
                hup["forced"] = False
                new_stamp = source.stamp()
                secrets = _stamps(self._secret_files)
                rotated = secrets != self._secrets_seen
                if forced or rotated or was_pushed or new_stamp != stamp:
                    stamp = new_stamp
                    self._secrets_seen = secrets
                    await self.reload(source, force=forced or rotated)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)


async def _first_of(a: asyncio.Event, b: asyncio.Event, timeout_s: float) -> None:
    """Until either event is set, or ``timeout_s`` passes."""
    if a.is_set() or b.is_set():
        return
    waiters = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


def _stamps(paths: Sequence[str]) -> tuple[object, ...]:
    """Stamps of mounted Secret files: they change when kubelet swaps in a new version."""
    return tuple(file_stamp(path) for path in paths)


def _models_body(table: RoutingTable) -> bytes:
    data = [
        {"id": alias, "object": "model", "created": 0, "owned_by": "tierwise"}
        for alias in sorted(table.aliases)
    ]
    return orjson.dumps({"object": "list", "data": data})


def create_app(table: RoutingTable, settings: Settings | None = None) -> RouterApp:
    """A router for ``table``; call inside a running event loop, then use ``running()``."""
    return RouterApp(table, settings or Settings())
