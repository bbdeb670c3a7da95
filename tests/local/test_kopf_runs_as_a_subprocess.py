"""A kopf operator module runs as ``python -m kopf run --standalone`` against the cluster."""

from __future__ import annotations

import pathlib
import textwrap

import kubernetes.client
import pytest

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.kopf_runner import KopfProcess
from tierwise.local.testing import wait_for

OPERATOR = textwrap.dedent('''
    import kopf

    @kopf.on.create("v1", "configmaps")
    def created(patch, **_):
        patch.metadata.setdefault("labels", {})["seen-by"] = "kopf"
''')


@pytest.mark.slow
def test_a_kopf_subprocess_reacts_to_a_create(
    cluster: EmulatedCluster, core: kubernetes.client.CoreV1Api, tmp_path: pathlib.Path,
) -> None:
    module = tmp_path / "operator.py"
    module.write_text(OPERATOR)
    with KopfProcess(str(module), kubeconfig=cluster.kubeconfig_path):
        core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
        wait_for(lambda: (core.read_namespaced_config_map("cm", "default").metadata.labels
                          or {}).get("seen-by") == "kopf", timeout=20, message="kopf's patch")
