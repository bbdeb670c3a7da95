"""Helpers of the cluster-mode router tests: EndpointSlices and the policy ConfigMap written
straight into an embedded cluster (its EndpointSlice controller is not what is tested
here), and a router process pointed at it through KUBECONFIG."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from router_harness import RouterProcess, spawn_router

from tierwise.api.router_config import CONFIG_KEY, BackendInfo, RouterConfig, dump_config
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.local.cluster import EmulatedCluster
from tierwise.manifests.router_config import router_config

NAMESPACE = "default"
CONFIG_MAP = "rp-router"
SLICES = f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices"
CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"


def document(policy: dict[str, Any], services: dict[str, str]) -> RouterConfig:
    """The policy document for ``policy`` whose ModelDeployments are behind ``services``
    (ModelDeployment name -> Service name), each serving its own name as the model."""
    config = router_config(RoutingPolicy.model_validate(policy), {})
    backends = {
        md: BackendInfo(service=service, served_model_name=md) for md, service in services.items()
    }
    return config.model_copy(update={"backends": backends, "missing": []})


def replica(pod: str, url: str, *, ready: bool = True, terminating: bool = False) -> dict[str, Any]:
    """One EndpointSlice endpoint for a simulator at ``url`` (its port goes on the slice)."""
    return {
        "addresses": [url.split("//")[1].split(":")[0]],
        "conditions": {"ready": ready, "serving": ready or terminating, "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": NAMESPACE, "name": pod},
    }


def endpoint_slice(
    name: str, service: str, url: str, endpoints: list[dict[str, Any]]
) -> dict[str, Any]:
    """A slice of ``service`` whose endpoints all listen on ``url``'s port (the processes
    share 127.0.0.1, so each port gets its own slice, as the real controller groups them)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/service-name": service,
                "tierwise.dev/model-deployment": service,
                "endpointslice.kubernetes.io/managed-by": "tests",
            },
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": int(url.rsplit(":", 1)[1]), "protocol": "TCP"}],
        "endpoints": endpoints,
    }


class Kube:
    """Blocking writes into the cluster (the router watches them)."""

    def __init__(self, cluster: EmulatedCluster) -> None:
        self.url = cluster.url

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status: int = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        return status

    def put(self, collection: str, body: dict[str, Any]) -> None:
        """Create or replace the object named in ``body``."""
        name = body["metadata"]["name"]
        if self._call("PUT", f"{collection}/{name}", body) == 404:
            assert self._call("POST", collection, body) == 201

    def delete(self, collection: str, name: str) -> None:
        assert self._call("DELETE", f"{collection}/{name}") == 200

    def put_slice(self, slice_body: dict[str, Any]) -> None:
        self.put(SLICES, slice_body)

    def put_config(self, config: RouterConfig) -> None:
        self.put(
            CONFIGMAPS,
            {"metadata": {"name": CONFIG_MAP}, "data": {CONFIG_KEY: dump_config(config)}},
        )


def start_cluster_router(
    directory: Path, kubeconfig: Path, config: RouterConfig, *args: str
) -> RouterProcess:
    """``tierwise router --config-map rp-router --config-file F --discovery kubernetes``,
    the arguments the operator renders, with F holding ``config`` (kubelet's copy)."""
    path = directory / "policy.json"
    path.write_text(dump_config(config))
    argv = [
        "--config-map",
        CONFIG_MAP,
        "--config-file",
        str(path),
        *(args or ("--discovery", "kubernetes")),
        "--namespace",
        NAMESPACE,
    ]
    return spawn_router(directory, argv, path, env={"KUBECONFIG": str(kubeconfig)})
