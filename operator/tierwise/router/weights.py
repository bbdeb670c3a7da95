"""Backend weights turned into per-endpoint traffic shares, and a smooth weighted rotation.

Why it exists: ``Backend.weight`` in a RoutingPolicy is a backend's relative share of its
tier's traffic (a 9:1 canary, an external API taking a tenth). Balancers choose among
*endpoints* (replicas), so the weight is split: an endpoint's share is its backend's
weight divided by the number of that backend's endpoints among the candidates, normalised
so the shares add up to 1. A backend scaled from one replica to three keeps its share;
each of its replicas then takes a third of it.

The fast path matters: with one backend per tier (the common case) every share is equal
and :func:`shares` returns ``None``, so the balancers keep their unweighted code.

:class:`SmoothRotation` is nginx's smooth weighted round-robin: every pick adds each
candidate's share to its running credit, picks the largest credit and subtracts the total
from it; over any window picks follow the shares and heavy endpoints are interleaved,
not bunched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tierwise.router.table import Endpoint


class HasEndpoint(Protocol):
    @property
    def endpoint(self) -> Endpoint: ...


def shares(replicas: Sequence[HasEndpoint]) -> list[float] | None:
    """Each replica's share of the traffic (sums to 1), or None when all are equal."""
    if len(replicas) < 2:
        return None
    first = replicas[0].endpoint.backend
    for r in replicas:  # the hot path: one backend, a plain loop is the cheapest check
        if r.endpoint.backend != first:
            break
    else:
        return None
    endpoints = [r.endpoint for r in replicas]
    count: dict[str, int] = {}
    for e in endpoints:
        count[e.backend] = count.get(e.backend, 0) + 1
    raw = [e.weight / count[e.backend] for e in endpoints]
    if max(raw) == min(raw):
        return None
    total = sum(raw)
    return [r / total for r in raw]


class SmoothRotation:
    """Smooth weighted round-robin over URLs (see the module docstring); bounded state."""

    __slots__ = ("_credit",)

    def __init__(self) -> None:
        self._credit: dict[str, float] = {}

    def pick(self, urls: Sequence[str], weights: Sequence[float]) -> int:
        """Position in ``urls`` of the next pick."""
        credit = self._credit
        total = 0.0
        best, best_credit = 0, float("-inf")
        for i, (url, w) in enumerate(zip(urls, weights, strict=True)):
            c = credit.get(url, 0.0) + w
            credit[url] = c
            total += w
            if c > best_credit:
                best, best_credit = i, c
        credit[urls[best]] = best_credit - total
        if len(credit) > 4 * len(urls) + 64:  # endpoints that left: forget them
            keep = set(urls)
            for url in [u for u in credit if u not in keep]:
                del credit[url]
        return best
