"""The controller scenario on a real cluster: create, converge, update in place, no-op,
delete, with the operator the chart installed (e2e/conftest.py: ``release``) running under
the chart's RBAC. Skipped without ``KUBECONFIG``; refuses unexpected kube-contexts.

The ModelDeployment runs the engine stand-in image (CPU only) on the GPUs e2e advertises,
so the Deployment's shape and the status' ``observedGeneration`` and conditions are
checked, as is an in-place update that keeps the Service untouched.
"""

from __future__ import annotations

import json
from typing import Any

from e2e_support import ENGINE_IMAGE, GROUP, VERSION, wait

PLURAL = "modeldeployments"


def _md(name: str, context_length: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
            "engine": {"name": "vllm", "contextLength": context_length, "image": ENGINE_IMAGE},
            "replicas": {"min": 1, "max": 2},
        },
    }


def test_lifecycle(api: Any, namespace: str) -> None:
    import kubernetes.client as client

    custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    gvp = (GROUP, VERSION, namespace, PLURAL)
    created = custom.create_namespaced_custom_object(*gvp, _md("qwen", 4096))

    def status(generation: int) -> Any:
        st = custom.get_namespaced_custom_object(*gvp, "qwen").get("status") or {}
        return st if st.get("observedGeneration") == generation and st.get("conditions") else None

    wait(lambda: status(1), what="status at generation 1")
    deployment = apps.read_namespaced_deployment("qwen", namespace)
    assert deployment.metadata.owner_references[0].uid == created["metadata"]["uid"]
    service = core.read_namespaced_service("qwen", namespace)
    custom.patch_namespaced_custom_object(
        *gvp, "qwen", {"spec": {"engine": {"name": "vllm", "contextLength": 2048}}}
    )
    wait(lambda: status(2), what="status at generation 2")
    updated = apps.read_namespaced_deployment("qwen", namespace)
    assert updated.metadata.uid == deployment.metadata.uid
    assert "2048" in json.dumps(updated.spec.template.spec.containers[0].to_dict())
    assert core.read_namespaced_service("qwen", namespace).metadata.resource_version == (
        service.metadata.resource_version
    )
    custom.delete_namespaced_custom_object(*gvp, "qwen")
    wait(
        lambda: (
            not apps.list_namespaced_deployment(
                namespace, label_selector="tierwise.dev/model-deployment=qwen"
            ).items
        ),
        what="children gone",
    )
