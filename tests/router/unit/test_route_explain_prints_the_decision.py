"""``tierwise route explain``: the same decision as the router, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tierwise.cli import main

EXAMPLE = Path(__file__).parents[3] / "examples" / "03-three-tier-routing" / "routingpolicy.yaml"


def write(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else orjson.dumps(content))
    return str(path)


def chat(text: str, model: str = "auto") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def explain(tmp_path: Path, body: Any, *extra: str) -> list[str]:
    if "--classifier" not in extra:  # the real model is tested under the classifier marker
        extra = (*extra, "--classifier", "off")
    return [
        "route",
        "explain",
        "--policy",
        str(EXAMPLE),
        "--request",
        write(tmp_path, "req.json", body),
        *extra,
    ]


@pytest.mark.parametrize(
    ("body", "extra", "tier", "rule"),
    [
        (chat("refactor this function"), [], "mid", "code"),
        (chat("hello"), [], "frontier", "default"),
        (chat("hello"), ["--header", "X-Tierwise-Tier: frontier"], "frontier", "pinned-frontier"),
        (chat("héllo wörld 日本語"), [], "frontier", "default"),
        pytest.param(
            chat("Which country is Paris the capital of?"),
            ["--classifier", "model"],
            "small",
            "calibrated-small",
            marks=pytest.mark.classifier,
        ),
        pytest.param(
            chat(
                "A train leaves at 3 pm at 60 mph and another at 4 pm at 80 mph; when and "
                "where does the second catch up, if the first had a 25 mile head start?"
            ),
            ["--classifier", "model"],
            "frontier",
            "default",
            marks=pytest.mark.classifier,
        ),
        (chat("word " * 5000), [], "mid", "long-prompts"),
    ],
)
def test_decision_as_json(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    body: dict[str, Any],
    extra: list[str],
    tier: str,
    rule: str,
) -> None:
    assert main([*explain(tmp_path, body, *extra), "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert (out["tier"], out["rule"]) == (tier, rule)
    assert out["reason"]


def test_text_output_with_endpoints_names_the_replica(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eps = tmp_path / "ep.yaml"
    eps.write_text("qwen3-8b: [http://127.0.0.1:8001/v1]\nqwen3-32b: http://127.0.0.1:8003\n")
    body = chat("refactor this function")
    assert main([*explain(tmp_path, body), "--endpoints", str(eps)]) == 0
    out = capsys.readouterr().out
    assert "tier:    mid" in out
    assert "backend: qwen3-32b" in out
    assert "replica: http://127.0.0.1:8003 (prefix-aware" in out
    assert "note:    tier classifier off (--classifier off)" in out


def test_replica_named_in_the_endpoints_file_is_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eps = tmp_path / "ep.yaml"
    eps.write_text(
        "qwen3-8b: http://127.0.0.1:8001\n"
        "qwen3-32b: [{url: 'http://127.0.0.1:8003', name: qwen3-32b-5f7c-x2k9q}]\n"
    )
    code = chat("refactor this function")  # the example's `code` rule: the mid tier
    assert main([*explain(tmp_path, code), "--endpoints", str(eps)]) == 0
    assert "replica: qwen3-32b-5f7c-x2k9q at http://127.0.0.1:8003 (" in capsys.readouterr().out
    assert main([*explain(tmp_path, code), "--endpoints", str(eps), "--json"]) == 0
    replica = orjson.loads(capsys.readouterr().out)["replica"]
    assert (replica["name"], replica["url"]) == ("qwen3-32b-5f7c-x2k9q", "http://127.0.0.1:8003")


def _pinning_policy(tmp_path: Path, allow: bool) -> str:
    policy = tmp_path / "rp.yaml"
    policy.write_text(
        "apiVersion: tierwise.dev/v1alpha1\nkind: RoutingPolicy\nmetadata: {name: p}\n"
        f"spec:\n  allowTierPinning: {str(allow).lower()}\n  models: [auto, chat]\n"
        "  tiers:\n  - {name: cheap, backends: [{modelDeployment: x}]}\n"
        "  - {name: pricey, backends: [{modelDeployment: y}]}\n"
    )
    return str(policy)


@pytest.mark.parametrize("allow", [False, True])
def test_tier_name_pins_only_when_the_policy_allows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], allow: bool
) -> None:
    request = write(tmp_path, "r.json", chat("hi", model="pricey"))
    args = ["route", "explain", "--policy", _pinning_policy(tmp_path, allow), "--request", request]
    if allow:
        assert main([*args, "--json"]) == 0
        out = orjson.loads(capsys.readouterr().out)
        assert (out["tier"], out["rule"]) == ("pricey", "model-pin")
        return
    assert main(args) == 1
    error = orjson.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "model_not_found"
    assert error["message"].endswith("use one of: auto, chat")


def test_escalation_is_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = {"model": "auto", "prompt": "word " * 9000}  # ~11k tokens > small's 8000
    assert main([*explain(tmp_path, body), "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["tier"] == "mid"


@pytest.mark.parametrize("model", ["gpt-9", ""])
def test_unknown_model_exits_1_with_openai_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str
) -> None:
    assert main(explain(tmp_path, chat("x", model=model))) == 1
    err = orjson.loads(capsys.readouterr().out)["error"]
    assert err["code"] == "model_not_found"
    assert err["param"] == "model"


def test_too_long_for_every_tier_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "rp.yaml"
    policy.write_text(
        "apiVersion: tierwise.dev/v1alpha1\nkind: RoutingPolicy\nmetadata: {name: p}\n"
        "spec:\n  tiers:\n  - {name: a, backends: [{modelDeployment: x}], maxPromptTokens: 5}\n"
    )
    args = [
        "route",
        "explain",
        "--policy",
        str(policy),
        "--request",
        write(tmp_path, "r.json", chat("long " * 20)),
    ]
    assert main(args) == 1
    assert orjson.loads(capsys.readouterr().out)["error"]["code"] == "context_length_exceeded"


@pytest.mark.parametrize(
    ("request_bytes", "extra", "message"),
    [
        (b"{not json", [], "not valid JSON"),
        (b"[1, 2]", [], "JSON object"),
        (orjson.dumps(chat("x")), ["--header", "no-colon"], "NAME:VALUE"),
    ],
)
def test_bad_inputs_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request_bytes: bytes,
    extra: list[str],
    message: str,
) -> None:
    assert main([*explain(tmp_path, request_bytes), *extra]) == 2
    assert message in capsys.readouterr().err


def test_policy_file_without_a_policy_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "none.yaml"
    empty.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
    args = [
        "route",
        "explain",
        "--policy",
        str(empty),
        "--request",
        write(tmp_path, "r.json", chat("x")),
    ]
    assert main(args) == 2
    assert "no RoutingPolicy" in capsys.readouterr().err


def test_bad_endpoints_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    eps = tmp_path / "ep.yaml"
    eps.write_text("qwen3-8b: [ftp://nope]\n")
    assert main([*explain(tmp_path, chat("x")), "--endpoints", str(eps)]) == 2
    assert "qwen3-8b" in capsys.readouterr().err


@pytest.mark.classifier
@pytest.mark.slow
def test_packaged_model_decides_category_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "rp.yaml"
    policy.write_text(
        "apiVersion: tierwise.dev/v1alpha1\nkind: RoutingPolicy\nmetadata: {name: p}\n"
        "spec:\n  tiers:\n  - {name: small, backends: [{modelDeployment: a}]}\n"
        "  - {name: frontier, backends: [{modelDeployment: b}]}\n"
        "  rules:\n  - {name: hard-reasoning, tier: frontier, match: {category: reasoning}}\n"
        "  classifier:\n    threshold: 0.6\n    categories:\n    - name: reasoning\n"
        "      examples: [Prove that there are infinitely many primes.]\n"
    )
    body = chat("Demonstrate that no largest prime number exists.")
    args = [
        "route",
        "explain",
        "--policy",
        str(policy),
        "--request",
        write(tmp_path, "r.json", body),
    ]
    assert main([*args, "--classifier", "model", "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert (out["tier"], out["rule"]) == ("frontier", "hard-reasoning")
