"""What the webhook tests share beside their fixtures: the namespace and a client that
POSTs AdmissionReview documents the way the API server does."""

from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Any

NS = "apps"


@dataclass
class Webhooks:
    """POSTs AdmissionReview documents to the operator's webhook server."""

    url: str
    context: ssl.SSLContext

    def review(
        self,
        handler: str,
        obj: dict[str, Any],
        *,
        resource: tuple[str, str, str],
        operation: str = "CREATE",
        namespace: str = NS,
    ) -> dict[str, Any]:
        group, version, plural = resource
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "5f0c1d2e-0000-4000-8000-00000000000f",
                "kind": {"group": group, "version": version, "kind": obj.get("kind", "")},
                "resource": {"group": group, "version": version, "resource": plural},
                "namespace": namespace,
                "operation": operation,
                "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
                "object": obj,
                "oldObject": None,
                "dryRun": False,
            },
        }
        request = urllib.request.Request(
            f"{self.url}/{handler}",
            data=json.dumps(review).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, context=self.context, timeout=10) as answer:
            body: dict[str, Any] = json.loads(answer.read())
        return body
