"""``tierwise render -f``: YAML on success, field-path errors and exit 1 otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from render_helpers import INPUTS, input_files, load_md
from router_helpers import EXAMPLES, ROUTER_KINDS, load_inputs

from tierwise.cli import main
from tierwise.manifests import render_model_deployment, render_routing_policy
from tierwise.manifests.router_config import router_config

ROUTING_POLICY = """
apiVersion: tierwise.dev/v1alpha1
kind: RoutingPolicy
metadata: {name: tiers}
spec:
  tiers:
    - name: small
      backends: [{modelDeployment: small}]
  defaultTier: small
"""


def test_valid_files_print_the_rendered_objects(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-f", str(INPUTS)]) == 0
    out = capsys.readouterr().out
    expected = [o for p in input_files() for o in render_model_deployment(load_md(p))]
    assert list(yaml.safe_load_all(out)) == expected


@pytest.mark.parametrize("replicas", [0, 2])
def test_replicas_flag_sets_the_deployment_replicas(
    replicas: int, capsys: pytest.CaptureFixture[str]
) -> None:
    source = INPUTS / "vllm-single-gpu.yaml"
    assert main(["render", "-f", str(source), "--replicas", str(replicas)]) == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    assert objects[0]["spec"]["replicas"] == replicas


def test_unicode_values_survive_the_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-f", str(INPUTS / "sglang-custom-args.yaml")]) == 0
    out = capsys.readouterr().out
    assert "débug-ünicode" in out


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "apiVersion: tierwise.dev/v1alpha1\nkind: ModelDeployment\nmetadata: {name: x}\n"
            "spec: {model: {uri: 'ftp://x'}, engine: {name: vllm}}\n",
            "spec.model.uri",
        ),
        (
            "apiVersion: tierwise.dev/v1alpha1\nkind: ModelDeployment\nmetadata: {name: x}\n"
            "spec: {model: {uri: 'hf://a/b'}, engine: {name: vllm, args: ['--port', '1']}}\n",
            "spec.engine.args[0]",
        ),
        ("key: [unclosed\n", "malformed YAML"),
        ("", "no ModelDeployment"),
    ],
)
def test_errors_name_the_field_and_print_no_objects(
    tmp_path: Path, text: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "md.yaml"
    source.write_text(text, encoding="utf-8")
    code = main(["render", "-f", str(source)])
    captured = capsys.readouterr()
    assert needle in captured.err
    assert captured.out == ""
    assert code == (0 if needle == "no ModelDeployment" else 1)


def test_missing_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-f", str(tmp_path / "absent.yaml")]) == 1
    assert "no such file" in capsys.readouterr().err


def _policy_document(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (configmap,) = [o for o in objects if o["kind"] == "ConfigMap"]
    return dict(json.loads(configmap["data"]["policy.json"]))


@pytest.mark.parametrize(
    ("namespace", "found"), [("llm", True), (None, False)], ids=["same-namespace", "other"]
)
def test_routing_policies_print_their_router_objects(
    namespace: str | None, found: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The policy's ModelDeployment (namespace llm) is in the same input: the document names
    it when the policy is in the same namespace, and lists it as missing otherwise."""
    source = tmp_path / "both.yaml"
    model = (INPUTS / "vllm-single-gpu.yaml").read_text(encoding="utf-8")
    name = load_md(INPUTS / "vllm-single-gpu.yaml").metadata.name
    policy = ROUTING_POLICY.replace("modelDeployment: small", f"modelDeployment: {name}")
    if namespace:
        policy = policy.replace("{name: tiers}", f"{{name: tiers, namespace: {namespace}}}")
    source.write_text(model + "---" + policy, encoding="utf-8")
    assert main(["render", "-f", str(source)]) == 0
    captured = capsys.readouterr()
    objects = list(yaml.safe_load_all(captured.out))
    # the engine's Deployment and Service, then the router's (no PodMonitor by default)
    assert [o["kind"] for o in objects] == ["Deployment", "Service", *ROUTER_KINDS[:-1]]
    document = _policy_document(objects)
    assert list(document["backends"]) == ([name] if found else [])
    assert document["missing"] == ([] if found else [name])
    assert (captured.err == "") == found


def test_the_example_policy_prints_what_the_operator_applies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = EXAMPLES / "03-three-tier-routing"
    assert main(["render", "-f", str(folder)]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    inputs = load_inputs(folder)
    by_name = {md.metadata.name: md for md in inputs.deployments}
    expected = render_routing_policy(inputs.policy, router_config(inputs.policy, by_name))
    assert printed[-len(expected) :] == expected


def test_a_missing_model_deployment_is_listed_and_noted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "policy.yaml"
    source.write_text(ROUTING_POLICY, encoding="utf-8")
    assert main(["render", "-f", str(source)]) == 0
    captured = capsys.readouterr()
    assert _policy_document(list(yaml.safe_load_all(captured.out)))["missing"] == ["small"]
    assert "RoutingPolicy/tiers: ModelDeployment 'small' is not in the input" in captured.err


def test_a_sidecar_policy_prints_its_configmap_and_role_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "policy.yaml"
    source.write_text(ROUTING_POLICY + "  router: {mode: sidecar}\n", encoding="utf-8")
    assert main(["render", "-f", str(source)]) == 0
    captured = capsys.readouterr()
    assert [o["kind"] for o in yaml.safe_load_all(captured.out)] == ["ConfigMap", "Role"]
    assert "injected into pods labelled tierwise.dev/routing-policy=tiers" in captured.err
