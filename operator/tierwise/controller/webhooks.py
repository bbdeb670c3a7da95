"""Admission webhooks, on kopf's admission support: validate both kinds, inject sidecars.

Why it exists: what the CRD's CEL cannot check (a regex that does not compile, an engine
flag Tierwise manages, a backend named twice in a tier) must be refused when it is applied,
with the same field path and fix ``tierwise validate`` prints
(:func:`tierwise.manifests.validation.check_resource`), not discovered later on a status.
And in sidecar mode a pod labelled ``tierwise.dev/routing-policy: NAME`` must get the router
as a native sidecar when it is created.

The mutating webhook fails open (``failurePolicy: Ignore``): a webhook that is down must
never block the application's pods. A labelled pod that got no sidecar is then reported by
the policy's reconcile (``Degraded``/``SidecarNotInjected``, an event, a metric). Injection
is idempotent: a pod that already carries the sidecar is left as it is.

TLS: the server reads its certificate and key from files (kopf re-reads them when they
change); how they are made (self-signed by the chart, cert-manager) is the packaging's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from tierwise.api.common import GROUP, VERSION
from tierwise.api.routing_policy import RouterMode
from tierwise.controller.checks import plain
from tierwise.controller.kube import KubeClient
from tierwise.controller.policy_plan import RouterRender, parse_policy
from tierwise.controller.policy_reconcile import POLICY_LABEL
from tierwise.controller.resources import ROUTING_POLICY
from tierwise.manifests.labels import label_value
from tierwise.manifests.validation import check_resource

log = logging.getLogger(__name__)
INVALID_CODE = 422
VALIDATED = (
    ("modeldeployments", "validate-modeldeployment"),
    ("routingpolicies", "validate-routingpolicy"),
)


@dataclass(frozen=True)
class WebhookSettings:
    """Where the admission webhook server listens and how it proves who it is."""

    port: int = 9443
    addr: str = "0.0.0.0"
    host: str | None = None
    """Host name the API server reaches the server at (the webhook Service's DNS name)."""
    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None
    """CA bundle for the managed configurations' caBundle (defaults to the certificate)."""
    managed: str | None = None
    """When set, kopf keeps Validating/MutatingWebhookConfigurations of this name up to date;
    unset, the configurations come from the installation (the Helm chart)."""

    def server(self) -> kopf.WebhookServer:
        if not self.certfile or not self.keyfile:
            raise ValueError(
                "the admission webhook needs a TLS certificate and key: pass --webhook-cert "
                "and --webhook-key (files; the Helm chart mounts them)"
            )
        return kopf.WebhookServer(
            addr=self.addr,
            port=self.port,
            host=self.host,
            certfile=self.certfile,
            pkeyfile=self.keyfile,
            cafile=self.cafile or self.certfile,
        )


def configure_admission(settings: kopf.OperatorSettings, webhook: WebhookSettings) -> None:
    settings.admission.server = webhook.server()
    settings.admission.managed = webhook.managed


def admission_message(raw: Mapping[str, Any]) -> str | None:
    """Why an object must be refused (every issue, ``path: what; fix``), or None."""
    doc = check_resource(dict(raw))
    if not doc.issues:
        return None
    return f"{doc.label}: " + "; ".join(str(issue) for issue in doc.issues)


def register_webhooks(
    registry: kopf.OperatorRegistry, kube: KubeClient, render: RouterRender
) -> None:
    """Validating handlers for both kinds and the mutating sidecar injector."""
    for plural, handler_id in VALIDATED:

        @kopf.on.validate(
            GROUP, VERSION, plural, id=handler_id, operations=["CREATE", "UPDATE"],
            registry=registry,
        )  # fmt: skip
        def validate(body: kopf.Body, **_: Any) -> None:
            message = admission_message(plain(body))
            if message is not None:
                raise kopf.AdmissionError(message, code=INVALID_CODE)

    @kopf.on.mutate(
        "", "v1", "pods", id="inject-router", operations=["CREATE"],
        labels={POLICY_LABEL: kopf.PRESENT}, ignore_failures=True, side_effects=False,
        registry=registry,
    )  # fmt: skip
    async def inject(body: kopf.Body, patch: kopf.Patch, warnings: list[str], **_: Any) -> None:
        pod = plain(body)
        injected = await sidecar_for(pod, kube, render, warnings)
        if injected is not None:
            patch.fns.append(_replace_with(injected))


async def sidecar_for(
    pod: Mapping[str, Any], kube: KubeClient, render: RouterRender, warnings: list[str]
) -> dict[str, Any] | None:
    """The pod with the router sidecar, or None (not ours, not sidecar mode, done already)."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    namespace = meta.get("namespace")
    wanted = labels.get(POLICY_LABEL)
    if not wanted or not namespace or labels.get("app.kubernetes.io/managed-by") == "tierwise":
        return None
    body = await _policy_by_label(kube, str(namespace), str(wanted))
    if body is None:
        warnings.append(f"no RoutingPolicy {wanted!r} in namespace {namespace}: no router sidecar")
        return None
    rp, problems = parse_policy(body)
    if rp is None:
        warnings.append(f"RoutingPolicy {wanted!r} is invalid: no router sidecar ({problems[0]})")
        return None
    if rp.spec.router.mode is not RouterMode.SIDECAR:
        warnings.append(
            f"RoutingPolicy {wanted!r} runs in {rp.spec.router.mode} mode: no sidecar; call its "
            f"Service instead ({render.endpoint(rp)})"
        )
        return None
    return render.sidecar(pod, rp)


async def _policy_by_label(kube: KubeClient, namespace: str, value: str) -> dict[str, Any] | None:
    """The policy a label value names: its name, or the shortened form of a long name."""
    found = await kube.get(ROUTING_POLICY, namespace, value)
    if found is not None or len(value) < 63:
        return found
    for body in await kube.list(ROUTING_POLICY, namespace):
        if label_value(str(body["metadata"]["name"])) == value:
            return body
    return None


def _replace_with(new: Mapping[str, Any]) -> Any:
    def apply(body: dict[str, Any]) -> None:
        body.clear()
        body.update(new)

    return apply
