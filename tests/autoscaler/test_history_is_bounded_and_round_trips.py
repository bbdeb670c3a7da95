"""The policy's memory stays small and survives a trip through JSON (annotation or memo)."""

from __future__ import annotations

import pytest

from tierwise.autoscaler.history import MAX_PROPOSALS, History, Proposal


def test_old_proposals_are_dropped_and_runs_merged() -> None:
    history = History()
    for t in range(100):
        history = history.record(Proposal(float(t), 3), keep_for=1000)
    assert history.proposals == (Proposal(99.0, 3),)
    history = history.record(Proposal(2000.0, 4), keep_for=60)
    assert history.proposals == (Proposal(2000.0, 4),)


def test_length_is_capped() -> None:
    history = History()
    for t in range(3 * MAX_PROPOSALS):
        history = history.record(Proposal(float(t), t % 2), keep_for=1e9)
    assert len(history.proposals) == MAX_PROPOSALS
    assert history.proposals[-1].at == 3 * MAX_PROPOSALS - 1


def test_merged_runs_keep_window_extremes() -> None:
    history = History()
    for t, n in [(0, 5), (10, 5), (20, 2), (30, 2), (40, 3)]:
        history = history.record(Proposal(float(t), n), keep_for=1e9)
    for start in range(0, 45, 5):
        window = history.window(40, 40 - start)
        full = [n for t, n in [(0, 5), (10, 5), (20, 2), (30, 2), (40, 3)] if t >= start]
        assert (max(window), min(window)) == (max(full), min(full))


def test_json_round_trip() -> None:
    history = History(
        proposals=(Proposal(1.5, 2), Proposal(3.0, 4)),
        started_at=0.5,
        last_scale_at=3.0,
        last_traffic_at=2.0,
        prompt_tokens=(("pod-ä", 12.0),),
    )
    assert History.from_json(history.to_json()) == history


@pytest.mark.parametrize("text", [None, "", "{", "[]", '{"proposals": [["x", 1]]}', "null"])
def test_unreadable_history_starts_afresh(text: str | None) -> None:
    assert History.from_json(text) == History()
