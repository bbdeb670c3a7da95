"""The latency model and offline replay: monotone costs, capacity, determinism."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierwise.sim.latency import (
    PROFILES,
    LatencyParams,
    Profile,
    capacity,
    decode_step_seconds,
    prefill_seconds,
    request_seconds,
)
from tierwise.sim.replay import TraceRequest, replay

params_strategy = st.builds(
    LatencyParams,
    prefill_base_ms=st.floats(0, 100),
    prefill_ms_per_token=st.floats(0, 2),
    decode_ms_per_token=st.floats(0, 100),
    decode_ms_per_running=st.floats(0, 5),
)
counts = st.integers(0, 100_000)


@given(params_strategy, counts, counts)
def test_prefill_is_monotone_in_uncached_tokens(p: LatencyParams, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert prefill_seconds(p, low) <= prefill_seconds(p, high)


@given(params_strategy, st.integers(1, 2048), st.integers(1, 2048))
def test_decode_step_is_monotone_in_batch_size(p: LatencyParams, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert decode_step_seconds(p, low) <= decode_step_seconds(p, high)


@given(params_strategy, counts, st.integers(1, 500), st.integers(1, 512))
def test_request_time_grows_with_uncached_tokens_and_batch(
    p: LatencyParams, uncached: int, output: int, running: int
) -> None:
    base = request_seconds(p, uncached_tokens=uncached, output_tokens=output, running=running)
    more_prompt = request_seconds(
        p, uncached_tokens=uncached + 1, output_tokens=output, running=running
    )
    bigger_batch = request_seconds(
        p, uncached_tokens=uncached, output_tokens=output, running=running + 1
    )
    assert base <= more_prompt
    assert base <= bigger_batch


def test_zero_profile_costs_nothing() -> None:
    zero = PROFILES[Profile.ZERO]
    assert zero.is_zero
    assert request_seconds(zero, uncached_tokens=10_000, output_tokens=100, running=64) == 0
    assert math.isinf(capacity(zero).peak_decode_tokens_per_s)


def test_larger_profiles_are_slower_and_hold_less() -> None:
    small, mid, large = (PROFILES[p] for p in (Profile.SMALL, Profile.MID, Profile.LARGE))
    cost = [
        request_seconds(p, uncached_tokens=2000, output_tokens=100, running=8)
        for p in (small, mid, large)
    ]
    assert cost == sorted(cost)
    assert capacity(large).peak_decode_tokens_per_s < capacity(small).peak_decode_tokens_per_s


@pytest.mark.parametrize("field", ["prefill_ms_per_token", "decode_ms_per_token"])
def test_negative_costs_are_rejected(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        LatencyParams(**{field: -1.0})


def test_replay_second_identical_prompt_has_shorter_ttft() -> None:
    prompt = list(range(4000))
    p = LatencyParams(
        prefill_base_ms=1, prefill_ms_per_token=0.1, decode_ms_per_token=5, decode_ms_per_running=1
    )
    first, second = replay([TraceRequest(0.0, prompt, 10), TraceRequest(5.0, prompt, 10)], p)
    assert second.cached_tokens > 3900
    assert first.cached_tokens == 0
    assert second.ttft_s < first.ttft_s / 10
    assert first.latency_s == pytest.approx(0.001 + 0.4 + 9 * 0.005)


def test_replay_batches_slow_each_other_and_queue_is_bounded() -> None:
    p = LatencyParams(0, 0, 10, 5, max_running=2, max_queue=1)
    trace = [TraceRequest(0.0, [i], 5) for i in range(4)]
    results = replay(trace, p)
    assert [r.rejected for r in results] == [False, False, False, True]
    assert results[0].latency_s == pytest.approx(4 * 0.015)  # two running: 15 ms steps
    assert results[2].start_s == pytest.approx(results[0].finish_s)  # waited for a slot
    assert replay(trace, p) == results
