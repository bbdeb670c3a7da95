"""The API server's object semantics over kmock's in-memory object array.

kmock stores objects as bare dicts and updates them by dict merge. A real API
server assigns ``uid``, a cluster-wide monotonic ``resourceVersion``,
``generation`` (bumped on spec changes only) and ``creationTimestamp``; honours
``generateName``, optimistic concurrency, status subresources, finalizers and
owner references. :class:`ObjectStore` does all of that while keeping the objects
in kmock's ``ObjectsArray`` (so ``emulator.objects[...]`` assertions still work),
and records every change in an :class:`~tierwise.local.watches.EventLog`.

All methods are synchronous and run on the emulator's event loop: a change and
its watch event happen atomically, which is what makes watches race-free.

Performance contract (500 ModelDeployments, thousands of objects, on 2 cores):

* a committed object dict is never mutated again — every write builds a new one (nested
  parts may be shared with the previous version). So the change log, the HTTP answers
  and :meth:`ObjectStore.iter_objects` share the stored dicts instead of copying them;
  :meth:`get`, :meth:`list` and the write methods still hand Python callers their own
  copy (:func:`clone`, a JSON-shaped copy several times faster than ``copy.deepcopy``);
* live objects are indexed by resource, so a read touches only that resource's objects
  (kmock's array holds every version of every object of every kind).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import kmock

from tierwise.local import errors, ownership, patching
from tierwise.local.fieldsets import ListRules, Path
from tierwise.local.resources import NAMESPACE_RESOURCE, ResourceSpec
from tierwise.local.watches import EventLog

Obj = dict[str, Any]
Key = tuple[kmock.resource, str | None, str]
ResourceKey = tuple[str, str, str]
Address = tuple[str | None, str]  # (namespace, name)
Predicate = Callable[[Mapping[str, Any]], bool]
Entries = list[ownership.Entry]
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SYSTEM_MANAGER = "kube-controller-manager"
"""The field manager of writes made through the Python API (the emulated controllers)."""


def now_rfc3339(after: float = 0) -> str:
    moment = datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(seconds=after)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def clone(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars); other mappings become dicts."""
    kind = type(value)
    if kind is dict:
        return {k: clone(v) for k, v in value.items()}
    if kind is list:
        return [clone(v) for v in value]
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clone(v) for v in value]
    return copy.deepcopy(value)


