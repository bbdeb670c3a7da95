"""Golden files for a RoutingPolicy's router objects (and, for the sidecar case, the pods as
the webhook returns them), reviewed like code.

Regenerate after an intended change with ``TIERWISE_UPDATE_GOLDEN=1 pytest tests/manifests``
and review the diff. Files are compared as parsed YAML, so formatting is free to change.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml
from router_helpers import GOLDEN_CASES, GOLDEN_SETTINGS, ROUTER_GOLDEN, load_inputs

from tierwise.manifests.cli import dump_objects
from tierwise.manifests.sidecar import inject_sidecar

UPDATE = os.environ.get("TIERWISE_UPDATE_GOLDEN") == "1"


def rendered(case: str) -> list[dict[str, Any]]:
    source, kwargs = GOLDEN_CASES[case]
    inputs = load_inputs(source)
    objects = inputs.render(**kwargs)
    for pod in inputs.pods:
        injected = inject_sidecar(pod, inputs.policy, kwargs.get("settings", GOLDEN_SETTINGS))
        assert injected is not None
        objects.append(injected)
    return objects


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_router_objects_match_the_golden_file(case: str) -> None:
    objects = rendered(case)
    golden = ROUTER_GOLDEN / f"{case}.yaml"
    if UPDATE:
        ROUTER_GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(dump_objects(objects), encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}; run with TIERWISE_UPDATE_GOLDEN=1"
    assert objects == list(yaml.safe_load_all(golden.read_text(encoding="utf-8")))


def test_every_router_golden_file_has_a_case() -> None:
    orphans = sorted(p.stem for p in ROUTER_GOLDEN.glob("*.yaml") if p.stem not in GOLDEN_CASES)
    assert orphans == []


def test_the_golden_cases_cover_both_modes_and_both_scrape_styles() -> None:
    """Guards the golden set itself: dropping a case must not silently drop a feature."""
    kinds = {case: [o["kind"] for o in rendered(case)] for case in GOLDEN_CASES}
    assert "PodMonitor" in kinds["03-three-tier-routing"]
    assert "PodMonitor" not in kinds["00-demo"]
    assert kinds["sidecar"] == ["ConfigMap", "Role", "RoleBinding", "Pod", "Pod"]
