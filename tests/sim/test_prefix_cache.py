"""The prefix cache: hit accounting, LRU eviction under capacity, determinism."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.sim.prefix_cache import PrefixCache

token_lists = st.lists(st.integers(0, 50), max_size=80)


@given(st.lists(token_lists, max_size=20), st.integers(0, 12), st.integers(1, 8))
def test_hits_never_exceed_queries_and_are_whole_blocks(
    prompts: list[list[int]], capacity: int, block: int
) -> None:
    cache = PrefixCache(capacity_blocks=capacity, block_size=block)
    queried = 0
    for prompt in prompts:
        hit = cache.lookup(prompt)
        queried += len(prompt)
        assert hit % block == 0
        assert 0 <= hit <= len(prompt)
        cache.insert(prompt)
        assert len(cache) <= capacity
    stats = cache.stats()
    assert stats.queries == queried
    assert 0 <= stats.hits <= stats.queries


@given(token_lists, st.integers(1, 8))
def test_a_repeated_prompt_hits_all_its_full_blocks(prompt: list[int], block: int) -> None:
    cache = PrefixCache(capacity_blocks=1000, block_size=block)
    assert cache.lookup(prompt) == 0
    cache.insert(prompt)
    assert cache.lookup(prompt) == len(prompt) // block * block
    capped = max(len(prompt) - 1, 0) // block * block
    assert cache.lookup(prompt, max_hit_tokens=len(prompt) - 1) == capped


def test_a_shared_prefix_hits_only_up_to_the_first_differing_block() -> None:
    cache = PrefixCache(capacity_blocks=100, block_size=4)
    cache.insert(list(range(12)))
    assert cache.lookup([0, 1, 2, 3, 4, 5, 6, 7, 99, 9, 10, 11]) == 8
    assert cache.lookup([99, *range(1, 12)]) == 0


def test_least_recently_used_prefix_is_evicted_first() -> None:
    cache = PrefixCache(capacity_blocks=4, block_size=2)
    old, new = [1, 1, 2, 2], [3, 3, 4, 4]
    cache.insert(old)
    cache.insert(new)
    cache.lookup(old)  # old becomes most recent
    cache.insert([5, 5, 6, 6])  # needs two blocks: new's go
    assert cache.peek(old) == 4
    assert cache.peek(new) == 0
    assert len(cache) == 4


def test_leaves_are_evicted_before_the_prefix_they_extend() -> None:
    cache = PrefixCache(capacity_blocks=3, block_size=1)
    cache.insert([1, 2, 3])
    cache.insert([9])  # one block over capacity: the deepest block of [1, 2, 3] goes
    assert cache.peek([1, 2, 3]) == 2


@settings(max_examples=30)
@given(st.lists(token_lists, max_size=15), st.integers(0, 10))
def test_same_operations_give_same_state(prompts: list[list[int]], capacity: int) -> None:
    def run() -> tuple[list[int], object]:
        cache = PrefixCache(capacity_blocks=capacity, block_size=4)
        hits = []
        for prompt in prompts:
            hits.append(cache.lookup(prompt))
            cache.insert(prompt)
        return hits, cache.stats()

    assert run() == run()


def test_zero_capacity_disables_caching() -> None:
    cache = PrefixCache(capacity_blocks=0, block_size=2)
    cache.insert([1, 2, 3, 4])
    assert cache.lookup([1, 2, 3, 4]) == 0


@pytest.mark.parametrize(("capacity", "block"), [(-1, 16), (10, 0)])
def test_invalid_sizes_are_rejected(capacity: int, block: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        PrefixCache(capacity_blocks=capacity, block_size=block)
