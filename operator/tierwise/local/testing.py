"""Small, dependency-free helpers for tests that use the embedded cluster.

Tests of every layer need the same few things: a CRD to install before the real
ones exist, a Deployment body, and a way to wait until a condition holds. They
live here (not in a conftest) so that later test folders and the demo share them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

GROUP = "tierwise.dev"
VERSION = "v1alpha1"
PLURAL = "modeldeployments"


def model_deployment_crd(*, group: str = GROUP, version: str = VERSION) -> dict[str, Any]:
    """A minimal ModelDeployment CRD (status and scale subresources, short name ``md``)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": PLURAL,
                "singular": "modeldeployment",
                "kind": "ModelDeployment",
                "shortNames": ["md"],
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                        },
                    },
                }
            ],
        },
    }


def deployment(
    name: str,
    *,
    replicas: int = 1,
    image: str = "engine:latest",
    port: int = 8000,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A plain apps/v1 Deployment body with one container and one port."""
    selector = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(selector)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            "template": {
                "metadata": {"labels": dict(selector)},
                "spec": {
                    "containers": [
                        {
                            "name": "engine",
                            "image": image,
                            "ports": [{"name": "http", "containerPort": port}],
                        }
                    ]
                },
            },
        },
    }


def wait_for(
    check: Callable[[], T | None],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll ``check`` until it returns something truthy; raise TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
