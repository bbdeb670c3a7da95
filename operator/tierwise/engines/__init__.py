"""Everything that differs between inference engines (SGLang, vLLM), behind one profile type.

Use :func:`engine_for` to get an :class:`EngineProfile`; the per-engine modules
(:mod:`tierwise.engines.sglang`, :mod:`tierwise.engines.vllm`) also export their metric
names as constants for the autoscaler, the router and the simulator.
"""

from tierwise.engines.base import ArgIssue, EngineMetrics, EngineProfile, LaunchConfig
from tierwise.engines.registry import all_engines, engine_for

__all__ = [
    "ArgIssue",
    "EngineMetrics",
    "EngineProfile",
    "LaunchConfig",
    "all_engines",
    "engine_for",
]