def _copy(obj: Mapping[str, Any]) -> Obj:
    """A caller's copy of a stored object; its ``managedFields`` list is the stored one
    (shared, as copying it costs more than the rest of the object: never mutate it)."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or "managedFields" not in meta:
        copied: Obj = clone(obj)
        return copied
    managed = meta["managedFields"]
    copied = clone(_without_managed(obj))
    copied["metadata"]["managedFields"] = managed
    return copied


def _without_managed(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``obj`` without ``metadata.managedFields`` (shallow: the rest is shared)."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or "managedFields" not in meta:
        return obj
    return dict(obj, metadata={k: v for k, v in meta.items() if k != "managedFields"})


def _label_pairs(obj: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    labels = ((obj or {}).get("metadata") or {}).get("labels")
    if not isinstance(labels, Mapping):
        return []
    return [(k, v) for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)]


def resource_key(resource: kmock.resource) -> ResourceKey:
    return (resource.group or "", resource.version or "", resource.plural or "")


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Everything that bumps ``generation`` when changed: all but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
    return dict(obj, metadata=meta)


def _scope(spec: ResourceSpec, subresource: str | None) -> ownership.Scope:
    """The fields a write through this endpoint can own (see :class:`ownership.Write`)."""
    if subresource == "status":
        return lambda path: path[:1] == ("f:status",)
    if subresource == "scale" and spec.scale is not None:
        parts = spec.scale.spec_replicas_path.strip(".").split(".")
        replicas: Path = tuple(f"f:{p}" for p in parts)
        return lambda path: path[: len(replicas)] == replicas
    if spec.status:
        return lambda path: path[:1] != ("f:status",)
    return lambda path: True


def _default(spec: ResourceSpec, obj: Obj) -> None:
    """Defaults the real server fills in on every write (a removed field comes back)."""
    spec_part = obj.get("spec")
    if spec.kind == "Deployment" and isinstance(spec_part, dict) and "replicas" not in spec_part:
        obj["spec"] = dict(spec_part, replicas=1)


class ObjectStore:
    """Create, read, update, patch and delete with API-server semantics."""

    def __init__(self, objects: kmock.ObjectsArray, log: EventLog) -> None:
        self.objects = objects
        self.log = log
        self.specs: dict[ResourceKey, ResourceSpec] = {}
        self._uids: dict[str, Key] = {}
        self._live: dict[ResourceKey, dict[tuple[str | None, str], Obj]] = {}
        """The current (not deleted) objects per resource, by (namespace, name)."""
        self._labels: dict[ResourceKey, dict[tuple[str, str], dict[Address, None]]] = {}
        """Per resource: (label key, value) → the addresses of live objects carrying it."""
        self._managed: dict[str, tuple[Any, Entries]] = {}
        """Per uid: the stored ``managedFields`` list and its decoded entries (a cache)."""
        self.pod_grace: Callable[[Obj, int | None], int] | None = None
        """Set while a kubelet runs: a pod's grace period for a DELETE (with the requested
        ``gracePeriodSeconds``); a pod deleted with a grace stays, terminating, until the
        kubelet deletes it again with 0. None: pods go at once, as other objects."""

    # -- resources ---------------------------------------------------------------------------
    def spec_for(self, resource: kmock.resource) -> ResourceSpec:
        spec = self.specs.get(resource_key(resource))
        if spec is None:
            raise errors.resource_not_found()
        return spec

    def register(self, spec: ResourceSpec) -> None:
        self.specs[(spec.group, spec.version, spec.plural)] = spec

    def unregister(self, spec: ResourceSpec) -> None:
        for key, _ in list(self.iter_objects(spec.resource)):
            self._remove(spec, key)
        self.specs.pop((spec.group, spec.version, spec.plural), None)

    # -- reading -----------------------------------------------------------------------------
    def iter_objects(
        self, resource: kmock.resource, namespace: str | None = None
    ) -> Iterator[tuple[Key, Obj]]:
        """The live objects of a resource (the stored dicts: read, never mutate them)."""
        live = self._live.get(resource_key(resource))
        if not live:
            return
        for (ns, name), obj in list(live.items()):
            if namespace is None or ns == namespace:
                yield (resource, ns, name), obj

    def iter_labelled(
        self, resource: kmock.resource, namespace: str | None, label: tuple[str, str]
    ) -> Iterator[Obj]:
        """The live objects of a resource carrying the label ``(key, value)``."""
        rkey = resource_key(resource)
        live = self._live.get(rkey, {})
        for address in list(self._labels.get(rkey, {}).get(label, ())):
            if namespace is None or address[0] == namespace:
                yield live[address]

    def _key(self, spec: ResourceSpec, namespace: str | None, name: str) -> Key:
        return (spec.resource, namespace if spec.namespaced else None, name)

    def _current(self, spec: ResourceSpec, key: Key) -> Obj | None:
        return self._live.get((spec.group, spec.version, spec.plural), {}).get(key[1:])

    def _store(self, spec: ResourceSpec, key: Key, obj: Obj | None) -> None:
        """Record ``obj`` as the current version (None: deleted) in kmock and the indexes."""
        rkey, address = (spec.group, spec.version, spec.plural), key[1:]
        live = self._live.setdefault(rkey, {})
        labels = self._labels.setdefault(rkey, {})
        old = live.get(address)
        for pair in _label_pairs(old):
            labels.get(pair, {}).pop(address, None)
        if obj is None:
            live.pop(address, None)
            self.objects[key].delete()
            return
        if key in self.objects:
            self.objects[key].create(obj)
        else:
            self.objects[key] = obj
        live[address] = obj
        for pair in _label_pairs(obj):
            labels.setdefault(pair, {})[address] = None

    def get(
        self, resource: kmock.resource, namespace: str | None, name: str, *, shared: bool = False
    ) -> Obj:
        """One object; ``shared=True`` returns the stored dict itself (never mutate it)."""
        spec = self.spec_for(resource)
        current = self._current(spec, self._key(spec, namespace, name))
        if current is None:
            raise errors.not_found(spec.plural, name)
        return current if shared else _copy(current)

    def list(
        self,
        resource: kmock.resource,
        namespace: str | None,
        predicate: Predicate,
        *,
        shared: bool = False,
        label: tuple[str, str] | None = None,
    ) -> tuple[list[Obj], int]:
        """Matching objects and the list's resourceVersion (``shared`` as in :meth:`get`).

        ``label``: a ``(key, value)`` the predicate requires (from an equality selector),
        so that only the objects carrying it are looked at.
        """
        spec = self.spec_for(resource)
        candidates = (
            self.iter_labelled(spec.resource, namespace, label)
            if label is not None
            else (obj for _, obj in self.iter_objects(spec.resource, namespace))
        )
        items = [obj for obj in candidates if predicate(obj)]
        return (items if shared else [_copy(obj) for obj in items]), self.log.resource_version

    # -- writing -----------------------------------------------------------------------------
    def create(
        self,
        resource: kmock.resource,
        namespace: str | None,
        body: Mapping[str, Any],
        *,
        dry_run: bool = False,
        manager: str = SYSTEM_MANAGER,
        operation: str = ownership.UPDATE,
    ) -> Obj:
        """Create an object; ``manager`` owns its fields (``operation`` Apply: from an apply)."""
        spec = self.spec_for(resource)
        obj = _copy(body)
        meta = obj.setdefault("metadata", {})
        meta.pop("managedFields", None)
        namespace = self._creation_namespace(spec, namespace, meta)
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
            meta["name"] = f"{meta['generateName']}{suffix}"
        if not meta.get("name"):
            raise errors.invalid(
                spec.kind, None, "metadata.name: Required value: name or generateName is required"
            )
        key = self._key(spec, namespace, meta["name"])
        if self._current(spec, key) is not None:
            raise errors.already_exists(spec.plural, meta["name"])
        # An apply owns what it applied; a create (an update) also owns what defaulting
        # filled in, as on a real server (`kubectl create deployment` owns spec.replicas).
        writer = self._writer(spec, manager, None)
        applied = ownership.record_create(obj, writer, operation=operation)
        self._fill_new(spec, obj, namespace)
        entries = applied if operation == ownership.APPLY else ownership.record_create(obj, writer)
        if entries:
            obj["metadata"]["managedFields"] = ownership.to_json(entries)
        if dry_run:
            return obj
        obj["metadata"]["resourceVersion"] = str(self.log.next_version())
        self._store(spec, key, obj)
        self._uids[obj["metadata"]["uid"]] = key
        self.log.append(spec.resource, "ADDED", obj, None)
        return _copy(obj)

    def _creation_namespace(
        self, spec: ResourceSpec, url_namespace: str | None, meta: dict[str, Any]
    ) -> str | None:
        if not spec.namespaced:
            meta.pop("namespace", None)
            return None
        body_namespace = meta.get("namespace")
        if url_namespace and body_namespace and url_namespace != body_namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match "
                "the namespace sent on the request"
            )
        namespace = url_namespace or body_namespace
        if not namespace:
            raise errors.bad_request("a namespace is required for a namespaced resource")
        if (None, namespace) not in self._live.get(resource_key(NAMESPACE_RESOURCE), {}):
            raise errors.not_found("namespaces", namespace)
        meta["namespace"] = namespace
        return str(namespace)

    def _fill_new(self, spec: ResourceSpec, obj: Obj, namespace: str | None) -> None:
        obj.setdefault("apiVersion", spec.api_version)
        obj.setdefault("kind", spec.kind)
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["generation"] = 1
        meta["creationTimestamp"] = now_rfc3339()
        for transient in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            meta.pop(transient, None)
        if spec.status:
            obj.pop("status", None)  # status is only written through the status subresource
        if spec.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        if spec.kind == "Deployment" and "spec" in obj:
            obj["spec"].setdefault("replicas", 1)

    def write(
        self,
        resource: kmock.resource,
        namespace: str | None,
        name: str,
        new: Mapping[str, Any],
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        manager: str = SYSTEM_MANAGER,
    ) -> Obj:
        """Replace an object (PUT), keeping what the API server owns.

        ``subresource`` ``status`` writes only status; ``scale`` (the whole object with new
        replicas) records ``manager`` as owning the replicas field through the subresource.
        """
        spec = self.spec_for(resource)
        key = self._key(spec, namespace, name)
        old = self._current(spec, key)
        if old is None:
            raise errors.not_found(spec.plural, name)
        # managedFields in a body are ignored (set below), so they are not worth copying
        obj = self._merge_owned(spec, old, clone(_without_managed(new)), subresource)
        self._record_update(spec, old, obj, manager, subresource)
        return self._commit(spec, key, old, obj, dry_run=dry_run)

    # -- field ownership ---------------------------------------------------------------------
    def _writer(self, spec: ResourceSpec, manager: str, subresource: str | None) -> ownership.Write:
        return ownership.Write(
            manager=manager,
            api_version=spec.api_version,
            time=now_rfc3339(),
            rules=ListRules(spec.kind, custom=spec.custom),
            scope=_scope(spec, subresource),
            subresource=subresource or "",
        )

    def managed_fields(self, obj: Mapping[str, Any]) -> Entries:
        """The decoded ``managedFields`` of a stored object."""
        meta = obj.get("metadata") or {}
        stored, uid = meta.get("managedFields"), str(meta.get("uid", ""))
        cached = self._managed.get(uid)
        if cached is not None and cached[0] is stored:
            return cached[1]
        entries = ownership.from_json(stored or [])
        self._managed[uid] = (stored, entries)
        return entries

    def _set_managed(self, old: Obj, obj: Obj, entries: Entries, previous: Entries) -> None:
        meta = obj["metadata"]
        old_stored = old["metadata"].get("managedFields")
        if entries == previous:
            stored = old_stored
        elif entries:  # unchanged entries keep their encoded form (encoding is the costly part)
            encoded = {id(e): j for e, j in zip(previous, old_stored or [], strict=False)}
            stored = [encoded.get(id(e)) or e.to_json() for e in entries]
        else:
            stored = None
        if stored is None:
            meta.pop("managedFields", None)
        else:
            meta["managedFields"] = stored
            self._managed[str(meta.get("uid", ""))] = (stored, entries)

    def _record_update(
        self, spec: ResourceSpec, old: Obj, obj: Obj, manager: str, subresource: str | None
    ) -> None:
        previous = self.managed_fields(old)
        entries = ownership.record_update(
            previous, old, obj, self._writer(spec, manager, subresource)
        )
        self._set_managed(old, obj, entries, previous)

    def _merge_owned(self, spec: ResourceSpec, old: Obj, new: Obj, subresource: str | None) -> Obj:
        requested_rv = (new.get("metadata") or {}).get("resourceVersion")
        if requested_rv and str(requested_rv) != old["metadata"]["resourceVersion"]:
            raise errors.conflict(spec.plural, old["metadata"]["name"])
        if subresource == "status":
            # Shares everything but status and metadata with ``old`` (both never mutated).
            obj = dict(old, metadata=dict(old["metadata"]))
            if "status" in new:
                obj["status"] = new["status"]
            else:
                obj.pop("status", None)
            return obj
        if spec.status:
            new.pop("status", None)
            if "status" in old:
                new["status"] = old["status"]
        _default(spec, new)
        # A patch may share its metadata dict with ``old``: the fields below go in a new one.
        meta = new["metadata"] = dict(new.get("metadata") or {})
        for owned in (
            "uid",
            "creationTimestamp",
            "name",
            "namespace",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            if owned in old["metadata"]:
                meta[owned] = old["metadata"][owned]
            else:
                meta.pop(owned, None)
        new.setdefault("apiVersion", old.get("apiVersion"))
        new.setdefault("kind", old.get("kind"))
        return new

    def _commit(self, spec: ResourceSpec, key: Key, old: Obj, obj: Obj, *, dry_run: bool) -> Obj:
        if _spec_part(obj) != _spec_part(old):
            obj["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if _comparable(obj) == _comparable(old) or dry_run:
            return _copy(obj)  # a no-op write keeps the resourceVersion
        meta = obj["metadata"]
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not meta.get("deletionGracePeriodSeconds")
        ):  # a terminating pod stays
            return self._remove(spec, key, obj)
        meta["resourceVersion"] = str(self.log.next_version())
        self._store(spec, key, obj)
        self.log.append(spec.resource, "MODIFIED", obj, old)
        return _copy(obj)

    def patch(
        self,
        resource: kmock.resource,
        namespace: str | None,
        name: str,
        *,
        content_type: str,
        patch: Any,
        subresource: str | None = None,
        dry_run: bool = False,
        manager: str = SYSTEM_MANAGER,
        force: bool = False,
    ) -> Obj:
        """Patch an object; an apply (``application/apply-patch+yaml``) follows field
        ownership (:mod:`tierwise.local.ownership`), other patches are updates by ``manager``."""
        spec = self.spec_for(resource)
        if content_type == patching.STRATEGIC_MERGE_PATCH and spec.custom:
            raise errors.unsupported_media_type(
                ", ".join(t for t in patching.PATCH_TYPES if t != patching.STRATEGIC_MERGE_PATCH)
            )
        key = self._key(spec, namespace, name)
        old = self._current(spec, key)
        if old is None and content_type == patching.APPLY_PATCH and subresource is None:
            if not isinstance(patch, Mapping):
                raise errors.bad_request("an applied configuration must be an object")
            body = dict(patch, metadata=dict(patch.get("metadata") or {}, name=name))
            return self.create(
                resource,
                namespace,
                body,
                dry_run=dry_run,
                manager=manager,
                operation=ownership.APPLY,
            )
        if old is None:
            raise errors.not_found(spec.plural, name)
        if content_type == patching.APPLY_PATCH:
            return self._apply(spec, key, old, patch, subresource, manager, force, dry_run)
        try:
            patched = patching.apply_patch(content_type, old, patch)
        except patching.PatchError as e:
            raise errors.invalid(spec.kind, name, str(e)) from e
        if not isinstance(patched, dict):
            raise errors.invalid(spec.kind, name, "the patch must produce an object")
        obj = self._merge_owned(spec, old, patched, subresource)
        self._record_update(spec, old, obj, manager, subresource)
        return self._commit(spec, key, old, obj, dry_run=dry_run)

    def _apply(
        self,
        spec: ResourceSpec,
        key: Key,
        old: Obj,
        config: Any,
        subresource: str | None,
        manager: str,
        force: bool,
        dry_run: bool,
    ) -> Obj:
        if not isinstance(config, Mapping):
            raise errors.bad_request("an applied configuration must be an object")
        previous = self.managed_fields(old)
        writer = self._writer(spec, manager, subresource)
        try:
            merged, entries = ownership.apply(previous, old, config, writer, force=force)
        except ownership.ConflictError as e:
            raise errors.apply_conflict(str(e), e.causes()) from e
        obj = self._merge_owned(spec, old, merged, subresource)
        self._set_managed(old, obj, entries, previous)
        return self._commit(spec, key, old, obj, dry_run=dry_run)

    # -- deleting ----------------------------------------------------------------------------
    def delete(
        self,
        resource: kmock.resource,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        dry_run: bool = False,
        grace_period: int | None = None,
    ) -> tuple[Obj, bool]:
        """Delete or mark for deletion; returns the object and whether it is gone."""
        spec = self.spec_for(resource)
        key = self._key(spec, namespace, name)
        old = self._current(spec, key)
        if old is None:
            raise errors.not_found(spec.plural, name)
        if dry_run:
            return _copy(old), False
        graceful = self.pod_grace is not None and spec.kind == "Pod" and not spec.group
        grace = self.pod_grace(old, grace_period) if self.pod_grace and graceful else 0
        if grace > 0 or old["metadata"].get("finalizers"):
            return self._mark_deleted(spec, key, old, grace), False
        if propagation == "Orphan":
            self._orphan_dependents(old["metadata"]["uid"])
        return self._remove(spec, key), True

    def _mark_deleted(self, spec: ResourceSpec, key: Key, old: Obj, grace: int) -> Obj:
        """Set ``deletionTimestamp`` (now + grace); a later delete may only shorten it."""
        current = old["metadata"].get("deletionGracePeriodSeconds")
        if old["metadata"].get("deletionTimestamp") and current is not None and current <= grace:
            return _copy(old)
        obj = _copy(old)
        obj["metadata"].update(
            deletionTimestamp=now_rfc3339(after=grace), deletionGracePeriodSeconds=grace
        )
        return self._commit(spec, key, old, obj, dry_run=False)

    def _remove(self, spec: ResourceSpec, key: Key, last: Obj | None = None) -> Obj:
        current = last if last is not None else self._current(spec, key)
        assert current is not None
        obj = _copy(current)
        obj["metadata"]["resourceVersion"] = str(self.log.next_version())
        self.objects[key].create(obj)
        self._store(spec, key, None)
        self._uids.pop(obj["metadata"].get("uid", ""), None)
        self._managed.pop(str(obj["metadata"].get("uid", "")), None)
        self.log.append(spec.resource, "DELETED", obj, None)
        if spec.resource == NAMESPACE_RESOURCE:
            self._delete_namespace_contents(key[2])
        self._collect_garbage()
        return _copy(obj)

    def _delete_namespace_contents(self, namespace: str) -> None:
        for spec in list(self.specs.values()):
            if spec.namespaced:
                for (_, _, name), _ in list(self.iter_objects(spec.resource, namespace)):
                    self._delete_quietly(spec, namespace, name)

    def _delete_quietly(self, spec: ResourceSpec, namespace: str | None, name: str) -> None:
        with contextlib.suppress(kmock.KubernetesError):  # gone in an earlier cascade
            self.delete(spec.resource, namespace, name)

    def _collect_garbage(self) -> None:
        """Delete objects whose owners (by ``ownerReferences`` uid) are all gone."""
        for spec in list(self.specs.values()):
            for (_, ns, name), obj in list(self.iter_objects(spec.resource)):
                owners = [ref.get("uid") for ref in obj["metadata"].get("ownerReferences") or []]
                orphaned = owners and not any(uid in self._uids for uid in owners)
                if orphaned and not obj["metadata"].get("deletionTimestamp"):
                    self._delete_quietly(spec, ns, name)

    def _orphan_dependents(self, uid: str) -> None:
        for spec in list(self.specs.values()):
            for key, obj in list(self.iter_objects(spec.resource)):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == uid for ref in refs):
                    new = _copy(obj)
                    new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                    self._commit(spec, key, obj, new, dry_run=False)
