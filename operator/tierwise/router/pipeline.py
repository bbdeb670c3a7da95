"""The request pipeline: parse, decide the tier, try replicas, retry and escalate, account.

:class:`Proxy` serves one generation request end to end. Why it exists: "survive a
failing or overloaded tier" is a policy with several moving parts; it lives here, in one
loop, with every error mapped to a status code in one table
(:data:`ERRORS`). The loop, per attempt:

1. A tier with no endpoints at all (a self-hosted tier scaled to zero) holds the request
   up to ``pending_wait_s`` for a table that gives it replicas (``pending_requests``
   gauge: the scale-from-zero demand signal); still none → move on (reason
   ``no_replicas``).
2. Candidates are the tier's healthy replicas not tried yet; none → move on.
3. Every candidate's scraped queue depth ≥ ``spec.fallback.overloadQueueDepth``: with
   ``onOverload: reject`` answer 429 + Retry-After, else escalate (reason ``overload``).
4. The balancer picks a replica; the request is forwarded. Failures that prove the engine
   never had the request (no connection; the connection closed before the request was
   fully written) and upstream 429/5xx (and 401/403 from an external API: the router's
   key is refused), all before anything reaches the client: try another replica of the
   tier, then, when the tier is exhausted and ``onError: escalate``, the next tier that
   accepts the prompt. At most ``spec.fallback.maxAttempts`` upstream attempts in all.
   A request the engine may have received is never sent again (it could generate, and be
   billed, twice): a connection dropped after the request was written answers 502, a
   timeout 504, both with the OpenAI error body. Streams are never retried after their
   first byte.

"Move on" means: the same tier's next replica, or the next tier when the policy allows
(``onError`` for errors and missing replicas, ``onOverload`` for overload). Each retry or
escalation that actually happens counts once in ``fallbacks_total{reason}`` and is listed
in the ``x-tierwise-fallback`` response header. No tier left → the last failure mapped
(503 + Retry-After for unavailability, 502 for a broken upstream, 504 for a timeout).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from tierwise.api.routing_policy import FallbackAction, FallbackSpec
from tierwise.router.balance import Affinity, Balancer, Choice, ReplicaLoad
from tierwise.router.classifier import Classifier
from tierwise.router.cost import ThroughputView
from tierwise.router.features import RequestView, request_view
from tierwise.router.http.client import (
    ConnectError,
    NotSentError,
    UpstreamError,
    UpstreamPool,
    UpstreamTimeoutError,
)
from tierwise.router.http.errors import ERRORS, ErrorKind, send_error
from tierwise.router.http.server import Header, Request, ResponseWriter
from tierwise.router.loadwatch import LoadBook
from tierwise.router.metrics import RouterMetrics, TierPrices
from tierwise.router.request_check import check_request
from tierwise.router.table import RoutingTable, TierEntry
from tierwise.router.tier_quality_service import QualityScorer
from tierwise.router.tiers import RoutingError, TierDecision, choose_tier
from tierwise.router.upstream import (
    Forward,
    Outcome,
    Target,
    UpstreamStatusError,
    forward,
    rewrite_body,
    wants_usage,
)


class Reason(StrEnum):
    """Why a request moved to another replica or tier (``fallbacks_total{reason}``)."""

    CONNECT_ERROR = "connect_error"
    NOT_SENT = "request_not_sent"
    DISCONNECTED = "upstream_disconnected"
    TIMEOUT = "timeout"
    UPSTREAM_5XX = "upstream_5xx"
    UPSTREAM_429 = "upstream_429"
    UPSTREAM_AUTH = "upstream_auth"
    OVERLOAD = "overload"
    UNHEALTHY = "no_healthy_replica"
    NO_REPLICAS = "no_replicas"


_UNSAFE = frozenset({Reason.DISCONNECTED, Reason.TIMEOUT})
"""The engine may have received the request: never send it again."""

# reason -> how the request fails when nothing is left to try
_FINAL: dict[Reason, ErrorKind] = {
    Reason.CONNECT_ERROR: ErrorKind.UNAVAILABLE,
    Reason.NOT_SENT: ErrorKind.BAD_GATEWAY,
    Reason.DISCONNECTED: ErrorKind.BAD_GATEWAY,
    Reason.TIMEOUT: ErrorKind.TIMEOUT,
    Reason.UPSTREAM_5XX: ErrorKind.BAD_GATEWAY,
    Reason.UPSTREAM_429: ErrorKind.OVERLOADED,
    Reason.UPSTREAM_AUTH: ErrorKind.BAD_GATEWAY,
    Reason.OVERLOAD: ErrorKind.UNAVAILABLE,
    Reason.UNHEALTHY: ErrorKind.UNAVAILABLE,
    Reason.NO_REPLICAS: ErrorKind.UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one request needs from the current table, read once per request."""

    table: RoutingTable
    loads: Mapping[str, tuple[ReplicaLoad, ...]]
    targets: Mapping[str, Target]
    balancer: Balancer
    classifier: Classifier | None = None
    quality: QualityScorer | None = None


