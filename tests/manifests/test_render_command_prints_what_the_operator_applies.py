"""``tierwise render -f``: YAML on success, field-path errors and exit 1 otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from render_helpers import INPUTS, input_files, load_md

from tierwise.cli import main
from tierwise.manifests import render_model_deployment

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


def test_routing_policies_are_skipped_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "both.yaml"
    model = (INPUTS / "vllm-single-gpu.yaml").read_text(encoding="utf-8")
    source.write_text(model + "---" + ROUTING_POLICY, encoding="utf-8")
    assert main(["render", "-f", str(source)]) == 0
    captured = capsys.readouterr()
    assert "RoutingPolicy/tiers: skipped" in captured.err
    assert [o["kind"] for o in yaml.safe_load_all(captured.out)] == ["Deployment", "Service"]
