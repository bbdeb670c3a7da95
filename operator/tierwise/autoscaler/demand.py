"""The router's demand signal: the metric names the operator reads to wake a parked model.

Why it exists: a ModelDeployment at zero replicas has no engine to report a queue, so the
only witness of demand is the router holding the request. The router (a separate process
that never imports Kubernetes clients) publishes it on its own ``/metrics``; the operator
scrapes the router pods directly (seconds, not a Prometheus scrape interval, stand between
a held request and the scale-up). Both sides import these names from here.

``tierwise_router_pending_requests{namespace, model_deployment}`` (gauge)
    Requests the router has accepted for the model but not yet sent to an engine: held
    while the model is at zero (bounded wait, then 503 with ``Retry-After``) or queued
    for lack of capacity. In-flight requests already at an engine are not counted (the
    engine's own queue and running gauges report them).
``tierwise_router_last_request_timestamp_seconds{namespace, model_deployment}`` (gauge)
    Unix time of the last request the router received for the model; lets the idle clock
    see a request that started and finished between two readings.

``namespace`` is the router's own (``--namespace``, else ``$POD_NAMESPACE`` from the
downward API, else ``default``): a router serves the ModelDeployments of its namespace. The
operator counts a series for a ModelDeployment when both labels match; a series without
``namespace`` (a router older than the label) matches any namespace. Behind Prometheus the
scrape's own ``namespace`` target label is the router pod's namespace too, so the two agree
(without ``honor_labels`` the router's copy becomes ``exported_namespace``).

A reachable router that exports no series for a model holds nothing for it (reads as 0);
an unreachable router makes the demand unknown unless another router reports some.
"""

from __future__ import annotations

PENDING_REQUESTS = "tierwise_router_pending_requests"
LAST_REQUEST_TIMESTAMP = "tierwise_router_last_request_timestamp_seconds"
NAMESPACE_LABEL = "namespace"
MODEL_DEPLOYMENT_LABEL = "model_deployment"