@dataclass(slots=True)
class _Failure:
    reason: Reason
    message: str
    retry_after: str | None = None
    upstream_status: int | None = None

    def kind(self, fallback: FallbackSpec) -> ErrorKind:
        """The error the client gets when nothing is left to try."""
        if self.reason is Reason.OVERLOAD and fallback.on_overload is FallbackAction.REJECT:
            return ErrorKind.OVERLOADED
        if self.upstream_status == 503:
            return ErrorKind.UNAVAILABLE
        if self.upstream_status == 504:
            return ErrorKind.TIMEOUT
        return _FINAL[self.reason]


@dataclass(slots=True)
class _Job:
    request: Request
    writer: ResponseWriter
    view: RequestView
    body: dict[str, Any]
    decision: TierDecision
    stream: bool
    add_usage: bool
    attempts: int = 0
    tried: set[str] = field(default_factory=set)
    fallbacks: list[str] = field(default_factory=list)
    pending: list[Reason] = field(default_factory=list)
    failure: _Failure | None = None
    tier: str = ""
    backend: str = ""
    replica: str = ""
    """The replica of the last attempt (pod name, else base URL); empty before one."""
    bodies: dict[str, bytes] = field(default_factory=dict)

    def headers(self) -> list[Header]:
        out = [
            ("x-tierwise-tier", self.tier),
            ("x-tierwise-backend", self.backend),
            ("x-tierwise-rule", self.decision.rule),
        ]
        if self.replica:
            out.append(("x-tierwise-replica", self.replica))
        if self.fallbacks:
            out.append(("x-tierwise-fallback", ",".join(self.fallbacks)))
        if self.decision.quality:
            out.append(("x-tierwise-predicted-quality", self.decision.quality_header()))
        return out

    def header_lines(self) -> bytes:
        text = (
            f"x-tierwise-tier: {self.tier}\r\nx-tierwise-backend: {self.backend}\r\n"
            f"x-tierwise-rule: {self.decision.rule}\r\nx-tierwise-replica: {self.replica}\r\n"
        )
        if self.fallbacks:
            text += f"x-tierwise-fallback: {','.join(self.fallbacks)}\r\n"
        if self.decision.quality:
            text += f"x-tierwise-predicted-quality: {self.decision.quality_header()}\r\n"
        return text.encode("latin-1")


