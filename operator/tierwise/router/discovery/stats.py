"""Discovery's own Prometheus series: is each watch up, what it received, when it last synced.

Why it exists: a router that silently lost its EndpointSlice watch keeps routing to the
replicas it last saw; operators must be able to alert on that. Plain numbers updated on the
event loop, turned into metric families at scrape time (like
:mod:`tierwise.router.metrics`), registered in the app's registry.

Series (prefix ``tierwise_router_``):

``discovery_watch_up{resource}``
    1 while the list-watch of ``resource`` (``endpointslices``, ``configmaps``) is
    established, 0 after an error until it is again.
``discovery_events_total{resource,type}``
    watch events received (``ADDED``, ``MODIFIED``, ``DELETED``, ``BOOKMARK``).
``discovery_lists_total{resource}``
    full lists (the first one, and relists after 410 Gone or errors).
``discovery_errors_total{resource,reason}``
    failed requests and broken streams (``expired``, ``unauthorized``, ``forbidden``,
    ``not_found``, ``http_error``, ``connection``, ``bad_response``, ``internal``).
``discovery_last_sync_timestamp_seconds{resource}``
    Unix time of the last list or watch event (bookmarks included).
``config_errors_total{source}``
    policy documents rejected (``api``: the ConfigMap; ``file``: the mounted file); the
    last good document stays in use.
``config_source_info{source}``
    where the policy document in use came from (``api`` or ``file``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

PREFIX = "tierwise_router_"


@dataclass(slots=True)
class WatchStats:
    """One list-watch's counters."""

    up: bool = False
    events: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    lists: int = 0
    last_sync: float = 0.0

    def count_event(self, kind: str, now: float) -> None:
        self.events[kind] = self.events.get(kind, 0) + 1
        self.last_sync = now

    def count_error(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1
        self.up = False


@dataclass(eq=False)  # registered in a registry: hashed by identity
class DiscoveryStats(Collector):
    """Every watch's counters plus the policy document's source and errors."""

    watches: dict[str, WatchStats] = field(default_factory=dict)
    config_errors: dict[str, int] = field(default_factory=dict)
    config_source: str = ""

    def watch(self, resource: str) -> WatchStats:
        stats = self.watches.get(resource)
        if stats is None:
            stats = self.watches[resource] = WatchStats()
        return stats

    def count_config_error(self, source: str) -> None:
        self.config_errors[source] = self.config_errors.get(source, 0) + 1

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | InfoMetricFamily]:
        up = GaugeMetricFamily(
            PREFIX + "discovery_watch_up", "Watch established.", labels=["resource"]
        )
        events = CounterMetricFamily(
            PREFIX + "discovery_events", "Watch events received.", labels=["resource", "type"]
        )
        lists = CounterMetricFamily(
            PREFIX + "discovery_lists", "Full lists (first and relists).", labels=["resource"]
        )
        errors = CounterMetricFamily(
            PREFIX + "discovery_errors",
            "Failed requests and streams.",
            labels=["resource", "reason"],
        )
        synced = GaugeMetricFamily(
            PREFIX + "discovery_last_sync_timestamp_seconds",
            "Unix time of the last list or watch event.",
            labels=["resource"],
        )
        for resource, stats in sorted(self.watches.items()):
            up.add_metric([resource], 1.0 if stats.up else 0.0)
            lists.add_metric([resource], stats.lists)
            synced.add_metric([resource], stats.last_sync)
            for kind, n in sorted(stats.events.items()):
                events.add_metric([resource, kind], n)
            for reason, n in sorted(stats.errors.items()):
                errors.add_metric([resource, reason], n)
        yield from (up, events, lists, errors, synced)
        rejected = CounterMetricFamily(
            PREFIX + "config_errors", "Policy documents rejected.", labels=["source"]
        )
        for source, n in sorted(self.config_errors.items()):
            rejected.add_metric([source], n)
        yield rejected
        if self.config_source:
            info = InfoMetricFamily(
                PREFIX + "config_source", "Where the policy document came from."
            )
            info.add_metric([], {"source": self.config_source})
            yield info
