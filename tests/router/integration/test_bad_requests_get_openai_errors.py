"""Bad requests get OpenAI-style error JSON with the right status, never a traceback:
malformed JSON 400, unknown model 404, prompt too long for every tier 400, body too big
413, headers too big 431, unknown path 404, wrong method 405."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from router_harness import RouterProcess, Sims, launch_router, policy, tier


@pytest.fixture(scope="module")
def router(sims: Sims, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    document = policy(
        [
            tier("small", "small-md", 0.1, 0.2, maxPromptTokens=50),
            tier("large", "large-md", 2, 8, maxPromptTokens=100),
        ]
    )
    router = launch_router(
        tmp_path_factory.mktemp("router"), document, sims.endpoints(), "--max-body-mib", "0.5"
    )
    yield router
    router.stop()


def _assert_openai_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 400, "invalid_request"),
        (b"{not json", 400, "invalid_request"),
        (b"[1, 2]", 400, "invalid_request"),
        (
            '{"model": "auto", "messages": [{"content": "\u00e9t\u00e9"}'.encode(),
            400,
            "invalid_request",
        ),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', 404, "model_not_found"),
        ('{"model": "mod\u00e8le-inconnu", "messages": []}'.encode(), 404, "model_not_found"),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": "'
            + b"word " * 600
            + b'"}]}',
            400,
            "context_length_exceeded",
        ),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": "'
            + b"x" * 600_000
            + b'"}]}',
            413,
            "request_too_large",
        ),
    ],
)
def test_bad_bodies(router: RouterProcess, body: bytes, status: int, code: str) -> None:
    response = httpx.post(
        router.base_url + "/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
    )
    _assert_openai_error(response, status, code)


def test_unknown_path_and_wrong_method(router: RouterProcess) -> None:
    _assert_openai_error(httpx.get(router.url + "/v2/nothing"), 404, "not_found")
    response = httpx.get(router.base_url + "/chat/completions")
    _assert_openai_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_headers_too_large(router: RouterProcess) -> None:
    response = httpx.post(
        router.base_url + "/chat/completions", content=b"{}", headers={"x-big": "a" * 70_000}
    )
    _assert_openai_error(response, 431, "headers_too_large")


@pytest.mark.parametrize(
    ("model", "content", "error", "status"),
    [
        ("nope", "hi", openai.NotFoundError, 404),
        ("", "hi", openai.NotFoundError, 404),
        ("auto", "token " * 500, openai.BadRequestError, 400),
    ],
)
def test_openai_client_raises_typed_errors(
    router: RouterProcess,
    model: str,
    content: str,
    error: type[openai.APIStatusError],
    status: int,
) -> None:
    with (
        openai.OpenAI(base_url=router.base_url, api_key="k", max_retries=0) as client,
        pytest.raises(error) as caught,
    ):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
    assert caught.value.status_code == status
    assert caught.value.response.headers.get("x-tierwise-tier") is None


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/chat/completions", {"stream": "yes"}, "stream"),
        ("/chat/completions", {"stream": True, "stream_options": [1]}, "stream_options"),
        ("/chat/completions", {"messages": "hello"}, "messages"),
        ("/chat/completions", {"messages": [{"content": "hi"}]}, "messages[0].role"),
        ("/chat/completions", {"model": 7}, "model"),
        ("/completions", {"messages": None, "prompt": {"text": "hi"}}, "prompt"),
    ],
)
def test_fields_the_router_reads_are_checked(
    router: RouterProcess, path: str, body: dict[str, object], param: str
) -> None:
    """A wrong shape in a field the router interprets is a 400 naming it (``param``)."""
    request = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **body}
    response = httpx.post(router.base_url + path, json=request)
    _assert_openai_error(response, 400, "invalid_request")
    assert response.json()["error"]["param"] == param


def test_fields_the_router_does_not_read_pass_through(router: RouterProcess) -> None:
    """Unknown fields, and odd values in fields the router does not read, reach the engine
    untouched: the router does not refuse them."""
    request = {
        "model": "auto",
        "messages": [{"role": "user", "content": "hi", "name": 3}],
        "stream": None,
        "a_future_openai_field": {"nested": [1, "x"]},
    }
    response = httpx.post(router.base_url + "/chat/completions", json=request)
    assert response.status_code == 200, response.text
