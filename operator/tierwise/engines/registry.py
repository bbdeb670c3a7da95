"""The one place that maps an engine name to its profile.

Profiles are built on each call (they are small and immutable), so there is no module
state to share or reset between tests.
"""

from __future__ import annotations

from collections.abc import Callable

from tierwise.api.model_deployment import EngineName
from tierwise.engines import sglang, vllm
from tierwise.engines.base import EngineProfile

_FACTORIES: dict[EngineName, Callable[[], EngineProfile]] = {
    EngineName.SGLANG: sglang.profile,
    EngineName.VLLM: vllm.profile,
}


def engine_for(name: EngineName | str) -> EngineProfile:
    """The profile of engine ``name``; ``KeyError`` names the engines known."""
    try:
        return _FACTORIES[EngineName(name)]()
    except ValueError:
        known = ", ".join(sorted(_FACTORIES))
        raise KeyError(f"unknown engine {name!r}; known engines: {known}") from None


def all_engines() -> list[EngineProfile]:
    return [factory() for factory in _FACTORIES.values()]
