"""EndpointSlices of a Service computed from its pods, as Kubernetes' EndpointSlice controller does.

Why it exists: routers discover ready replicas from the EndpointSlices of each backend
Service (zero API writes per endpoint change), so the embedded cluster must keep slices the
way a real control plane does. This module is the pure part: a Service, the pods of its
namespace and the slices that exist in, a :class:`SlicePlan` (create / update / delete) out.
:mod:`tierwise.local.endpointslice_controller` runs it against the emulator's store.

What it copies from the real controller (``pkg/controller/endpointslice`` and
``staging/src/k8s.io/endpointslice``):

* a pod is an endpoint when the Service's selector matches its labels, it is scheduled
  (``spec.nodeName``), has an IP and is not in a terminal phase; terminating pods stay,
  with ``conditions`` ``ready = (Ready or publishNotReadyAddresses) and not terminating``,
  ``serving = Ready or publishNotReadyAddresses``, ``terminating = deletionTimestamp set``;
* each Service port resolves per pod: a named ``targetPort`` to the pod's containerPort of
  that name (a pod without it lacks that port), a number as is, none to the Service port.
  Here one twist: a pod run by the local runner listens on the port in its annotation
  ``local.tierwise.dev/port`` (all processes share 127.0.0.1), so a named ``targetPort``
  resolves to that annotation;
* endpoints are grouped into slices by (address type, resolved port set), at most
  ``max_endpoints`` per slice; an endpoint stays in the slice that holds it and new ones
  fill slices with room first, so one pod change rewrites one slice;
* labels: the Service's, plus ``kubernetes.io/service-name``,
  ``endpointslice.kubernetes.io/managed-by`` (and ``service.kubernetes.io/headless`` for
  ``clusterIP: None``); an owner reference to the Service; ``generateName`` ``<service>-``;
* a Service without endpoints keeps one placeholder slice (no ports, no endpoints).

Not modelled: topology hints and zones, ``hostname`` for headless Services, the
``last-change-trigger-time`` annotation (it would make every pass a write), dual-stack
Services beyond "one slice per address family of the pod IPs".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kmock

from tierwise.local.workloads import PORT_ANNOTATION

ENDPOINTSLICES = kmock.resource("discovery.k8s.io", "v1", "endpointslices")
SERVICES = kmock.resource("", "v1", "services")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_ENDPOINTS_PER_SLICE = 100
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Obj = Mapping[str, Any]
PortSpec = tuple[str, int, str, str | None]  # name, port, protocol, appProtocol
SliceKey = tuple[str, tuple[PortSpec, ...]]  # address type, ports


@dataclass
class SlicePlan:
    """What to write so that a Service's slices match its pods (empty: nothing to do)."""

    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete)


def selector_of(service: Obj) -> dict[str, str]:
    """The Service's selector ({} for a Service without one: its slices are not ours)."""
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return {}
    return {str(k): str(v) for k, v in (spec.get("selector") or {}).items()}


def selects(selector: Mapping[str, str], pod: Obj | None) -> bool:
    if not selector or pod is None:
        return False
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def target_port(service_port: Obj, pod: Obj) -> int | None:
    """The pod's port for one Service port (None: the pod does not have it)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    declared = any(p.get("name") == target for c in _containers(pod) for p in c.get("ports") or [])
    if not declared:
        return None
    local = ((pod.get("metadata") or {}).get("annotations") or {}).get(PORT_ANNOTATION)
    if local is not None and str(local).isdigit():
        return int(local)
    for container in _containers(pod):
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("containerPort") is not None:
                return int(port["containerPort"])
    return None


def pod_ports(service: Obj, pod: Obj) -> tuple[PortSpec, ...]:
    """The resolved ports of one pod for the Service, in the Service's order."""
    out: list[PortSpec] = []
    for port in (service.get("spec") or {}).get("ports") or []:
        number = target_port(port, pod)
        if number is not None:
            out.append(
                (
                    str(port.get("name") or ""),
                    number,
                    str(port.get("protocol") or "TCP"),
                    port.get("appProtocol"),
                )
            )
    return tuple(out)


