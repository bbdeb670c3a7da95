"""Server-side apply field ownership: ``managedFields``, conflicts, hand-overs (pure).

What the real API server does (structured-merge-diff), as far as it catches mistakes a
controller can make with replicas and other shared fields:

* Every write records who changed what. An **apply** (``operation: Apply``) owns exactly
  the fields of its configuration; any other write (create, PUT, merge/JSON/strategic
  patch, the ``scale`` and ``status`` subresources) is an **update** (``operation:
  Update``) whose manager (``fieldManager``, else the client's User-Agent up to its first
  ``/``) takes the fields it set or changed, from everyone else, never conflicting.
* An apply that would change a field another manager owns fails with 409 ``Conflict``
  naming each field and manager, unless ``force=true``, which takes the fields over.
  Setting a field to the value it already has is no conflict: the managers share it.
* A field a manager stops applying is removed from the object, unless another manager
  still owns it (then only the ownership goes).
* Entries are per (manager, operation, subresource); an entry left with no fields goes.

See ``docs/local-cluster.md`` for what is not modelled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tierwise.local.fieldsets import (
    IGNORED,
    ListRules,
    Path,
    diff,
    from_fields_v1,
    leaves,
    merge,
    readable,
    remove,
    to_fields_v1,
)

APPLY = "Apply"
UPDATE = "Update"
Scope = Callable[[Path], bool]


@dataclass(frozen=True)
class Entry:
    """One ``managedFields`` entry."""

    manager: str
    operation: str
    api_version: str
    time: str
    fields: frozenset[Path]
    subresource: str = ""

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def from_json(entries: Sequence[Mapping[str, Any]]) -> list[Entry]:
    return [
        Entry(
            manager=str(e.get("manager", "")),
            operation=str(e.get("operation", UPDATE)),
            api_version=str(e.get("apiVersion", "")),
            time=str(e.get("time", "")),
            fields=frozenset(from_fields_v1(e.get("fieldsV1") or {})),
            subresource=str(e.get("subresource") or ""),
        )
        for e in entries
    ]


def to_json(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    return [e.to_json() for e in entries]


@dataclass(frozen=True)
class Write:
    """Who writes, and where: the request's side of an ownership decision."""

    manager: str
    api_version: str
    time: str
    rules: ListRules
    scope: Scope
    """Which paths this endpoint may own (the main resource: not status; ``status``: only
    status; ``scale``: only the replicas field)."""
    subresource: str = ""


@dataclass(frozen=True)
class Conflict:
    manager: Entry
    path: Path


class ConflictError(Exception):
    """An apply would change fields other managers own (the API answers 409)."""

    def __init__(self, conflicts: Sequence[Conflict]) -> None:
        self.conflicts = list(conflicts)
        super().__init__(conflict_message(self.conflicts))

    def causes(self) -> list[dict[str, str]]:
        return [
            {
                "type": "FieldManagerConflict",
                "message": f"conflict with {describe(c.manager)}",
                "field": readable(c.path),
            }
            for c in self.conflicts
        ]


def describe(entry: Entry) -> str:
    """A manager as the API server names it in a conflict."""
    text = json.dumps(entry.manager)
    if entry.subresource:
        text += f" with subresource {json.dumps(entry.subresource)}"
    if entry.operation == UPDATE:
        text += f" using {entry.api_version}" + (f" at {entry.time}" if entry.time else "")
    return text


def conflict_message(conflicts: Sequence[Conflict]) -> str:
    if len(conflicts) == 1:
        only = conflicts[0]
        return (
            f"Apply failed with 1 conflict: conflict with {describe(only.manager)}: "
            f"{readable(only.path)}"
        )
    lines: list[str] = []
    by_manager: dict[str, list[Conflict]] = {}
    for c in conflicts:
        by_manager.setdefault(describe(c.manager), []).append(c)
    for name in sorted(by_manager):
        lines.append(f"conflicts with {name}:")
        lines.extend(f"- {readable(c.path)}" for c in by_manager[name])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def _owned(paths: Any, scope: Scope) -> frozenset[Path]:
    return frozenset(p for p in paths if p[:1] not in IGNORED and p[:2] not in IGNORED and scope(p))


def _without(entry: Entry, paths: frozenset[Path]) -> Entry:
    """The entry without ``paths`` (the same object when it owned none of them)."""
    return replace(entry, fields=entry.fields - paths) if entry.fields & paths else entry


