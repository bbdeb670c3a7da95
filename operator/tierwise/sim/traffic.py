"""Deterministic workloads for the simulator, the router and benchmarks.

Why it exists: every layer is judged on the same traffic, so a workload is a pure function
of its name, size and seed: :func:`generate` returns the same request list every time.

Workloads:

``chat``     single-turn chats: one of a few short system prompts, a user question.
``agentic``  multi-turn sessions: every session starts from one of a few long shared system
             prompts plus the same tool definitions, then grows turn by turn (assistant
             tool call, tool result, next request carries the whole history). This is the
             shape where prefix-aware routing pays.
``burst``    single-turn chats arriving in bursts (``burst_size`` at once every
             ``burst_interval_s``), to exercise queueing and autoscaling.

Requests of one session must be sent in ``turn`` order, each after the previous answered;
``arrival_s`` is the earliest send time relative to the start of the run.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]


class Workload(enum.StrEnum):
    CHAT = "chat"
    AGENTIC = "agentic"
    BURST = "burst"


@dataclass(frozen=True, slots=True)
class TrafficShape:
    """Tunables of the workloads (word counts are ~1.3 simulated tokens each)."""

    output_tokens: tuple[int, int] = (16, 128)
    chat_system_prompts: int = 3
    chat_user_words: tuple[int, int] = (20, 200)
    agentic_system_prompts: int = 2
    agentic_system_words: int = 1500
    agentic_tools: int = 6
    agentic_turns: tuple[int, int] = (3, 8)
    agentic_tool_result_words: tuple[int, int] = (40, 300)
    burst_size: int = 20
    burst_interval_s: float = 1.0


@dataclass(frozen=True, slots=True)
class Request:
    """One chat request of a workload."""

    id: str
    session_id: str
    turn: int
    messages: tuple[Message, ...]
    max_tokens: int
    arrival_s: float = 0.0
    tools: tuple[dict[str, Any], ...] = field(default=())

    def body(self, model: str, *, stream: bool = True) -> dict[str, Any]:
        """The ``/v1/chat/completions`` body (fixed output length via ``ignore_eos``)."""
        body: dict[str, Any] = {
            "model": model,
            "messages": list(self.messages),
            "max_tokens": self.max_tokens,
            "ignore_eos": True,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        if self.tools:
            body["tools"] = list(self.tools)
        return body


def _lexicon() -> list[str]:
    rng = random.Random(0xC0FFEE)  # fixed: the vocabulary is the same for every seed
    syllables = ["ka", "lo", "mi", "ta", "ne", "ru", "so", "vi", "de", "pa", "xo", "li"]
    return ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(800)]


_LEXICON = _lexicon()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(_LEXICON, k=words)) + "."


def _tools(count: int) -> tuple[dict[str, Any], ...]:
    rng = random.Random(0x7001)
    return tuple(
        {
            "type": "function",
            "function": {
                "name": f"tool_{i}",
                "description": _text(rng, 40),
                "parameters": {"type": "object", "properties": {"arg": {"type": "string"}}},
            },
        }
        for i in range(count)
    )


def generate(
    workload: Workload | str, n: int, seed: int, *, shape: TrafficShape | None = None
) -> list[Request]:
    """``n`` requests of ``workload``, identical for identical arguments."""
    shape = shape or TrafficShape()
    rng = random.Random(seed)
    if n <= 0:
        return []
    match Workload(workload):
        case Workload.CHAT:
            return [_chat(rng, shape, i) for i in range(n)]
        case Workload.BURST:
            reqs = [_chat(rng, shape, i) for i in range(n)]
            return [
                _at(r, (i // max(shape.burst_size, 1)) * shape.burst_interval_s)
                for i, r in enumerate(reqs)
            ]
        case Workload.AGENTIC:
            return _agentic(rng, shape, n)


def _at(request: Request, arrival_s: float) -> Request:
    return Request(
        request.id,
        request.session_id,
        request.turn,
        request.messages,
        request.max_tokens,
        arrival_s,
        request.tools,
    )


def _chat(rng: random.Random, shape: TrafficShape, i: int) -> Request:
    system_rng = random.Random(1000 + rng.randrange(shape.chat_system_prompts))
    messages = (
        {"role": "system", "content": "You are a helpful assistant. " + _text(system_rng, 60)},
        {"role": "user", "content": _text(rng, rng.randint(*shape.chat_user_words))},
    )
    return Request(f"chat-{i}", f"chat-{i}", 0, messages, rng.randint(*shape.output_tokens))


def _agentic(rng: random.Random, shape: TrafficShape, n: int) -> list[Request]:
    tools = _tools(shape.agentic_tools)
    systems = [
        _text(random.Random(2000 + k), shape.agentic_system_words)
        for k in range(shape.agentic_system_prompts)
    ]
    sessions: list[list[Request]] = []
    total = 0
    while total < n:
        sid = f"agent-{len(sessions)}"
        history: list[Message] = [
            {"role": "system", "content": rng.choice(systems)},
            {"role": "user", "content": "Task: " + _text(rng, rng.randint(20, 80))},
        ]
        turns = min(rng.randint(*shape.agentic_turns), n - total)
        session: list[Request] = []
        for turn in range(turns):
            session.append(
                Request(
                    f"{sid}-t{turn}",
                    sid,
                    turn,
                    tuple(history),
                    rng.randint(*shape.output_tokens),
                    tools=tools,
                )
            )
            # A well-formed OpenAI tool round trip: strict peers (sglang-router) reject a
            # tool message whose tool_call_id answers no call.
            tool = f"tool_{rng.randrange(max(len(tools), 1))}"
            call_id = f"call_{sid}_{turn}"
            history.append(
                {
                    "role": "assistant",
                    "content": f"call {tool}",
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": tool, "arguments": "{}"},
                        }
                    ],
                }
            )
            history.append(
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": _text(rng, rng.randint(*shape.agentic_tool_result_words)),
                }
            )
        sessions.append(session)
        total += turns
    # Interleave sessions turn by turn, the order in which they would arrive.
    depth = max(len(s) for s in sessions)
    return [s[t] for t in range(depth) for s in sessions if t < len(s)]