def address_type(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def _pod_addresses(service: Obj, pod: Obj) -> dict[str, str]:
    """The pod's first IP per address family the Service serves."""
    status = pod.get("status") or {}
    ips = [str(p.get("ip")) for p in status.get("podIPs") or [] if p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    families = (service.get("spec") or {}).get("ipFamilies")
    out: dict[str, str] = {}
    for ip in ips:
        family = address_type(ip)
        if (not families or family in families) and family not in out:
            out[family] = ip
    return out


def is_endpoint(pod: Obj) -> bool:
    """Scheduled, has an IP, not finished (terminating pods are endpoints too)."""
    status = pod.get("status") or {}
    return (
        bool((pod.get("spec") or {}).get("nodeName"))
        and bool(status.get("podIP") or status.get("podIPs"))
        and status.get("phase") not in ("Succeeded", "Failed")
    )


def endpoint(service: Obj, pod: Obj, ip: str) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    serving = publish or pod_ready(pod)
    terminating = bool(meta.get("deletionTimestamp"))
    out: dict[str, Any] = {
        "addresses": [ip],
        "conditions": {
            "ready": serving and not terminating,
            "serving": serving,
            "terminating": terminating,
        },
    }
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        out["nodeName"] = node
    out["targetRef"] = {
        "kind": "Pod",
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
    }
    return out


def desired_endpoints(service: Obj, pods: Iterable[Obj]) -> dict[SliceKey, list[dict[str, Any]]]:
    """The Service's endpoints grouped by (address type, resolved port set)."""
    selector = selector_of(service)
    namespace = (service.get("metadata") or {}).get("namespace")
    groups: dict[SliceKey, list[dict[str, Any]]] = {}
    for pod in pods:
        if (pod.get("metadata") or {}).get("namespace") != namespace:
            continue
        if not selects(selector, pod) or not is_endpoint(pod):
            continue
        ports = pod_ports(service, pod)
        for family, ip in _pod_addresses(service, pod).items():
            groups.setdefault((family, ports), []).append(endpoint(service, pod, ip))
    return groups


def slice_key(obj: Obj) -> SliceKey:
    ports = tuple(
        (
            str(p.get("name") or ""),
            int(p.get("port") or 0),
            str(p.get("protocol") or "TCP"),
            p.get("appProtocol"),
        )
        for p in obj.get("ports") or []
    )
    return str(obj.get("addressType") or "IPv4"), ports


def _identity(ep: Obj) -> str:
    ref = ep.get("targetRef") or {}
    return str(ref.get("uid") or ",".join(ep.get("addresses") or []))


def _sort_key(ep: Obj) -> tuple[str, str]:
    return str((ep.get("targetRef") or {}).get("name") or ""), ",".join(ep.get("addresses") or [])


def slice_labels(service: Obj) -> dict[str, str]:
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    labels.pop(HEADLESS_LABEL, None)
    labels[SERVICE_NAME_LABEL] = str(meta.get("name"))
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    if spec.get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


def owner_reference(service: Obj) -> dict[str, Any]:
    meta = service.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_managed(obj: Obj, service: Obj) -> bool:
    """A slice this controller manages for ``service`` (by labels, as the real one selects)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    name = (service.get("metadata") or {}).get("name")
    return (
        labels.get(SERVICE_NAME_LABEL) == name and labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME
    )


def slice_name(service: Obj, key: SliceKey, taken: set[str]) -> str:
    """``<service>-<5 chars>``: a deterministic suffix per port set, skipping taken names."""
    meta = service.get("metadata") or {}
    prefix = f"{str(meta.get('name'))[:247]}-"
    for attempt in range(1000):
        digest = hashlib.sha256(f"{meta.get('uid')}/{key}/{attempt}".encode()).digest()
        name = prefix + "".join(_NAME_ALPHABET[b % len(_NAME_ALPHABET)] for b in digest[:5])
        if name not in taken:
            taken.add(name)
            return name
    raise RuntimeError(f"no free EndpointSlice name for {prefix}")  # pragma: no cover


def slice_body(
    service: Obj, key: SliceKey, endpoints: Sequence[Obj], base: Obj | None = None
) -> dict[str, Any]:
    """A complete slice; ``base`` (an existing slice) keeps its name and server fields."""
    meta = service.get("metadata") or {}
    family, ports = key
    metadata: dict[str, Any] = dict((base or {}).get("metadata") or {})
    metadata.update(
        namespace=meta.get("namespace"),
        generateName=f"{meta.get('name')}-",
        labels=slice_labels(service),
        ownerReferences=[owner_reference(service)],
    )
    port_list: list[dict[str, Any]] = []
    for name, number, protocol, app_protocol in ports:
        port: dict[str, Any] = {"name": name, "port": number, "protocol": protocol}
        if app_protocol is not None:
            port["appProtocol"] = app_protocol
        port_list.append(port)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata,
        "addressType": family,
        "endpoints": sorted((dict(ep) for ep in endpoints), key=_sort_key),
        "ports": port_list,
    }


def _comparable(obj: Obj) -> tuple[Any, ...]:
    meta = obj.get("metadata") or {}
    return (
        meta.get("labels") or {},
        meta.get("ownerReferences") or [],
        meta.get("generateName"),
        obj.get("addressType"),
        obj.get("endpoints") or [],
        obj.get("ports") or [],
    )


def _pack(
    wanted: list[dict[str, Any]], existing: list[Obj], max_endpoints: int
) -> tuple[list[tuple[Obj, list[dict[str, Any]]]], list[list[dict[str, Any]]]]:
    """Keep each endpoint in the slice holding it; put new ones in slices with room first."""
    by_id = {_identity(ep): ep for ep in wanted}
    kept: list[tuple[Obj, list[dict[str, Any]]]] = []
    for obj in existing:
        members: list[dict[str, Any]] = []
        for ep in obj.get("endpoints") or []:
            found = by_id.pop(_identity(ep), None)
            if found is not None and len(members) < max_endpoints:
                members.append(found)
        kept.append((obj, members))
    fresh = sorted(by_id.values(), key=_sort_key)
    for _, members in kept:
        room = max_endpoints - len(members)
        if room > 0 and fresh:
            members.extend(fresh[:room])
            fresh = fresh[room:]
    chunks = [fresh[i : i + max_endpoints] for i in range(0, len(fresh), max_endpoints)]
    return kept, chunks


def plan_slices(
    service: Obj,
    pods: Iterable[Obj],
    slices: Iterable[Obj],
    *,
    taken: Iterable[str] = (),
    max_endpoints: int = MAX_ENDPOINTS_PER_SLICE,
) -> SlicePlan:
    """What to write so the Service's managed slices match its pods (pure).

    ``slices``: the slices of the Service's namespace (others are ignored); ``taken``: names
    already used in the namespace, which new slices must avoid.
    """
    plan = SlicePlan()
    mine = sorted(
        (s for s in slices if is_managed(s, service)),
        key=lambda s: str((s.get("metadata") or {}).get("name")),
    )
    names = set(taken) | {str((s.get("metadata") or {}).get("name")) for s in mine}
    if not selector_of(service):
        plan.delete = [str(s["metadata"]["name"]) for s in mine]
        return plan
    groups = desired_endpoints(service, pods)
    if not groups:
        family = ((service.get("spec") or {}).get("ipFamilies") or ["IPv4"])[0]
        groups = {(str(family), ()): []}  # the placeholder slice
    by_key: dict[SliceKey, list[Obj]] = {}
    for obj in mine:
        by_key.setdefault(slice_key(obj), []).append(obj)
    for key, wanted in sorted(groups.items(), key=lambda item: repr(item[0])):
        kept, chunks = _pack(wanted, by_key.pop(key, []), max_endpoints)
        for index, (obj, members) in enumerate(kept):
            if not members and (wanted or index > 0):  # empty, or a second placeholder
                plan.delete.append(str(obj["metadata"]["name"]))
                continue
            body = slice_body(service, key, members, base=obj)
            if _comparable(body) != _comparable(obj):
                plan.update.append(body)
        if not kept and not chunks:
            chunks = [[]]  # the placeholder
        for members in chunks:
            body = slice_body(service, key, members)
            body["metadata"]["name"] = slice_name(service, key, names)
            plan.create.append(body)
    for rest in by_key.values():
        plan.delete.extend(str(obj["metadata"]["name"]) for obj in rest)
    return plan
