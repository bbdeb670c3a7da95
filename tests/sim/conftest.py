"""Shared helpers for the simulator tests: fast configs and an in-process server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from tierwise.sim.app import serve_engine
from tierwise.sim.config import EngineKind, SimConfig
from tierwise.sim.latency import PROFILES, Profile

ZERO = PROFILES[Profile.ZERO]


def sim_config(engine: EngineKind = EngineKind.VLLM, **latency: Any) -> SimConfig:
    """A zero-latency config with selected latency parameters overridden."""
    return SimConfig(engine=engine, model="sim-model", latency=dataclasses.replace(ZERO, **latency))


@pytest.fixture
def make_config() -> Callable[..., SimConfig]:
    """``make_config(engine, **latency)``: see :func:`sim_config`."""
    return sim_config


@pytest.fixture
def serve() -> Callable[[SimConfig], AbstractAsyncContextManager[str]]:
    """``async with serve(config) as url``: an in-process simulator on a free port."""
    return lambda config: serve_engine(config, host="127.0.0.1", port=0)


@pytest.fixture
async def vllm_url() -> AsyncIterator[str]:
    async with serve_engine(sim_config()) as url:
        yield url
