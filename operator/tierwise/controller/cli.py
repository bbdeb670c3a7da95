"""``tierwise operator``: run the ModelDeployment operator against a cluster.

Connection: ``--kubeconfig``, else ``KUBECONFIG``, else ``~/.kube/config``, else the
in-cluster service account. Logging goes through kopf's formatters (``--log-format json``
gives one JSON object per line, with the object's namespace and name as fields).
"""

from __future__ import annotations

import argparse
import asyncio
from enum import StrEnum
from typing import Any

import kopf

from tierwise.controller.kube import load_config
from tierwise.controller.runner import OperatorOptions, run_operator


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="run the ModelDeployment operator",
        description="Reconcile ModelDeployments into Deployments, Services and PDBs.",
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
    parser.add_argument(
        "--standalone",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run without kopf peering (default); --no-standalone coordinates replicas",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.set_defaults(handler=run)


def options_from(args: argparse.Namespace) -> OperatorOptions:
    namespaces = () if args.all_namespaces else tuple(args.namespace)
    return OperatorOptions(
        kube=load_config(args.kubeconfig, context=args.context),
        namespaces=namespaces,
        liveness=args.liveness,
        metrics_port=args.metrics_port,
        standalone=args.standalone,
    )


def run(args: argparse.Namespace) -> int:
    log_format = kopf.LogFormat.JSON if args.log_format == LogFormat.JSON else kopf.LogFormat.FULL
    kopf.configure(verbose=args.verbose, log_format=log_format, log_refkey="object")
    options = options_from(args)
    asyncio.run(run_operator(options))
    return 0
