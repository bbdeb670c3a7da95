"""The two inputs of a routing table, as interfaces: a policy document and replicas.

Why it exists: the data plane builds every table the same way
(:func:`tierwise.router.table.table_from_config`) from a
:class:`~tierwise.api.router_config.RouterConfig` and the ready replicas per
ModelDeployment; where those come from — files polled on disk, or watches on the Kubernetes
API — is hidden behind these two protocols, so ``tierwise router`` runs the same code
locally and in a cluster.

Both follow one shape: ``stamp()`` is cheap and changes when the answer may have changed
(the router polls it, or is woken by ``running``'s ``changed`` callback for pushed
changes); reading the answer (``current()`` / ``replicas()``) happens on the event loop,
from in-memory state or small files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from tierwise.api.router_config import BackendInfo, RouterConfig
from tierwise.router.table import Replica


class ConfigError(ValueError):
    """No usable policy document (the message names the source and the field at fault)."""


class ConfigSource(Protocol):
    """Where the policy document comes from."""

    @property
    def source(self) -> str:
        """``api`` or ``file`` (``config_source_info``)."""
        ...

    def current(self) -> RouterConfig:
        """The document to route by; :class:`ConfigError` when there is none usable."""
        ...

    def stamp(self) -> object: ...

    def running(self, changed: Callable[[], None]) -> AbstractAsyncContextManager[None]:
        """Background work (watches) for the duration of the block."""
        ...


class EndpointSource(Protocol):
    """Where the ready replicas of each ModelDeployment come from."""

    def replicas(self, backends: Mapping[str, BackendInfo]) -> dict[str, tuple[Replica, ...]]:
        """Ready replicas per ModelDeployment name (``backends``: what the document knows)."""
        ...

    @property
    def synced(self) -> bool:
        """True once the replicas reflect the source (a file read, a first list)."""
        ...

    def stamp(self) -> object: ...

    def running(self, changed: Callable[[], None]) -> AbstractAsyncContextManager[None]: ...
