"""A token-block prefix cache with LRU eviction, shaped like vLLM's automatic prefix caching.

Why it exists: the cost that prefix-aware routing saves is prefill of tokens an engine has
already seen, so the simulator must remember prefixes the way real engines do.

How it works (tunables in brackets):

* A prompt is cut into full blocks of [``block_size``] tokens (default 16, vLLM's default);
  a trailing partial block is never cached, as in vLLM.
* Block *i* is keyed by a hash chained over the key of block *i-1* and its own tokens, so a
  key identifies the whole prefix up to and including that block.
* :meth:`PrefixCache.lookup` walks the chain from the first block and stops at the first
  miss; the hit is the number of tokens in the matched blocks. It counts ``queries`` (all
  prompt tokens) and ``hits`` (matched tokens), the units of vLLM's
  ``prefix_cache_queries_total`` / ``prefix_cache_hits_total``.
* At most [``capacity_blocks``] blocks are held; inserting beyond that evicts the least
  recently used block. A touched chain is refreshed leaf first, so the root ends most
  recent and leaves are evicted before the prefixes they extend (vLLM frees blocks in
  reverse order for the same reason). ``capacity_blocks=0`` disables caching.

Pure data structure: no clock, no I/O, no randomness.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_BLOCK_SIZE = 16


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Cumulative counts, in tokens, since the cache was created."""

    queries: int
    hits: int
    blocks: int
    capacity_blocks: int

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0


class PrefixCache:
    """Bounded prefix cache of token blocks (see the module docstring)."""

    def __init__(self, *, capacity_blocks: int, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        if block_size < 1:
            raise ValueError("block_size must be >= 1")
        if capacity_blocks < 0:
            raise ValueError("capacity_blocks must be >= 0")
        self.block_size = block_size
        self.capacity_blocks = capacity_blocks
        self._lru: OrderedDict[int, None] = OrderedDict()
        self._queries = 0
        self._hits = 0

    def block_keys(self, tokens: Sequence[int]) -> list[int]:
        """Chained keys of the full blocks of ``tokens``."""
        keys: list[int] = []
        parent = 0
        size = self.block_size
        for start in range(0, len(tokens) - size + 1, size):
            parent = hash((parent, tuple(tokens[start : start + size])))
            keys.append(parent)
        return keys

    def peek(self, tokens: Sequence[int]) -> int:
        """Tokens of ``tokens`` already cached, without counting or refreshing anything."""
        matched = 0
        for key in self.block_keys(tokens):
            if key not in self._lru:
                break
            matched += 1
        return matched * self.block_size

    def lookup(self, tokens: Sequence[int], *, max_hit_tokens: int | None = None) -> int:
        """Count a query for ``tokens``, refresh the matched blocks, return hit tokens.

        ``max_hit_tokens`` caps the hit: engines always recompute the last prompt token
        (its logits start decoding), so they pass ``len(tokens) - 1``.
        """
        limit = len(tokens) if max_hit_tokens is None else max(max_hit_tokens, 0)
        keys = self.block_keys(tokens[:limit])
        matched = 0
        for key in keys:
            if key not in self._lru:
                break
            matched += 1
        self._touch(keys[:matched])
        hit = matched * self.block_size
        self._queries += len(tokens)
        self._hits += hit
        return hit

    def insert(self, tokens: Sequence[int]) -> None:
        """Cache every full block of ``tokens``, evicting least recently used blocks."""
        if self.capacity_blocks == 0:
            return
        keys = self.block_keys(tokens)[: self.capacity_blocks]
        for key in keys:
            self._lru[key] = None
        self._touch(keys)
        while len(self._lru) > self.capacity_blocks:
            self._lru.popitem(last=False)

    def stats(self) -> CacheStats:
        return CacheStats(
            queries=self._queries,
            hits=self._hits,
            blocks=len(self._lru),
            capacity_blocks=self.capacity_blocks,
        )

    def __contains__(self, key: object) -> bool:
        return key in self._lru

    def __len__(self) -> int:
        return len(self._lru)

    def _touch(self, keys: Sequence[int]) -> None:
        for key in reversed(keys):
            self._lru.move_to_end(key)
