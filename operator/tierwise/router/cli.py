"""``tierwise router``: run the data plane.

Why it exists: in a cluster the router reads the table file the operator writes
(``--table PATH``); locally it builds the same table from a RoutingPolicy and a map of
endpoints (``--policy RP.yaml --endpoints EP.yaml``), where EP.yaml maps each
ModelDeployment name to a list of base URLs (read by
:func:`tierwise.router.table.load_endpoints`, as ``tierwise route explain`` does)::

    small-model: [http://127.0.0.1:8001, http://127.0.0.1:8002]
    large-model: [http://127.0.0.1:8003]

ModelDeployment documents (in the policy file or ``--deployments`` files) supply served
model names and prices. The files are polled for changes (about once a second) and SIGHUP
reloads at once; a table that fails to load is logged and counted and the old one stays.
SIGTERM/SIGINT drain in-flight requests (up to ``--shutdown-grace``) and exit.

``--namespace`` (default ``$POD_NAMESPACE``, else ``default``) labels the demand metrics
the operator reads to wake ModelDeployments of that namespace from zero; run a local
router for ModelDeployments outside ``default`` with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from tierwise.api.documents import load_documents
from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.router.http.server import ServerLimits
from tierwise.router.server import ClassifierBackend, Settings, TableSource, create_app
from tierwise.router.table import RoutingTable, build_table, load_endpoints, load_table

log = logging.getLogger("tierwise.router")


class ConfigError(ValueError):
    """The router's input files are unusable (message says which and why)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("router", help="run the OpenAI-compatible tier router")
    source = parser.add_argument_group("routing table (one of)")
    source.add_argument("--table", type=Path, help="routing table file the operator writes")
    source.add_argument("--policy", type=Path, help="RoutingPolicy YAML (with --endpoints)")
    parser.add_argument("--endpoints", type=Path, help="YAML: ModelDeployment name -> URLs")
    parser.add_argument(
        "--deployments",
        type=Path,
        action="append",
        default=[],
        help="ModelDeployment YAML for served names and prices (repeatable)",
    )
    parser.add_argument(
        "--secrets-dir",
        default=None,
        help="folder where Secrets are mounted as NAME/KEY files: external tiers' API "
        "keys and the accepted client keys of spec.router.auth",
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE") or "default",
        help="namespace of the router and its ModelDeployments, the namespace label of the "
        "demand metrics the operator reads (default: $POD_NAMESPACE, else 'default')",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
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
        default=1.0,
        metavar="SECONDS",
        help="how often the table's files are checked for changes",
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


def table_source(args: argparse.Namespace) -> TableSource:
    """The table loader the arguments name (raises :class:`ConfigError`)."""
    if (args.table is None) == (args.policy is None):
        raise ConfigError("give either --table PATH or --policy RP.yaml --endpoints EP.yaml")
    if args.table is not None:
        path: Path = args.table
        return TableSource(lambda: load_table(path), lambda: _stamp([path]))
    if args.endpoints is None:
        raise ConfigError("--policy needs --endpoints EP.yaml (ModelDeployment name -> URLs)")
    files = [args.policy, args.endpoints, *args.deployments]
    return TableSource(
        lambda: policy_table(
            args.policy, args.endpoints, args.deployments, secrets_dir=args.secrets_dir
        ),
        lambda: _stamp(files),
    )


def _stamp(paths: Sequence[Path]) -> tuple[tuple[float, int] | None, ...]:
    out: list[tuple[float, int] | None] = []
    for path in paths:
        try:
            st = path.stat()
            out.append((st.st_mtime, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def policy_table(
    policy_path: Path,
    endpoints_path: Path,
    deployment_paths: Sequence[Path] = (),
    *,
    secrets_dir: str | None = None,
) -> RoutingTable:
    """The table ``tierwise router --policy --endpoints`` serves."""
    policies: list[RoutingPolicy] = []
    deployments: dict[str, ModelDeployment] = {}
    for path in (policy_path, *deployment_paths):
        for doc in load_documents(path):
            if doc.issues:
                issues = "; ".join(str(issue) for issue in doc.issues)
                raise ConfigError(f"{path}: {doc.label}: {issues}")
            if isinstance(doc.resource, RoutingPolicy):
                policies.append(doc.resource)
            elif isinstance(doc.resource, ModelDeployment):
                deployments[doc.resource.metadata.name] = doc.resource
    if len(policies) != 1:
        raise ConfigError(f"{policy_path}: expected one RoutingPolicy, found {len(policies)}")
    endpoints = load_endpoints(endpoints_path)
    return build_table(policies[0], endpoints, secrets_dir=secrets_dir, deployments=deployments)


def settings_from(args: argparse.Namespace) -> Settings:
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
        classifier=ClassifierBackend(args.classifier),
        secrets_dir=args.secrets_dir,
        namespace=args.namespace,
        classifier_dir=args.classifier_dir
        or (str(args.policy.resolve().parent) if args.policy is not None else None),
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        source = table_source(args)
        table = source.load()
    except (ConfigError, ValueError) as exc:
        print(f"tierwise router: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(serve(table, settings_from(args), source))
    result: int = uvloop.run(serve(table, settings_from(args), source))
    return result


async def serve(table: RoutingTable, settings: Settings, source: TableSource | None) -> int:
    """Run a router until SIGTERM or SIGINT; return the exit status."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    app = create_app(table, settings)
    try:
        async with app.running(source) as port:
            # everything allocated so far lives as long as the process: keep it out of the
            # collector's way, and collect young objects less often (fewer p99 pauses)
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
