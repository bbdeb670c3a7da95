"""The tier router: an OpenAI-compatible data plane that sends each request to the cheapest
tier able to serve it, on the replica most likely to hold its prefix in cache.

Why it exists: this is where a multi-model deployment saves money. Pure decision code
(``tiers``, ``balance``, ``cost``, ``table``, ``features``) is kept apart from the process
that serves traffic (``server``, ``fallback``, ``upstream``, ``loadwatch``, ``metrics``,
``http``), which is started by ``tierwise router`` (:mod:`tierwise.router.cli`) and fed
tables by ``discovery`` (the policy document and ready replicas, from files or from
Kubernetes watches through the read-only client in ``kubeapi``).
"""
