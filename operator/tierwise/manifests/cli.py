"""``tierwise render``: print the exact objects the operator would apply, for review in Git.

Reads files the way ``tierwise validate`` does; on any invalid document it prints the
errors (one line each, naming the field) and exits 1 without printing objects, so a broken
spec can never produce half a rendering. Owner references are left out (there is no uid
offline) and so is ``spec.replicas`` of engine Deployments unless ``--replicas`` is given:
both are filled in by the operator at apply time.

A RoutingPolicy renders to its router objects; its policy document is built from the
ModelDeployments of the same namespace found in the inputs, and those it names but that are
not there are listed in the document's ``missing`` (a note on stderr says so). In sidecar
mode the RoleBinding for the application pods' ServiceAccounts is left out: the operator
learns them from the pods it injects.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from tierwise.api.documents import expand_paths, load_documents
from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.routing_policy import RouterMode, RoutingPolicy
from tierwise.manifests.render import RenderError, render_model_deployment
from tierwise.manifests.router import render_routing_policy
from tierwise.manifests.router_config import router_config


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="print the Kubernetes objects the operator would apply, as YAML",
        description="Render ModelDeployments to the Deployment, Service, PodDisruptionBudget "
        "and PodMonitor the operator applies, and RoutingPolicies to their router objects "
        "(ConfigMap, RBAC, and in gateway mode Deployment, Service, PodDisruptionBudget). "
        "Exit 0 and print multi-document YAML when all inputs are valid; exit 1 with one "
        "line per error otherwise.",
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="file or directory (repeatable); directories skip their invalid/ folders",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=None,
        help="set spec.replicas on the engine Deployments (left out by default: the "
        "operator owns it)",
    )
    parser.set_defaults(handler=run)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the policy document) as literal blocks, readable in a review."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_objects(objects: Sequence[dict[str, Any]]) -> str:
    """Multi-document YAML, keys in rendering order (what ``tierwise render`` prints)."""
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def collect(paths: list[str]) -> tuple[list[ModelDeployment], list[RoutingPolicy], list[str]]:
    """Valid ModelDeployments and RoutingPolicies in input order, and error lines for
    everything else."""
    deployments: list[ModelDeployment] = []
    policies: list[RoutingPolicy] = []
    errors: list[str] = []
    files = expand_paths(paths)
    if not files:
        errors.append("no YAML files found")
    for path in files:
        if not path.exists():
            errors.append(f"{path}: no such file or directory")
            continue
        for doc in load_documents(path):
            errors.extend(f"{doc.source}: {doc.label}: {issue}" for issue in doc.issues)
            if isinstance(doc.resource, ModelDeployment) and doc.ok:
                deployments.append(doc.resource)
            elif isinstance(doc.resource, RoutingPolicy) and doc.ok:
                policies.append(doc.resource)
    return deployments, policies, errors


def render_policy(rp: RoutingPolicy, deployments: list[ModelDeployment]) -> list[dict[str, Any]]:
    """Router objects of ``rp``, with the ModelDeployments of its namespace among the inputs."""
    namespace = rp.metadata.namespace or ""
    same_namespace = {
        md.metadata.name: md for md in deployments if (md.metadata.namespace or "") == namespace
    }
    config = router_config(rp, same_namespace)
    label = f"RoutingPolicy/{rp.metadata.name}"
    for name in config.missing:
        print(
            f"{label}: ModelDeployment {name!r} is not in the input; its tiers get no "
            "replicas until it exists",
            file=sys.stderr,
        )
    if rp.spec.router.mode == RouterMode.SIDECAR:
        print(
            f"{label}: sidecar mode: the router is injected into pods labelled "
            f"tierwise.dev/routing-policy={rp.metadata.name}; their ServiceAccounts are bound "
            "to the Role when the operator injects them",
            file=sys.stderr,
        )
    return render_routing_policy(rp, config)


def render_all(
    deployments: list[ModelDeployment], policies: list[RoutingPolicy], replicas: int | None
) -> tuple[str, list[str]]:
    objects: list[dict[str, Any]] = []
    errors: list[str] = []
    for md in deployments:
        try:
            objects.extend(render_model_deployment(md, replicas=replicas))
        except RenderError as exc:
            errors.extend(f"ModelDeployment/{md.metadata.name}: {i}" for i in exc.issues)
    for rp in policies:
        objects.extend(render_policy(rp, deployments))
    return dump_objects(objects), errors


def run(args: argparse.Namespace) -> int:
    if args.replicas is not None and args.replicas < 0:
        print("--replicas must be 0 or more", file=sys.stderr)
        return 1
    deployments, policies, errors = collect(args.filename)
    text, render_errors = render_all(deployments, policies, args.replicas)
    errors.extend(render_errors)
    if errors:
        for line in errors:
            print(line, file=sys.stderr)
        return 1
    if not deployments and not policies:
        print("no ModelDeployment or RoutingPolicy found", file=sys.stderr)
        return 0
    sys.stdout.write(text)
    return 0
