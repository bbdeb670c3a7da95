"""The host side of the image's operator smoke test (run by ``scripts/image-smoke.sh``).

The operator in the container needs a cluster to reconcile against; CI has none, so this
starts the embedded :class:`~tierwise.local.cluster.EmulatedCluster` on the host (loopback,
fake pods that are Ready at once), installs the real CRDs, applies a ModelDeployment and
writes the kubeconfig the container mounts. It then waits until the operator *in the
container* has reconciled the object: its Deployment exists, owned by the ModelDeployment,
and its status carries ``observedGeneration``. Nothing else on the host reconciles, so a
pass proves the image's operator works. Exit status 0 on success, 1 on timeout (with what
was seen), so the shell script needs no Kubernetes client.

Usage: ``python tests/image/operator_smoke_cluster.py --kubeconfig DIR/config
--manifest examples/01-small-vllm/modeldeployment.yaml [--timeout 90]``
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes.client
import yaml

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.workloads import FakeBackend

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "default"
GROUP, VERSION, PLURAL = "tierwise.dev", "v1alpha1", "modeldeployments"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write it")
    parser.add_argument("--manifest", type=Path, required=True, help="one ModelDeployment")
    parser.add_argument("--timeout", type=float, default=90.0, metavar="SECONDS")
    return parser.parse_args(argv)


def reconciled(api: kubernetes.client.ApiClient, name: str, uid: str) -> dict[str, Any] | None:
    """What the operator wrote, once both its Deployment and its status exist."""
    custom = kubernetes.client.CustomObjectsApi(api)
    md = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    status = md.get("status") or {}
    if status.get("observedGeneration") != md["metadata"]["generation"]:
        return None
    selector = f"{GROUP}/model-deployment={name}"
    apps = kubernetes.client.AppsV1Api(api)
    for deployment in apps.list_namespaced_deployment(NAMESPACE, label_selector=selector).items:
        owners = deployment.metadata.owner_references or []
        if any(ref.uid == uid and ref.controller for ref in owners):
            return {"deployment": deployment.metadata.name, "status": status}
    return None


def publish(source: Path, target: Path) -> None:
    """Copy the kubeconfig into place atomically: its appearance tells the shell script that
    the CRDs and the object exist, and the container (uid 65532) must be able to read it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(source.read_text())
    partial.chmod(0o644)
    partial.replace(target)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The shell script stops this with SIGTERM on failure: unwind so the cluster's temporary
    # files go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    body = yaml.safe_load(args.manifest.read_text())
    name = body["metadata"]["name"]
    with EmulatedCluster(workloads=FakeBackend()) as cluster:
        cluster.install_crd_files(sorted((ROOT / "crds").glob("*.yaml")))
        with cluster.api_client() as api:
            custom = kubernetes.client.CustomObjectsApi(api)
            created = custom.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, body
            )
            publish(cluster.kubeconfig_path, args.kubeconfig)
            print(f"cluster ready at {cluster.url}; applied ModelDeployment {name}", flush=True)
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                seen = reconciled(api, name, created["metadata"]["uid"])
                if seen is not None:
                    print("reconciled: " + json.dumps(seen, sort_keys=True), flush=True)
                    return 0
                time.sleep(0.5)
            last = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    print(
        f"not reconciled within {args.timeout:.0f}s; last object: {json.dumps(last)}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
