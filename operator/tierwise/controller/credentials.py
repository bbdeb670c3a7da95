"""Where the API server is and how to authenticate to it, resolved again whenever it expires.

Why it exists: in a cluster the service account token is a projected token that the kubelet
rotates (hourly by default), and on EKS or GKE a kubeconfig runs an exec plugin whose token
lives 15 to 60 minutes. Credentials resolved once at start-up stop working there. So every
:class:`KubeConfig` remembers how it was resolved (:attr:`KubeConfig.reload`) and when it
should be resolved again (:attr:`KubeConfig.expires_at`):

* the exec plugin's ``expirationTimestamp`` when it gives one;
* a JWT's ``exp`` claim (projected service account tokens are JWTs);
* at most :data:`MAX_AGE` after resolution in any case, so a token file rewritten in place
  (kubelet's rotation, ``tokenFile`` in a kubeconfig) is picked up without waiting for a 401.

Each is moved :data:`EXPIRY_SKEW` earlier so a token is never sent in its last seconds.
kopf's login handler (:func:`tierwise.controller.handlers.connection_info`) and the
operator's own client (:class:`tierwise.controller.kube.KubeClient`) both re-resolve on
expiry and after a 401. ``kubernetes.config`` does the resolution itself (``KUBECONFIG``
read at call time, then ``~/.kube/config``, then in-cluster).
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
MAX_AGE = timedelta(minutes=10)
"""Re-resolve at least this often, even when nothing says the token expires."""
EXPIRY_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class KubeConfig:
    """Where the API server is and how to authenticate to it."""

    server: str
    ca_path: str | None = None
    insecure: bool = False
    token: str | None = None
    token_file: str | None = None
    """Re-read periodically (in-cluster service account tokens rotate)."""
    cert_path: str | None = None
    key_path: str | None = None
    namespace: str = "default"
    expires_at: datetime | None = None
    """When to resolve again (None: never; the configuration is static)."""
    reload: Callable[[], KubeConfig] | None = field(default=None, compare=False, repr=False)
    """Resolves this configuration again, the same way (None: it cannot be)."""

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and (now or datetime.now(UTC)) >= self.expires_at

    def refreshed(self) -> KubeConfig:
        """Resolved again (a new token), or this one when it cannot be resolved again."""
        return self.reload() if self.reload is not None else self


def load_config(kubeconfig: str | None = None, *, context: str | None = None) -> KubeConfig:
    """Resolve the API server: explicit file, ``KUBECONFIG``, ``~/.kube/config``, in-cluster.

    The result can resolve itself again (:meth:`KubeConfig.refreshed`) from the same file
    and context, or in-cluster, running an exec plugin again where the kubeconfig has one.
    """
    path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    if kubeconfig or Path(path.split(os.pathsep)[0]).exists():
        return _from_kubeconfig(path, context)
    return _in_cluster()


def _from_kubeconfig(path: str, context: str | None) -> KubeConfig:
    from kubernetes import client
    from kubernetes import config as kube_config

    config: Any = kube_config  # untyped package; only its resolution is used
    cfg = client.Configuration()
    loader = config.kube_config._get_kube_config_loader(
        filename=path, active_context=context, persist_config=False
    )
    loader.load_and_set(cfg)
    _, active = config.list_kube_config_contexts(config_file=path)
    if context is not None:
        contexts, _ = config.list_kube_config_contexts(config_file=path)
        active = next((c for c in contexts if c.get("name") == context), active)
    namespace = (active.get("context") or {}).get("namespace") or "default"
    token = _bearer(cfg)
    plugin_expiry: datetime | None = getattr(loader, "expiry", None)
    return KubeConfig(
        server=str(cfg.host).rstrip("/"),
        ca_path=cfg.ssl_ca_cert or None,
        insecure=not cfg.verify_ssl,
        token=token,
        cert_path=cfg.cert_file or None,
        key_path=cfg.key_file or None,
        namespace=namespace,
        expires_at=expiry(token, plugin_expiry),
        reload=functools.partial(_from_kubeconfig, path, context),
    )


def _in_cluster() -> KubeConfig:
    from kubernetes import client
    from kubernetes import config as kube_config

    config: Any = kube_config
    cfg = client.Configuration()
    config.load_incluster_config(client_configuration=cfg)
    token = _bearer(cfg)
    return KubeConfig(
        server=str(cfg.host).rstrip("/"),
        ca_path=cfg.ssl_ca_cert or None,
        insecure=not cfg.verify_ssl,
        token=token,
        token_file=IN_CLUSTER_TOKEN,
        namespace=_in_cluster_namespace(),
        expires_at=expiry(token, None),
        reload=_in_cluster,
    )


def _bearer(cfg: Any) -> str | None:
    token = cfg.api_key.get("BearerToken") or cfg.api_key.get("authorization")
    if not token:
        return None
    text = str(token)
    return text.split(" ", 1)[1] if text.lower().startswith("bearer ") else text


def _in_cluster_namespace() -> str:
    path = Path(IN_CLUSTER_TOKEN).with_name("namespace")
    return path.read_text().strip() if path.exists() else "default"


def expiry(
    token: str | None, plugin_expiry: datetime | None, *, now: datetime | None = None
) -> datetime:
    """When credentials resolved ``now`` should be resolved again (see the module docs)."""
    now = now or datetime.now(UTC)
    candidates = [now + MAX_AGE]
    for moment in (plugin_expiry, jwt_expiry(token)):
        if moment is not None:
            aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
            candidates.append(max(now, aware - EXPIRY_SKEW))
    return min(candidates)


def jwt_expiry(token: str | None) -> datetime | None:
    """The ``exp`` claim of a JWT, or None for any other kind of token (never raises)."""
    parts = (token or "").split(".")
    if len(parts) != 3:
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return datetime.fromtimestamp(int(payload["exp"]), UTC)
    except (binascii.Error, ValueError, TypeError, KeyError, OverflowError, orjson.JSONDecodeError):
        return None
