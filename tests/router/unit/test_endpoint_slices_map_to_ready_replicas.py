"""EndpointSlices -> replicas: every ready endpoint of every named backend Service appears
exactly once, no unready or terminating one, whatever the slicing, order and noise."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.api.router_config import BackendInfo
from tierwise.router.discovery.slices import replicas_from_slices

BACKENDS = {
    "small": BackendInfo(service="small-svc", port_name="http", served_model_name="s"),
    "large": BackendInfo(service="large-svc", port_name="api", served_model_name="l"),
}
PORTS = {"small-svc": ("http", 8000), "large-svc": ("api", 9000), "other-svc": ("http", 7000)}


def slice_of(
    service: str, endpoints: list[dict[str, Any]], *, family: str = "IPv4", port_name: str = ""
) -> dict[str, Any]:
    name, number = PORTS[service]
    return {
        "metadata": {"name": f"{service}-x", "labels": {"kubernetes.io/service-name": service}},
        "addressType": family,
        "ports": [{"name": port_name or name, "port": number, "protocol": "TCP"}],
        "endpoints": endpoints,
    }


def endpoint(address: str, pod: str | None, **conditions: bool | None) -> dict[str, Any]:
    out: dict[str, Any] = {"addresses": [address], "conditions": {}}
    for key, value in conditions.items():
        if value is not None:
            out["conditions"][key] = value
    if pod is not None:
        out["targetRef"] = {"kind": "Pod", "name": pod, "namespace": "default"}
    return out


# one generated endpoint: (service, host number, ready, terminating, has a pod name)
endpoints_st = st.lists(
    st.tuples(
        st.sampled_from(sorted(PORTS)),
        st.integers(1, 40),
        st.sampled_from([True, False, None]),
        st.sampled_from([True, False, None]),
        st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(found=endpoints_st, per_slice=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_every_ready_endpoint_appears_exactly_once(
    found: list[tuple[str, int, bool | None, bool | None, bool]], per_slice: int, seed: int
) -> None:
    # the oracle: per backend, an address is servable when every copy is ready (unset counts
    # as ready) and none is terminating
    copies: dict[tuple[str, str], list[bool]] = {}
    items: dict[str, list[dict[str, Any]]] = {}
    for service, host, ready, terminating, named in found:
        address = f"10.0.{host // 10}.{host}"
        pod = f"{service}-pod-{host}" if named else None
        items.setdefault(service, []).append(
            endpoint(address, pod, ready=ready, terminating=terminating)
        )
        ok = ready is not False and terminating is not True
        copies.setdefault((service, address), []).append(ok)
    slices = [
        slice_of(service, group[i : i + per_slice])
        for service, group in items.items()
        for i in range(0, len(group), per_slice)
    ]
    random.Random(seed).shuffle(slices)
    result = replicas_from_slices(slices, BACKENDS)
    assert set(result) == set(BACKENDS)
    for md, info in BACKENDS.items():
        port = PORTS[info.service][1]
        expected = sorted(
            f"http://{address}:{port}"
            for (service, address), oks in copies.items()
            if service == info.service and all(oks)
        )
        urls = [r.url for r in result[md]]
        assert urls == expected  # exactly once each, sorted, nothing else
        for replica in result[md]:
            host = int(replica.url.rsplit(".", 1)[1].split(":")[0])
            assert replica.name in (None, f"{info.service}-pod-{host}")


@pytest.mark.parametrize(
    ("family", "address", "url"),
    [
        ("IPv4", "10.1.2.3", "http://10.1.2.3:8000"),
        ("IPv6", "fd00::1", "http://[fd00::1]:8000"),
        ("FQDN", "engine-0.example.internal", "http://engine-0.example.internal:8000"),
    ],
)
def test_address_families_give_urls(family: str, address: str, url: str) -> None:
    result = replicas_from_slices(
        [slice_of("small-svc", [endpoint(address, "pod-0", ready=True)], family=family)],
        BACKENDS,
    )
    assert [(r.url, r.name) for r in result["small"]] == [(url, "pod-0")]


def test_unknown_address_type_and_other_port_names_give_nothing() -> None:
    ready = [endpoint("10.0.0.1", "p", ready=True)]
    slices = [
        slice_of("small-svc", ready, family="AppleTalk"),
        slice_of("large-svc", ready, port_name="metrics"),  # no port named "api"
    ]
    assert replicas_from_slices(slices, BACKENDS) == {"small": (), "large": ()}


def test_without_target_ref_the_url_names_the_replica() -> None:
    result = replicas_from_slices([slice_of("small-svc", [endpoint("10.0.0.1", None)])], BACKENDS)
    assert [(r.url, r.name) for r in result["small"]] == [("http://10.0.0.1:8000", None)]


def test_a_service_shared_by_two_deployments_serves_both() -> None:
    backends = {
        "a": BackendInfo(service="small-svc", served_model_name="a"),
        "b": BackendInfo(service="small-svc", served_model_name="b"),
    }
    result = replicas_from_slices(
        [slice_of("small-svc", [endpoint("10.0.0.1", "p", ready=True)])], backends
    )
    assert [r.url for r in result["a"]] == [r.url for r in result["b"]] == ["http://10.0.0.1:8000"]


@pytest.mark.parametrize("name", ["pod\r\nx-evil: 1", "pöd", "two words", ""])
def test_names_unfit_for_a_header_fall_back_to_the_url(name: str) -> None:
    result = replicas_from_slices(
        [slice_of("small-svc", [endpoint("10.0.0.1", name, ready=True)])], BACKENDS
    )
    assert result["small"][0].name is None
