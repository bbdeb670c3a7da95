"""The router's Prometheus metrics, counted with plain Python numbers on the hot path.

Why it exists: prometheus_client's labelled children take a lock and a label lookup per
update (a few microseconds per request across a dozen series). Here the hot path only
adds to dict entries and bucket arrays; a custom collector registered in the app's own
:class:`~prometheus_client.CollectorRegistry` turns them into metric families when
``/metrics`` is scraped. Updates happen on the event loop thread only, so no lock.

Series (prefix ``tierwise_router_``): ``requests_total{tier,backend,rule,code}``,
``request_duration_seconds{tier}``, ``time_to_first_token_seconds{tier}`` (streamed
answers: time to the first upstream body byte), ``tokens_total{tier,direction}``,
``cost_dollars_total{tier}``, ``baseline_cost_dollars_total`` (the same tokens on the top
tier), ``fallbacks_total{reason}``, ``prefix_affinity_total{result}``,
``shadow_decisions_total{rule,tier}``, ``shadow_cost_dollars_total{rule}`` (what the
requests a shadow rule would have decided would have cost on its tier),
``shadow_actual_cost_dollars_total{rule}`` (what the same requests cost as served; the
difference is what enforcing the rule would have saved),
``table_version_info{version,policy_version}`` (the table's content hash, which changes
with every endpoint change, and the policy document's version, the RoutingPolicy's
``status.tableVersion``), ``endpoints{backend}`` (endpoints of the table in use per backend:
ready replicas of a ModelDeployment, 1 for an external API), ``table_reloads_total{result}``,
``in_flight{tier}``,
``auth_failures_total{reason}`` (requests refused for a missing or unaccepted client key),
``pending_requests{namespace,model_deployment}`` (requests held for a tier with no
replicas: the scale-from-zero demand signal the operator scrapes),
``held_requests_total{namespace,model_deployment}`` (requests that were held, counted when
the hold starts: how many callers waited for a cold start, which a scrape of the gauge can
miss when the wait is shorter than the scrape interval) and
``last_request_timestamp_seconds{namespace,model_deployment}`` (``namespace`` is the
router's own, where its ModelDeployments live; names from
:mod:`tierwise.autoscaler.demand`; see docs/scale-from-zero.md).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector

from tierwise.autoscaler import demand
from tierwise.router.cost import ThroughputView, per_token_price
from tierwise.router.table import RoutingTable, TierEntry

PREFIX = "tierwise_router_"
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
TTFT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram:
    """Bucket counts for one series (``le`` semantics, +Inf last)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return out


