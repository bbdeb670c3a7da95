"""The routing table: build from a policy, versioned document, validation, atomic swap."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.router.table import RoutingTable, TableHolder, build_table
from tierwise.router.table_document import (
    TableError,
    dump_table,
    load_table,
    parse_table,
    table_document,
)

Policy = Callable[..., RoutingPolicy]
ENDPOINTS = {
    "md-small": ["http://127.0.0.1:8001", "http://127.0.0.1:8002/v1/"],
    "md-mid": ["http://127.0.0.1:8003"],
}


def test_build_resolves_endpoints_and_external_keys(make_policy: Policy) -> None:
    t = build_table(make_policy(), ENDPOINTS, secrets_dir="/secrets/")
    small, mid, frontier = t.tiers
    assert [e.url for e in small.endpoints] == ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]
    assert [e.api_base for e in small.endpoints][1] == "http://127.0.0.1:8002/v1"
    assert {(e.backend, e.upstream_model) for e in small.endpoints} == {("md-small", "md-small")}
    (ext,) = frontier.endpoints
    assert ext.external
    assert ext.backend == "external:big-1"
    assert (ext.url, ext.api_base) == ("https://api.example.com", "https://api.example.com/v1")
    assert ext.api_key_file == "/secrets/frontier-key/api-key"
    assert ext.timeout_s == 120.0
    assert [t.index for t in t.tiers] == [0, 1, 2]
    assert t.next_tier("mid") is frontier
    assert t.next_tier("frontier") is None
    assert mid.max_prompt_tokens == 1000


def test_no_secrets_dir_means_no_key_file(make_policy: Policy) -> None:
    assert build_table(make_policy(), ENDPOINTS).tier("frontier").endpoints[0].api_key_file is None


def test_missing_deployment_gives_an_empty_tier(make_policy: Policy) -> None:
    t = build_table(make_policy(), {"md-small": ["http://a:1"]})
    assert t.tier("mid").endpoints == ()


def test_deployments_supply_served_name_gpus_and_price(make_policy: Policy) -> None:
    md = ModelDeployment.model_validate(
        {
            "metadata": {"name": "md-mid"},
            "spec": {
                "model": {"uri": "hf://org/m", "servedName": "served-mid"},
                "engine": {"name": "sglang", "tensorParallelSize": 2},
                "cost": {"perGPUHour": 2.5},
            },
        }
    )
    t = build_table(make_policy(), ENDPOINTS, deployments={"md-mid": md})
    mid = t.tier("mid")
    assert mid.endpoints[0].upstream_model == "served-mid"
    assert (mid.price.per_gpu_hour, mid.price.gpus_per_replica) == (2.5, 2)
    assert t.tier("frontier").price.input_per_million == 2.0


def test_version_is_a_stable_content_hash(make_policy: Policy) -> None:
    a = build_table(make_policy(), ENDPOINTS)
    b = build_table(make_policy(), {k: list(v) for k, v in ENDPOINTS.items()})
    c = build_table(make_policy(), {**ENDPOINTS, "md-mid": ["http://127.0.0.1:9999"]})
    assert a.version == b.version
    assert a.version != c.version
    assert build_table(make_policy(), ENDPOINTS, version="v7").version == "v7"


def test_dump_and_load_round_trip(make_policy: Policy, tmp_path: Path) -> None:
    t = build_table(make_policy(defaultTier="mid"), ENDPOINTS, secrets_dir="/s")
    path = tmp_path / "table.json"
    path.write_bytes(dump_table(t))
    loaded = load_table(path)
    assert loaded.version == t.version
    assert loaded.tiers == t.tiers
    assert loaded.spec == t.spec
    assert loaded.aliases == t.aliases
    assert loaded.default_tier == "mid"


def test_yaml_document_loads(make_policy: Policy, tmp_path: Path) -> None:
    import yaml

    doc = table_document(build_table(make_policy(), ENDPOINTS))
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    assert load_table(path).version == doc["version"]


def _doc(make_policy: Policy) -> dict[str, Any]:
    raw: dict[str, Any] = orjson.loads(dump_table(build_table(make_policy(), ENDPOINTS)))
    return raw


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d.update(apiVersion="tierwise.dev/v2"), "apiVersion"),
        (lambda d: d.update(kind="RoutingPolicy"), "kind"),
        (lambda d: d.pop("version"), "version"),
        (lambda d: d["spec"].update(defaultTier="nope"), "spec.defaultTier"),
        (lambda d: d["spec"]["tiers"][0].update(nmae="x"), "spec.tiers[0].nmae"),
        (lambda d: d["endpoints"]["small"][0].update(url="ftp://x"), "endpoints.small[0].url"),
        (lambda d: d["endpoints"]["small"][0].pop("backend"), "endpoints.small[0].backend"),
        (lambda d: d["endpoints"].update(ghost=[]), "endpoints.ghost"),
        (lambda d: d["endpoints"]["small"][1].update(weight=0), "endpoints.small[1].weight"),
        (lambda d: d["prices"]["small"].update(perGPUHour=-1), "prices.small"),
        (lambda d: d.update(endpoints=["x"]), "endpoints"),
    ],
)
def test_invalid_documents_name_the_field(
    make_policy: Policy, mutate: Callable[[dict[str, Any]], Any], path: str
) -> None:
    doc = _doc(make_policy)
    mutate(doc)
    with pytest.raises(TableError) as err:
        parse_table(doc)
    assert path in [i.path for i in err.value.issues], err.value.issues
    assert path in str(err.value)


@pytest.mark.parametrize("text", ["", "[1, 2]", "a: [", "just text"])
def test_malformed_files_are_errors_not_tracebacks(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TableError):
        load_table(path)


def test_missing_file_is_a_table_error(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="cannot read"):
        load_table(tmp_path / "absent.json")


def test_holder_swap_is_atomic_for_readers(make_policy: Policy) -> None:
    tables = [build_table(make_policy(), ENDPOINTS, version=f"v{i}") for i in range(2)]
    holder = TableHolder(tables[0])
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            table: RoutingTable = holder.current  # one read per "request"
            assert table.tier("small").name == "small"
            seen.add(table.version)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(2000):
            holder.swap(tables[i % 2])
    finally:
        stop.set()
        thread.join()
    assert holder.current is tables[1]
    assert seen <= {"v0", "v1"}
