"""``tierwise crds``: write (or, with ``--check``, verify) the generated CRDs and API docs.

CI runs ``tierwise crds --check`` so a model change that was not regenerated fails the
build instead of reaching a cluster as a schema that disagrees with the operator.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tierwise.api.crds import build_crds, render_yaml
from tierwise.api.reference import render_reference

DEFAULT_OUT = "crds"
DEFAULT_DOCS = "docs/api.md"
DEFAULT_CHART_COPY = "charts/tierwise/files/crds"
"""The Helm chart's copy (its CRD templates read it): written with crds/, so they never drift."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "crds",
        help="generate the CRDs in crds/ and docs/api.md from the API models",
        description="Write crds/*.yaml and docs/api.md from the pydantic models; with "
        "--check, write nothing and exit 1 when any of them is stale.",
    )
    parser.add_argument("--check", action="store_true", help="fail when files are stale")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help="CRD folder")
    parser.add_argument(
        "--docs", default=DEFAULT_DOCS, metavar="FILE", help="API reference (Markdown)"
    )
    parser.add_argument(
        "--chart-copy",
        default=DEFAULT_CHART_COPY,
        metavar="DIR",
        help="the Helm chart's copy of the CRDs (skipped when the folder does not exist)",
    )
    parser.set_defaults(handler=run)


def expected_files(out: Path, docs: Path, chart_copy: Path | None = None) -> dict[Path, str]:
    """Every generated file and the text it must hold."""
    crds = build_crds()
    files = {out / name: render_yaml(crd) for name, crd in sorted(crds.items())}
    if chart_copy is not None:
        files |= {chart_copy / name: render_yaml(crd) for name, crd in sorted(crds.items())}
    files[docs] = render_reference(list(crds.values()))
    return files


def run(args: argparse.Namespace) -> int:
    chart = Path(args.chart_copy)
    files = expected_files(Path(args.out), Path(args.docs), chart if chart.is_dir() else None)
    if args.check:
        stale = [path for path, text in files.items() if _read(path) != text]
        for path in stale:
            print(
                f"{path}: stale or missing; run `tierwise crds` and commit the result",
                file=sys.stderr,
            )
        if not stale:
            print(f"{len(files)} generated file(s) up to date")
        return 1 if stale else 0
    for path, text in files.items():
        if _read(path) != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
