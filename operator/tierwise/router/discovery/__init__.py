"""Where a router's routing table comes from: a policy document and ready replicas.

Why it exists: the router builds every table the same way from two inputs; this package
holds the sources of both (:mod:`.sources` the interfaces, :mod:`.files` file-backed ones,
:mod:`.kubernetes` API-backed ones over :mod:`tierwise.router.kubeapi` and :mod:`.reflector`,
:mod:`.slices` the pure EndpointSlice mapping) and :mod:`.live`, which turns them into
tables as they change. Nothing here imports kopf or the ``kubernetes`` package.
"""
