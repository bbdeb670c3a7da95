"""The per-replica prefix index: binary-search match equals a linear walk; LRU bound."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.router.features import request_view
from tierwise.router.prefix_tree import PrefixIndex


def keys(text: str, size: int = 4) -> list[int]:
    return request_view("/v1/completions", {}, {"model": "m", "prompt": text}).block_hashes(size)


def linear_match(index: PrefixIndex, ks: list[int]) -> int:
    n = 0
    for k in ks:
        if k not in index:
            break
        n += 1
    return n


@pytest.mark.parametrize(
    ("inserted", "query", "blocks"),
    [
        ([], "aaaabbbb", 0),
        (["aaaabbbb"], "", 0),
        (["aaaabbbb"], "aaaabbbbcccc", 2),
        (["aaaabbbbcccc"], "aaaabbbb", 2),
        (["aaaabbbbcccc"], "aaaaxxxxcccc", 1),
        (["xxxxbbbb"], "aaaabbbb", 0),
        (["ééééüüüü"], "ééééüüüü😀😀😀😀", 2),
    ],
)
def test_match_counts_leading_cached_blocks(inserted: list[str], query: str, blocks: int) -> None:
    index = PrefixIndex(100)
    for text in inserted:
        index.insert(keys(text))
    assert index.match(keys(query)) == blocks


def test_recently_used_prefixes_survive_eviction() -> None:
    index = PrefixIndex(8)  # two generations of 4 blocks
    p1, p2, p3, p4 = (keys(t * 8) for t in "abcd")  # 2 blocks each
    for p in (p1, p2, p3):
        index.insert(p)
    index.insert(p1)  # touched again: survives the next rotation
    index.insert(p4)
    assert len(index) <= 8
    assert index.match(p1) == 2
    assert index.match(p2) == 0
    assert index.match(p3) == 2
    assert index.match(p4) == 2


def test_prompt_longer_than_half_capacity_keeps_its_head() -> None:
    index = PrefixIndex(4)
    index.insert(keys("abcdefghijklmnop"))  # 4 blocks, half capacity is 2
    assert index.match(keys("abcdefghijklmnop")) == 2
    assert len(index) == 2


def test_zero_capacity_caches_nothing() -> None:
    index = PrefixIndex(1)  # no room for a generation
    index.insert(keys("aaaabbbb"))
    assert len(index) == 0
    with pytest.raises(ValueError, match="capacity"):
        PrefixIndex(-1)


prompts = st.lists(st.text(alphabet="abé", min_size=0, max_size=40), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(inserted=prompts, queries=prompts, capacity=st.integers(1, 30))
def test_binary_search_equals_linear_walk_under_eviction(
    inserted: list[str], queries: list[str], capacity: int
) -> None:
    """Generations keep the set prefix-closed, so binary search is exact."""
    index = PrefixIndex(capacity)
    for text in inserted:
        index.insert(keys(text, 2))
        assert len(index) <= capacity
    for text in queries:
        ks = keys(text, 2)
        assert index.match(ks) == linear_match(index, ks)
