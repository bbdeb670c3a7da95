"""The Argo CD health check shipped in docs/gitops.md (and examples/gitops/argocd/) judges
the statuses the operator really writes, run in Lua 5.1 as Argo CD's gopher-lua runs it,
against objects recorded on the embedded cluster (tests/operator_scenario.py): Ready ->
Healthy, scaled to zero -> Healthy, Stalled -> Degraded with the reason, waiting for a
ModelDeployment -> Degraded naming it, an unobserved generation or no status -> Progressing.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from operator_scenario import Recording

lua51 = pytest.importorskip("lupa.lua51", reason="lupa (a test dependency) runs the Lua")

REPO = Path(__file__).parents[2]
CONFIG = REPO / "examples" / "gitops" / "argocd" / "argocd-cm-health.yaml"
DOCS = REPO / "docs" / "gitops.md"
KEYS = {
    "ModelDeployment": "resource.customizations.health.tierwise.dev_ModelDeployment",
    "RoutingPolicy": "resource.customizations.health.tierwise.dev_RoutingPolicy",
}


def _scripts() -> dict[str, str]:
    data = yaml.safe_load(CONFIG.read_text())["data"]
    return {kind: data[key] for kind, key in KEYS.items()}


def health(obj: dict[str, Any]) -> dict[str, str]:
    """Run the kind's script on ``obj`` like Argo CD does (a global ``obj``, a returned table)."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    script = _scripts()[obj["kind"]]
    result = runtime.execute(script)
    return {"status": str(result["status"]), "message": str(result["message"] or "")}


def test_both_kinds_share_the_script_the_docs_show() -> None:
    scripts = _scripts()
    assert scripts["ModelDeployment"] == scripts["RoutingPolicy"]
    blocks = re.findall(r"```lua\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert scripts["ModelDeployment"] in blocks


@pytest.mark.parametrize(
    ("label", "status", "says"),
    [
        ("md-ready", "Healthy", "AllReplicasReady"),
        ("rp-ready", "Healthy", "RouterReady"),
        ("md-scaled-to-zero", "Healthy", "Scaled to zero"),
        ("md-invalid-spec", "Degraded", "InvalidSpec: spec.engine.args[0]: --port"),
        ("rp-missing-model-deployment", "Degraded", "MissingModelDeployment"),
        ("rp-sidecar-not-injected", "Degraded", "SidecarNotInjected"),
    ],
)
def test_recorded_statuses(
    operator_recording: Recording, label: str, status: str, says: str
) -> None:
    judged = health(operator_recording.snapshots[label])
    assert judged["status"] == status
    assert says in judged["message"]


def test_a_missing_model_deployment_is_named(operator_recording: Recording) -> None:
    assert (
        "'ghost'" in health(operator_recording.snapshots["rp-missing-model-deployment"])["message"]
    )


def test_an_unobserved_generation_or_no_status_is_progressing(
    operator_recording: Recording,
) -> None:
    newer = copy.deepcopy(operator_recording.snapshots["md-ready"])
    newer["metadata"]["generation"] += 1
    generation = newer["metadata"]["generation"]
    assert health(newer) == {
        "status": "Progressing",
        "message": f"Waiting for the operator to observe generation {generation}",
    }
    fresh = copy.deepcopy(operator_recording.snapshots["rp-ready"])
    del fresh["status"]
    assert health(fresh)["status"] == "Progressing"


def test_work_in_progress_is_progressing_with_its_reason(operator_recording: Recording) -> None:
    loading = copy.deepcopy(operator_recording.snapshots["md-ready"])
    for condition in loading["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition.update(status="False", reason="ReplicasNotReady", message="1/2 ready")
        if condition["type"] in ("Progressing", "Reconciling"):
            condition.update(status="True", reason="Loading", message="1/2 ready")
    assert health(loading) == {"status": "Progressing", "message": "Loading: 1/2 ready"}
