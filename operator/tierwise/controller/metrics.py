"""The operator's Prometheus metrics (prefix ``tierwise_operator_``), on their own registry.

No global registry: :class:`OperatorMetrics` is built once per operator run and passed
down, so two operators in one test process never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "tierwise_operator"
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class OperatorMetrics:
    """Reconciles by kind and outcome, their durations, API writes, managed objects, and
    autoscaling decisions with desired vs current replicas."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.reconciles = Counter(
            f"{PREFIX}_reconciles",
            "Reconciles by kind and outcome (ok, invalid, waiting, error).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            f"{PREFIX}_errors",
            "Reconcile errors by kind and class (api status code or exception type).",
            ["kind", "error"],
            registry=self.registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Time one reconcile takes: observe, plan and execute.",
            ["kind"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.objects = Gauge(
            f"{PREFIX}_objects_managed",
            "Custom resources the operator currently manages.",
            ["kind"],
            registry=self.registry,
        )
        self.api_writes = Counter(
            f"{PREFIX}_api_writes",
            "Writes to the Kubernetes API by verb and kind.",
            ["verb", "kind"],
            registry=self.registry,
        )

        self.scale_decisions = Counter(
            f"{PREFIX}_scale_decisions",
            "Autoscaling decisions by direction (up, down, none), reason and mode.",
            ["direction", "reason", "mode"],
            registry=self.registry,
        )
        self.desired_replicas = Gauge(
            f"{PREFIX}_desired_replicas",
            "Replicas the autoscaler wants (in advisory mode: would want).",
            ["namespace", "model_deployment"],
            registry=self.registry,
        )
        self.current_replicas = Gauge(
            f"{PREFIX}_current_replicas",
            "Replicas the Deployment asks for (spec.replicas) at the last decision.",
            ["namespace", "model_deployment"],
            registry=self.registry,
        )

        self.sidecar_not_injected = Gauge(
            f"{PREFIX}_sidecar_pods_not_injected",
            "Pods labelled for a sidecar-mode RoutingPolicy that run without the router "
            "sidecar (the admission webhook was unreachable when they were created).",
            ["namespace", "policy"],
            registry=self.registry,
        )

    def count_write(self, verb: str, kind: str) -> None:
        self.api_writes.labels(verb=verb, kind=kind).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
