"""Rendering the Helm chart offline (helm-python-sdk: Helm's Go SDK in a wheel), for the
chart tests and the operator scenarios that take their objects from the chart."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).parents[1]
CHART = REPO / "charts" / "tierwise"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE, NAMESPACE = "tierwise", "tierwise-system"


def render_files(
    values: Mapping[str, Any] | None = None,
    *,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
) -> dict[str, str]:
    """Template path -> rendered text, as ``helm template`` makes them (an install)."""
    with helm.Chart.load(str(CHART)) as chart:
        return chart.render(
            values=dict(values or {}), name=release, namespace=namespace, is_install=True
        )


def render(
    values: Mapping[str, Any] | None = None,
    *,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
) -> list[dict[str, Any]]:
    """Every object the chart renders (templates only; see :func:`chart_crds`)."""
    objects: list[dict[str, Any]] = []
    for path, text in sorted(render_files(values, namespace=namespace, release=release).items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(d for d in yaml.safe_load_all(text) if d)
    return objects


def chart_crds() -> list[dict[str, Any]]:
    """The CRDs in the chart's crds/ folder (Helm installs them before the templates)."""
    with helm.Chart.load(str(CHART)) as chart:
        found = [d for c in chart.crds for d in yaml.safe_load_all(c["data"]) if d]
    return found


def ci_values(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    return loaded


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one rendered object of ``kind`` (and ``name``)."""
    matches = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} rendered {kind} objects named {name!r}")
    return matches[0]
