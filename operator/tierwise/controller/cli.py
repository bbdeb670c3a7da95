"""``tierwise operator``: run the ModelDeployment operator against a cluster.

Connection: ``--kubeconfig``, else ``KUBECONFIG``, else ``~/.kube/config``, else the
in-cluster service account. Logging goes through kopf's formatters (``--log-format json``
gives one JSON object per line, with the object's namespace and name as fields).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from enum import StrEnum
from typing import Any

import kopf

from tierwise.api.model_deployment import EngineName
from tierwise.controller.autoscaling import AutoscalerSettings
from tierwise.controller.kube import load_config
from tierwise.controller.pods import PodAddress
from tierwise.controller.runner import OperatorOptions, run_operator
from tierwise.controller.webhooks import WebhookSettings
from tierwise.manifests import RenderSettings, RouterRenderSettings
from tierwise.manifests.router_settings import default_router_image

PRIORITY_CEILING = 2**62
"""Above any start time in microseconds until the year 146,000; below int64's limit."""


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="run the operator (ModelDeployments, RoutingPolicies, admission webhooks)",
        description="Reconcile ModelDeployments into engine Deployments, Services and PDBs, "
        "RoutingPolicies into routers and their policy documents; autoscale; optionally serve "
        "the admission webhooks.",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="namespace to watch (repeatable; glob patterns allowed); default: all",
    )
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch every namespace (default)"
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument(
        "--liveness", metavar="URL", help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    parser.add_argument(
        "--log-format", choices=[f.value for f in LogFormat], default=LogFormat.TEXT.value
    )
    _peering_arguments(parser)
    _autoscaling_arguments(parser)
    _routing_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.set_defaults(handler=run)


def _peering_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("replicas (kopf peering)")
    group.add_argument(
        "--standalone",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run without kopf peering (default); --no-standalone uses kopf's peering "
        "object named default when it exists",
    )
    group.add_argument(
        "--peering",
        metavar="NAME",
        help="coordinate replicas through the kopf peering object NAME (ClusterKopfPeering "
        "cluster-wide; KopfPeering in each watched namespace): only the replica with the "
        "highest priority works, the others wait; implies --no-standalone; the object must "
        "exist (the Helm chart creates it)",
    )
    group.add_argument(
        "--priority",
        type=int,
        metavar="N",
        help="this replica's peering priority (default with --peering: the replica started "
        "first has the highest, so a new replica waits until the old one is gone)",
    )


def startup_priority(now_ns: int | None = None) -> int:
    """A peering priority that falls with the start time (microseconds): the replica that
    started first outranks every later one, so a restarted or rolled-out replica never
    takes over while the working one lives, and two replicas almost never tie (a tie
    pauses both until one is gone)."""
    started_us = (time.time_ns() if now_ns is None else now_ns) // 1000
    return PRIORITY_CEILING - started_us


def peering_options(args: argparse.Namespace) -> tuple[str | None, int | None]:
    if args.peering is None:
        return None, args.priority
    priority = args.priority if args.priority is not None else startup_priority()
    return args.peering, priority


def _autoscaling_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("autoscaling")
    group.add_argument(
        "--router-metrics-url",
        action="append",
        default=[],
        metavar="URL",
        help="a router's /metrics, read for the scale-from-zero demand signal (repeatable)",
    )
    group.add_argument(
        "--discover-routers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also scrape ready pods labelled app.kubernetes.io/component=router (default)",
    )
    group.add_argument(
        "--pod-metrics-address",
        choices=[a.value for a in PodAddress],
        default=PodAddress.POD_IP.value,
        help="pod URLs from podIP:containerPort (default) or the local runner's port annotation",
    )
    group.add_argument(
        "--autoscale-tick",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how often the autoscaling timer wakes (each object runs on its own interval)",
    )
    group.add_argument(
        "--dcgm-url",
        action="append",
        default=[],
        type=dcgm_target,
        metavar="[NODE=]URL",
        help="a dcgm-exporter's /metrics, for the GPU signal in scrape mode (repeatable): "
        "NODE=URL for the pods on that node, a bare URL for pods on any node",
    )
    group.add_argument(
        "--no-autoscaling", action="store_true", help="run no autoscaling timer at all"
    )


def _routing_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("routing policies and admission webhooks")
    group.add_argument(
        "--router-image",
        default=os.environ.get("TIERWISE_ROUTER_IMAGE") or os.environ.get("TIERWISE_IMAGE"),
        metavar="IMAGE",
        help="image of the routers the operator deploys when a RoutingPolicy names none "
        f"(default: $TIERWISE_ROUTER_IMAGE, else $TIERWISE_IMAGE, else {default_router_image()})",
    )
    group.add_argument(
        "--engine-image",
        action="append",
        default=_env_list("TIERWISE_ENGINE_IMAGES"),
        type=engine_image,
        metavar="ENGINE=IMAGE",
        help="default image of an engine when a ModelDeployment names none, e.g. "
        "vllm=vllm/vllm-openai:v0.10.2 (repeatable; default: $TIERWISE_ENGINE_IMAGES, "
        "comma-separated, else the pinned images in docs/engines.md)",
    )
    group.add_argument(
        "--no-routing-policies", action="store_true", help="reconcile no RoutingPolicy"
    )
    group.add_argument(
        "--webhook-port", type=int, metavar="PORT", help="serve the admission webhooks (HTTPS)"
    )
    group.add_argument("--webhook-addr", default="0.0.0.0", metavar="ADDR")
    group.add_argument("--webhook-cert", metavar="FILE", help="TLS certificate (PEM)")
    group.add_argument("--webhook-key", metavar="FILE", help="TLS private key (PEM)")
    group.add_argument(
        "--webhook-host",
        metavar="HOST",
        help="host name the API server calls (for --webhook-manage)",
    )
    group.add_argument(
        "--webhook-manage",
        metavar="NAME",
        help="keep Validating/MutatingWebhookConfigurations of this name up to date "
        "(default: the installation provides them)",
    )


def routing_settings(
    args: argparse.Namespace,
) -> tuple[RouterRenderSettings | None, WebhookSettings | None]:
    if args.no_routing_policies:
        if args.webhook_port is not None:
            raise SystemExit(
                "--webhook-port needs RoutingPolicies reconciled (the sidecar "
                "injector renders routers); drop --no-routing-policies"
            )
        return None, None
    router = RouterRenderSettings(image=args.router_image or default_router_image())
    if args.webhook_port is None:
        return router, None
    if not args.webhook_cert or not args.webhook_key:
        raise SystemExit("--webhook-port needs --webhook-cert and --webhook-key (PEM files)")
    webhook = WebhookSettings(
        port=args.webhook_port,
        addr=args.webhook_addr,
        host=args.webhook_host,
        certfile=args.webhook_cert,
        keyfile=args.webhook_key,
        managed=args.webhook_manage,
    )
    return router, webhook


def _env_list(name: str) -> list[tuple[str, str]]:
    raw = os.environ.get(name, "")
    try:
        return [engine_image(part.strip()) for part in raw.split(",") if part.strip()]
    except argparse.ArgumentTypeError as error:
        raise SystemExit(f"${name}: {error}") from None


def engine_image(value: str) -> tuple[str, str]:
    """``ENGINE=IMAGE`` as (engine, image); argparse reports the error."""
    engine, sep, image = value.partition("=")
    engines = [e.value for e in EngineName]
    if not sep or engine not in engines or not image:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give ENGINE=IMAGE with ENGINE one of {', '.join(engines)}, e.g. "
            "vllm=vllm/vllm-openai:v0.10.2"
        )
    return engine, image


