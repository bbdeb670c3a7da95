"""``tierwise router --table PATH`` serves the versioned table document the operator writes
(and reloads it when rewritten); a classifier category rule routes by prompt meaning,
computed off the event loop."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from router_harness import RouterProcess, Sims, policy, tier, wait_healthy

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.router.table import build_table
from tierwise.router.table_document import dump_table
from tierwise.sim.process import free_port

CLASSIFIED = {
    "categories": [
        {"name": "math", "examples": ["solve this integral of x squared", "prove the theorem"]},
        {"name": "chat", "examples": ["hello how are you today", "tell me a joke"]},
    ],
    "threshold": 0.5,
}


@pytest.fixture
def table_router(sims: Sims, tmp_path: Path) -> Iterator[tuple[RouterProcess, Path]]:
    document = policy(
        [tier("small", "small-md", 0.1, 0.2), tier("large", "large-md", 2, 8)],
        rules=[{"name": "math", "tier": "large", "match": {"category": "math"}}],
        classifier=CLASSIFIED,
    )
    table = build_table(RoutingPolicy.model_validate(document), sims.endpoints(), version="v1")
    path = tmp_path / "table.json"
    path.write_bytes(dump_table(table))
    port = free_port()
    log = tmp_path / "router.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tierwise.cli",
                "router",
                "--table",
                str(path),
                "--port",
                str(port),
                "--classifier",
                "hashing",
                "--watch-interval",
                "0.05",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    router = RouterProcess(f"http://127.0.0.1:{port}", process, log, path, path)
    try:
        wait_healthy(router)
        yield router, path
    finally:
        router.stop()


@pytest.mark.parametrize(
    ("prompt", "tier_name", "rule"),
    [
        ("solve this integral of x squared", "large", "math"),
        ("hello how are you today", "small", "default"),
        ("", "small", "default"),
    ],
)
def test_table_file_and_category_rule(
    table_router: tuple[RouterProcess, Path], prompt: str, tier_name: str, rule: str
) -> None:
    router, _path = table_router
    response = httpx.post(
        router.base_url + "/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": prompt}]},
    )
    assert response.status_code == 200
    assert response.headers["x-tierwise-tier"] == tier_name
    assert response.headers["x-tierwise-rule"] == rule
    # --classifier hashing: the stand-in is named, never silent
    hashing = {"classifier": "categories", "name": "hashing", "state": "ready"}
    ready = httpx.get(router.url + "/readyz").json()
    assert ready.pop("healthyReplicas") >= 1
    assert ready == {
        "ready": True,
        "tableVersion": "v1",
        "policyVersion": "",
        "classifiers": [hashing],
    }


def test_rewritten_table_file_is_reloaded(
    table_router: tuple[RouterProcess, Path], sims: Sims
) -> None:
    router, path = table_router
    document = policy([tier("large", "large-md", 2, 8)])
    table = build_table(RoutingPolicy.model_validate(document), sims.endpoints(), version="v2")
    path.write_bytes(dump_table(table))
    deadline = time.monotonic() + 5
    while httpx.get(router.url + "/readyz").json()["tableVersion"] != "v2":
        assert time.monotonic() < deadline, router.log()
        time.sleep(0.05)
    response = httpx.post(
        router.base_url + "/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.headers["x-tierwise-tier"] == "large"
