"""The chart ships the CRDs ``tierwise crds`` generates, byte for byte (files/crds/), as
templates (Helm never upgrades a chart's crds/ folder) kept on uninstall; and kopf's
peering CRDs in crds/, where Helm installs them before the peering object needs them."""

from __future__ import annotations

from pathlib import Path

import yaml

from chart_support import CHART, REPO, chart_crds, render

SOURCE = REPO / "crds"
COPY = CHART / "files" / "crds"


def test_the_copies_are_byte_for_byte_the_generated_crds() -> None:
    source = {p.name: p.read_bytes() for p in SOURCE.glob("*.yaml")}
    copies = {p.name: p.read_bytes() for p in COPY.glob("*.yaml")}
    assert source, "no generated CRDs"
    stale = sorted(
        name for name in source.keys() | copies.keys() if source.get(name) != copies.get(name)
    )
    assert not stale, f"stale chart CRDs {stale}: run `tierwise crds` (it writes the copy)"


def _generated() -> dict[str, dict[str, object]]:
    docs = [yaml.safe_load(p.read_text()) for p in sorted(SOURCE.glob("*.yaml"))]
    return {d["metadata"]["name"]: d for d in docs}


def test_rendered_crds_are_the_generated_ones_plus_labels_and_keep() -> None:
    rendered = {
        o["metadata"]["name"]: o for o in render() if o["kind"] == "CustomResourceDefinition"
    }
    generated = _generated()
    assert rendered.keys() == generated.keys()
    for name, crd in rendered.items():
        meta = crd["metadata"]
        assert meta["annotations"]["helm.sh/resource-policy"] == "keep"
        assert meta["labels"]["app.kubernetes.io/part-of"] == "tierwise"
        assert {k: v for k, v in crd.items() if k != "metadata"} == {
            k: v for k, v in generated[name].items() if k != "metadata"
        }


def test_crds_can_be_left_out_or_deleted_with_the_release() -> None:
    assert not [
        o for o in render({"crds": {"install": False}}) if o["kind"] == "CustomResourceDefinition"
    ]
    loose = [
        o for o in render({"crds": {"keep": False}}) if o["kind"] == "CustomResourceDefinition"
    ]
    assert loose
    assert all(
        "helm.sh/resource-policy" not in (o["metadata"].get("annotations") or {}) for o in loose
    )


def test_kopf_peering_crds_come_first_from_the_crds_folder() -> None:
    kinds = {c["spec"]["names"]["kind"]: c["spec"]["scope"] for c in chart_crds()}
    assert kinds == {"ClusterKopfPeering": "Cluster", "KopfPeering": "Namespaced"}
    assert {c["spec"]["group"] for c in chart_crds()} == {"kopf.dev"}
    assert not list(Path(CHART / "templates").glob("*peering*crd*"))
