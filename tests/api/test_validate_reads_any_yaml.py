"""``tierwise validate`` on odd input: empty files, Unicode, other kinds, wrong shapes.

Every case ends in a clear line and an exit code, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tierwise.cli import main

MD = """\
apiVersion: tierwise.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: {name}
spec:
  model:
    uri: hf://Qwen/Qwen3-8B
  engine:
    name: vllm
    args: [{arg}]
"""

CASES = [
    # (file text, exit code, text expected in stdout+stderr)
    ("", 0, "0 resource(s) valid"),
    ("---\n---\n", 0, "0 resource(s) valid"),
    (MD.format(name="qwen", arg='"--chat-template=/模板/chat.jinja"'), 0, "1 resource(s) valid"),
    (
        MD.format(name="qwen", arg='"--served-model-name=模型"'),
        1,
        "spec.engine.args[0]: --served-model-name is managed by Tierwise",
    ),
    (MD.format(name="Qwen_ß", arg=""), 1, "ModelDeployment/Qwen_ß: metadata.name: 'Qwen_ß'"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", 0, "1 non-Tierwise object"),
    (
        "apiVersion: tierwise.dev/v1alpha1\nkind: Router\nmetadata: {name: r}\n",
        1,
        "Router/r: kind: unknown kind 'Router' in group tierwise.dev; use ModelDeployment",
    ),
    (MD.replace("v1alpha1", "v1"), 1, "apiVersion: 'tierwise.dev/v1' is not served"),
    ("- a\n- b\n", 1, "document 1: a document must be a mapping"),
    ("just text\n", 1, "document 1: a document must be a mapping"),
    ("metadata: {name: x}\n", 1, "document 1: a document needs apiVersion and kind"),
    ("a: [1, 2\n", 1, "document 1: malformed YAML at line 2"),
    (
        "kind: ModelDeployment\napiVersion: tierwise.dev/v1alpha1\nmetadata: {name: x}\n",
        1,
        "ModelDeployment/x: spec: is required; add it",
    ),
]


@pytest.mark.parametrize(("text", "code", "expected"), CASES)
def test_odd_documents_get_a_clear_answer(
    text: str, code: int, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "input.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["validate", "-f", str(path)]) == code
    out, err = capsys.readouterr()
    assert expected in out + err
    assert "Traceback" not in err


def test_missing_file_and_empty_folder_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "-f", str(tmp_path / "nope.yaml")]) == 1
    assert "no such file or directory; check the path" in capsys.readouterr().err
    assert main(["validate", "-f", str(tmp_path)]) == 1
    assert "no YAML files found" in capsys.readouterr().err
