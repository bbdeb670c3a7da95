"""A weighted consistent-hash ring whose answers are the same in every router process.

Why it exists: a per-process prefix index (:mod:`tierwise.router.prefix_tree`) learns
where *this* process sent each prompt; a second worker or router replica that receives
the next turn of the same conversation has not seen it and picks another engine, losing
the engine's prefix cache. A hash ring needs no shared state: every process that sees
the same candidate endpoints builds the same ring and maps the same key to the same
endpoint (KubeAI's CHWBL, "consistent hashing with bounded load", builds on this).

How it works (tunables in brackets, set by :class:`tierwise.router.balance.BalancerTuning`)
    * Hashes are BLAKE2b (64 bits), never Python's ``hash()``, which is salted per
      process.
    * Each endpoint owns ``max(1, round(points_per_endpoint * n * share))`` points on the
      ring, where ``share`` is its weight share (see :mod:`tierwise.router.weights`)
      [``points_per_endpoint`` 100]. Point *i* of an endpoint is the hash of
      ``"URL#i"``, so a changed share adds or removes only that endpoint's last points and
      keys elsewhere on the ring keep their endpoint.
    * :meth:`HashRing.walk` yields endpoint positions clockwise from a key's hash, each
      endpoint once: the first is the key's home, the rest are where it spills when the
      home is over its load bound or unhealthy.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterator, Sequence


def stable_hash(text: str) -> int:
    """64-bit hash of ``text``, identical in every process and on every machine."""
    data = text.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


class HashRing:
    """Points of ``len(shares)`` endpoints on a 64-bit ring (see the module docstring)."""

    __slots__ = ("_hashes", "_owners", "size")

    def __init__(self, urls: Sequence[str], shares: Sequence[float], points: int) -> None:
        if len(urls) != len(shares):
            raise ValueError("one share per url")
        n = len(urls)
        ring: list[tuple[int, int]] = []
        for idx, (url, share) in enumerate(zip(urls, shares, strict=True)):
            count = max(1, round(points * n * share))
            ring.extend((stable_hash(f"{url}#{i}"), idx) for i in range(count))
        ring.sort()
        self._hashes = [h for h, _ in ring]
        self._owners = [idx for _, idx in ring]
        self.size = n

    def walk(self, key: int) -> Iterator[int]:
        """Endpoint positions clockwise from ``key``, each once (the first is its home)."""
        hashes, owners, n = self._hashes, self._owners, self.size
        if not hashes:
            return
        start = bisect_left(hashes, key)
        total = len(hashes)
        seen: set[int] = set()
        for step in range(total):
            owner = owners[(start + step) % total]
            if owner not in seen:
                seen.add(owner)
                yield owner
                if len(seen) == n:
                    return

    def home(self, key: int) -> int:
        """The endpoint position owning ``key``."""
        return next(self.walk(key))
