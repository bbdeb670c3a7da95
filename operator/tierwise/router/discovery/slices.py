"""EndpointSlices -> ready replicas per ModelDeployment (pure).

Why it exists: which replicas may get new requests is the whole point of discovery, and
EndpointSlices have enough corners to deserve one small, property-tested function:

* A Service's endpoints are spread over several slices (one per port set, at most 100
  endpoints each); a slice belongs to the Service its ``kubernetes.io/service-name`` label
  names, and to every ModelDeployment whose :class:`~tierwise.api.router_config.BackendInfo`
  names that Service.
* The port is the slice port named ``BackendInfo.port_name`` (a slice without it
  contributes nothing: the Service does not serve the API there).
* An endpoint is servable when ``conditions.ready`` is not false (unset means ready, as
  the API documents) and ``conditions.terminating`` is not true: a terminating pod gets no
  new request, while requests already sent to it finish (the router's snapshot keeps them).
* The first address is the endpoint's (addresses are fungible, per the API); the URL is
  ``http://ADDRESS:PORT`` with IPv6 addresses bracketed; ``addressType`` FQDN is used as a
  host name; other address types are skipped.
* The same endpoint may show up in two slices while the controller moves it: it is listed
  once, and only when no copy says it is unready or terminating.
* Identity (``x-tierwise-replica``) is ``targetRef.name`` (the pod), else the URL.

Replicas come out sorted by URL, so the routing table's version does not depend on the
order in which slices were listed or watched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tierwise.api.router_config import BackendInfo
from tierwise.router.table import Replica, header_safe

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
ADDRESS_TYPES = frozenset({"IPv4", "IPv6", "FQDN"})


def replicas_from_slices(
    slices: Iterable[Mapping[str, Any]], backends: Mapping[str, BackendInfo]
) -> dict[str, tuple[Replica, ...]]:
    """Ready replicas of every ModelDeployment in ``backends`` (see the module docstring).

    Every backend gets an entry (empty when nothing is ready)."""
    by_service: dict[str, list[str]] = {}
    for md, info in backends.items():
        by_service.setdefault(info.service, []).append(md)
    seen: dict[str, dict[str, tuple[bool, Replica]]] = {md: {} for md in backends}
    for item in slices:
        labels = (item.get("metadata") or {}).get("labels") or {}
        mds = by_service.get(labels.get(SERVICE_NAME_LABEL, ""))
        family = item.get("addressType")
        if not mds or family not in ADDRESS_TYPES:
            continue
        for md in mds:
            port = slice_port(item, backends[md].port_name)
            if port is None:
                continue
            for endpoint in item.get("endpoints") or []:
                _merge(seen[md], endpoint, family, port)
    return {
        md: tuple(replica for _, (ok, replica) in sorted(found.items()) if ok)
        for md, found in seen.items()
    }


def slice_port(item: Mapping[str, Any], name: str) -> int | None:
    """The number of the slice's port called ``name`` (None: the slice has no such port)."""
    for port in item.get("ports") or []:
        if (port.get("name") or "") == name and isinstance(port.get("port"), int):
            number: int = port["port"]
            return number
    return None


def servable(endpoint: Mapping[str, Any]) -> bool:
    """Ready (unset counts as ready) and not terminating."""
    conditions = endpoint.get("conditions") or {}
    return conditions.get("ready") is not False and conditions.get("terminating") is not True


def endpoint_url(family: str, address: str, port: int) -> str:
    host = f"[{address}]" if family == "IPv6" else address
    return f"http://{host}:{port}"


def _merge(
    found: dict[str, tuple[bool, Replica]], endpoint: Mapping[str, Any], family: str, port: int
) -> None:
    addresses = endpoint.get("addresses") or []
    if not addresses or not isinstance(addresses[0], str):
        return
    url = endpoint_url(family, addresses[0], port)
    ok = servable(endpoint)
    before = found.get(url)
    if before is not None:
        found[url] = (before[0] and ok, before[1])
        return
    target = endpoint.get("targetRef") or {}
    name = target.get("name")
    found[url] = (ok, Replica(url, name if header_safe(name) and name else None))
