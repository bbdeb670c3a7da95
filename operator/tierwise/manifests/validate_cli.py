"""``tierwise validate``: check custom resources offline, before they reach a cluster.

It runs :func:`tierwise.manifests.validation.check_resource`, the same checks the
validating admission webhook runs, so both print the same field paths and fixes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tierwise.api.documents import expand_paths, load_documents
from tierwise.manifests.validation import semantic_issues


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="validate ModelDeployment and RoutingPolicy YAML offline",
        description="Validate custom resources with the same models the operator uses. "
        "Exit 0 when all are valid, 1 otherwise; one line per error.",
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="file or directory (repeatable); directories skip their invalid/ folders",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    paths = expand_paths(args.filename)
    failed = checked = skipped = 0
    for path in paths:
        if not path.exists():
            print(f"{path}: no such file or directory; check the path", file=sys.stderr)
            failed += 1
            continue
        for doc in load_documents(path):
            if doc.skipped:
                skipped += 1
                continue
            checked += 1
            for issue in [*doc.issues, *(semantic_issues(doc) if not doc.issues else [])]:
                failed += 1
                print(f"{doc.source}: {doc.label}: {issue}", file=sys.stderr)
    if not paths:
        print("no YAML files found; name a .yaml file or a folder holding some", file=sys.stderr)
        return 1
    if failed:
        return 1
    note = f", {skipped} non-Tierwise object(s) skipped" if skipped else ""
    print(f"{checked} resource(s) valid{note}")
    return 0
