"""kopf wiring: which events reach the one reconcile, and how kopf keeps its books.

Handlers are registered on a fresh :class:`kopf.OperatorRegistry` bound to one
:class:`~tierwise.controller.reconcile.Reconciler` (no module-level decorators, no
global registry), so tests can run several operators in one process.

kopf's bookkeeping lives under ``tierwise.dev/``: the finalizer, the progress and the
diff-base annotations. Handlers return nothing, so kopf stores no results in status, and
kopf's own event posting is off: the reconcile posts its own events.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from tierwise.api.common import GROUP, VERSION
from tierwise.controller.autoscaling import Autoscaler
from tierwise.controller.checks import plain
from tierwise.controller.kube import KubeConfig
from tierwise.controller.policy_reconcile import POLICY_LABEL, PolicyReconciler
from tierwise.controller.reconcile import Reconciler
from tierwise.controller.webhooks import register_webhooks
from tierwise.manifests.labels import MODEL_DEPLOYMENT_LABEL

FINALIZER = "tierwise.dev/finalizer"
ANNOTATION_PREFIX = "tierwise.dev"
PLURAL = "modeldeployments"
POLICY_PLURAL = "routingpolicies"


def configure(settings: kopf.OperatorSettings) -> None:
    """Operator settings: bookkeeping under tierwise.dev/, no kopf-posted events."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    settings.queueing.error_delays = (1, 2, 5, 10, 30)


def connection_info(config: KubeConfig) -> kopf.ConnectionInfo:
    """kopf logs in with the same resolution the operator's own client uses; kopf logs in
    again when ``expiration`` passes or the server answers 401."""
    return kopf.ConnectionInfo(
        server=config.server,
        ca_path=config.ca_path,
        insecure=config.insecure or None,
        scheme="Bearer" if config.token else None,
        token=config.token,
        certificate_path=config.cert_path,
        private_key_path=config.key_path,
        default_namespace=config.namespace,
        expiration=config.expires_at,
    )


class Login:
    """kopf's login handler: the credentials resolved again on every login (kopf logs in at
    start, when the last credentials expire, and after a 401), so a rotated service account
    token or an exec plugin's new token is used. A failed resolution keeps the last one."""

    def __init__(self, config: KubeConfig) -> None:
        self.config = config
        self.logins = 0

    def __call__(self, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any) -> Any:
        self.logins += 1
        if self.logins > 1:  # the first login uses what the operator started with
            try:
                self.config = self.config.refreshed()
            except Exception as error:
                logger.warning("re-resolving the API credentials failed: %r", error)
        return connection_info(self.config)


def _register_policies(registry: kopf.OperatorRegistry, policies: PolicyReconciler) -> None:
    """RoutingPolicy reconciles, and the changes elsewhere that wake a policy."""
    on = kopf.on

    @on.create(GROUP, VERSION, POLICY_PLURAL, id="reconcile-policy", registry=registry)
    @on.update(GROUP, VERSION, POLICY_PLURAL, id="reconcile-policy", registry=registry)
    @on.resume(GROUP, VERSION, POLICY_PLURAL, id="reconcile-policy", registry=registry)
    async def reconcile_policy(body: kopf.Body, **_: Any) -> None:
        await policies.reconcile(plain(body))

    @on.event(GROUP, VERSION, POLICY_PLURAL, registry=registry)
    async def policy_event(type: str, namespace: str | None, name: str | None, **_: Any) -> None:
        if type == "DELETED" and namespace and name:  # children go by owner references
            policies.forget(namespace, name)

    @on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def model_event(namespace: str | None, name: str | None, **_: Any) -> None:
        if namespace and name:
            policies.model_changed(namespace, name)

    routers: dict[str, Any] = {POLICY_LABEL: kopf.PRESENT, "app.kubernetes.io/component": "router"}

    @on.event("apps", "v1", "deployments", labels=routers, registry=registry)
    async def router_event(namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
        if namespace:
            policies.labelled_changed(namespace, labels[POLICY_LABEL])

    @on.event("", "v1", "pods", labels={POLICY_LABEL: kopf.PRESENT}, registry=registry)
    async def labelled_pod_event(
        namespace: str | None, labels: Mapping[str, str], **_: Any
    ) -> None:
        if namespace:
            policies.labelled_changed(namespace, labels[POLICY_LABEL])


def _owner_name(body: Mapping[str, Any]) -> str | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == "ModelDeployment" and ref.get("controller"):
            name: str = ref["name"]
            return name
    return None


def build_registry(
    reconciler: Reconciler,
    config: KubeConfig,
    *,
    autoscaler: Autoscaler | None = None,
    policies: PolicyReconciler | None = None,
    webhooks: bool = False,
) -> kopf.OperatorRegistry:
    """A registry with every handler of the operator, bound to ``reconciler`` (and the
    autoscaling timer, bound to ``autoscaler``; RoutingPolicy handlers bound to
    ``policies``; the admission webhooks when ``webhooks``, which needs ``policies``)."""
    registry = kopf.OperatorRegistry()
    on = kopf.on
    if policies is not None:
        _register_policies(registry, policies)
        if webhooks:
            register_webhooks(registry, policies.kube, policies.render)

    on.login(registry=registry, id="login")(Login(config))

    @on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await reconciler.close()
        if policies is not None:
            await policies.close()

    @on.create(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @on.update(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @on.resume(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    async def reconcile(body: kopf.Body, **_: Any) -> None:
        await reconciler.reconcile(plain(body))

    @on.delete(GROUP, VERSION, PLURAL, id="cleanup-children", registry=registry)
    async def delete(body: kopf.Body, **_: Any) -> None:
        await reconciler.delete(plain(body))
        if autoscaler is not None:
            meta = body.get("metadata") or {}
            autoscaler.forget(str(meta.get("namespace")), str(meta.get("name")))

    if autoscaler is not None:
        scaler = autoscaler

        @kopf.timer(
            GROUP,
            VERSION,
            PLURAL,
            id="autoscale",
            interval=scaler.settings.tick_s,
            initial_delay=scaler.settings.tick_s,
            registry=registry,
        )
        async def autoscale(body: kopf.Body, **_: Any) -> None:
            await scaler.tick_safely(plain(body))

    labelled = {MODEL_DEPLOYMENT_LABEL: kopf.PRESENT}

    @on.event("apps", "v1", "deployments", labels=labelled, registry=registry)
    async def deployment_event(body: kopf.Body, namespace: str | None, **_: Any) -> None:
        if namespace:
            reconciler.child_changed(namespace, owner=_owner_name(body), label=None)

    @on.event("", "v1", "pods", labels=labelled, registry=registry)
    async def pod_event(namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
        if namespace:
            label = labels.get(MODEL_DEPLOYMENT_LABEL)
            reconciler.child_changed(namespace, owner=None, label=label)

    @on.startup(registry=registry)
    def startup(logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any) -> None:
        logger.info("tierwise operator: API server %s", config.server)

    return registry
