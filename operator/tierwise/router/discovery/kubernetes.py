"""Kubernetes-backed sources: EndpointSlices (replicas) and the policy ConfigMap (document).

Why it exists: in a cluster the router learns both of its inputs by watching the API
(read-only, in its own namespace), so an endpoint change costs zero API writes and reaches
every router replica and sidecar within milliseconds.

:class:`SliceEndpoints` watches the namespace's EndpointSlices labelled
``tierwise.dev/model-deployment`` (the EndpointSlice controller copies a Service's labels
onto its slices, and every engine Service carries that label) and maps them with
:func:`~tierwise.router.discovery.slices.replicas_from_slices`.

:class:`ConfigMapConfig` watches one ConfigMap (``fieldSelector=metadata.name=NAME``) and
parses its ``policy.json``; the mounted file (kubelet's copy, up to a minute late) is the
fallback. Which document is used:

* the API's while its watch is up (or when there is no file);
* the file's before the API delivered any document (start-up, API unreachable, RBAC
  forbids it, the ConfigMap does not exist);
* while the watch is down after having delivered: the file's only if its version is one
  the API never delivered (the file moved on: it is newer than what the API last said;
  a file that lags behind is never preferred).

A document that fails to parse (from either source) is logged and counted in
``config_errors_total{source}``, and the last good one stays.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping

from tierwise.api.router_config import CONFIG_KEY, BackendInfo, RouterConfig
from tierwise.manifests.labels import MODEL_DEPLOYMENT_LABEL
from tierwise.router.discovery.files import ConfigFile, config_from_text
from tierwise.router.discovery.reflector import Reflector, WatchTiming
from tierwise.router.discovery.slices import replicas_from_slices
from tierwise.router.discovery.sources import ConfigError
from tierwise.router.discovery.stats import DiscoveryStats
from tierwise.router.kubeapi import KubeApi
from tierwise.router.table import Replica
from tierwise.router.tasks import background

log = logging.getLogger(__name__)

ENDPOINTSLICES = "endpointslices"
CONFIGMAPS = "configmaps"
_REMEMBERED_VERSIONS = 64


class SliceEndpoints:
    """Ready replicas from the namespace's EndpointSlices (see the module docstring)."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        stats: DiscoveryStats,
        *,
        timing: WatchTiming | None = None,
    ) -> None:
        self._generation = 0
        self._notify: Callable[[], None] = lambda: None
        self.reflector = Reflector(
            api,
            f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
            params={"labelSelector": MODEL_DEPLOYMENT_LABEL},
            stats=stats.watch(ENDPOINTSLICES),
            on_change=self._changed,
            timing=timing,
        )

    def _changed(self) -> None:
        self._generation += 1
        self._notify()

    @property
    def synced(self) -> bool:
        return self.reflector.synced

    def stamp(self) -> object:
        return self._generation

    def replicas(self, backends: Mapping[str, BackendInfo]) -> dict[str, tuple[Replica, ...]]:
        return replicas_from_slices(self.reflector.objects.values(), backends)

    def running(self, changed: Callable[[], None]) -> contextlib.AbstractAsyncContextManager[None]:
        self._notify = changed
        return background(self.reflector.run())


class ConfigMapConfig:
    """The policy document from a watched ConfigMap, with a file fallback."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        name: str,
        *,
        fallback: ConfigFile | None,
        stats: DiscoveryStats,
        timing: WatchTiming | None = None,
    ) -> None:
        self.name = name
        self.fallback = fallback
        self.stats = stats
        self.source = "api"
        self._api: RouterConfig | None = None
        self._api_versions: deque[str] = deque(maxlen=_REMEMBERED_VERSIONS)
        self._parsed: str | None = None  # resourceVersion of the ConfigMap last parsed
        self._generation = 0
        self._notify: Callable[[], None] = lambda: None
        self.reflector = Reflector(
            api,
            f"/api/v1/namespaces/{namespace}/configmaps",
            params={"fieldSelector": f"metadata.name={name}"},
            stats=stats.watch(CONFIGMAPS),
            on_change=self._changed,
            timing=timing,
        )

    def _changed(self) -> None:
        obj = self.reflector.objects.get(self.name)
        version = None if obj is None else str(obj["metadata"].get("resourceVersion"))
        if obj is not None and version != self._parsed:
            self._parsed = version
            self._parse((obj.get("data") or {}).get(CONFIG_KEY))
        self._generation += 1
        self._notify()

    def _parse(self, text: object) -> None:
        where = f"ConfigMap {self.name!r}"
        try:
            if not isinstance(text, str):
                raise ConfigError(f"{where} has no data key {CONFIG_KEY!r}")
            config = config_from_text(text, f"{where} key {CONFIG_KEY!r}")
        except ConfigError as exc:
            self.stats.count_config_error("api")
            kept = self._api.version if self._api is not None else "none"
            log.error("policy document rejected, keeping version %s: %s", kept, exc)
            return
        self._api = config
        if config.version not in self._api_versions:
            self._api_versions.append(config.version)

    @property
    def api_up(self) -> bool:
        return self.reflector.synced and self.reflector.up

    def stamp(self) -> object:
        file_stamp = self.fallback.stamp() if self.fallback is not None else None
        return (self._generation, self.api_up, file_stamp)

    def current(self) -> RouterConfig:
        api = self._api
        if api is not None and (self.api_up or self.fallback is None):
            self.source = "api"
            return api
        from_file = self._from_file()
        if from_file is not None and (api is None or from_file.version not in self._api_versions):
            self.source = "file"
            return from_file
        if api is not None:
            self.source = "api"
            return api
        where = f" or {self.fallback.path}" if self.fallback is not None else ""
        raise ConfigError(f"no policy document yet: ConfigMap {self.name!r}{where}")

    def _from_file(self) -> RouterConfig | None:
        if self.fallback is None:
            return None
        try:
            return self.fallback.current()
        except ConfigError:
            return None  # counted and logged by the file source itself

    def running(self, changed: Callable[[], None]) -> contextlib.AbstractAsyncContextManager[None]:
        self._notify = changed
        return background(self.reflector.run())
