"""A client that goes away cancels its upstream request: the router closes that upstream
connection (the engine stops generating a stream) and releases its in-flight slot at once
instead of when the answer would have finished."""

from __future__ import annotations

import time

import httpx
import pytest
from router_harness import RouterProcess, StartRouter, policy, sim, tier

BODY = {
    "model": "auto",
    "messages": [{"role": "user", "content": "tell me a long story"}],
    "max_tokens": 60,
    "ignore_eos": True,  # 60 tokens at 50 ms: a 3 s answer
}


def _until(check: object, timeout_s: float) -> float:
    began = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - began < timeout_s, "condition not reached in time"
        time.sleep(0.02)
    return time.monotonic() - began


@pytest.fixture
def slow(start_sims, start_router: StartRouter) -> tuple[RouterProcess, str]:  # type: ignore[no-untyped-def]
    (engine,) = start_sims([sim("small-md", decode_ms_per_token=50.0)])
    router = start_router(policy([tier("small", "small-md", 0.1, 0.2)]), {"small-md": [engine.url]})
    return router, engine.url


def test_stream_disconnect_stops_the_engine(slow: tuple[RouterProcess, str]) -> None:
    router, engine = slow
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST", router.base_url + "/chat/completions", json={**BODY, "stream": True}
        ) as response,
    ):
        assert response.status_code == 200
        # Keep the iterator: a discarded one is closed at once, and httpcore closes the
        # connection on its GeneratorExit (the disconnect would happen before the check).
        lines = response.iter_lines()
        first = next(lines)
        assert first.startswith("data: ")
        assert httpx.get(engine + "/sim/state").json()["running"] == 1
    # the client closed mid-stream: the engine's request must end long before its 3 s
    took = _until(lambda: httpx.get(engine + "/sim/state").json()["running"] == 0, 1.5)
    assert took < 1.5
    assert router.metric("tierwise_router_in_flight", tier="small") == 0


def test_non_streaming_disconnect_releases_the_slot(slow: tuple[RouterProcess, str]) -> None:
    router, _engine = slow
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(router.base_url + "/chat/completions", json=BODY, timeout=0.4)
    _until(lambda: router.metric("tierwise_router_in_flight", tier="small") == 0, 1.0)
    # the cancelled request is not counted as answered
    assert router.metric("tierwise_router_requests_total") == 0
