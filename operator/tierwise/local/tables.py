"""Server-side printing: ``get`` and ``list`` answered as ``meta.k8s.io`` Tables.

Why it exists: ``kubectl get`` does not choose its columns, the API server does. kubectl
asks with ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...,application/json``
and prints the Table it gets back: for a custom resource, NAME plus the CRD's
``additionalPrinterColumns`` evaluated with their JSONPath (so ``kubectl get md`` shows
ENGINE, MODEL, READY, DESIRED, PHASE, AGE); for built-in kinds, the columns kube-apiserver's
printers define. Without it kubectl falls back to NAME and AGE, which hides what the
operator writes into status.

What is copied from the real server (``apiextensions-apiserver``'s table convertor and
``pkg/printers/internalversion``): the NAME column first (format ``name``); a CRD without
printer columns gets AGE; ``date`` cells become kubectl's human durations (``45s``,
``3m12s``); ``integer``/``number``/``boolean`` cells keep their JSON type and a value of
another type is left empty; ``priority`` > 0 columns are the ``-o wide`` ones; each row
carries the object as ``PartialObjectMetadata`` (``includeObject=Metadata``, the default),
whole (``Object``) or not at all (``None``). Built-in kinds: pods (READY, STATUS,
RESTARTS, AGE; IP, NODE wide), Deployments (READY, UP-TO-DATE, AVAILABLE, AGE), Services
(TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S), AGE); every other kind NAME and AGE. Not done:
watches as Tables (``kubectl get -w``), and JSONPath beyond fields, indexes, ``[*]`` and
``[?(@.key=="value")]`` filters. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

TABLE_GROUP = "meta.k8s.io"
TABLE_VERSIONS = ("v1", "v1beta1")


class IncludeObject(StrEnum):
    """What each row carries besides its cells (the ``includeObject`` query parameter)."""

    NONE = "None"
    METADATA = "Metadata"
    OBJECT = "Object"


def table_version(accept: str) -> str | None:
    """The Table version an ``Accept`` header asks for (its first one), else None."""
    for media in accept.split(","):
        kind, *params = (part.strip() for part in media.split(";"))
        values = dict(p.partition("=")[::2] for p in params)
        wanted = kind in ("application/json", "*/*") and values.get("as") == "Table"
        if wanted and values.get("g") == TABLE_GROUP and values.get("v") in TABLE_VERSIONS:
            return values["v"]
    return None


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its definition and how a cell is read from an object."""

    name: str
    type: str
    cell: Callable[[Mapping[str, Any], datetime], Any]
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


# -- JSONPath (the subset CRD printer columns use) -------------------------------------------
_STEP = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_$-]+)
      | \[(?P<index>-?\d+|\*)\]
      | \[['"](?P<key>[^'"]+)['"]\]
      | \[\?\(@\.(?P<fkey>[A-Za-z0-9_.-]+)\s*==\s*['"](?P<fvalue>[^'"]*)['"]\)\]""",
    re.VERBOSE,
)


def json_path(obj: Any, path: str) -> list[Any]:
    """Every value ``path`` (``.status.readyReplicas``, ``.items[0]``,
    ``.status.conditions[?(@.type=="Ready")].status``) finds in ``obj``."""
    text = path.strip().removeprefix("{").removesuffix("}").strip()
    text = text.removeprefix("$")
    found, position = [obj], 0
    while position < len(text):
        step = _STEP.match(text, position)
        if step is None:
            raise ValueError(f"unsupported JSONPath {path!r} at {text[position:]!r}")
        found = [value for current in found for value in _apply(step, current)]
        position = step.end()
    return found


def _apply(step: re.Match[str], current: Any) -> list[Any]:
    name = step.group("field") or step.group("key")
    if name is not None:
        return [current[name]] if isinstance(current, Mapping) and name in current else []
    index = step.group("index")
    if index is not None:
        if not isinstance(current, list):
            return []
        if index == "*":
            return list(current)
        at = int(index)
        return [current[at]] if -len(current) <= at < len(current) else []
    keys, wanted = step.group("fkey").split("."), step.group("fvalue")
    items = current if isinstance(current, list) else []
    return [item for item in items if _dig(item, keys) == wanted]


def _dig(value: Any, keys: Sequence[str]) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return None if value is None else str(value)


# -- cells ---------------------------------------------------------------------------------
def human_duration(seconds: float) -> str:
    """kubectl's short age (``k8s.io/apimachinery/pkg/util/duration.HumanDuration``)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def _age(value: Any, now: datetime) -> str | None:
    try:
        then = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return human_duration((now - then).total_seconds())


def _typed(type_: str, value: Any, now: datetime) -> Any:
    """A JSONPath result as the cell the real server sends for a column of ``type_``."""
    if type_ == "date":
        return _age(value, now)
    if type_ == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if type_ == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return value if ok else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _path_cell(type_: str, path: str) -> Callable[[Mapping[str, Any], datetime], Any]:
    def cell(obj: Mapping[str, Any], now: datetime) -> Any:
        try:
            found = json_path(obj, path)
        except ValueError:
            return None
        return _typed(type_, found[0], now) if found else None

    return cell


def _name(obj: Mapping[str, Any], _now: datetime) -> Any:
    return (obj.get("metadata") or {}).get("name", "")


def _created(obj: Mapping[str, Any], now: datetime) -> Any:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    return _age(stamp, now) if stamp else "<unknown>"


NAME = Column("Name", "string", _name, "name", "Name must be unique within a namespace.")
AGE = Column("Age", "date", _created, "", "CreationTimestamp of the object.")


