"""Smoke: a real kopf operator reacts to a custom resource through the emulator."""

from __future__ import annotations

from typing import Any

import kopf
import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.kopf_runner import KopfThread
from tierwise.local.testing import wait_for

MD = ("tierwise.dev", "v1alpha1", "default", "modeldeployments")


def make_operator() -> tuple[Any, Any]:
    registry = kopf.OperatorRegistry()
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = "tierwise.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="tierwise.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="tierwise.dev", key="last-handled-configuration")
    settings.posting.level = 0

    @kopf.on.create(*MD[:2], MD[3], registry=registry)
    def created(body: Any, patch: Any, name: str, **_: Any) -> None:
        patch.status["phase"] = "Ready"
        patch.status["seen"] = name
        kopf.info(body, reason="Reconciled", message=f"reconciled {name}")

    @kopf.on.delete(*MD[:2], MD[3], registry=registry)
    def deleted(**_: Any) -> None:
        return None

    return registry, settings


@pytest.mark.usefixtures("crd")
def test_kopf_patches_status_posts_an_event_and_releases_the_finalizer(
    cluster: EmulatedCluster, custom: kubernetes.client.CustomObjectsApi,
    core: kubernetes.client.CoreV1Api,
) -> None:
    registry, settings = make_operator()
    with KopfThread(registry, server=cluster.url, settings=settings):
        custom.create_namespaced_custom_object(*MD, {
            "apiVersion": "tierwise.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "qwen"}, "spec": {"replicas": 1}})
        obj = wait_for(lambda: (o := custom.get_namespaced_custom_object(*MD, "qwen"))
                       .get("status", {}).get("phase") == "Ready" and o, message="status")
        assert obj["status"]["seen"] == "qwen"
        assert "tierwise.dev/finalizer" in obj["metadata"]["finalizers"]
        event = wait_for(lambda: [e for e in core.list_namespaced_event("default").items
                                  if e.reason == "Reconciled"], message="the event")[0]
        assert event.involved_object.name == "qwen"
        assert event.message == "reconciled qwen"

        custom.delete_namespaced_custom_object(*MD, "qwen")
        wait_for(lambda: _gone(custom, "qwen"), message="finalizer released")


def _gone(custom: kubernetes.client.CustomObjectsApi, name: str) -> bool:
    try:
        custom.get_namespaced_custom_object(*MD, name)
    except ApiException as e:
        return e.status == 404
    return False