class RouterMetrics(Collector):
    """All router series; one instance per app, registered in its own registry."""

    def __init__(self, namespace: str = "default") -> None:
        self.namespace = namespace
        """The router's namespace: the ``namespace`` label of the demand series."""
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests: dict[tuple[str, str, str, int], int] = {}
        self.durations: dict[str, Histogram] = {}
        self.ttfts: dict[str, Histogram] = {}
        self.tokens: dict[tuple[str, str], int] = {}
        self.cost: dict[str, float] = {}
        self.baseline_cost = 0.0
        self.fallbacks: dict[str, int] = {}
        self.affinity: dict[str, int] = {"hit": 0, "miss": 0}
        self.shadow_decisions: dict[tuple[str, str], int] = {}
        self.shadow_cost: dict[str, float] = {}
        self.shadow_actual_cost: dict[str, float] = {}
        self.in_flight: dict[str, int] = {}
        self.pending = 0
        self.pending_by_model: dict[str, int] = {}
        """Held requests per ModelDeployment (the demand signal)."""
        self.held_by_model: dict[str, int] = {}
        """Requests ever held per ModelDeployment."""
        self.last_request_at: dict[str, float] = {}
        """Unix time of the last request per backend (ModelDeployment or external:...)."""
        self.table_version = ""
        self.policy_version = ""
        self.endpoints: dict[str, int] = {}
        """Endpoints per backend in the installed table."""
        self.reloads: dict[str, int] = {"ok": 0, "error": 0}
        self.auth_failures: dict[str, int] = {"missing": 0, "invalid": 0}
        self.registry.register(self)

    # -- hot path ----------------------------------------------------------------------
    def observe_request(
        self, tier: str, backend: str, rule: str, code: int, *, duration_s: float
    ) -> None:
        key = (tier, backend, rule, code)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.durations.get(tier)
        if hist is None:
            hist = self.durations[tier] = Histogram(DURATION_BUCKETS)
        hist.observe(duration_s)

    def observe_ttft(self, tier: str, seconds: float) -> None:
        hist = self.ttfts.get(tier)
        if hist is None:
            hist = self.ttfts[tier] = Histogram(TTFT_BUCKETS)
        hist.observe(seconds)

    def add_usage(
        self, tier: str, prompt: int, completion: int, *, cost: float, baseline: float
    ) -> None:
        tokens = self.tokens
        tokens[(tier, "in")] = tokens.get((tier, "in"), 0) + prompt
        tokens[(tier, "out")] = tokens.get((tier, "out"), 0) + completion
        self.cost[tier] = self.cost.get(tier, 0.0) + cost
        self.baseline_cost += baseline

    def count_fallback(self, reason: str) -> None:
        self.fallbacks[reason] = self.fallbacks.get(reason, 0) + 1

    def count_affinity(self, result: str) -> None:
        if result in self.affinity:
            self.affinity[result] += 1

    def count_shadow(self, rule: str, tier: str, cost: float, *, actual: float = 0.0) -> None:
        key = (rule, tier)
        self.shadow_decisions[key] = self.shadow_decisions.get(key, 0) + 1
        self.shadow_cost[rule] = self.shadow_cost.get(rule, 0.0) + cost
        self.shadow_actual_cost[rule] = self.shadow_actual_cost.get(rule, 0.0) + actual

    # -- table -------------------------------------------------------------------------
    def declare_tiers(self, tiers: Iterable[str]) -> None:
        """Make every tier's series exist (at zero) before its first request."""
        for tier in tiers:
            self.in_flight.setdefault(tier, 0)
            self.cost.setdefault(tier, 0.0)
            for direction in ("in", "out"):
                self.tokens.setdefault((tier, direction), 0)

    def count_endpoints(self, table: RoutingTable) -> None:
        """Endpoints per backend of ``table`` (backends without any at zero)."""
        counts = {b.key: 0 for t in table.spec.tiers for b in t.backends}
        urls = {(e.backend, e.url) for t in table.tiers for e in t.endpoints}
        for backend, _ in urls:
            counts[backend] = counts.get(backend, 0) + 1
        self.endpoints = counts

    # -- collection --------------------------------------------------------------------
    def collect(
        self,
    ) -> Iterator[
        CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily | InfoMetricFamily
    ]:
        yield from self._counters()
        yield from self._histograms()
        yield from self._gauges()

    def _counters(self) -> Iterator[CounterMetricFamily]:
        requests = _counter("requests", "Answered requests.", ["tier", "backend", "rule", "code"])
        for (tier, backend, rule, code), n in self.requests.items():
            requests.add_metric([tier, backend, rule, str(code)], n)
        tokens = _counter(
            "tokens", "Tokens by tier, in (prompt) and out (completion).", ["tier", "direction"]
        )
        for (tier, direction), n in self.tokens.items():
            tokens.add_metric([tier, direction], n)
        cost = _counter("cost_dollars", "Estimated cost of answered requests.", ["tier"])
        for tier, dollars in self.cost.items():
            cost.add_metric([tier], dollars)
        baseline = _counter(
            "baseline_cost_dollars", "What the same tokens would have cost on the top tier.", []
        )
        baseline.add_metric([], self.baseline_cost)
        yield from (requests, tokens, cost, baseline)
        yield _simple_counter("fallbacks", "Retries and escalations.", "reason", self.fallbacks)
        yield _simple_counter(
            "prefix_affinity", "Prefix-affinity choices.", "result", self.affinity
        )
        shadow = _counter(
            "shadow_decisions", "Shadow rule decisions (not enforced).", ["rule", "tier"]
        )
        for (rule, tier), n in self.shadow_decisions.items():
            shadow.add_metric([rule, tier], n)
        yield shadow
        yield _simple_counter(
            "shadow_cost_dollars", "Cost shadow rules would have caused.", "rule", self.shadow_cost
        )
        yield _simple_counter(
            "shadow_actual_cost_dollars",
            "What the requests shadow rules would have decided cost as served.",
            "rule",
            self.shadow_actual_cost,
        )
        yield _simple_counter("table_reloads", "Routing table reloads.", "result", self.reloads)
        yield _simple_counter(
            "auth_failures",
            "Requests refused for a missing or unaccepted client API key.",
            "reason",
            self.auth_failures,
        )

    def _histograms(self) -> Iterator[HistogramMetricFamily]:
        for name, doc, series in (
            ("request_duration_seconds", "Time from request to last byte.", self.durations),
            ("time_to_first_token_seconds", "Time to the first streamed byte.", self.ttfts),
        ):
            family = HistogramMetricFamily(PREFIX + name, doc, labels=["tier"])
            for tier, hist in series.items():
                family.add_metric([tier], hist.cumulative(), hist.total)
            yield family

    def _gauges(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily | CounterMetricFamily]:
        in_flight = GaugeMetricFamily(
            PREFIX + "in_flight", "Requests being answered.", labels=["tier"]
        )
        for tier, n in self.in_flight.items():
            in_flight.add_metric([tier], n)
        yield in_flight
        yield from self._demand()
        endpoints = GaugeMetricFamily(
            PREFIX + "endpoints", "Endpoints in the routing table, per backend.", labels=["backend"]
        )
        for backend, n in sorted(self.endpoints.items()):
            endpoints.add_metric([backend], n)
        yield endpoints
        info = InfoMetricFamily(PREFIX + "table_version", "Routing table in use.")
        info.add_metric([], {"version": self.table_version, "policy_version": self.policy_version})
        yield info

    def _demand(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The scale-from-zero demand signal, per ModelDeployment (never external APIs)."""
        label = [demand.NAMESPACE_LABEL, demand.MODEL_DEPLOYMENT_LABEL]
        ns = self.namespace
        pending = GaugeMetricFamily(
            demand.PENDING_REQUESTS, "Requests waiting for a tier with no replicas.", labels=label
        )
        for model, n in self.pending_by_model.items():
            pending.add_metric([ns, model], n)
        yield pending
        held = CounterMetricFamily(
            PREFIX + "held_requests",
            "Requests held for a tier with no replicas, counted when the hold starts.",
            labels=label,
        )
        for model, n in self.held_by_model.items():
            held.add_metric([ns, model], n)
        yield held
        last = GaugeMetricFamily(
            demand.LAST_REQUEST_TIMESTAMP, "Unix time of the last request.", labels=label
        )
        for backend, at in self.last_request_at.items():
            if not backend.startswith("external:"):
                last.add_metric([ns, backend], at)
        yield last


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=labels)


def _simple_counter(
    name: str, doc: str, label: str, values: dict[str, int] | dict[str, float]
) -> CounterMetricFamily:
    family = _counter(name, doc, [label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


class TierPrices:
    """Per-token prices per tier for the cost counters, recomputed at most once a second:
    a GPU-hour price depends on observed throughput (which moves slowly), and pricing
    every request from scratch cost ~5 % of the hot path."""

    def __init__(self, throughput: ThroughputView, ttl_s: float = 1.0) -> None:
        self._throughput = throughput
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[TierEntry, float, float, float]] = {}

    def cost(self, tier: TierEntry, prompt: int, completion: int, now: float) -> float:
        hit = self._cache.get(tier.name)
        if hit is None or hit[0] is not tier or hit[1] < now:
            p_in, p_out = per_token_price(tier, throughput=self._throughput, now=now)
            hit = self._cache[tier.name] = (tier, now + self._ttl_s, p_in, p_out)
        return prompt * hit[2] + completion * hit[3]
