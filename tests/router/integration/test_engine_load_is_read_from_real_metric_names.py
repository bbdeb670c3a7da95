"""Queue depth and KV-cache usage are read from vLLM's and SGLang's real metric names —
checked against prometheus_client's own rendering and parser — and the scraper marks a
replica unhealthy after repeated failures and healthy again when it answers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.router.http.client import UpstreamPool
from tierwise.router.loadwatch import EngineLoad, LoadBook, Scraper, parse_engine_load
from tierwise.router.table import build_table
from tierwise.sim.app import serve_engine
from tierwise.sim.config import EngineKind, SimConfig
from tierwise.sim.process import free_port

NAMES = {
    "vllm": ("vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"),
    "vllm-old": ("vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc"),
    "sglang": ("sglang:num_queue_reqs", "sglang:token_usage"),
}
LABEL_VALUES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=12
)


def _exposition(kind: str, series: list[tuple[str, float, float]]) -> str:
    registry = CollectorRegistry()
    queue_name, kv_name = NAMES[kind]
    queue = Gauge(queue_name, "queue", ["model_name"], registry=registry)
    kv = Gauge(kv_name, "kv", ["model_name"], registry=registry)
    Gauge("vllm:num_requests_waiting_other", "decoy", registry=registry).set(99)
    for label, waiting, usage in series:
        queue.labels(label).set(waiting)
        kv.labels(label).set(usage)
    return generate_latest(registry).decode()


@given(
    series=st.lists(
        st.tuples(
            LABEL_VALUES,
            st.integers(min_value=0, max_value=10_000).map(float),
            st.floats(min_value=0, max_value=1),
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda s: s[0],
    )
)
@pytest.mark.parametrize("kind", list(NAMES))
def test_matches_prometheus_client(kind: str, series: list[tuple[str, float, float]]) -> None:
    text = _exposition(kind, series)
    expected_queue = expected_kv = None
    queue_name, kv_name = NAMES[kind]
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == queue_name:
                expected_queue = (expected_queue or 0.0) + sample.value
            elif sample.name == kv_name:
                expected_kv = max(expected_kv or 0.0, sample.value)
    load = parse_engine_load(text)
    assert load.queue_depth == expected_queue
    assert load.kv_cache_usage is not None
    assert expected_kv is not None
    assert math.isclose(load.kv_cache_usage, expected_kv)


@pytest.mark.parametrize(
    "text",
    ["", "# only comments\n", "vllm:num_requests_waiting NaN\n", "other_metric 3\n"],
)
def test_nothing_to_read(text: str) -> None:
    assert parse_engine_load(text) == EngineLoad(None, None)


@pytest.mark.parametrize("engine", list(EngineKind))
async def test_reads_the_simulators_metrics(engine: EngineKind) -> None:
    async with serve_engine(SimConfig(engine=engine, model="m")) as url:
        document = {
            "metadata": {"name": "p"},
            "spec": {"tiers": [{"name": "t", "backends": [{"modelDeployment": "m"}]}]},
        }
        table = build_table(RoutingPolicy.model_validate(document), {"m": [url]})
        book = LoadBook()
        (load,) = book.sync(table)["t"]
        pool = UpstreamPool()
        try:
            await Scraper(book, pool).scrape_once([load])
        finally:
            await pool.close()
    assert load.healthy
    assert load.queue_depth == 0
    assert load.kv_cache_usage == 0


async def test_unreachable_replica_goes_down_then_up() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    document = {
        "metadata": {"name": "p"},
        "spec": {"tiers": [{"name": "t", "backends": [{"modelDeployment": "m"}]}]},
    }
    table = build_table(RoutingPolicy.model_validate(document), {"m": [dead]})
    book = LoadBook(failures_to_down=2)
    (load,) = book.sync(table)["t"]
    pool = UpstreamPool(connect_timeout_s=0.5)
    scraper = Scraper(book, pool, timeout_s=0.5)
    try:
        await scraper.scrape_once([load])
        assert load.healthy  # one failure is not enough
        await scraper.scrape_once([load])
        assert not load.healthy
        book.apply(dead, EngineLoad(3.0, 0.5))  # a later scrape answers
        assert load.healthy
        assert (load.queue_depth, load.kv_cache_usage) == (3.0, 0.5)
        # the load object survives a table swap with the same URL
        assert book.sync(table)["t"][0] is load
    finally:
        await pool.close()