def printer_columns(definitions: Iterable[Mapping[str, Any]]) -> tuple[Column, ...]:
    """A CRD version's columns: NAME, then its ``additionalPrinterColumns`` (or AGE)."""
    extra = [
        Column(
            name=str(d.get("name", "")),
            type=str(d.get("type", "string")),
            cell=_path_cell(str(d.get("type", "string")), str(d.get("jsonPath", ""))),
            format=str(d.get("format", "")),
            description=str(d.get("description", "")),
            priority=int(d.get("priority", 0)),
        )
        for d in definitions
    ]
    return (NAME, *(extra or [AGE]))


# -- built-in kinds ----------------------------------------------------------------------
def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _pod_ready(obj: Mapping[str, Any], _now: datetime) -> str:
    containers = (obj.get("spec") or {}).get("containers") or []
    statuses = _status(obj).get("containerStatuses") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(containers)}"


def _pod_status(obj: Mapping[str, Any], _now: datetime) -> str:
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    status = _status(obj)
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        for key in ("waiting", "terminated"):
            if (state.get(key) or {}).get("reason"):
                return str(state[key]["reason"])
    return str(status.get("reason") or status.get("phase") or "Unknown")


def _pod_restarts(obj: Mapping[str, Any], _now: datetime) -> int:
    return sum(int(s.get("restartCount") or 0) for s in _status(obj).get("containerStatuses") or [])


def _field(*keys: str, default: Any = "<none>") -> Callable[[Mapping[str, Any], datetime], Any]:
    def cell(obj: Mapping[str, Any], _now: datetime) -> Any:
        value: Any = obj
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        return default if value in (None, "") else value

    return cell


def _deployment_ready(obj: Mapping[str, Any], _now: datetime) -> str:
    wanted = (obj.get("spec") or {}).get("replicas", 1)
    return f"{int(_status(obj).get('readyReplicas') or 0)}/{int(wanted or 0)}"


def _service_ports(obj: Mapping[str, Any], _now: datetime) -> str:
    ports = (obj.get("spec") or {}).get("ports") or []
    text = ",".join(
        f"{p.get('port')}{'' if not p.get('nodePort') else ':' + str(p['nodePort'])}"
        f"/{p.get('protocol', 'TCP')}"
        for p in ports
    )
    return text or "<none>"


def _external_ip(obj: Mapping[str, Any], _now: datetime) -> str:
    ingress = (_status(obj).get("loadBalancer") or {}).get("ingress") or []
    ips = [str(i.get("ip") or i.get("hostname")) for i in ingress]
    ips += [str(ip) for ip in (obj.get("spec") or {}).get("externalIPs") or []]
    if ips:
        return ",".join(ips)
    return "<pending>" if (obj.get("spec") or {}).get("type") == "LoadBalancer" else "<none>"


BUILTIN_COLUMNS: dict[str, tuple[Column, ...]] = {
    "Pod": (
        NAME,
        Column("Ready", "string", _pod_ready, "", "The aggregate readiness state of this pod."),
        Column("Status", "string", _pod_status, "", "The aggregate status of the containers."),
        Column("Restarts", "string", _pod_restarts, "", "The number of container restarts."),
        AGE,
        Column("IP", "string", _field("status", "podIP"), "", "Pod IP.", 1),
        Column("Node", "string", _field("spec", "nodeName"), "", "Node name.", 1),
    ),
    "Deployment": (
        NAME,
        Column("Ready", "string", _deployment_ready, "", "Number of ready / desired pods."),
        Column(
            "Up-to-date",
            "string",
            _field("status", "updatedReplicas", default=0),
            "",
            "Pods updated to the desired template.",
        ),
        Column(
            "Available",
            "string",
            _field("status", "availableReplicas", default=0),
            "",
            "Pods available to serve.",
        ),
        AGE,
    ),
    "Service": (
        NAME,
        Column("Type", "string", _field("spec", "type", default="ClusterIP"), "", "Type."),
        Column("Cluster-IP", "string", _field("spec", "clusterIP"), "", "Cluster IP."),
        Column("External-IP", "string", _external_ip, "", "External IPs."),
        Column("Port(s)", "string", _service_ports, "", "Ports."),
        AGE,
    ),
}


def builtin_columns(kind: str) -> tuple[Column, ...]:
    return BUILTIN_COLUMNS.get(kind, (NAME, AGE))


# -- the Table -----------------------------------------------------------------------------
def _row_object(obj: Mapping[str, Any], include: IncludeObject) -> dict[str, Any] | None:
    if include is IncludeObject.NONE:
        return None
    if include is IncludeObject.OBJECT:
        return dict(obj)
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"{TABLE_GROUP}/v1",
        "metadata": dict(obj.get("metadata") or {}),
    }


def to_table(
    columns: Sequence[Column],
    objects: Iterable[Mapping[str, Any]],
    *,
    version: str = "v1",
    include: IncludeObject = IncludeObject.METADATA,
    resource_version: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Table for ``objects`` (one row each, in order)."""
    moment = now or datetime.now(UTC)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [c.cell(obj, moment) for c in columns]}
        attached = _row_object(obj, include)
        if attached is not None:
            row["object"] = attached
        rows.append(row)
    metadata = {} if resource_version is None else {"resourceVersion": resource_version}
    return {
        "kind": "Table",
        "apiVersion": f"{TABLE_GROUP}/{version}",
        "metadata": metadata,
        "columnDefinitions": [c.definition() for c in columns],
        "rows": rows,
    }


def include_object(value: str | None) -> IncludeObject:
    """The ``includeObject`` parameter (a value the server does not know is a ValueError)."""
    try:
        return IncludeObject(value or IncludeObject.METADATA.value)
    except ValueError as e:
        known = ", ".join(i.value for i in IncludeObject)
        raise ValueError(f"includeObject must be one of {known}, not {value!r}") from e
