"""``tierwise router --workers 2``: two processes on one port (SO_REUSEPORT); every
request answered, /metrics counts all of them whichever worker answers the scrape, a
conversation keeps its replica across workers with prefix-hash, a policy change reaches
every worker, and SIGTERM drains the in-flight request before the group exits."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families
from router_harness import RouterProcess, StartRouter, policy, sim, tier


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def fresh(
    router: RouterProcess, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection, so the kernel picks a worker each time."""
    url = urlsplit(router.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, data, {"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def chat(text: str, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": "Be brief. " * 40}, {"role": "user", "content": text}]
    return {"model": "auto", "messages": messages, **extra}


def samples(router: RouterProcess, name: str) -> list[tuple[dict[str, str], float]]:
    _, _, text = fresh(router, "GET", "/metrics")
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
        if s.name == name
    ]


def total(router: RouterProcess, name: str) -> float:
    return sum(value for _, value in samples(router, name))


def test_two_workers_answer_as_one_router(start_sims, start_router: StartRouter) -> None:  # type: ignore[no-untyped-def]
    engines = start_sims([sim("small-md"), sim("small-md"), sim("small-md")])
    document = policy([tier("small", "small-md", 0.1, 0.2)], balancing={"policy": "prefix-hash"})
    router = start_router(document, {"small-md": [e.url for e in engines]}, "--workers", "2")
    assert len(children(router.process.pid)) == 2

    replicas: dict[str, set[str]] = {}
    for i in range(30):
        task = f"Task {i % 5}: summarise the report"
        status, headers, _ = fresh(router, "POST", "/v1/chat/completions", chat(task))
        assert status == 200
        replicas.setdefault(task, set()).add(headers["x-tierwise-replica"])
    assert all(len(seen) == 1 for seen in replicas.values())  # same home in both workers
    assert len(set().union(*replicas.values())) > 1

    for _ in range(6):  # each scrape reaches one worker at random: always the group's sum
        assert total(router, "tierwise_router_requests_total") == 30
        assert {v for _, v in samples(router, "tierwise_router_workers")} == {2.0}
        assert fresh(router, "GET", "/readyz")[0] == 200

    before = {
        labels["version"] for labels, _ in samples(router, "tierwise_router_table_version_info")
    }
    document["spec"]["rules"] = [{"name": "hi", "tier": "small", "match": {"keywords": ["hi"]}}]
    router.write_policy(document)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        versions = {
            labels["version"] for labels, _ in samples(router, "tierwise_router_table_version_info")
        }
        if len(versions) == 1 and versions != before:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"not every worker took the new table: {versions}")
    status, headers, _ = fresh(router, "POST", "/v1/chat/completions", chat("hi there"))
    assert headers["x-tierwise-rule"] == "hi"


def test_sigterm_drains_every_worker(start_sims, start_router: StartRouter) -> None:  # type: ignore[no-untyped-def]
    (slow,) = start_sims([sim("small-md", decode_ms_per_token=150.0)])
    router = start_router(
        policy([tier("small", "small-md", 0.1, 0.2)]), {"small-md": [slow.url]}, "--workers", "2"
    )
    url = urlsplit(router.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    conn.request(
        "POST",
        "/v1/chat/completions",
        json.dumps(chat("slow one", max_tokens=8)).encode(),
        {"content-type": "application/json"},
    )
    time.sleep(0.3)  # the request is in flight in one of the workers
    router.process.send_signal(signal.SIGTERM)
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["choices"]
    conn.close()
    assert router.process.wait(timeout=20) == 0


def test_a_worker_that_cannot_start_stops_the_group_with_its_status(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("kind: RoutingPolicy\nspec: {tiers: []}\n")
    endpoints = tmp_path / "endpoints.yaml"
    endpoints.write_text("{}\n")
    argv = ["router", "--workers", "2", "--port", "0", "--policy", str(bad)]
    done = subprocess.run(
        [sys.executable, "-m", "tierwise.cli", *argv, "--endpoints", str(endpoints)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert b"tierwise router:" in done.stderr
