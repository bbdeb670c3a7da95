"""An approximate per-replica prefix index over chained block hashes, bounded by LRU.

Why it exists: prefix-aware balancing sends a request to the replica most likely to hold
the longest prefix of its prompt in its KV cache. The router cannot see the engines'
caches, so it keeps its own approximation: which prompt prefixes it sent to each replica
and that replica answered.

How it works (tunables in brackets, set by :class:`tierwise.router.balance.BalancerTuning`)
    * A prompt is cut into blocks of [``block_chars``] characters; block *i*'s key is a
      hash chained over block *i-1*'s key (see ``RequestView.block_hashes``), so one key
      names a whole prefix: a flat set of keys *is* a radix tree, each key a node, its
      parent implied.
    * At most [``capacity_blocks``] keys are kept per replica, in two generations (an
      approximate LRU that costs one C-level ``dict.update`` per insert): inserting a
      prompt writes all its keys into the young generation; when they would not fit in
      half the capacity, the young generation first becomes the old one and the previous
      old generation is dropped whole. A key written within the last
      ``capacity_blocks / 2`` distinct keys written is always kept; one not written for
      ``capacity_blocks`` is always gone. That mirrors the engines (vLLM and SGLang
      evict least recently used blocks), so the index forgets roughly what they forget.
    * A prompt's keys are always written together, so every stored key's ancestors are
      stored too, in the same or a younger generation: the set is prefix-closed and the
      longest cached prefix is found by binary search over the prompt's keys:
      O(log blocks) lookups per replica, no tree walk.
    * Approximate on purpose: hash collisions (64-bit, negligible), engine evictions the
      router did not see (its capacity is a guess), and prompts that failed upstream
      (never inserted).
"""

from __future__ import annotations

from collections.abc import Sequence


class PrefixIndex:
    """One replica's cached prefixes, as chained block keys (see the module docstring)."""

    __slots__ = ("_old", "_young", "capacity_blocks")

    def __init__(self, capacity_blocks: int) -> None:
        if capacity_blocks < 0:
            raise ValueError("capacity_blocks must be >= 0")
        self.capacity_blocks = capacity_blocks
        self._young: dict[int, None] = {}
        self._old: dict[int, None] = {}

    def match(self, keys: Sequence[int]) -> int:
        """Number of leading ``keys`` (blocks) this replica holds."""
        young, old = self._young, self._old
        if not keys:
            return 0
        first = keys[0]
        if first not in young and first not in old:
            return 0
        lo, hi = 1, len(keys)  # keys[:lo] held; answer in [lo, hi]
        while lo < hi:
            mid = (lo + hi + 1) // 2
            key = keys[mid - 1]
            if key in young or key in old:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def insert(self, keys: Sequence[int]) -> None:
        """Remember ``keys`` as cached (young generation); rotate generations when full."""
        half = self.capacity_blocks // 2
        if half == 0 or not keys:
            return
        if len(keys) > half:
            keys = keys[:half]
        young = self._young
        if len(young) + len(keys) > half:
            self._old = young
            young = self._young = {}
        young.update(dict.fromkeys(keys))

    def __len__(self) -> int:
        return len(self._young.keys() | self._old.keys())

    def __contains__(self, key: object) -> bool:
        return key in self._young or key in self._old
