"""``tierwise render``: print the exact objects the operator would apply, for review in Git.

Reads files the way ``tierwise validate`` does; on any invalid document it prints the
errors (one line each, naming the field) and exits 1 without printing objects, so a broken
spec can never produce half a rendering. Owner references are left out (there is no
ModelDeployment uid offline) and so is ``spec.replicas`` unless ``--replicas`` is given:
both are filled in by the operator at apply time.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from tierwise.api.documents import expand_paths, load_documents
from tierwise.api.model_deployment import ModelDeployment
from tierwise.manifests.render import RenderError, render_model_deployment


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="print the Kubernetes objects the operator would apply, as YAML",
        description="Render ModelDeployments to the Deployment, Service, PodDisruptionBudget "
        "and PodMonitor the operator applies. Exit 0 and print multi-document YAML when all "
        "inputs are valid; exit 1 with one line per error otherwise.",
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
        help="set spec.replicas on the Deployments (left out by default: the operator owns it)",
    )
    parser.set_defaults(handler=run)


def collect(paths: list[str]) -> tuple[list[ModelDeployment], list[str]]:
    """Valid ModelDeployments in input order, and error lines for everything else."""
    found: list[ModelDeployment] = []
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
                found.append(doc.resource)
            elif doc.ok and doc.resource is not None:
                print(
                    f"{doc.source}: {doc.label}: skipped (rendered by its own reconciler)",
                    file=sys.stderr,
                )
    return found, errors


def render_all(deployments: list[ModelDeployment], replicas: int | None) -> tuple[str, list[str]]:
    objects: list[dict[str, Any]] = []
    errors: list[str] = []
    for md in deployments:
        try:
            objects.extend(render_model_deployment(md, replicas=replicas))
        except RenderError as exc:
            errors.extend(f"ModelDeployment/{md.metadata.name}: {i}" for i in exc.issues)
    text = yaml.safe_dump_all(objects, sort_keys=False, allow_unicode=True, width=100)
    return text, errors


def run(args: argparse.Namespace) -> int:
    if args.replicas is not None and args.replicas < 0:
        print("--replicas must be 0 or more", file=sys.stderr)
        return 1
    deployments, errors = collect(args.filename)
    text, render_errors = render_all(deployments, args.replicas)
    errors.extend(render_errors)
    if errors:
        for line in errors:
            print(line, file=sys.stderr)
        return 1
    if not deployments:
        print("no ModelDeployment found", file=sys.stderr)
        return 0
    sys.stdout.write(text)
    return 0
