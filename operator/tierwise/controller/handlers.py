"""kopf wiring: which events reach the one reconcile, and how kopf keeps its books.

Handlers are registered on a fresh :class:`kopf.OperatorRegistry` bound to one
:class:`~tierwise.controller.reconcile.Reconciler` (no module-level decorators, no
global registry), so tests can run several operators in one process.

kopf watches only ModelDeployments and RoutingPolicies. Children and pods reach the
operator through :class:`~tierwise.controller.cluster_view.ClusterView`'s label-selected
watches (kopf filters ``labels=`` in the operator, after the API server sent it every Pod
and Deployment of the cluster); :func:`child_router` turns their changes into refreshes.

kopf's bookkeeping lives under ``tierwise.dev/``: the finalizer, the progress and the
diff-base annotations. Handlers return nothing, so kopf stores no results in status, and
kopf's own event posting is off: the reconcile posts its own events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
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


def child_router(
    reconciler: Reconciler, policies: PolicyReconciler | None
) -> Callable[[str, Mapping[str, Any]], None]:
    """What a change of an owned object or a labelled pod wakes: the ModelDeployment that
    owns it (its Deployment, its pods, any child deleted) or the policy it is labelled for
    (the router Deployment, router and application pods, any router child deleted)."""

    def changed(event: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace")
        if not namespace:
            return
        kind = obj.get("kind")
        labels: Mapping[str, str] = meta.get("labels") or {}
        wakes = kind in ("Deployment", "Pod") or event == "DELETED"
        model = labels.get(MODEL_DEPLOYMENT_LABEL)
        if model is not None and wakes:
            owner = _owner_name(obj) if kind != "Pod" else None
            reconciler.child_changed(namespace, owner=owner, label=None if owner else model)
        policy = labels.get(POLICY_LABEL)
        router = labels.get("app.kubernetes.io/component") == "router"
        wakes_policy = kind == "Pod" or (kind == "Deployment" and router) or event == "DELETED"
        if policies is not None and policy is not None and wakes_policy:
            policies.labelled_changed(namespace, policy)

    return changed


def autoscaling_enabled(spec: Mapping[str, Any], **_: Any) -> bool:
    """Whether a ModelDeployment autoscales (the default): kopf runs the autoscale timer only
    for those, instead of a no-op tick every few seconds for each of the others."""
    autoscaling = spec.get("autoscaling") or {}
    return bool(autoscaling.get("enabled", True))


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
    ``policies``; the admission webhooks when ``webhooks``, which needs ``policies``).
    kopf's ModelDeployment events also arm the reconciler's watchdog."""
    registry = kopf.OperatorRegistry()
    on = kopf.on

    @on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def model_event(
        type: str, body: kopf.Body, namespace: str | None, name: str | None, **_: Any
    ) -> None:
        reconciler.model_seen(type or "ADDED", plain(body))
        if policies is not None and namespace and name:
            policies.model_changed(namespace, name)

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
            when=autoscaling_enabled,
            registry=registry,
        )
        async def autoscale(body: kopf.Body, **_: Any) -> None:
            await scaler.tick_safely(plain(body))

    @on.startup(registry=registry)
    def startup(logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any) -> None:
        logger.info("tierwise operator: API server %s", config.server)

    return registry