class Proxy:
    """Serves generation requests against the installed :class:`Snapshot`."""

    def __init__(
        self,
        pool: UpstreamPool,
        metrics: RouterMetrics,
        book: LoadBook,
        *,
        pending_wait_s: float = 30.0,
    ) -> None:
        self.pool = pool
        self.metrics = metrics
        self.book = book
        self.pending_wait_s = pending_wait_s
        self.throughput = ThroughputView()
        self._prices = TierPrices(self.throughput)
        self.snapshot: Snapshot | None = None
        self._loop = asyncio.get_running_loop()
        self._changed: asyncio.Future[None] = self._loop.create_future()

    def install(self, snapshot: Snapshot) -> None:
        """Use ``snapshot`` for new requests (in-flight ones keep theirs); wake waiters."""
        self.snapshot = snapshot
        self._changed.set_result(None)
        self._changed = self._loop.create_future()

    async def handle(self, request: Request, writer: ResponseWriter) -> None:
        snap = self.snapshot
        assert snap is not None
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            self._reject(request, writer, ErrorKind.BAD_REQUEST, f"Malformed JSON body: {exc}")
            return
        if not isinstance(body, dict):
            self._reject(
                request, writer, ErrorKind.BAD_REQUEST, "The request body must be a JSON object"
            )
            return
        problem = check_request(request.path, body)
        if problem is not None:
            self._reject(
                request, writer, ErrorKind.BAD_REQUEST, problem.message, param=problem.param
            )
            return
        view = request_view(request.path, request.headers, body)
        try:
            decision = await self._decide(snap, view)
        except RoutingError as exc:
            kind = ErrorKind.UNKNOWN_MODEL if exc.status == 404 else ErrorKind.BAD_REQUEST
            self._reject(request, writer, kind, str(exc), param=exc.param, code=exc.code)
            return
        stream = body.get("stream") is True
        job = _Job(
            request,
            writer,
            view,
            body,
            decision,
            stream,
            stream and not wants_usage(body),
            tier=decision.tier,
        )
        await self._run(job, snap)

    async def _decide(self, snap: Snapshot, view: RequestView) -> TierDecision:
        quality = None
        if snap.quality is not None and snap.quality.needed:
            quality = await snap.quality.scores(view.prompt_text)  # off-loop, timed out
        if snap.classifier is None:
            return choose_tier(snap.table, view, quality=quality)
        # an embedding model costs milliseconds: keep it off the event loop
        return await asyncio.to_thread(choose_tier, snap.table, view, snap.classifier, quality)

    def _reject(
        self,
        request: Request,
        writer: ResponseWriter,
        kind: ErrorKind,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        status = send_error(writer, kind, message, param=param, code=code)
        self.metrics.observe_request(
            "", "", "", status, duration_s=time.monotonic() - request.received_at
        )

    async def _run(self, job: _Job, snap: Snapshot) -> None:
        fallback = snap.table.spec.fallback
        tier: TierEntry | None = snap.table.tier(job.decision.tier)
        while tier is not None and job.attempts < fallback.max_attempts:
            job.tier = tier.name
            loads = snap.loads.get(tier.name, ())
            if not loads and not tier.absent:
                snap = await self._await_replicas(tier.name)
                tier = snap.table.tier(tier.name) if snap.table.has_tier(tier.name) else None
                if tier is not None and snap.loads.get(tier.name):
                    continue
                job.failure = _Failure(Reason.NO_REPLICAS, f"tier {job.tier!r} has no replicas")
                tier = self._next_tier(job, snap, tier, fallback.on_error)
                continue
            if not loads:  # a tier whose ModelDeployments do not exist: nothing will wake it
                job.failure = _Failure(Reason.NO_REPLICAS, f"tier {job.tier!r} has no backend")
                tier = self._next_tier(job, snap, tier, fallback.on_error)
                continue
            candidates = [c for c in loads if c.healthy and c.endpoint.url not in job.tried]
            if not candidates:
                if not any(c.endpoint.url in job.tried for c in loads):
                    job.failure = _Failure(
                        Reason.UNHEALTHY, f"tier {tier.name!r} has no healthy replica"
                    )
                tier = self._next_tier(job, snap, tier, fallback.on_error)
                continue
            if _overloaded(candidates, fallback.overload_queue_depth):
                job.failure = _Failure(Reason.OVERLOAD, f"tier {tier.name!r} is overloaded")
                if fallback.on_overload is FallbackAction.REJECT:
                    break
                tier = self._next_tier(job, snap, tier, FallbackAction.ESCALATE)
                continue
            choice = snap.balancer.choose(candidates, job.view)
            if await self._attempt(job, snap, tier, choice):
                return
            if job.failure is not None and job.failure.reason in _UNSAFE:
                break
        self._fail(job, fallback)

    def _next_tier(
        self, job: _Job, snap: Snapshot, tier: TierEntry | None, action: FallbackAction
    ) -> TierEntry | None:
        """The next tier that accepts the prompt, when ``action`` is escalate."""
        if tier is None or action is not FallbackAction.ESCALATE:
            return None
        nxt = snap.table.next_tier(tier.name)
        while (
            nxt is not None
            and nxt.max_prompt_tokens is not None
            and (job.view.prompt_tokens > nxt.max_prompt_tokens)
        ):
            nxt = snap.table.next_tier(nxt.name)
        if nxt is not None and job.failure is not None:
            job.pending.append(job.failure.reason)
        return nxt

    async def _await_replicas(self, tier: str) -> Snapshot:
        """Hold for a table that gives ``tier`` replicas, up to ``pending_wait_s``."""
        deadline = self._loop.time() + self.pending_wait_s
        held = _deployments(self.snapshot, tier)
        self._hold(held, +1)
        try:
            while True:
                snap = self.snapshot
                assert snap is not None
                remaining = deadline - self._loop.time()
                if snap.loads.get(tier) or not snap.table.has_tier(tier) or remaining <= 0:
                    return snap
                if snap.table.tier(tier).absent:  # its ModelDeployments went away meanwhile
                    return snap
                try:
                    async with asyncio.timeout(remaining):
                        await asyncio.shield(self._changed)
                except TimeoutError:
                    pass
        finally:
            self._hold(held, -1)

    def _hold(self, deployments: tuple[str, ...], step: int) -> None:
        """Count a held request in ``pending_requests`` for each ModelDeployment of its tier."""
        metrics = self.metrics
        metrics.pending += step
        now = time.time()
        for name in deployments:
            metrics.pending_by_model[name] = metrics.pending_by_model.get(name, 0) + step
            if step > 0:
                metrics.held_by_model[name] = metrics.held_by_model.get(name, 0) + 1
            metrics.last_request_at[name] = now

    async def _attempt(self, job: _Job, snap: Snapshot, tier: TierEntry, choice: Choice) -> bool:
        """One upstream attempt; True when the client got its answer."""
        replica = choice.replica
        endpoint = replica.endpoint
        if job.failure is not None:  # a retry or an escalation: count why
            for reason in job.pending or [job.failure.reason]:
                self.metrics.count_fallback(reason)
                job.fallbacks.append(reason)
            job.pending.clear()
            job.failure = None
        job.attempts += 1
        job.tried.add(endpoint.url)
        job.backend = endpoint.backend
        job.replica = endpoint.replica
        self.metrics.last_request_at[endpoint.backend] = time.time()
        body = job.bodies.get(endpoint.upstream_model)
        if body is None:
            body = job.bodies[endpoint.upstream_model] = rewrite_body(
                job.request.body, job.body, endpoint.upstream_model, add_usage=job.add_usage
            )
        fwd = Forward(
            snap.targets[endpoint.url],
            job.request.path,
            body,
            job.stream,
            job.add_usage,
            job.header_lines(),
        )
        in_flight = self.metrics.in_flight
        replica.in_flight += 1
        in_flight[tier.name] = in_flight.get(tier.name, 0) + 1
        try:
            outcome = await forward(self.pool, fwd, job.writer)
        except (UpstreamError, UpstreamStatusError) as exc:
            job.failure = self._failure(endpoint.url, exc)
            snap.balancer.record(choice, job.view, ok=False)
            return False
        finally:
            replica.in_flight -= 1
            in_flight[tier.name] -= 1
        snap.balancer.record(choice, job.view, ok=outcome.status == 200)
        self._account(job, snap, tier, choice, outcome)
        return True

    def _failure(self, url: str, exc: Exception) -> _Failure:
        if isinstance(exc, UpstreamStatusError):
            if exc.status == 429:
                return _Failure(
                    Reason.UPSTREAM_429, "the upstream is rate limiting", exc.retry_after
                )
            if exc.status in (401, 403):
                return _Failure(
                    Reason.UPSTREAM_AUTH, "the upstream API refused the router's credentials"
                )
            return _Failure(
                Reason.UPSTREAM_5XX,
                f"the upstream answered {exc.status}",
                exc.retry_after,
                exc.status,
            )
        if isinstance(exc, ConnectError):
            self.book.report_connect_failure(url)
            return _Failure(Reason.CONNECT_ERROR, "no upstream replica could be reached")
        if isinstance(exc, NotSentError):
            return _Failure(Reason.NOT_SENT, "the upstream closed the connection")
        if isinstance(exc, UpstreamTimeoutError):
            return _Failure(Reason.TIMEOUT, f"{exc}; not retried: the engine had the request")
        return _Failure(
            Reason.DISCONNECTED,
            "the upstream closed the connection after receiving the request; not retried,"
            " as the engine may have started generating",
        )

    def _fail(self, job: _Job, fallback: FallbackSpec) -> None:
        failure = job.failure or _Failure(Reason.UNHEALTHY, "no replica available")
        kind = failure.kind(fallback)
        retry_after = failure.retry_after or str(fallback.retry_after_seconds)
        message = f"{failure.message} (tier {job.tier!r}, {job.attempts} attempt(s))"
        status = send_error(
            job.writer,
            kind,
            message,
            headers=job.headers(),
            retry_after=retry_after if ERRORS[kind][0] in (429, 503) else None,
        )
        self.metrics.observe_request(
            job.tier,
            job.backend,
            job.decision.rule,
            status,
            duration_s=time.monotonic() - job.request.received_at,
        )

    def _account(
        self, job: _Job, snap: Snapshot, tier: TierEntry, choice: Choice, outcome: Outcome
    ) -> None:
        now = time.monotonic()
        metrics = self.metrics
        started = job.request.received_at
        metrics.observe_request(
            tier.name, job.backend, job.decision.rule, outcome.status, duration_s=now - started
        )
        if outcome.status != 200:
            return
        if choice.affinity is not Affinity.NONE:
            metrics.count_affinity(choice.affinity)
        if job.stream and outcome.first_byte_at is not None:
            metrics.observe_ttft(tier.name, outcome.first_byte_at - started)
        prompt = outcome.prompt_tokens
        if prompt is None:
            prompt = job.view.prompt_tokens
        completion = outcome.completion_tokens or 0
        self.throughput.add(tier.name, prompt + completion, now)
        prices = self._prices
        cost = prices.cost(tier, prompt, completion, now)
        base = prices.cost(snap.table.tiers[-1], prompt, completion, now)
        metrics.add_usage(tier.name, prompt, completion, cost=cost, baseline=base)
        for shadow in job.decision.shadow:
            if shadow.preempts and snap.table.has_tier(shadow.tier):
                would = prices.cost(snap.table.tier(shadow.tier), prompt, completion, now)
                metrics.count_shadow(shadow.rule, shadow.tier, would, actual=cost)


def _overloaded(candidates: list[ReplicaLoad], limit: int) -> bool:
    return all(c.queue_depth is not None and c.queue_depth >= limit for c in candidates)


def _deployments(snap: Snapshot | None, tier: str) -> tuple[str, ...]:
    """The ModelDeployments behind ``tier`` (what a held request is waiting for)."""
    if snap is None:
        return ()
    return tuple(
        b.model_deployment
        for t in snap.table.spec.tiers
        if t.name == tier
        for b in t.backends
        if b.model_deployment is not None
    )
