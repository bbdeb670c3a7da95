"""What a request cost, in dollars, on the tier that served it.

Why it exists: the router's purpose is saving money, so every answer is priced, and priced
honestly: a self-hosted tier billed per GPU-hour is *not* free (the mistake LiteLLM users
complain about). Pure arithmetic; the data plane feeds it token counts and throughput.

Pricing rules
-------------
* Per-million prices (``inputPerMillionTokens`` / ``outputPerMillionTokens``): cost is
  ``prompt x in / 1e6 + completion x out / 1e6``.
* Per-GPU-hour (``perGPUHour``): the tier's hardware costs ``price x GPUs`` dollars per
  hour, shared by the tokens it serves, where GPUs is the sum over the tier's self-hosted
  replicas of each one's GPUs per replica (its ModelDeployment's, from
  ``gpus_per_backend``; ``gpus_per_replica`` for a backend not listed). A tier whose
  backends differ (a 1-GPU and a 4-GPU ModelDeployment) is priced for both; a tier with
  no replica right now (scaled to zero) is priced as one replica of ``gpus_per_replica``.
  The rate (``price``) is the tier's, else its first priced ModelDeployment's, for all of
  its GPUs.
  The effective price of one token (prompt and completion alike) is that hourly cost
  divided by the tier's token throughput (tokens/hour), read from a
  :class:`ThroughputView` over a sliding window.
* Floor [``floor_tokens_per_second``, per replica, default 1,000]: throughput below the
  floor counts as the floor, so an idle or freshly started tier does not charge its first
  request for a whole idle hour (idle time is capacity cost, not request cost). Without a
  throughput view the floor is the throughput: a nominal, fully loaded replica.
* Both kinds set: per-million prices win (they are explicit).
* No price at all: the tier costs nothing in the accounts (and ``docs/routing.md`` tells
  users to price every tier).
* Baseline: what the request would have cost on the last (most expensive) tier, the
  "always send it to the frontier model" world, so savings are visible.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

DEFAULT_FLOOR_TOKENS_PER_SECOND = 1000.0
DEFAULT_WINDOW_SECONDS = 300.0
_BUCKETS = 30
_MILLION = 1_000_000.0


@dataclass(frozen=True, slots=True)
class TierPrice:
    """A tier's resolved price (from the tier, else its first priced ModelDeployment)."""

    input_per_million: float | None = None
    output_per_million: float | None = None
    per_gpu_hour: float | None = None
    gpus_per_replica: int = 1
    """GPUs per replica of a backend not in ``gpus_per_backend`` (the first backend's)."""
    gpus_per_backend: tuple[tuple[str, int], ...] = ()
    """(ModelDeployment name, GPUs per replica) of each self-hosted backend."""

    def gpus_of(self, backend: str) -> int:
        """GPUs per replica of ``backend`` (a ModelDeployment name)."""
        for name, gpus in self.gpus_per_backend:
            if name == backend:
                return gpus
        return self.gpus_per_replica

    @property
    def per_token(self) -> bool:
        return self.input_per_million is not None or self.output_per_million is not None

    @property
    def priced(self) -> bool:
        return self.per_token or self.per_gpu_hour is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"gpusPerReplica": self.gpus_per_replica}
        if self.input_per_million is not None:
            out["inputPerMillionTokens"] = self.input_per_million
        if self.output_per_million is not None:
            out["outputPerMillionTokens"] = self.output_per_million
        if self.per_gpu_hour is not None:
            out["perGPUHour"] = self.per_gpu_hour
        if self.gpus_per_backend:
            out["gpusPerBackend"] = dict(self.gpus_per_backend)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> TierPrice:
        def num(key: str) -> float | None:
            value = raw.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key}: {value!r} must be a number >= 0")
            return float(value)

        def count(key: str, value: object) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}: {value!r} must be an integer >= 1")
            return value

        gpus = count("gpusPerReplica", raw.get("gpusPerReplica", 1))
        per_backend = raw.get("gpusPerBackend") or {}
        if not isinstance(per_backend, Mapping):
            raise ValueError("gpusPerBackend must be a mapping of ModelDeployment to GPUs")
        backends = tuple(
            (str(name), count(f"gpusPerBackend.{name}", value))
            for name, value in sorted(per_backend.items())
        )
        return cls(
            num("inputPerMillionTokens"),
            num("outputPerMillionTokens"),
            num("perGPUHour"),
            gpus,
            backends,
        )


