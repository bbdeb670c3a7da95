"""The router (gateway pod or sidecar) mounts exactly the Secrets the policy references, only
the referenced keys, read-only under the secrets folder; never a Secret value anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from router_helpers import (
    CANARY,
    EXAMPLES,
    ROUTER_INPUTS,
    by_kind,
    policies_in,
    referenced,
    routing_policies,
)

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.cli import main
from tierwise.manifests.router import RouterRenderSettings, render_routing_policy
from tierwise.manifests.router_config import router_config
from tierwise.manifests.router_pod import router_volumes
from tierwise.manifests.sidecar import sidecar_container

SECRETS_DIR = RouterRenderSettings().secrets_dir


def _secret_mounts(container: dict[str, Any], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    """Secret name -> (keys projected, mount) for every Secret volume the container mounts."""
    by_name = {v["name"]: v for v in volumes}
    out: dict[str, Any] = {}
    for mount in container["volumeMounts"]:
        source = by_name[mount["name"]].get("secret")
        if source is not None:
            keys = {item["key"] for item in source["items"]}
            assert all(item["path"] == item["key"] for item in source["items"])
            out[source["secretName"]] = (keys, mount)
    return out


def _check(rp: RoutingPolicy, container: dict[str, Any], volumes: list[dict[str, Any]]) -> None:
    mounts = _secret_mounts(container, volumes)
    wanted = referenced(rp)
    assert {name: keys for name, (keys, _) in mounts.items()} == wanted
    for name, (_, mount) in mounts.items():
        assert mount["mountPath"] == f"{SECRETS_DIR}/{name}"
        assert mount["readOnly"] is True
    secret_volumes = [v for v in volumes if "secret" in v]
    assert len(secret_volumes) == len(wanted)  # nothing mounted twice, nothing unmounted


@settings(max_examples=80, deadline=None)
@given(policies_in("gateway"))
def test_gateway_pod_mounts_exactly_the_referenced_secret_keys(rp: RoutingPolicy) -> None:
    objects = render_routing_policy(rp, router_config(rp, {}))
    pod = by_kind(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    _check(rp, container, pod["volumes"])


@settings(max_examples=80, deadline=None)
@given(routing_policies())
def test_sidecar_mounts_exactly_the_referenced_secret_keys(rp: RoutingPolicy) -> None:
    settings_ = RouterRenderSettings()
    _check(rp, sidecar_container(rp, settings_), router_volumes(rp, settings_))


@pytest.mark.parametrize(
    ("source", "secret"),
    [(EXAMPLES, "frontier-api-key"), (ROUTER_INPUTS, "provider.keys")],
    ids=["examples", "router-inputs"],
)
def test_a_canary_key_in_a_secret_never_reaches_the_output(
    source: Path, secret: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The inputs plus Secrets holding a canary under every name the policies reference:
    ``tierwise render`` prints the objects (with the Secret names) but never the value."""
    secrets = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "stringData": dict.fromkeys(["api-key", "primary", "secondary", "keys"], CANARY),
        }
        for name in ["frontier-api-key", "demo-frontier-key", "provider.keys", "assistant-clients"]
    ]
    extra = tmp_path / "secrets.yaml"
    extra.write_text("\n---\n".join(json.dumps(s) for s in secrets), encoding="utf-8")
    assert main(["render", "-f", str(source), "-f", str(extra)]) == 0
    captured = capsys.readouterr()
    assert secret in captured.out  # the reference is there, so the Secret was in scope
    assert CANARY not in captured.out
    assert CANARY not in captured.err
