"""The live simulated engine: admission, queueing, prefill and decode in real time.

Why it exists: the HTTP layer needs something that *behaves* like an engine under load.
This class holds one replica's state (waiting queue, running batch, prefix cache, KV
occupancy, injected faults) and sleeps the latency model of ``latency`` exactly as
``replay`` adds it up offline: admission into at most ``max_running`` slots from a
bounded FIFO queue, prefill of uncached tokens, then one decode step per further token at
the current batch size. It knows nothing about HTTP.
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from array import array
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tierwise.sim.config import FaultConfig, SimConfig
from tierwise.sim.latency import decode_step_seconds, prefill_seconds
from tierwise.sim.metrics import EngineMetrics
from tierwise.sim.prefix_cache import PrefixCache

# Output words are at most four letters, so each is exactly one simulated token.
_WORDS = (
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "it",
    "that",
    "for",
    "on",
    "with",
    "as",
    "was",
    "at",
    "by",
    "this",
    "from",
    "or",
    "be",
    "are",
    "but",
    "not",
    "have",
    "one",
    "all",
    "can",
    "will",
    "more",
    "when",
    "each",
    "word",
    "time",
    "data",
    "node",
    "pod",
)


class QueueFullError(Exception):
    """The waiting queue is at ``max_queue``: the request is refused (HTTP 503)."""


class InjectedFaultError(Exception):
    """A fault-injected failure with the HTTP status to answer."""

    def __init__(self, status: int) -> None:
        super().__init__(f"injected fault: HTTP {status}")
        self.status = status


@dataclass
class Generation:
    """One admitted request's plan and, as it runs, its accounting."""

    prompt_tokens: list[int]
    output_tokens: int
    finish_reason: str
    seed: int
    cached_tokens: int = 0
    completion_tokens: int = 0
    arrival: float = 0.0


class Engine:
    """One simulated replica (see the module docstring)."""

    def __init__(self, config: SimConfig, metrics: EngineMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.cache = PrefixCache(
            capacity_blocks=config.cache_capacity_blocks, block_size=config.block_size
        )
        self.faults = config.faults
        self.running = 0
        self.kv_used_tokens = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._fault_rng = random.Random(config.seed)
        self._faults_changed = asyncio.Event()
        self._publish()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the injected faults; requests hanging on the old ones are released."""
        self.faults = faults
        self._faults_changed.set()
        self._faults_changed = asyncio.Event()

    async def apply_faults(self) -> None:
        """Delay, hang or fail a generation request as the injected faults say."""
        faults = self.faults
        if faults.extra_latency_s:
            await asyncio.sleep(faults.extra_latency_s)
        if faults.hang:
            await self._faults_changed.wait()
        if faults.error_rate and self._fault_rng.random() < faults.error_rate:
            raise InjectedFaultError(faults.error_status)

    def plan(
        self, prompt_tokens: list[int], *, max_tokens: int | None, ignore_eos: bool
    ) -> Generation:
        """Decide the reply length deterministically from the seed and the prompt.

        The reply ends where the model "would" emit end-of-sequence (a length drawn from
        ``output_tokens_min..max``), earlier at ``max_tokens``, or exactly at ``max_tokens``
        with ``ignore_eos``; never past the context length.
        """
        seed = zlib.crc32(array("I", prompt_tokens).tobytes(), self.config.seed & 0xFFFFFFFF)
        room = max(self.config.context_length - len(prompt_tokens), 1)
        natural = random.Random(seed).randint(
            self.config.output_tokens_min, self.config.output_tokens_max
        )
        if ignore_eos and max_tokens is not None:
            natural = max_tokens + 1  # no end-of-sequence before the limit
        limit = min(max_tokens if max_tokens is not None else room, room)
        length = min(natural, limit)
        reason = "length" if length < natural else "stop"
        return Generation(prompt_tokens, length, reason, seed)

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Hold one batch slot, queueing FIFO for it; raise :class:`QueueFullError` at once."""
        if self.running >= self.config.latency.max_running:
            if len(self._waiting) >= self.config.latency.max_queue:
                raise QueueFullError
            ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append(ticket)
            self._publish()
            try:
                await ticket
            except asyncio.CancelledError:
                self._drop_ticket(ticket)
                raise
        else:
            self.running += 1
        self._publish()
        try:
            yield
        finally:
            self._release()

    def _drop_ticket(self, ticket: asyncio.Future[None]) -> None:
        if ticket in self._waiting:
            self._waiting.remove(ticket)
        elif ticket.done() and not ticket.cancelled():
            self._release()  # the slot was handed over just as we were cancelled
        self._publish()

    def _release(self) -> None:
        while self._waiting:
            ticket = self._waiting.popleft()
            if not ticket.done():
                ticket.set_result(None)  # hand the slot over; running stays the same
                self._publish()
                return
        self.running -= 1
        self._publish()

    async def run(self, gen: Generation) -> AsyncGenerator[str, None]:
        """Prefill then decode ``gen`` inside an admitted slot, yielding each token's text."""
        params = self.config.latency
        prompt = gen.prompt_tokens
        gen.cached_tokens = self.cache.lookup(prompt, max_hit_tokens=len(prompt) - 1)
        self._occupy(len(prompt))
        try:
            await _sleep(prefill_seconds(params, len(prompt) - gen.cached_tokens))
            self.cache.insert(prompt)
            self.metrics.record_prefill(prompt_tokens=len(prompt), cached_tokens=gen.cached_tokens)
            self.metrics.record_first_token(time.monotonic() - gen.arrival)
            rng = random.Random(gen.seed)
            for index in range(gen.output_tokens):
                if index:
                    await _sleep(decode_step_seconds(params, self.running))
                word = rng.choice(_WORDS)
                gen.completion_tokens += 1
                self._occupy(1)
                self.metrics.record_generated(1)
                yield word if index == 0 else " " + word
            self.metrics.record_finished(
                e2e_s=time.monotonic() - gen.arrival, finish_reason=gen.finish_reason
            )
        finally:
            self._occupy(-(len(prompt) + gen.completion_tokens))

    def _occupy(self, tokens: int) -> None:
        self.kv_used_tokens += tokens
        self._publish()

    def _publish(self) -> None:
        self.metrics.set_load(
            waiting=len(self._waiting),
            running=self.running,
            kv_used_tokens=self.kv_used_tokens,
            kv_capacity_tokens=self.config.latency.kv_capacity_tokens,
        )


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)
