"""Operator-wide choices for rendering a RoutingPolicy's router, not part of any one policy.

The operator builds one :class:`RouterRenderSettings` from its own configuration (its image,
whether the Prometheus Operator's PodMonitor CRD exists) and passes it to every render;
``tierwise render`` uses the defaults.

Draining (gateway pods): on termination the pod leaves the Service's endpoints, but
kube-proxy and load balancers learn that asynchronously, so the ``preStop`` hook first sleeps
``pre_stop_sleep_seconds`` (the kubelet's native sleep action: the image needs no shell)
while the router keeps serving; then the router gets SIGTERM, stops accepting and lets
in-flight streams finish for up to ``shutdown_grace_seconds`` (its ``--shutdown-grace``).
``terminationGracePeriodSeconds`` covers both plus ``termination_margin_seconds`` so the
kubelet's SIGKILL never cuts a drain short.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from importlib import metadata

from tierwise.api.router_config import DEFAULT_SECRETS_DIR

IMAGE_REPOSITORY = "ghcr.io/tierwise/tierwise"


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


def default_router_image() -> str:
    """The image of this Tierwise release (one image holds operator and router), tagged with
    the installed package's version; ``latest`` only when no package metadata exists
    (running from a bare source tree)."""
    try:
        version = metadata.version("tierwise")
    except metadata.PackageNotFoundError:
        version = "latest"
    return f"{IMAGE_REPOSITORY}:{version}"


@dataclass(frozen=True)
class RouterRenderSettings:
    image: str = field(default_factory=default_router_image)
    """Router image when the policy sets no spec.router.image (the operator passes its own)."""
    image_pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT
    shutdown_grace_seconds: int = 25
    """The router's --shutdown-grace: how long in-flight requests may finish after SIGTERM."""
    pre_stop_sleep_seconds: int = 5
    """Gateway pods keep serving this long after termination starts (endpoint propagation)."""
    termination_margin_seconds: int = 5
    """Slack between the end of the drain and the kubelet's SIGKILL."""
    config_mount_path: str = "/etc/tierwise/config"
    """Where the policy ConfigMap is mounted (the router's --config-file fallback)."""
    secrets_dir: str = DEFAULT_SECRETS_DIR
    """Secret volumes are mounted at ``<this>/<secret name>``, one file per key."""
    log_level: str = "info"
    pod_monitor: bool = False
    """True when the Prometheus Operator's PodMonitor CRD exists: render a PodMonitor instead
    of prometheus.io scrape annotations."""
    pod_monitor_interval: str = "15s"
    startup_timeout_seconds: int = 120
    """How long a router may take to listen (loading the classifier's embedding model is the
    slow part) before the startup probe gives up and restarts it."""
    run_as_user: int = 65532
    """UID (and GID) of the router process: the conventional non-root user of distroless
    images; the router writes only to its emptyDir /tmp."""
    revision_history_limit: int = 3

    @property
    def termination_grace_seconds(self) -> int:
        return (
            self.pre_stop_sleep_seconds
            + self.shutdown_grace_seconds
            + self.termination_margin_seconds
        )
