"""Deciding which child objects need a write: desired vs observed, as pure data.

Server-side apply of identical content is a no-op on a real API server, but it is still
a request (and on 500 objects, a lot of them): the operator skips an apply when the
object already carries the hash of what it would apply *and* every applied field still
has the applied value. The hash catches fields removed from the desired object (a subset
check alone would miss them); the subset check catches edits made by someone else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

HASH_ANNOTATION = "tierwise.dev/applied-hash"


@dataclass(frozen=True, order=True)
class Identity:
    """Which object: kind and name (namespace is the owner's)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def identity_of(obj: Mapping[str, Any]) -> Identity:
    return Identity(str(obj.get("kind", "")), str((obj.get("metadata") or {}).get("name", "")))


def content_hash(obj: Mapping[str, Any]) -> str:
    """A stable hash of an object's content (key order does not matter).

    ``spec.replicas`` is left out: the operator sets it at creation and then leaves it to
    the autoscaler, and that hand-over must not read as a change of the object.
    """
    spec = obj.get("spec")
    if isinstance(spec, Mapping) and "replicas" in spec:
        obj = {**obj, "spec": {k: v for k, v in spec.items() if k != "replicas"}}
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def with_hash(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` carrying the hash of its own content as an annotation."""
    stamped = json.loads(json.dumps(obj))
    meta = stamped.setdefault("metadata", {})
    meta.setdefault("annotations", {})[HASH_ANNOTATION] = content_hash(obj)
    return dict(stamped)


def is_subset(desired: Any, observed: Any) -> bool:
    """Whether every field of ``desired`` is present in ``observed`` with the same value.

    Dicts may have extra keys in ``observed`` (defaults the server filled in); lists must
    have the same length, item by item.
    """
    if isinstance(desired, Mapping):
        if not isinstance(observed, Mapping):
            return False
        return all(k in observed and is_subset(v, observed[k]) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(observed, list) or len(desired) != len(observed):
            return False
        return all(is_subset(d, o) for d, o in zip(desired, observed, strict=True))
    if isinstance(desired, bool) or isinstance(observed, bool):
        return desired is observed
    return bool(desired == observed)


def up_to_date(stamped: Mapping[str, Any], observed: Mapping[str, Any] | None) -> bool:
    """Whether applying ``stamped`` (from :func:`with_hash`) would change nothing."""
    if observed is None:
        return False
    return is_subset(stamped, observed)


def controlled_by(obj: Mapping[str, Any], owner_uid: str | None) -> bool:
    """Whether ``obj`` names the owner as its controller (others' objects are never deleted)."""
    if not owner_uid:
        return False
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("uid") == owner_uid and o.get("controller") for o in owners)


def unwanted(
    observed: Mapping[Identity, Mapping[str, Any]],
    desired: Iterable[Identity],
    owner_uid: str | None,
) -> list[Identity]:
    """Observed children this owner controls that are no longer desired, sorted."""
    keep = set(desired)
    return sorted(
        ident
        for ident, obj in observed.items()
        if ident not in keep and controlled_by(obj, owner_uid)
    )
