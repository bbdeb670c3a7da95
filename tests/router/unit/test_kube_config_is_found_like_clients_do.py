"""The router finds the API the way kubectl and client-go do, for the subset it supports:
KUBECONFIG's current context (token, tokenFile, CA file or data, insecure-skip-tls-verify,
namespace), else the pod's service account; it says clearly what it cannot use."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from tierwise.router.kubeapi import KubeConfigError, load_kube_config


def write_kubeconfig(path: Path, user: dict[str, Any], cluster: dict[str, Any]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "here",
        "contexts": [
            {"name": "elsewhere", "context": {"cluster": "x", "user": "x"}},
            {"name": "here", "context": {"cluster": "c", "user": "u", "namespace": "models"}},
        ],
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_current_context_with_token_file_and_ca_file(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config",
        {"tokenFile": "token"},
        {"server": "https://api.example:6443/", "certificate-authority": "ca.crt"},
    )
    config = load_kube_config({"KUBECONFIG": f"{tmp_path / 'absent'}:{path}"})
    assert config.server == "https://api.example:6443"
    assert config.token_file == str(tmp_path / "token")  # relative to the kubeconfig
    assert config.ca_file == str(tmp_path / "ca.crt")
    assert config.namespace == "models"
    assert not config.insecure


def test_inline_token_ca_data_and_insecure(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    path = write_kubeconfig(
        tmp_path / "config",
        {"token": "s3cret-token"},
        {
            "server": "https://10.0.0.1",
            "certificate-authority-data": base64.b64encode(pem.encode()).decode(),
            "insecure-skip-tls-verify": True,
        },
    )
    config = load_kube_config({"KUBECONFIG": str(path)})
    assert (config.token, config.ca_data, config.insecure) == ("s3cret-token", pem, True)
    assert "s3cret-token" not in repr(config)


@pytest.mark.parametrize(
    ("user", "cluster", "message"),
    [
        ({"client-certificate": "c", "client-key": "k"}, {"server": "https://x"}, "token"),
        ({"exec": {"command": "aws"}}, {"server": "https://x"}, "exec plugin"),
        ({"token": "t"}, {"server": "ftp://x"}, r"no http\(s\) server"),
    ],
)
def test_unsupported_kubeconfigs_say_why(
    tmp_path: Path, user: dict[str, Any], cluster: dict[str, Any], message: str
) -> None:
    path = write_kubeconfig(tmp_path / "config", user, cluster)
    with pytest.raises(KubeConfigError, match=message):
        load_kube_config({"KUBECONFIG": str(path)})


def test_missing_context_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({"current-context": "nope", "contexts": []}))
    with pytest.raises(KubeConfigError, match="no context named 'nope'"):
        load_kube_config({"KUBECONFIG": str(path)})


@pytest.mark.parametrize(
    ("host", "server"),
    [("10.96.0.1", "https://10.96.0.1:443"), ("fd00::1", "https://[fd00::1]:443")],
)
def test_in_cluster_service_account(tmp_path: Path, host: str, server: str) -> None:
    (tmp_path / "token").write_text("t")
    (tmp_path / "ca.crt").write_text("pem")
    (tmp_path / "namespace").write_text("team-a\n")
    env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": "443"}
    config = load_kube_config(env, service_account_dir=str(tmp_path))
    assert config.server == server
    assert config.token_file == str(tmp_path / "token")
    assert config.ca_file == str(tmp_path / "ca.crt")
    assert config.namespace == "team-a"


@pytest.mark.parametrize(
    ("env", "message"),
    [({}, "set KUBECONFIG"), ({"KUBECONFIG": "/nonexistent/config"}, "no such file")],
)
def test_no_api_is_an_error_saying_what_to_set(env: dict[str, str], message: str) -> None:
    with pytest.raises(KubeConfigError, match=message):
        load_kube_config(env)