class PricedTier(Protocol):
    """What pricing reads of a tier (a :class:`~tierwise.router.table.TierEntry` is one):
    pricing depends on these three facts, not on the routing table's module."""

    @property
    def name(self) -> str: ...

    @property
    def price(self) -> TierPrice: ...

    @property
    def replica_backends(self) -> Sequence[str]:
        """The backend (ModelDeployment) of each self-hosted replica, one per replica."""
        ...


class PricedTable(Protocol):
    """Tiers cheapest first (a :class:`~tierwise.router.table.RoutingTable` is one)."""

    @property
    def tiers(self) -> Sequence[PricedTier]: ...


class ThroughputView:
    """Tokens served per tier over a sliding window, in fixed buckets (bounded memory).

    The data plane calls :meth:`add` with each answer's tokens and the current monotonic
    time; readers call :meth:`tokens_per_hour`. Time is passed in, never read here.
    """

    def __init__(
        self,
        *,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        floor_tokens_per_second: float = DEFAULT_FLOOR_TOKENS_PER_SECOND,
    ) -> None:
        if window_seconds <= 0 or floor_tokens_per_second <= 0:
            raise ValueError("window_seconds and floor_tokens_per_second must be > 0")
        self.window_seconds = window_seconds
        self.floor_tokens_per_second = floor_tokens_per_second
        self._bucket_seconds = window_seconds / _BUCKETS
        self._tiers: dict[str, deque[list[float]]] = {}

    def add(self, tier: str, tokens: int, now: float) -> None:
        """Count ``tokens`` served by ``tier`` at time ``now`` (seconds, monotonic)."""
        buckets = self._tiers.setdefault(tier, deque())
        start = now - now % self._bucket_seconds
        if buckets and buckets[-1][0] == start:
            buckets[-1][1] += tokens
        else:
            buckets.append([start, float(tokens)])
        self._expire(buckets, now)

    def observed_tokens_per_hour(self, tier: str, now: float) -> float:
        """Raw observed throughput (no floor), tokens per hour."""
        buckets = self._tiers.get(tier)
        if not buckets:
            return 0.0
        self._expire(buckets, now)
        total = sum(b[1] for b in buckets)
        return total * 3600.0 / self.window_seconds

    def tokens_per_hour(self, tier: str, replicas: int, now: float) -> float:
        """Throughput used for pricing: observed, but at least the floor for ``replicas``."""
        floor = self.floor_tokens_per_second * 3600.0 * max(replicas, 1)
        return max(self.observed_tokens_per_hour(tier, now), floor)

    def _expire(self, buckets: deque[list[float]], now: float) -> None:
        horizon = now - self.window_seconds
        while buckets and buckets[0][0] + self._bucket_seconds <= horizon:
            buckets.popleft()


def per_token_price(
    tier: PricedTier, *, throughput: ThroughputView | None = None, now: float = 0.0
) -> tuple[float, float]:
    """Dollars per prompt token and per completion token on ``tier``."""
    price = tier.price
    if price.per_token:
        return (
            (price.input_per_million or 0.0) / _MILLION,
            (price.output_per_million or 0.0) / _MILLION,
        )
    if price.per_gpu_hour is None:
        return (0.0, 0.0)
    backends = tier.replica_backends
    gpus = sum(price.gpus_of(backend) for backend in backends)
    replicas = max(len(backends), 1)
    hourly = price.per_gpu_hour * (gpus or price.gpus_per_replica)
    if throughput is None:
        tph = DEFAULT_FLOOR_TOKENS_PER_SECOND * 3600.0 * replicas
    else:
        tph = throughput.tokens_per_hour(tier.name, replicas, now)
    each = hourly / tph
    return (each, each)


def request_cost(
    tier: PricedTier,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    throughput: ThroughputView | None = None,
    now: float = 0.0,
) -> float:
    """Dollars the request cost on ``tier`` (see the module docstring for the rules)."""
    p_in, p_out = per_token_price(tier, throughput=throughput, now=now)
    return max(prompt_tokens, 0) * p_in + max(completion_tokens, 0) * p_out


def baseline_cost(
    table: PricedTable,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    throughput: ThroughputView | None = None,
    now: float = 0.0,
) -> float:
    """What the same tokens would have cost on the last (top) tier: the all-frontier world."""
    return request_cost(
        table.tiers[-1], prompt_tokens, completion_tokens, throughput=throughput, now=now
    )
