"""The embedded cluster: an emulated Kubernetes API plus a small pod runner.

Tests, benchmarks and ``tierwise demo`` need the real operator code path —
kopf, watches, server-side apply, status — without a cluster. This package
extends kmock's Kubernetes emulator until kopf and the ``kubernetes`` client
work against it (:mod:`.emulator`), runs it on localhost (:mod:`.cluster`),
plays the Deployment controller with pluggable pod backends (:mod:`.workloads`,
:mod:`.processes`, :mod:`.sim_workloads`), kubelet's part (graceful termination in
:mod:`.termination`; Tierwise's own pods as processes with their volumes in
:mod:`.kubelet`), the EndpointSlice controller (:mod:`.endpointslice_controller`) and
kube-proxy (:mod:`.serviceproxy`), and runs kopf operators against it
(:mod:`.kopf_runner`).
What it does not emulate is listed in ``docs/local-cluster.md``.
"""

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.emulator import EmulatedApiServer

__all__ = ["EmulatedApiServer", "EmulatedCluster"]
