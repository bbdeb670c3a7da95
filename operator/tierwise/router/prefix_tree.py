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
    * Inserting a prompt adds all its keys and refreshes them leaf first, so a prefix is
      always at least as recent as any longer prompt extending it.
    * At most [``capacity_blocks``] keys are kept per replica; the least recently used key
      goes first. That mirrors the engines (vLLM and SGLang evict least recently used
      blocks, leaves before the prefixes they extend), so the index forgets roughly what
      the engine forgets.
    * Because every stored key's ancestors are stored too (they are never older), the set
      is prefix-closed and the longest cached prefix is found by binary search over the
      prompt's keys: O(log blocks) set lookups per replica, no tree walk.
    * Approximate on purpose: hash collisions (64-bit, negligible), engine evictions the
      router did not see (its capacity is a guess), and prompts that failed upstream
      (never inserted).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence


class PrefixIndex:
    """One replica's cached prefixes, as chained block keys (see the module docstring)."""

    __slots__ = ("_lru", "capacity_blocks")

    def __init__(self, capacity_blocks: int) -> None:
        if capacity_blocks < 0:
            raise ValueError("capacity_blocks must be >= 0")
        self.capacity_blocks = capacity_blocks
        self._lru: OrderedDict[int, None] = OrderedDict()

    def match(self, keys: Sequence[int]) -> int:
        """Number of leading ``keys`` (blocks) this replica holds."""
        lru = self._lru
        if not keys or keys[0] not in lru:
            return 0
        lo, hi = 1, len(keys)  # keys[:lo] held; answer in [lo, hi]
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if keys[mid - 1] in lru:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def insert(self, keys: Sequence[int]) -> None:
        """Remember ``keys`` as cached, refreshing them leaf first; evict beyond capacity."""
        cap = self.capacity_blocks
        if cap == 0 or not keys:
            return
        if len(keys) > cap:
            keys = keys[:cap]
        lru = self._lru
        move = lru.move_to_end
        for key in reversed(keys):
            if key in lru:
                move(key)
            else:
                lru[key] = None
        # reversed() leaves the root most recent: the prefix outlives its extensions.
        excess = len(lru) - cap
        for _ in range(excess):
            lru.popitem(last=False)

    def __len__(self) -> int:
        return len(self._lru)

    def __contains__(self, key: object) -> bool:
        return key in self._lru
