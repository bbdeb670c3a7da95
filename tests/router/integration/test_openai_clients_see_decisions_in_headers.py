"""The official openai client, sync and async, streaming and not, gets answers through the
router, and each answer's x-tierwise-* headers name the tier, backend and rule that
decided it and the replica that served it; a tier's name pins the tier only where the
policy allows it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from router_harness import RouterProcess, Sims, launch_router, policy, tier

RULES = [
    {"name": "hard-words", "tier": "large", "match": {"keywords": ["prove", "théorème"]}},
    {
        "name": "header-hint",
        "tier": "large",
        "match": {"headers": [{"name": "x-tier-hint", "value": "large"}]},
    },
    {"name": "long-prompts", "tier": "large", "match": {"minPromptTokens": 200}},
    {"name": "fast-alias", "tier": "small", "match": {"models": ["fast"]}},
]

# (model, prompt, extra headers) -> (tier, backend, rule)
CASES = [
    ("auto", "hello there", {}, ("small", "small-md", "default")),
    ("auto", "", {}, ("small", "small-md", "default")),
    ("auto", "please prove this lemma", {}, ("large", "large-md", "hard-words")),
    ("auto", "un THÉORÈME difficile", {}, ("large", "large-md", "hard-words")),
    ("auto", "hi", {"x-tier-hint": "large"}, ("large", "large-md", "header-hint")),
    ("auto", "word " * 400, {}, ("large", "large-md", "long-prompts")),
    ("fast", "prove it", {}, ("large", "large-md", "hard-words")),
    ("fast", "just chat 😀", {}, ("small", "small-md", "fast-alias")),
    ("large", "pinned by tier name", {}, ("large", "large-md", "model-pin")),
]


@pytest.fixture(scope="module")
def router(sims: Sims, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    document = policy(
        [tier("small", "small-md", 0.1, 0.2), tier("large", "large-md", 2, 8)],
        rules=RULES,
        models=["auto", "fast"],
        allowTierPinning=True,
    )
    router = launch_router(tmp_path_factory.mktemp("router"), document, sims.endpoints())
    yield router
    router.stop()


def _decision(headers: Any) -> tuple[str, str, str]:
    return (headers["x-tierwise-tier"], headers["x-tierwise-backend"], headers["x-tierwise-rule"])


def _replicas(sims: Sims, backend: str) -> list[str]:
    """What x-tierwise-replica may say: the endpoints file names no pod, so the URL."""
    return sims.endpoints()[backend]


@pytest.mark.parametrize(("model", "prompt", "headers", "expected"), CASES)
def test_sync_client_non_streaming(
    router: RouterProcess,
    sims: Sims,
    model: str,
    prompt: str,
    headers: dict[str, str],
    expected: tuple[str, str, str],
) -> None:
    with openai.OpenAI(base_url=router.base_url, api_key="k", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=8,
            extra_headers=headers,
        )
        completion = raw.parse()
    assert _decision(raw.headers) == expected
    assert raw.headers["x-tierwise-replica"] in _replicas(sims, expected[1])
    assert completion.choices[0].message.content
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0
    assert completion.model == expected[1]  # the upstream's own model name passes through


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize(("model", "prompt", "headers", "expected"), CASES[:5])
async def test_async_client_streaming(
    router: RouterProcess,
    sims: Sims,
    model: str,
    prompt: str,
    headers: dict[str, str],
    expected: tuple[str, str, str],
    include_usage: bool,
) -> None:
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    client = openai.AsyncOpenAI(base_url=router.base_url, api_key="k", max_retries=0)
    async with (
        client,
        client.chat.completions.with_streaming_response.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=8,
            stream=True,
            extra_headers=headers,
            **options,  # type: ignore[arg-type]
        ) as response,
    ):
        decision = _decision(response.headers)
        replica = response.headers["x-tierwise-replica"]
        chunks = [chunk async for chunk in await response.parse()]
    assert decision == expected
    assert replica in _replicas(sims, expected[1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    usage = [c.usage for c in chunks if c.usage is not None]
    # the router asks upstream for usage to count tokens, but only a client that asked sees it
    assert len(usage) == (1 if include_usage else 0)


def test_sync_client_streaming_completions_endpoint(router: RouterProcess) -> None:
    with openai.OpenAI(base_url=router.base_url, api_key="k", max_retries=0) as client:
        stream = client.completions.create(
            model="auto", prompt="Once upon a time", max_tokens=6, stream=True
        )
        with stream:
            texts = [c.choices[0].text for c in stream if c.choices]
    assert "".join(texts)


def test_models_lists_the_policy_aliases(router: RouterProcess) -> None:
    with openai.OpenAI(base_url=router.base_url, api_key="k", max_retries=0) as client:
        ids = sorted(m.id for m in client.models.list())
    assert ids == ["auto", "fast"]


def test_tier_name_is_an_unknown_model_unless_the_policy_allows_pinning(
    sims: Sims, tmp_path: Path
) -> None:
    document = policy(
        [tier("small", "small-md", 0.1, 0.2), tier("large", "large-md", 2, 8)],
        models=["auto", "fast"],
    )
    router = launch_router(tmp_path, document, sims.endpoints())
    try:
        with (
            openai.OpenAI(base_url=router.base_url, api_key="k", max_retries=0) as client,
            pytest.raises(openai.NotFoundError) as caught,
        ):
            client.chat.completions.create(
                model="large", messages=[{"role": "user", "content": "hi"}], max_tokens=4
            )
    finally:
        router.stop()
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "model_not_found"
    assert error["message"].endswith("use one of: auto, fast")
