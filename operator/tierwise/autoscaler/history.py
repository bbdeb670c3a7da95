"""The little state the autoscaling policy carries from one decision to the next.

Why it exists: stabilisation windows (the highest proposal of the last five minutes wins a
scale-down), scale to zero after a quiet spell, and traffic seen between two reads all need
memory, but the policy itself is a pure function. So the memory is a value: the policy gets a
:class:`History`, returns a new one inside its decision, and the caller keeps it (in memory,
or as JSON in an annotation so an operator restart does not forget a window).

Bounded: proposals older than the longest window are dropped, a run of equal consecutive
proposals keeps only its newest entry (a window that holds the older one always holds the
newer one, so window minima and maxima are unchanged), and at most ``MAX_PROPOSALS`` stay.
Per-pod counters are kept only for the pods of the latest reading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

MAX_PROPOSALS = 256
MAX_LOADS = 128
"""Load levels kept for the trend: its span at the decision interval (32 minutes at 15 s)."""


@dataclass(frozen=True, slots=True)
class Proposal:
    at: float
    replicas: int


@dataclass(frozen=True, slots=True)
class History:
    """Recent proposals and timestamps (seconds since the epoch) for one ModelDeployment."""

    proposals: tuple[Proposal, ...] = ()
    started_at: float | None = None
    """First decision this history saw: no scale-down before a full window has passed."""
    last_scale_at: float | None = None
    last_traffic_at: float | None = None
    """Last reading with running or waiting requests, router demand or new prompt tokens."""
    prompt_tokens: tuple[tuple[str, float], ...] = ()
    """Per-pod prompt-token counter at the last reading (pod, value)."""
    loads: tuple[tuple[float, float], ...] = ()
    """(time, load level) of the readings of the trend's span with every load signal known,
    oldest first; at most ``MAX_LOADS``, emptied by a reading with a load signal unknown."""

    def record(self, proposal: Proposal, *, keep_for: float) -> History:
        """This history with ``proposal`` appended and entries outside ``keep_for`` dropped."""
        horizon = proposal.at - keep_for
        kept = [p for p in self.proposals if p.at >= horizon]
        if kept and kept[-1].replicas == proposal.replicas:
            kept.pop()
        kept.append(proposal)
        return replace(self, proposals=tuple(kept[-MAX_PROPOSALS:]))

    def with_load(self, at: float, level: float | None, *, keep_for: float = 0.0) -> History:
        """This history with the load level read at ``at`` and the readings of the last
        ``keep_for`` seconds; ``None`` (unknown) forgets them all, so a trend is never
        measured across a gap."""
        if level is None:
            return replace(self, loads=())
        kept = [(t, v) for t, v in self.loads if at - keep_for <= t < at]
        return replace(self, loads=(*kept, (at, level))[-MAX_LOADS:])

    def window(self, now: float, seconds: float) -> list[int]:
        """Proposals made in ``[now - seconds, now]``."""
        return [p.replicas for p in self.proposals if now - seconds <= p.at <= now]

    def counters(self) -> dict[str, float]:
        return dict(self.prompt_tokens)

    def to_json(self) -> str:
        """A compact JSON form, for an annotation or kopf's memo."""
        data: dict[str, Any] = {
            "proposals": [[p.at, p.replicas] for p in self.proposals],
            "startedAt": self.started_at,
            "lastScaleAt": self.last_scale_at,
            "lastTrafficAt": self.last_traffic_at,
            "promptTokens": [list(item) for item in self.prompt_tokens],
            "loads": [list(item) for item in self.loads],
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> History:
        """The history in ``text``; an empty or unreadable one starts afresh (conservative:
        a fresh history holds scale-down for a full window)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            proposals = tuple(Proposal(float(at), int(n)) for at, n in data["proposals"])
            tokens = tuple((str(pod), float(v)) for pod, v in data.get("promptTokens", []))
            loads = tuple((float(at), float(v)) for at, v in data.get("loads", []))
            return cls(
                proposals=proposals[-MAX_PROPOSALS:],
                started_at=_opt_float(data.get("startedAt")),
                last_scale_at=_opt_float(data.get("lastScaleAt")),
                last_traffic_at=_opt_float(data.get("lastTrafficAt")),
                prompt_tokens=tokens,
                loads=loads[-MAX_LOADS:],
            )
        except (ValueError, TypeError, KeyError, IndexError):
            return cls()


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
