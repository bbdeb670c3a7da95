"""``tierwise router``: run the data plane.

Why it exists: one command runs the router in a cluster (the operator renders its
arguments) and on a laptop. Every mode builds its routing table the same way
(:func:`tierwise.router.table.table_from_config`) from a policy document and the ready
replicas of each ModelDeployment; the modes differ only in where those come from:

=================================================  ====================  =====================
arguments                                          policy document       replicas
=================================================  ====================  =====================
``--config-map NAME --config-file PATH``           ConfigMap watch, the  EndpointSlice watch
``--discovery kubernetes``  (in a cluster)         mounted file before/
                                                   without the API
``--config-file PATH --endpoints EP.yaml``         the file (polled)     EP.yaml (polled)
``--policy RP.yaml --endpoints EP.yaml``           built from the YAML   EP.yaml (polled)
``[--deployments MD.yaml ...]``  (locally)         (+ ModelDeployments)
``--table PATH``                                   a whole routing table file (polled)
=================================================  ====================  =====================

Any document source combines with either replica source (``--endpoints`` or
``--discovery kubernetes``). EP.yaml maps ModelDeployment names to base URLs, or
``{url, name}`` items naming the replica (:func:`~tierwise.router.discovery.files
.load_endpoints`). The API is found through ``KUBECONFIG``, else the pod's service account
(:mod:`tierwise.router.kubeapi`); watches run in ``--namespace``.

Files are polled every ``--watch-interval``; watch events are coalesced for
``--coalesce`` seconds into one table; SIGHUP reloads at once; a document or table that
fails to load is logged and counted and the old one stays. SIGTERM/SIGINT drain in-flight
requests (up to ``--shutdown-grace``) and exit.

``--workers N`` (or ``auto``) runs N such processes on one port
(:mod:`tierwise.router.workers`); each worker watches the sources itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tierwise.router.discovery.files import (
    ConfigFile,
    EndpointsFile,
    PolicyFiles,
    file_stamp,
)
from tierwise.router.discovery.kubernetes import ConfigMapConfig, SliceEndpoints
from tierwise.router.discovery.live import LiveTable
from tierwise.router.discovery.sources import ConfigError, ConfigSource, EndpointSource
from tierwise.router.discovery.stats import DiscoveryStats
from tierwise.router.http.proxy_env import ProxyConfig
from tierwise.router.http.server import ServerLimits
from tierwise.router.kubeapi import KubeApi, KubeConfigError, load_kube_config
from tierwise.router.server import ClassifierBackend, Settings, TableSource, create_app
from tierwise.router.table import FROM_DOCUMENT, RoutingTable
from tierwise.router.table_document import TableError, load_table
from tierwise.router.worker_peers import Peers, WorkerGroup
from tierwise.router.workers import available_cores, supervise

log = logging.getLogger("tierwise.router")

KUBERNETES = "kubernetes"


class UsageError(ValueError):
    """The arguments do not name a usable combination (message says what to give)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("router", help="run the OpenAI-compatible tier router")
    policy = parser.add_argument_group("policy (one of)")
    policy.add_argument("--table", type=Path, help="a whole routing table file")
    policy.add_argument("--policy", type=Path, help="RoutingPolicy YAML (built locally)")
    policy.add_argument(
        "--config-map", help="watch this ConfigMap's policy.json (in --namespace; needs API access)"
    )
    policy.add_argument(
        "--config-file",
        type=Path,
        help="policy document file (the ConfigMap's mounted copy: the fallback of --config-map)",
    )
    replicas = parser.add_argument_group("replicas (one of, except with --table)")
    replicas.add_argument("--endpoints", type=Path, help="YAML: ModelDeployment name -> URLs")
    replicas.add_argument(
        "--discovery",
        choices=[KUBERNETES],
        help="watch the namespace's EndpointSlices for ready replicas",
    )
    parser.add_argument(
        "--deployments",
        type=Path,
        action="append",
        default=[],
        help="ModelDeployment YAML for served names and prices, with --policy (repeatable)",
    )
    parser.add_argument(
        "--secrets-dir",
        default=None,
        help="folder where Secrets are mounted as NAME/KEY files: external tiers' API "
        "keys and the accepted client keys of spec.router.auth (default: the policy "
        "document's secretsDir; with --policy or --table: none)",
    )
    parser.add_argument(
        "--ca-file",
        default=os.environ.get("TIERWISE_CA_FILE") or None,
        help="PEM file of CA certificates trusted for external APIs in addition to the "
        "system bundle (a private CA, or a TLS-inspecting proxy's; default: "
        "$TIERWISE_CA_FILE). HTTPS_PROXY/HTTP_PROXY/NO_PROXY apply to external APIs",
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE") or None,
        help="namespace of the router, its ModelDeployments and its watches, the namespace "
        "label of the demand metrics (default: $POD_NAMESPACE, else the kubeconfig "
        "context's or service account's namespace when the API is used, else 'default')",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N|auto",
        help="router processes sharing the port (SO_REUSEPORT); auto: the cores this "
        "container may use (CPU affinity capped by the cgroup quota). Default 1",
    )
    parser.add_argument(
        "--pending-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a request waits for a tier scaled to zero",
    )
    parser.add_argument("--upstream-timeout", type=float, default=600.0, metavar="SECONDS")
    parser.add_argument("--max-body-mib", type=float, default=32.0)
    parser.add_argument("--shutdown-grace", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument(
        "--scrape-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often engines' /metrics are read for queue depth",
    )
    parser.add_argument(
        "--watch-interval",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="how often files (policy, endpoints, table, Secret key files) are checked",
    )
    parser.add_argument(
        "--coalesce",
        type=float,
        default=0.02,
        metavar="SECONDS",
        help="after a watch event, wait this long for more before building one table",
    )
    parser.add_argument(
        "--sync-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="at start, how long to wait for a first policy document (then exit 2)",
    )
    parser.add_argument(
        "--classifier",
        choices=[c.value for c in ClassifierBackend],
        default=ClassifierBackend.AUTO.value,
    )
    parser.add_argument(
        "--classifier-dir",
        default=None,
        help="where tier classifier artefacts are: ConfigMaps mounted as NAME/KEY files, or "
        "ConfigMap YAML files (default: the --policy file's folder, else "
        "/etc/tierwise/classifiers)",
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    parser.set_defaults(handler=run)


@dataclass
class Sources:
    """What :func:`plan` found in the arguments."""

    source: TableSource | None = None
    """A table file's source (``--table``); None when ``live`` builds the tables."""
    live: LiveTable | None = None
    stats: DiscoveryStats | None = None
    api: KubeApi | None = None
    namespace: str = "default"


def plan(args: argparse.Namespace) -> Sources:
    """The sources the arguments name (raises :class:`UsageError`, :class:`KubeConfigError`)."""
    documents = [
        flag
        for flag, given in (
            ("--table", args.table),
            ("--policy", args.policy),
            ("--config-map/--config-file", args.config_map or args.config_file),
        )
        if given
    ]
    if len(documents) != 1:
        raise UsageError(
            "give one of --table PATH, --policy RP.yaml, or --config-map NAME / --config-file "
            f"PATH (got {', '.join(documents) or 'none'})"
        )
    if args.table is not None:
        if args.endpoints or args.discovery:
            raise UsageError("--table holds its endpoints: drop --endpoints/--discovery")
        path: Path = args.table
        return Sources(TableSource(lambda: load_table(path), lambda: _stamp([path])))
    if (args.endpoints is None) == (args.discovery is None):
        raise UsageError("give one of --endpoints EP.yaml or --discovery kubernetes")
    stats = DiscoveryStats()
    found = Sources(stats=stats, namespace=args.namespace or "default")
    if args.config_map or args.discovery == KUBERNETES:
        kube = load_kube_config()
        found.api = KubeApi(kube)
        found.namespace = args.namespace or kube.namespace or "default"
    config = _config_source(args, found, stats)
    endpoints: EndpointSource
    if args.endpoints is not None:
        endpoints = EndpointsFile(args.endpoints)
    else:
        assert found.api is not None
        endpoints = SliceEndpoints(found.api, found.namespace, stats)
    secrets = args.secrets_dir if args.policy is not None else args.secrets_dir or FROM_DOCUMENT
    found.live = LiveTable(config, endpoints, stats=stats, secrets_dir=secrets)
    return found


def _config_source(args: argparse.Namespace, found: Sources, stats: DiscoveryStats) -> ConfigSource:
    def rejected(exc: ConfigError) -> None:
        stats.count_config_error("file")
        log.error("policy document rejected (a last good one, if any, stays): %s", exc)

    if args.policy is not None:
        return PolicyFiles(args.policy, args.deployments, on_error=rejected)
    fallback = ConfigFile(args.config_file, on_error=rejected) if args.config_file else None
    if not args.config_map:
        assert fallback is not None
        return fallback
    assert found.api is not None
    return ConfigMapConfig(
        found.api, found.namespace, args.config_map, fallback=fallback, stats=stats
    )


def _stamp(paths: Sequence[Path]) -> tuple[object, ...]:
    return tuple(file_stamp(path) for path in paths)


def settings_from(args: argparse.Namespace, namespace: str | None = None) -> Settings:
    limits = ServerLimits(max_body_bytes=int(args.max_body_mib * 1024 * 1024))
    return Settings(
        host=args.host,
        port=args.port,
        limits=limits,
        pending_wait_s=args.pending_wait,
        upstream_timeout_s=args.upstream_timeout,
        shutdown_grace_s=args.shutdown_grace,
        scrape_interval_s=args.scrape_interval,
        watch_interval_s=args.watch_interval,
        coalesce_s=args.coalesce,
        classifier=ClassifierBackend(args.classifier),
        secrets_dir=args.secrets_dir,
        ca_file=args.ca_file,
        proxies=ProxyConfig.from_env(os.environ),
        namespace=namespace or args.namespace or "default",
        classifier_dir=args.classifier_dir
        or (str(args.policy.resolve().parent) if args.policy is not None else None),
    )


def _workers(value: str) -> int:
    if value == "auto":
        return available_cores()
    count = int(value)
    if count < 1:
        raise argparse.ArgumentTypeError("--workers must be >= 1 or auto")
    return count


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.workers > 1:

        def worker(index: int, count: int, folder: Path, port: int) -> int:
            group = WorkerGroup(index, count, folder)
            return run_one(argparse.Namespace(**{**vars(args), "port": port}), group)

        grace = args.shutdown_grace
        return supervise(args.workers, args.host, args.port, worker, grace_s=grace)
    return run_one(args)


def run_one(args: argparse.Namespace, group: WorkerGroup | None = None) -> int:
    """One router process (a worker of ``group`` when given)."""
    try:
        sources = plan(args)
    except (UsageError, KubeConfigError) as exc:
        print(f"tierwise router: {exc}", file=sys.stderr)
        return 2
    settings = settings_from(args, sources.namespace)
    if group is not None:
        settings = dataclasses.replace(settings, reuse_port=True)
    timeout = args.sync_timeout
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(serve(sources, settings, sync_timeout_s=timeout, group=group))
    result: int = uvloop.run(serve(sources, settings, sync_timeout_s=timeout, group=group))
    return result


async def serve(
    sources: Sources,
    settings: Settings,
    *,
    sync_timeout_s: float = 30.0,
    group: WorkerGroup | None = None,
) -> int:
    """Run a router (or one worker of ``group``) until SIGTERM or SIGINT; exit status."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if sources.api is not None:
                stack.push_async_callback(sources.api.close)
            try:
                table, source = await _first_table(sources, stack, sync_timeout_s)
            except (ConfigError, TableError, ValueError) as exc:
                print(f"tierwise router: {exc}", file=sys.stderr)
                return 2
            app = create_app(table, settings)
            if sources.stats is not None:
                app.metrics.registry.register(sources.stats)
            if group is not None:
                app.peers = Peers(group, app.local_metrics, app.local_ready)
            async with app.running(source) as port:
                # everything allocated so far lives as long as the process: keep it out of
                # the collector's way, and collect young objects less often (fewer pauses)
                gc.freeze()
                gc.set_threshold(10_000, 20, 20)
                print(
                    f"tierwise router: table {table.version} on http://{settings.host}:{port}",
                    flush=True,
                )
                await stop.wait()
    except Exception as exc:
        log.error("router failed: %s", exc)
        return 1
    return 0


async def _first_table(
    sources: Sources, stack: contextlib.AsyncExitStack, sync_timeout_s: float
) -> tuple[RoutingTable, TableSource]:
    if sources.live is None:
        assert sources.source is not None
        return await asyncio.to_thread(sources.source.load), sources.source
    await stack.enter_async_context(sources.live.running())
    # only a watched ConfigMap is worth waiting for: a bad local file fails at once
    watched = isinstance(sources.live.config, ConfigMapConfig)
    table = await sources.live.first_table(
        timeout_s=sync_timeout_s if watched else 0.0, endpoints_wait_s=min(5.0, sync_timeout_s)
    )
    return table, sources.live.table_source()
