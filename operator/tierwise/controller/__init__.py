"""The ModelDeployment operator: kopf handlers around one pure reconcile.

Layout (data flows one way):

* :mod:`~tierwise.controller.resources` — where each kind lives in the API (pure data);
* :mod:`~tierwise.controller.status` — phase and conditions from observed children (pure);
* :mod:`~tierwise.controller.plan` — desired vs observed → a :class:`~.plan.Plan` (pure);
* :mod:`~tierwise.controller.kube` — the one module that talks to the Kubernetes API;
* :mod:`~tierwise.controller.execute` — performs a plan with the client;
* :mod:`~tierwise.controller.reconcile` — observe, plan, execute, with metrics;
* :mod:`~tierwise.controller.handlers` — kopf wiring; :mod:`~tierwise.controller.cli` —
  ``tierwise operator``.
"""
