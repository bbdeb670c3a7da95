"""``tierwise demo``: the whole product on an embedded cluster, live and as a report.

Why it is its own package: the demo is product code, the first thing a newcomer runs, not
part of the emulated cluster. It uses the cluster (:mod:`tierwise.local`) as a library,
runs the operator and the router as processes, and reads them through the Kubernetes API
and their ``/metrics`` only: an import-linter contract forbids it ``tierwise.controller``,
``tierwise.router`` and kopf. Start at :mod:`tierwise.demo.run`.
"""
