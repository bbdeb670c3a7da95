"""kmock's Kubernetes emulator, extended until a real kopf operator and clients work.

:class:`EmulatedApiServer` subclasses :class:`kmock.KubernetesEmulator` and keeps
everything kmock is good at — the aiohttp request handling, request recording,
discovery scaffolding, the DSL for per-test reactions (``server['get /x'] << 500``
still overrides the defaults) and ``server.objects[...]`` assertions. It replaces
kmock's default (fallback) object handling with API-server semantics from
:mod:`tierwise.local.store` and :mod:`tierwise.local.watches`: namespace from the
URL, uid/resourceVersion/generation/creationTimestamp/generateName, JSON-patch
``test`` (422) and resourceVersion preconditions (409), PUT, deletecollection,
server-side apply with field ownership (managedFields, conflicts), ``dryRun``,
selectors, status/scale subresources, finalizers, cascade deletion, race-free
resumable watches with bookmarks, and CRDs that register their kinds when created.
See ``docs/local-cluster.md`` for the gaps.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock import Response  # type: ignore[attr-defined]  # not in __all__

from tierwise.local import errors, openapi, patching, tables
from tierwise.local.resources import (
    BUILTIN_RESOURCES,
    CRD_RESOURCE,
    ResourceSpec,
    crd_status,
    specs_from_crd,
)
from tierwise.local.scale import scale_view, with_replicas
from tierwise.local.selectors import SelectorError, compile_selectors, required_label
from tierwise.local.store import ObjectStore
from tierwise.local.watches import EventLog, WatchRequest, open_watch

# kmock 0.8's path parser crashes on the namespaces collection itself (".../namespaces" with
# nothing after it). Such requests reach kmock under a stand-in path; _handle restores it.
_UNPARSEABLE = re.compile(r"^(/api/[^/]+|/apis/[^/]+/[^/]+)/namespaces/?$")
_STAND_IN = "/-tierwise-stand-in-"
_ORIGINAL_PATH = "X-Tierwise-Original-Path"

SERVER_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-tierwise-emulated",
    "platform": "linux/amd64",
}


def parse_path(path: str) -> tuple[kmock.resource | None, str | None, str | None, str | None]:
    """Split an API path into (resource, namespace, name, subresource).

    Unlike kmock 0.8, this understands the ``namespaces`` resource itself
    (``/api/v1/namespaces``, ``/api/v1/namespaces/NAME``, ``.../NAME/status``).
    """
    parts = [part for part in path.strip("/").split("/") if part]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None, None, None, None
    namespace = None
    is_namespace_sub = len(rest) == 3 and rest[2] in ("status", "finalize") and group == ""
    if len(rest) >= 3 and rest[0] == "namespaces" and not is_namespace_sub:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return kmock.resource(group=group, version=version), namespace, None, None
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    plural = rest[0]
    return kmock.resource(group=group, version=version, plural=plural), namespace, name, subresource


def _content_type(request: kmock.Request) -> str:
    for key, value in request.headers.items():
        if key.lower() == "content-type":
            return str(value).split(";")[0].strip()
    return "application/json"


def _body(request: kmock.Request) -> Any:
    if request.data is not None:
        return request.data
    if not request.text:
        return None
    try:
        return yaml.safe_load(request.text)
    except yaml.YAMLError as e:
        raise errors.bad_request(f"cannot parse the request body: {e}") from e


def _table_version(request: kmock.Request) -> str | None:
    """The ``meta.k8s.io`` Table version the client accepts first (kubectl get), or None."""
    for key, value in request.headers.items():
        if key.lower() == "accept":
            return tables.table_version(str(value))
    return None


def _wants_metadata(request: kmock.Request) -> bool:
    """Whether the client asks for PartialObjectMetadata (metadata only, as the API server
    answers ``Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1``)."""
    for key, value in request.headers.items():
        if key.lower() == "accept":
            first = str(value).split(",")[0]
            return "as=PartialObjectMetadata" in first.replace(" ", "")
    return False


def _table(
    spec: ResourceSpec,
    request: kmock.Request,
    objects: list[Any],
    version: str,
    resource_version: str | None,
) -> dict[str, Any]:
    try:
        include = tables.include_object(request.params.get("includeObject"))
    except ValueError as e:
        raise errors.bad_request(str(e)) from e
    columns = (
        tables.printer_columns(spec.printer_columns)
        if spec.custom
        else tables.builtin_columns(spec.kind)
    )
    return tables.to_table(
        columns, objects, version=version, include=include, resource_version=resource_version
    )


def field_manager(request: kmock.Request) -> str:
    """The request's field manager: ``fieldManager``, else its User-Agent up to the first
    ``/`` (``kubectl/v1.33.0 ...`` → ``kubectl``), as the real server derives it."""
    named = request.params.get("fieldManager")
    if named:
        return str(named)
    for key, value in request.headers.items():
        if key.lower() == "user-agent" and str(value).split("/")[0]:
            return str(value).split("/")[0]
    return "unknown"


def _force(request: kmock.Request) -> bool:
    return str(request.params.get("force", "")).lower() in ("true", "1")


def _dry_run(request: kmock.Request) -> bool:
    return request.params.get("dryRun") == "All"


def _grace_period(request: kmock.Request, options: Mapping[str, Any]) -> int | None:
    """``gracePeriodSeconds`` of a DELETE (query or DeleteOptions); None when not given."""
    value = request.params.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError) as e:
        raise errors.bad_request(f"gracePeriodSeconds must be an integer, not {value!r}") from e


@attrs.define(kw_only=True)
class EmulatedApiServer(kmock.KubernetesEmulator):
    """A kmock emulator that behaves like a Kubernetes API server (see module docs)."""

    bookmark_interval: float = 1.0
    history_limit: int = 20_000
    fault: Callable[[kmock.Request], int | None] | None = None
    """Fault injection: an HTTP status to answer a resource request with, or None to serve
    it (e.g. 409/500/503 for a fraction of writes, to check that clients retry)."""
    log: EventLog = attrs.field(init=False)
    store: ObjectStore = attrs.field(init=False)
    _builtin_reactions: int = attrs.field(init=False, default=0)
    _resource_reaction: Any = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.log = EventLog(limit=self.history_limit, bookmark_interval=self.bookmark_interval)
        self.store = ObjectStore(self.objects, self.log)
        for spec in BUILTIN_RESOURCES:
            self.register(spec)
        # Above kmock's own fallbacks, below any reaction a test declares.
        (self.fallback**1)["get", re.compile(r"/openapi/v3(/.*)?")] << self._serve_openapi
        (self.fallback**1)[self._is_resource_request] << self._serve_resource
        self._resource_reaction = self._payloads[-1]
        self._builtin_reactions = len(self._payloads)

    # -- resources ---------------------------------------------------------------------------
    def register(self, spec: ResourceSpec) -> None:
        """Serve a resource (and advertise it in discovery)."""
        self.store.register(spec)
        self.resources[spec.resource] = spec.info()

    def unregister(self, spec: ResourceSpec) -> None:
        self.store.unregister(spec)
        if spec.resource in self.resources:
            del self.resources[spec.resource]

    def _get_resources(self) -> list[kmock.resource]:
        return [spec.resource for spec in self.store.specs.values()]

    def shutdown(self) -> None:
        """End all open watch streams so that the HTTP server can stop promptly."""
        self.log.close()

    # -- request routing ---------------------------------------------------------------------
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if _UNPARSEABLE.match(raw_request.path):
            raw_request = raw_request.clone(
                rel_url=raw_request.rel_url.with_path(
                    raw_request.path.rstrip("/") + _STAND_IN
                ).with_query(raw_request.rel_url.query),
                headers={**raw_request.headers, _ORIGINAL_PATH: raw_request.path},
            )
        response: aiohttp.web.StreamResponse = await super().__call__(raw_request)
        return response

    async def _handle(self, request: kmock.Request) -> Any:
        original = request
        url = request.url
        if _ORIGINAL_PATH in request.headers:
            url = url.with_path(request.headers[_ORIGINAL_PATH]).with_query(url.query)
        resource, namespace, name, subresource = parse_path(url.path)
        if resource is not None:
            request = attrs.evolve(
                request,
                url=url,
                resource=resource,
                namespace=namespace,
                name=name,
                subresource=subresource,
            )
            # kmock matches reactions by the identity of the recorded request: swap it in place.
            for index in range(len(self._requests) - 1, -1, -1):
                if self._requests[index] is original:
                    self._requests[index] = request
                    break
        if len(self._payloads) == self._builtin_reactions and self._is_resource_request(request):
            # No reaction declared by a test, so ours (the highest built-in one) answers.
            # kmock would find it by re-filtering every recorded request for every reaction:
            # O(requests so far) per request, which made the emulator quadratic at scale.
            return await self._resource_reaction(request)
        # Skip KubernetesEmulator._handle: its dict-merge bookkeeping is replaced by the store.
        return await kmock.RawHandler._handle(self, request)

    def _is_resource_request(self, request: kmock.Request) -> bool:
        return request.resource is not None and request.resource.plural is not None

    async def _serve_resource(self, request: kmock.Request) -> Response:
        # kmock keeps the status and headers of a returned Response on the reaction itself
        # (shared by all requests), so every answer states its status explicitly.
        status = self.fault(request) if self.fault is not None else None
        if status is not None:
            raise errors.api_error(
                status, errors.REASONS.get(status, "InternalError"), f"injected fault ({status})"
            )
        result = self._dispatch(request)
        return result if isinstance(result, Response) else Response(status=200, payload=result)

    def _dispatch(self, request: kmock.Request) -> Any:
        assert request.resource is not None
        spec = self.store.spec_for(request.resource)
        if request.subresource is not None and request.subresource not in spec.subresources:
            raise errors.resource_not_found()
        method, name = str(request.method.value).upper(), request.name
        if method == "GET" and request.params.get("watch") in ("true", "1"):
            return self._watch(spec, request)
        if method == "GET" and name is not None:
            return self._get(spec, request, name)
        if method == "GET":
            return self._list(spec, request)
        if method == "POST" and name is None:
            return self._create(spec, request)
        if method == "PUT" and name is not None:
            return self._update(spec, request, name)
        if method == "PATCH" and name is not None:
            return self._patch(spec, request, name)
        if method == "DELETE":
            return self._delete(spec, request, name)
        raise errors.method_not_allowed(method)

    # -- verbs -------------------------------------------------------------------------------
    def _predicate(self, request: kmock.Request, name: str | None = None) -> Any:
        fields = request.params.get("fieldSelector") or ""
        if name is not None:
            fields = ",".join(filter(None, [fields, f"metadata.name={name}"]))
        try:
            return compile_selectors(request.params.get("labelSelector"), fields)
        except SelectorError as e:
            raise errors.bad_request(str(e)) from e

    def _get(self, spec: ResourceSpec, request: kmock.Request, name: str) -> Any:
        obj = self.store.get(spec.resource, request.namespace, name, shared=True)
        if request.subresource == "scale" and spec.scale is not None:
            return scale_view(obj, spec.scale)
        if request.subresource is None and _wants_metadata(request):
            return {
                "apiVersion": "meta.k8s.io/v1",
                "kind": "PartialObjectMetadata",
                "metadata": obj["metadata"],
            }
        if request.subresource is None and (table := _table_version(request)) is not None:
            return _table(spec, request, [obj], table, obj["metadata"].get("resourceVersion"))
        return obj  # the stored dict, only serialised

    def _list(self, spec: ResourceSpec, request: kmock.Request) -> Any:
        predicate = self._predicate(request)  # first: a bad selector is a 400
        items, version = self.store.list(
            spec.resource,
            request.namespace,
            predicate,
            shared=True,
            label=required_label(request.params.get("labelSelector")),
        )
        if (table := _table_version(request)) is not None:
            return _table(spec, request, items, table, str(version))
        return {
            "apiVersion": spec.api_version,
            "kind": f"{spec.kind}List",
            "metadata": {"resourceVersion": str(version)},
            "items": items,
        }

    def _watch(self, spec: ResourceSpec, request: kmock.Request) -> Any:
        since = request.params.get("resourceVersion") or "0"
        timeout = request.params.get("timeoutSeconds")
        try:
            watch = WatchRequest(
                resource=spec.resource,
                namespace=request.namespace,
                predicate=self._predicate(request, request.name),
                since=None if since == "0" else int(since),
                send_initial_bookmark=request.params.get("sendInitialEvents") == "true",
                bookmarks=request.params.get("allowWatchBookmarks") == "true",
                timeout=None if timeout is None else float(timeout),
                api_version=spec.api_version,
                kind=spec.kind,
            )
        except ValueError as e:
            raise errors.bad_request(f"invalid watch parameters: {e}") from e
        current = [
            obj
            for _, obj in self.store.iter_objects(spec.resource, request.namespace)
            if watch.predicate(obj)
        ]
        events = open_watch(self.log, watch, current)  # synchronously with the listing above
        return Response(
            status=200, headers={"Content-Type": "application/json"}, payload=self._stream(events)
        )

    async def _stream(self, events: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        yield b""  # send the headers now, even if no event comes for a while
        async for event in events:
            yield event

    def _create(self, spec: ResourceSpec, request: kmock.Request) -> Any:
        body = _body(request)
        if not isinstance(body, Mapping):
            raise errors.bad_request("the request body must be an object")
        obj = self.store.create(
            spec.resource,
            request.namespace,
            body,
            dry_run=_dry_run(request),
            manager=field_manager(request),
        )
        if spec.resource == CRD_RESOURCE and not _dry_run(request):
            obj = self._established(obj)
        return Response(status=201, payload=obj)

    def _update(self, spec: ResourceSpec, request: kmock.Request, name: str) -> Any:
        body = _body(request)
        if not isinstance(body, Mapping):
            raise errors.bad_request("the request body must be an object")
        if request.subresource == "scale" and spec.scale is not None:
            old = self.store.get(spec.resource, request.namespace, name)
            new = self.store.write(
                spec.resource,
                request.namespace,
                name,
                with_replicas(old, spec.scale, body),
                subresource="scale",
                dry_run=_dry_run(request),
                manager=field_manager(request),
            )
            return scale_view(new, spec.scale)
        obj = self.store.write(
            spec.resource,
            request.namespace,
            name,
            body,
            subresource=request.subresource,
            dry_run=_dry_run(request),
            manager=field_manager(request),
        )
        return self._after_write(spec, obj)

    def _patch(self, spec: ResourceSpec, request: kmock.Request, name: str) -> Any:
        content_type = _content_type(request)
        if content_type not in patching.PATCH_TYPES:
            raise errors.unsupported_media_type(", ".join(patching.PATCH_TYPES))
        if content_type == patching.APPLY_PATCH and not request.params.get("fieldManager"):
            raise errors.bad_request("PATCH requests with apply content type require fieldManager")
        patch, dry_run = _body(request), _dry_run(request)
        if request.subresource == "scale" and spec.scale is not None:
            old = self.store.get(spec.resource, request.namespace, name)
            try:
                view = patching.apply_patch(content_type, scale_view(old, spec.scale), patch)
            except patching.PatchError as e:
                raise errors.invalid("Scale", name, str(e)) from e
            new = self.store.write(
                spec.resource,
                request.namespace,
                name,
                with_replicas(old, spec.scale, view),
                subresource="scale",
                dry_run=dry_run,
                manager=field_manager(request),
            )
            return scale_view(new, spec.scale)
        obj = self.store.patch(
            spec.resource,
            request.namespace,
            name,
            content_type=content_type,
            patch=patch,
            subresource=request.subresource,
            dry_run=dry_run,
            manager=field_manager(request),
            force=_force(request),
        )
        if (
            spec.resource == CRD_RESOURCE
            and obj["metadata"]["generation"] == 1
            and "status" not in obj
            and not dry_run
        ):
            obj = self._established(obj)  # created by server-side apply
        return self._after_write(spec, obj)

    def _delete(self, spec: ResourceSpec, request: kmock.Request, name: str | None) -> Any:
        options = request.data if isinstance(request.data, Mapping) else {}
        propagation = request.params.get("propagationPolicy") or options.get("propagationPolicy")
        dry_run = _dry_run(request) or "All" in (options.get("dryRun") or [])
        grace = _grace_period(request, options)
        names = (
            [name]
            if name is not None
            else [obj["metadata"]["name"] for obj in self._list(spec, request)["items"]]
        )
        deleted: list[Any] = []
        for each in names:
            self._check_preconditions(spec, request, each, options)
            obj, gone = self.store.delete(
                spec.resource,
                request.namespace,
                each,
                propagation=propagation,
                dry_run=dry_run,
                grace_period=grace,
            )
            if gone and spec.resource == CRD_RESOURCE:
                for crd_spec in specs_from_crd(obj):
                    self.unregister(crd_spec)
            deleted.append(obj)
        if name is None:
            return {
                "apiVersion": spec.api_version,
                "kind": f"{spec.kind}List",
                "metadata": {"resourceVersion": str(self.log.resource_version)},
                "items": deleted,
            }
        return deleted[0]

    def _check_preconditions(
        self, spec: ResourceSpec, request: kmock.Request, name: str, options: Mapping[str, Any]
    ) -> None:
        preconditions = options.get("preconditions") or {}
        if not preconditions:
            return
        meta = self.store.get(spec.resource, request.namespace, name)["metadata"]
        for field in ("uid", "resourceVersion"):
            if preconditions.get(field) and preconditions[field] != meta.get(field):
                raise errors.conflict(spec.plural, name)

    # -- CustomResourceDefinitions -----------------------------------------------------------
    def _established(self, crd: dict[str, Any]) -> Any:
        try:
            specs = specs_from_crd(crd)
        except (KeyError, ValueError) as e:
            self.store.delete(CRD_RESOURCE, None, crd["metadata"]["name"])
            raise errors.invalid("CustomResourceDefinition", crd["metadata"]["name"], str(e)) from e
        for spec in specs:
            self.register(spec)
        return self.store.write(
            CRD_RESOURCE,
            None,
            crd["metadata"]["name"],
            dict(crd, status=crd_status(crd)),
            subresource="status",
        )

    def _after_write(self, spec: ResourceSpec, obj: Any) -> Any:
        if spec.resource == CRD_RESOURCE and "status" in obj:
            for crd_spec in specs_from_crd(obj):
                if crd_spec.resource not in self.resources:
                    self.register(crd_spec)
        return obj

    # -- discovery ---------------------------------------------------------------------------
    async def _serve_openapi(self, request: kmock.Request) -> Any:
        """``/openapi/v3`` and its group/version documents for custom resources."""
        crds = [obj for _, obj in self.store.iter_objects(CRD_RESOURCE)]
        doc = openapi.document(crds, request.url.path)
        if doc is None:
            raise errors.resource_not_found()
        return doc

    async def _serve_server_version(self, request: kmock.Request) -> Any:
        return SERVER_VERSION

    async def _serve_version(self, request: kmock.Request) -> Any:
        assert request.resource is not None
        group, version = request.resource.group or "", request.resource.version
        specs = [s for s in self.store.specs.values() if (s.group, s.version) == (group, version)]
        if not specs:
            raise errors.resource_not_found()
        resources: list[dict[str, Any]] = []
        for spec in sorted(specs, key=lambda s: s.plural):
            resources.append(
                {
                    "name": spec.plural,
                    "singularName": spec.singular or spec.kind.lower(),
                    "namespaced": spec.namespaced,
                    "kind": spec.kind,
                    "verbs": list(spec.info().verbs),
                    "shortNames": list(spec.shortnames),
                    "categories": list(spec.categories),
                }
            )
            for sub in spec.subresources:
                kind = "Scale" if sub == "scale" else spec.kind
                resources.append(
                    {
                        "name": f"{spec.plural}/{sub}",
                        "singularName": "",
                        "namespaced": spec.namespaced,
                        "kind": kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "apiVersion": "v1",
            "kind": "APIResourceList",
            "groupVersion": spec.api_version,
            "resources": resources,
        }
