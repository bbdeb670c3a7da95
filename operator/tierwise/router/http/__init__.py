"""The router's own HTTP/1.1 layer: a server protocol and an upstream connection pool.

Why it exists: the router's added latency and CPU per request are its product. A general
web framework costs ~120 µs of CPU per proxied request (measured, see
docs/benchmarks/router_overhead.md); these two small modules parse HTTP with ``httptools``
(the C parser uvicorn uses) on ``uvloop``, keep upstream connections alive, and hand the
router plain bytes, so the hot path does only what routing needs.
"""