def _with_fields(entries: list[Entry], mine: Entry) -> list[Entry]:
    """Replace (or add) ``mine`` by identity; entries left without fields go."""
    out, placed = [], False
    for e in entries:
        if e.identity == mine.identity:
            e, placed = mine, True
        if e.fields:
            out.append(e)
    if not placed and mine.fields:
        out.append(mine)
    return out


def record_update(entries: Sequence[Entry], old: Any, new: Any, write: Write) -> list[Entry]:
    """Ownership after a non-apply write from ``old`` to ``new`` (see module docstring)."""
    changes = diff(old, new, write.rules)
    present = _owned(changes.present, write.scope)
    removed = _owned(changes.removed, write.scope)
    if not present and not removed:
        return list(entries)
    identity = (write.manager, UPDATE, write.subresource)
    taken = present | removed
    others = [_without(e, taken) for e in entries if e.identity != identity]
    previous = next((e.fields for e in entries if e.identity == identity), frozenset())
    mine = Entry(
        manager=write.manager,
        operation=UPDATE,
        api_version=write.api_version,
        time=write.time,
        fields=(previous - removed) | present,
        subresource=write.subresource,
    )
    return _with_fields(others, mine)


def record_create(new: Any, write: Write, *, operation: str = UPDATE) -> list[Entry]:
    fields = _owned(leaves(new, write.rules), write.scope)
    entry = Entry(
        write.manager, operation, write.api_version, write.time, fields, write.subresource
    )
    return [entry] if fields else []


def apply(
    entries: Sequence[Entry], live: Any, config: Mapping[str, Any], write: Write, *, force: bool
) -> tuple[Any, list[Entry]]:
    """The object and its ownership after applying ``config`` (raises ConflictError)."""
    identity = (write.manager, APPLY, write.subresource)
    applied = _owned(leaves(config, write.rules), write.scope)
    merged = merge(live, {k: v for k, v in config.items() if k != "metadata"}, write.rules)
    merged = _merge_metadata(live, merged, config, write)
    changed = _owned(diff(live, merged, write.rules).changed, write.scope)
    others = [e for e in entries if e.identity != identity]
    conflicts = [
        Conflict(e, path) for e in others for path in sorted(e.fields & changed, key=readable)
    ]
    if conflicts and not force:
        raise ConflictError(conflicts)
    others = [_without(e, changed) for e in others]
    kept_by_others = frozenset().union(*(e.fields for e in others))
    previous = next((e.fields for e in entries if e.identity == identity), frozenset())
    still_owned = kept_by_others | applied
    released = {p for p in previous - still_owned if not _kept_under(p, still_owned)}
    # a key field goes only with its item (an item without its key would be another item)
    dropped = {p for p in released if not _is_key_field(p) or p[:-1] in released}
    merged = remove(merged, dropped, write.rules)
    mine = next((e for e in entries if e.identity == identity), None)
    unchanged = mine is not None and mine.fields == applied and not changed and not dropped
    if mine is None or not unchanged or mine.api_version != write.api_version:
        mine = Entry(
            write.manager, APPLY, write.api_version, write.time, applied, write.subresource
        )
    return merged, _with_fields(others, mine)


def _kept_under(path: Path, owned: frozenset[Path]) -> bool:
    """Whether some owned field lies inside ``path`` (then ``path`` itself stays)."""
    return any(len(q) > len(path) and q[: len(path)] == path for q in owned)


def _is_key_field(path: Path) -> bool:
    """Whether ``path`` is a key field of an associative list item (``name`` of a container)."""
    if len(path) < 2 or not path[-2].startswith("k:") or not path[-1].startswith("f:"):
        return False
    return path[-1][2:] in json.loads(path[-2][2:])


def _merge_metadata(
    live: Any, merged: dict[str, Any], config: Mapping[str, Any], write: Write
) -> Any:
    """Merge the applied metadata except the fields the server sets (name, uid...)."""
    meta = config.get("metadata")
    if not isinstance(meta, Mapping):
        return merged
    allowed = {k: v for k, v in meta.items() if ("f:metadata", f"f:{k}") not in IGNORED}
    live_meta = (live or {}).get("metadata") if isinstance(live, Mapping) else None
    merged["metadata"] = merge(live_meta or {}, allowed, write.rules)
    return merged