def dcgm_target(value: str) -> tuple[str | None, str]:
    """``NODE=URL`` or ``URL`` as (node or None, URL); argparse reports the ValueError."""
    node, sep, rest = value.partition("=")
    if sep and "/" not in node and ":" not in node:
        if not node:
            raise argparse.ArgumentTypeError(f"{value!r}: the node name before '=' is empty")
        value = rest
    else:
        node = ""
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an http(s) URL; give URL or NODE=URL, e.g. "
            "gpu-node-1=http://10.0.0.5:9400/metrics"
        )
    return node or None, value


def autoscaler_settings(args: argparse.Namespace) -> AutoscalerSettings | None:
    if args.no_autoscaling:
        return None
    targets: list[tuple[str | None, str]] = args.dcgm_url
    return AutoscalerSettings(
        tick_s=args.autoscale_tick,
        router_metrics_urls=tuple(args.router_metrics_url),
        discover_routers=args.discover_routers,
        pod_address=PodAddress(args.pod_metrics_address),
        dcgm_urls={node: url for node, url in targets if node is not None},
        dcgm_shared_urls=tuple(url for node, url in targets if node is None),
    )


def options_from(args: argparse.Namespace) -> OperatorOptions:
    namespaces = () if args.all_namespaces else tuple(args.namespace)
    router, webhook = routing_settings(args)
    peering, priority = peering_options(args)
    images: list[tuple[str, str]] = args.engine_image
    return OperatorOptions(
        router=router,
        webhook=webhook,
        kube=load_config(args.kubeconfig, context=args.context),
        namespaces=namespaces,
        liveness=args.liveness,
        metrics_port=args.metrics_port,
        standalone=args.standalone,
        peering=peering,
        priority=priority,
        render=RenderSettings(engine_images=tuple(dict(images).items())),
        autoscaler=autoscaler_settings(args),
    )


def run(args: argparse.Namespace) -> int:
    log_format = kopf.LogFormat.JSON if args.log_format == LogFormat.JSON else kopf.LogFormat.FULL
    kopf.configure(verbose=args.verbose, log_format=log_format, log_refkey="object")
    options = options_from(args)
    asyncio.run(run_operator(options))
    return 0
