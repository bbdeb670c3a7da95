"""Workers answer one /metrics: counters and histograms summed, shared state not
multiplied, series only some workers have kept; the default worker count follows CPU
affinity and the cgroup quota."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tierwise.router.metrics_merge import merge
from tierwise.router.workers import cores_from

P = "tierwise_router_"


def worker_text(requests: dict[str, int], in_flight: int, version: str, last: float) -> bytes:
    registry = CollectorRegistry()
    counter = Counter(P + "requests", "Answered requests.", ["tier"], registry=registry)
    for tier_name, n in requests.items():
        counter.labels(tier_name).inc(n)
    Gauge(P + "in_flight", "Requests being answered.", registry=registry).set(in_flight)
    Gauge(P + "endpoints", "Endpoints.", ["backend"], registry=registry).labels("md").set(3)
    info = Gauge(P + "table_version_info", "Table.", ["version"], registry=registry)
    info.labels(version).set(1)
    Gauge(P + "last_request_timestamp_seconds", "Last.", registry=registry).set(last)
    Gauge(P + "discovery_watch_up", "Watch.", registry=registry).set(1 if last > 5 else 0)
    h = Histogram(P + "duration_seconds", "Latency.", buckets=(0.1, 1.0), registry=registry)
    for _ in range(sum(requests.values())):
        h.observe(0.5)
    return generate_latest(registry)


def values(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_merge_sums_work_and_keeps_shared_state() -> None:
    a = worker_text({"small": 3}, in_flight=2, version="v1", last=10.0)
    b = worker_text({"small": 4, "large": 1}, in_flight=1, version="v2", last=7.0)
    merged = values(merge([a, b]))
    assert merged[(P + "requests_total", (("tier", "small"),))] == 7
    assert merged[(P + "requests_total", (("tier", "large"),))] == 1  # only worker b had it
    assert merged[(P + "in_flight", ())] == 3
    assert merged[(P + "endpoints", (("backend", "md"),))] == 3  # not 6
    assert merged[(P + "table_version_info", (("version", "v1"),))] == 1
    assert merged[(P + "table_version_info", (("version", "v2"),))] == 1  # a reload in flight
    assert merged[(P + "last_request_timestamp_seconds", ())] == 10.0
    assert merged[(P + "discovery_watch_up", ())] == 1.0
    assert merged[(P + "duration_seconds_count", ())] == 8
    assert merged[(P + "duration_seconds_bucket", (("le", "1.0"),))] == 8
    assert merged[(P + "duration_seconds_bucket", (("le", "0.1"),))] == 0


def test_a_watch_down_in_one_worker_shows_down() -> None:
    up = worker_text({"small": 1}, in_flight=0, version="v", last=10.0)
    down = worker_text({"small": 1}, in_flight=0, version="v", last=1.0)
    assert values(merge([up, down]))[(P + "discovery_watch_up", ())] == 0.0


@pytest.mark.parametrize("texts", [[], [b""], [b"# junk\nnot a sample\n\n"]])
def test_merge_of_nothing_or_junk_is_empty_and_parseable(texts: list[bytes]) -> None:
    assert values(merge(texts)) == {}


def test_merge_of_one_is_the_same_exposition() -> None:
    one = worker_text({"ünïcode-tier": 2}, in_flight=1, version="v", last=3.0)
    assert values(merge([one])) == values(one)


@pytest.mark.parametrize(
    ("affinity", "cpu_max", "quota", "period", "cores"),
    [
        (8, None, None, None, 8),
        (8, "max 100000", None, None, 8),
        (8, "200000 100000", None, None, 2),
        (8, "150000 100000", None, None, 2),  # 1.5 CPUs: round up
        (8, "50000 100000", None, None, 1),
        (2, "400000 100000", None, None, 2),  # affinity is the tighter cap
        (8, None, "300000", "100000", 3),  # cgroup v1
        (8, None, "-1", "100000", 8),
        (0, None, None, None, 1),
        (4, "garbage", None, None, 4),
    ],
)
def test_core_count_follows_affinity_and_quota(
    affinity: int, cpu_max: str | None, quota: str | None, period: str | None, cores: int
) -> None:
    assert cores_from(affinity, cpu_max, quota, period) == cores
