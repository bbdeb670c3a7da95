"""The objects tests/operator_scenario.py applies: ModelDeployments and RoutingPolicies
that between them make the operator use every kind of API request it has."""

from __future__ import annotations

from typing import Any

NS = "apps"
GROUP, VERSION = "tierwise.dev", "v1alpha1"
FAST = {
    "interval": "1s",
    "scaleDownWindow": "2s",
    "scaleToZeroAfter": "3s",
    "targetQueueDepth": 3,
    "metrics": {"staleAfter": "5s"},
}



def md(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}  # fmt: skip


def rp(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RoutingPolicy",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}  # fmt: skip


CHAT = md("chat", {
    "model": {"uri": "hf://Qwen/Qwen2.5-0.5B", "servedName": "chat",
              "tokenSecretRef": {"name": "hf-token", "key": "token"}},
    "engine": {"name": "vllm"},
    "replicas": {"min": 1, "max": 3},
    "autoscaling": FAST,
    "monitoring": {"podMonitor": True},
})  # fmt: skip
WEIGHTS = md("weights", {
    "model": {"uri": "pvc://weights/qwen"}, "engine": {"name": "sglang"},
    "replicas": {"min": 1, "max": 1}, "autoscaling": {"enabled": False},
    "monitoring": {"podMonitor": True},
})  # fmt: skip
GATEWAY = rp("gateway", {
    "models": ["auto"],
    "tiers": [
        {"name": "small", "backends": [{"modelDeployment": "chat"}]},
        {"name": "frontier", "backends": [{"external": {
            "baseURL": "http://frontier.invalid/v1", "model": "big",
            "apiKeySecretRef": {"name": "frontier-key", "key": "api-key"}}}],
         "price": {"inputPerMillionTokens": 2.0, "outputPerMillionTokens": 8.0}},
    ],
    "defaultTier": "small",
    "fallback": {"overloadQueueDepth": 100000},
    "router": {"replicas": 1},
})  # fmt: skip
SIDECAR = rp("sidecar", {
    "tiers": [{"name": "small", "backends": [{"modelDeployment": "chat"}]}],
    "router": {"mode": "sidecar"},
})  # fmt: skip
BROKEN = md("broken", {
    "model": {"uri": "hf://Qwen/Qwen2.5-0.5B"},
    "engine": {"name": "vllm", "args": ["--port", "9000"]},
})  # fmt: skip
"""Admitted (the emulated API server calls no webhook), refused by the operator: a Stalled
spec, as on a cluster installed without the validating webhook."""
DANGLING = rp("dangling", {
    "tiers": [{"name": "only", "backends": [{"modelDeployment": "ghost"}]}],
    "router": {"replicas": 1},
})  # fmt: skip
"""Names a ModelDeployment that does not exist: Degraded, waiting for it."""
APP_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "app", "namespace": NS,
                 "labels": {"tierwise.dev/routing-policy": "sidecar"}},
    "spec": {"serviceAccountName": "app",
             "containers": [{"name": "app", "image": "example/app:1"}]},
}  # fmt: skip
