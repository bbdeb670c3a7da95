"""The local kubelet resolves env, volumes and command lines as kubelet does."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from tierwise.local.kubelet import tierwise_container
from tierwise.local.kubelet_files import DATA, AtomicDir, mount
from tierwise.local.podspec import (
    DUMMY_TOKEN,
    NotReadyError,
    UnsupportedError,
    container_env,
    expand,
    rewrite_args,
    volume_files,
)

NS = "apps"
POD: dict[str, Any] = {
    "metadata": {"name": "router-abc", "namespace": NS, "uid": "u-1",
                 "labels": {"app": "router"}, "annotations": {"note": "ünïcode"}},
    "spec": {"nodeName": "tierwise-local", "serviceAccountName": "router"},
    "status": {"podIP": "127.0.0.1"},
}
OBJECTS: dict[tuple[str, str], dict[str, Any]] = {
    ("ConfigMap", "policy"): {"data": {"policy.json": "{}", "extra": "x"},
                              "binaryData": {"blob": base64.b64encode(b"\x00\x01").decode()}},
    ("Secret", "frontier"): {"data": {"api-key": base64.b64encode(b"sk-1").decode()},
                             "stringData": {"plain": "p"}},
}


def lookup(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    assert namespace == NS
    return OBJECTS.get((kind, name))


@pytest.mark.parametrize(("var", "expected"), [
    ({"name": "A", "value": "plain"}, "plain"),
    ({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}, NS),
    ({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, "router-abc"),
    ({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}, "127.0.0.1"),
    ({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
     "router"),
    ({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
     "ünïcode"),
    ({"name": "A", "valueFrom": {"secretKeyRef": {"name": "frontier", "key": "api-key"}}},
     "sk-1"),
    ({"name": "A", "valueFrom": {"secretKeyRef": {"name": "frontier", "key": "plain"}}}, "p"),
    ({"name": "A", "valueFrom": {"configMapKeyRef": {"name": "policy", "key": "extra"}}}, "x"),
    ({"name": "A", "value": ""}, ""),
], ids=["value", "namespace", "name", "pod-ip", "label", "annotation", "secret", "string-data",
        "configmap", "empty"])
def test_an_env_var_resolves_from_its_source(var: dict[str, Any], expected: str) -> None:
    assert container_env({"env": [var]}, POD, lookup) == {"A": expected}


def test_env_from_and_expansion_follow_kubernetes_order() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "policy"}, "prefix": "CM_"}],
        "env": [{"name": "B", "value": "$(CM_extra)-$(UNDEFINED)-$$(CM_extra)"},
                {"name": "CM_extra", "value": "overridden"}],
    }
    env = container_env(container, POD, lookup)
    assert env["B"] == "x-$(UNDEFINED)-$(CM_extra)"
    assert env["CM_extra"] == "overridden"
    assert "CM_policy.json" in env
    assert expand("--ns=$(NS) $$HOME", {"NS": "a"}) == "--ns=a $HOME"


@pytest.mark.parametrize(("ref", "reason"), [
    ({"secretKeyRef": {"name": "missing", "key": "k"}}, "CreateContainerConfigError"),
    ({"secretKeyRef": {"name": "frontier", "key": "nope"}}, "CreateContainerConfigError"),
])
def test_a_missing_env_source_keeps_the_pod_waiting(ref: dict[str, Any], reason: str) -> None:
    with pytest.raises(NotReadyError) as caught:
        container_env({"env": [{"name": "A", "valueFrom": ref}]}, POD, lookup)
    assert caught.value.reason == reason


def test_an_optional_missing_env_source_is_skipped() -> None:
    ref = {"secretKeyRef": {"name": "missing", "key": "k", "optional": True}}
    assert container_env({"env": [{"name": "A", "valueFrom": ref}]}, POD, lookup) == {}


def test_a_config_map_volume_honours_items_and_modes() -> None:
    volume = {"name": "v", "configMap": {"name": "policy", "defaultMode": 0o440, "items": [
        {"key": "policy.json", "path": "config/policy.json"},
        {"key": "blob", "path": "blob.bin", "mode": 0o400}]}}
    assert volume_files(volume, POD, lookup) == {"config/policy.json": (b"{}", 0o440),
                                                 "blob.bin": (b"\x00\x01", 0o400)}


def test_a_secret_volume_decodes_data_and_string_data() -> None:
    volume = {"name": "v", "secret": {"secretName": "frontier"}}
    assert volume_files(volume, POD, lookup) == {"api-key": (b"sk-1", 0o644),
                                                 "plain": (b"p", 0o644)}


def test_a_projected_volume_combines_its_sources() -> None:
    volume = {"name": "kube-api-access", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt",
                                                               "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}
    files = volume_files(volume, POD, lookup)
    assert files == {"token": (DUMMY_TOKEN, 0o644), "ca.crt": (b"", 0o644),
                     "namespace": (NS.encode(), 0o644)}


@pytest.mark.parametrize(("volume", "error", "message"), [
    ({"name": "v", "configMap": {"name": "absent"}}, NotReadyError, 'configmap "absent"'),
    ({"name": "v", "secret": {"secretName": "frontier", "items": [{"key": "x", "path": "x"}]}},
     NotReadyError, 'no key "x"'),
    ({"name": "v", "hostPath": {"path": "/var/log"}}, UnsupportedError, "hostPath volumes"),
])
def test_volumes_that_cannot_be_written_say_why(
    volume: dict[str, Any], error: type[Exception], message: str,
) -> None:
    with pytest.raises(error, match=message):
        volume_files(volume, POD, lookup)


def test_optional_and_empty_dir_volumes() -> None:
    assert volume_files({"name": "v", "configMap": {"name": "absent", "optional": True}},
                        POD, lookup) == {}
    assert volume_files({"name": "tmp", "emptyDir": {}}, POD, lookup) is None


def test_arguments_point_into_the_pod_root_and_local_port() -> None:
    argv = ["tierwise", "router", "--config-file", "/etc/tierwise/config/policy.json",
            "--secrets-dir", "/var/run/secrets/tierwise", "--host", "0.0.0.0", "--port", "8080",
            "--table=/etc/tierwise/config/t.json", "--log-level", "info", "/etc/passwd",
            "--host=::"]
    mounts = ["/etc/tierwise/config", "/var/run/secrets/tierwise/frontier", "/tmp"]
    assert rewrite_args(argv, root="/R", mounts=mounts, port=41000) == [
        "tierwise", "router", "--config-file", "/R/etc/tierwise/config/policy.json",
        "--secrets-dir", "/R/var/run/secrets/tierwise", "--host", "127.0.0.1",
        "--port", "41000", "--table=/R/etc/tierwise/config/t.json", "--log-level", "info",
        "/etc/passwd", "--host=127.0.0.1"]


def test_the_tierwise_container_is_found_sidecar_first() -> None:
    app = {"name": "app", "command": ["python", "app.py"]}
    router = {"name": "tierwise-router", "command": ["tierwise", "router"],
              "restartPolicy": "Always"}
    gateway = {"name": "router", "command": ["/usr/local/bin/tierwise", "router"]}
    assert tierwise_container({"spec": {"initContainers": [router], "containers": [app]}}) \
        == router
    assert tierwise_container({"spec": {"containers": [app, gateway]}}) == gateway
    assert tierwise_container({"spec": {"containers": [app]}}) is None
    init_job = dict(router, restartPolicy=None)
    assert tierwise_container({"spec": {"initContainers": [init_job], "containers": [app]}}) \
        is None


def test_an_atomic_update_never_shows_a_reader_half_a_file(tmp_path: Path) -> None:
    folder = AtomicDir(tmp_path / "v")
    folder.write({"api-key": (b"old", 0o644), "nested/a.json": (b"{}", 0o600)})
    assert (tmp_path / "v" / "api-key").read_bytes() == b"old"
    assert (tmp_path / "v" / "nested" / "a.json").read_bytes() == b"{}"
    assert os.readlink(tmp_path / "v" / "api-key") == f"{DATA}/api-key"
    with (tmp_path / "v" / "api-key").open("rb") as reader:
        assert folder.write({"api-key": (b"new", 0o644)})
        assert reader.read() == b"old"  # an open file keeps its content
    assert (tmp_path / "v" / "api-key").read_bytes() == b"new"
    assert not (tmp_path / "v" / "nested").exists()
    assert len([p for p in (tmp_path / "v").iterdir() if p.name.startswith("..2")]) == 1
    assert not folder.write({"api-key": (b"new", 0o644)})  # unchanged: nothing written
    assert folder.updates == 2


def test_mount_paths_become_links_in_the_pod_root(tmp_path: Path) -> None:
    volume = tmp_path / "volumes" / "config"
    volume.mkdir(parents=True)
    (volume / "policy.json").write_text("{}")
    mount(tmp_path / "root", "/etc/tierwise/config", volume)
    assert (tmp_path / "root/etc/tierwise/config/policy.json").read_text() == "{}"
    with pytest.raises(UnsupportedError, match="inside another mount"):
        mount(tmp_path / "root", "/etc/tierwise/config/nested", volume)
    with pytest.raises(UnsupportedError, match="invalid"):
        AtomicDir(tmp_path / "bad").write({"../escape": (b"", 0o644)})
