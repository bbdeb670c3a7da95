"""File-backed sources: an endpoints file, a policy document file, a RoutingPolicy YAML.

Why it exists: locally (``--policy RP.yaml --endpoints EP.yaml``), without API access
(``--config-file policy.json --endpoints EP.yaml``) and as the fallback of the ConfigMap
watch, the router reads its inputs from files, polled by stat (inode, size, mtime: a
mounted ConfigMap or Secret changes by swapping a symlink). Each file is parsed again only
when its stamp changes; a file that fails to parse raises :class:`ConfigError` (or
:class:`~tierwise.router.table_document.TableError`) and the router keeps its table.

EP.yaml maps ModelDeployment names to base URLs; an item may name the replica::

    small-model: [http://127.0.0.1:8001, {url: http://127.0.0.1:8002, name: small-1}]
    large-model: http://127.0.0.1:8003
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from tierwise.api.documents import load_documents
from tierwise.api.errors import SpecIssue, issues_from
from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.router_config import BackendInfo, RouterConfig, parse_config
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.manifests.router_config import router_config
from tierwise.router.discovery.sources import ConfigError
from tierwise.router.table import Replica, header_safe
from tierwise.router.table_document import TableError, read_yaml

Stamp = tuple[int, int, int] | None


def file_stamp(path: str | Path) -> Stamp:
    """Changes when the file is rewritten or replaced (None: it is not there)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def load_endpoints(path: str | Path) -> dict[str, list[Replica]]:
    """Read EP.yaml (see the module docstring); :class:`TableError` names each bad entry."""
    source = str(path)
    raw = read_yaml(path, "YAML")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TableError([SpecIssue("", "must map ModelDeployment names to base URLs")], source)
    out: dict[str, list[Replica]] = {}
    issues: list[SpecIssue] = []
    for name, value in raw.items():
        items = value if isinstance(value, list) else [value]
        replicas = [_replica(item) for item in items]
        if not all(replicas):
            issues.append(
                SpecIssue(
                    str(name),
                    "must be an http(s) base URL, {url: URL, name: REPLICA}, or a list of them",
                )
            )
            continue
        out[str(name)] = [r for r in replicas if r is not None]
    if issues:
        raise TableError(issues, source)
    return out


def _replica(item: Any) -> Replica | None:
    url, name = item, None
    if isinstance(item, dict):
        url, name = item.get("url"), item.get("name")
        if set(item) - {"url", "name"} or not (name is None or header_safe(name)):
            return None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    return Replica(url, name or None)


class _PolledDocument:
    """A policy document read from files, again only when their stamps change; a version
    that fails is reported once to ``on_error`` and raised on every look."""

    source = "file"

    def __init__(
        self, paths: Sequence[Path], on_error: Callable[[ConfigError], None] | None
    ) -> None:
        self.paths = list(paths)
        self.on_error = on_error
        """Called once per rejected version of the files (counts and logs it)."""
        self._seen: object = object()
        self._config: RouterConfig | None = None
        self._error: ConfigError | None = None

    def stamp(self) -> object:
        return tuple(file_stamp(p) for p in self.paths)

    def current(self) -> RouterConfig:
        stamp = self.stamp()
        if stamp != self._seen:
            self._seen = stamp
            try:
                self._config, self._error = self._read(), None
            except ConfigError as exc:
                self._config, self._error = None, exc
                if self.on_error is not None:
                    self.on_error(exc)
        if self._error is not None:
            raise self._error
        assert self._config is not None
        return self._config

    def _read(self) -> RouterConfig:
        raise NotImplementedError

    def running(self, changed: Callable[[], None]) -> contextlib.AbstractAsyncContextManager[None]:
        """Nothing runs in the background: the router polls :meth:`stamp`."""
        return contextlib.nullcontext()


class EndpointsFile:
    """Replicas from EP.yaml, keyed by ModelDeployment name (backend facts not needed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: Stamp | object = object()
        self._replicas: dict[str, tuple[Replica, ...]] = {}
        self.synced = True

    def stamp(self) -> object:
        return file_stamp(self.path)

    def replicas(self, backends: Mapping[str, BackendInfo]) -> dict[str, tuple[Replica, ...]]:
        stamp = file_stamp(self.path)
        if stamp != self._seen:
            loaded = load_endpoints(self.path)
            self._replicas = {name: tuple(items) for name, items in loaded.items()}
            self._seen = stamp
        return self._replicas

    def running(self, changed: Callable[[], None]) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()


class ConfigFile(_PolledDocument):
    """The policy document from a file (the ConfigMap's mounted copy)."""

    def __init__(
        self, path: Path, *, on_error: Callable[[ConfigError], None] | None = None
    ) -> None:
        super().__init__([path], on_error)
        self.path = path

    def _read(self) -> RouterConfig:
        return read_config(self.path)


def read_config(path: Path) -> RouterConfig:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the policy document: {exc.strerror}") from None
    return config_from_text(text, str(path))


def config_from_text(text: bytes | str, source: str) -> RouterConfig:
    """Parse a policy document (JSON, or YAML); :class:`ConfigError` names each bad field."""
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not a JSON or YAML document: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the policy document must be a JSON object")
    try:
        return parse_config(raw)
    except ValidationError as exc:
        issues = "; ".join(str(i) for i in issues_from(exc, RouterConfig))
        raise ConfigError(f"{source}: invalid policy document: {issues}") from None


class PolicyFiles(_PolledDocument):
    """A RoutingPolicy YAML (plus ModelDeployment files) turned into the policy document
    the operator would write (:func:`~tierwise.manifests.router_config.router_config`)."""

    def __init__(
        self,
        policy: Path,
        deployments: Sequence[Path] = (),
        *,
        on_error: Callable[[ConfigError], None] | None = None,
    ) -> None:
        super().__init__([policy, *deployments], on_error)

    def _read(self) -> RouterConfig:
        policies: list[RoutingPolicy] = []
        deployments: dict[str, ModelDeployment] = {}
        for path in self.paths:
            for doc in load_documents(path):
                if doc.issues:
                    issues = "; ".join(str(issue) for issue in doc.issues)
                    raise ConfigError(f"{path}: {doc.label}: {issues}")
                if isinstance(doc.resource, RoutingPolicy):
                    policies.append(doc.resource)
                elif isinstance(doc.resource, ModelDeployment):
                    deployments[doc.resource.metadata.name] = doc.resource
        if len(policies) != 1:
            raise ConfigError(f"{self.paths[0]}: expected one RoutingPolicy, found {len(policies)}")
        return router_config(policies[0], deployments, report_missing=False)
