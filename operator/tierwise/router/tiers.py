"""Tier selection: request features in, tier + rule + human-readable reason out.

Why it exists: picking the cheapest tier that can serve a request is where the money is
saved, and every decision must be explainable (``x-tierwise-rule``, ``tierwise route
explain``). Pure: no I/O, no clock; the classifier is passed in.

Semantics
    * The requested ``model`` must be a policy alias (``spec.models``, or a model a rule
      names); then rules decide. With ``spec.allowTierPinning`` a tier's name as ``model``
      pins the request to that tier (rule ``model-pin``); without it a tier name is an
      unknown model like any other. Anything else raises :class:`UnknownModelError`,
      listing the names a client may send (tier names only when pinning is allowed).
    * Rules are tried in order; the first non-shadow rule whose conditions all hold wins;
      none → ``spec.defaultTier`` (rule ``default``).
    * Shadow rules are evaluated for every request and reported in
      :attr:`TierDecision.shadow` with ``preempts`` true when, were the rule enforced, it
      would have decided this request (it matched and sits before the winning rule).
    * A tier's ``maxPromptTokens`` escalates an over-long prompt to the next tier that
      accepts it; none accepts → :class:`PromptTooLongError`.

Conditions are :mod:`tierwise.router.rules` (compiled once per table).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tierwise.router.rules import CompiledRule, RuleContext

if TYPE_CHECKING:
    from tierwise.router.classifier import Classifier
    from tierwise.router.features import RequestView
    from tierwise.router.table import RoutingTable, TierEntry

RULE_DEFAULT = "default"
RULE_MODEL_PIN = "model-pin"


class RoutingError(Exception):
    """A request no tier can take; carries an OpenAI-style error."""

    status = 400
    code = "invalid_request_error"
    param: str | None = None


class UnknownModelError(RoutingError):
    status = 404
    code = "model_not_found"
    param = "model"

    def __init__(self, model: str, known: list[str]) -> None:
        self.model = model
        shown = ", ".join(known)
        if model:
            text = f"The model {model!r} does not exist here; use one of: {shown}"
        else:
            text = f"The request has no model; set model to one of: {shown}"
        super().__init__(text)


UnknownModel = UnknownModelError  # the contract's name


class PromptTooLongError(RoutingError):
    code = "context_length_exceeded"
    param = "messages"

    def __init__(self, tokens: int, tier: str, limit: int) -> None:
        self.tokens = tokens
        super().__init__(
            f"The prompt is about {tokens} tokens; no tier accepts it (the last that "
            f"could, {tier!r}, accepts at most {limit}). Shorten the prompt."
        )


PromptTooLong = PromptTooLongError  # the contract's name


@dataclass(frozen=True, slots=True)
class ShadowDecision:
    rule: str
    tier: str
    reason: str
    preempts: bool
    """True when enforcing this rule would have decided the request (changed or not)."""


@dataclass(frozen=True, slots=True)
class TierDecision:
    tier: str
    rule: str
    reason: str
    shadow: tuple[ShadowDecision, ...] = ()
    escalated_from: str | None = None
    """The tier the rule picked when maxPromptTokens moved the request on."""
    quality: tuple[tuple[str, float], ...] = ()
    """Predicted probability that each cheaper tier answers well, when computed."""

    def quality_header(self) -> str:
        """``x-tierwise-predicted-quality`` value: ``small=0.81,mid=0.93`` (or empty)."""
        return ",".join(f"{tier}={p:.3f}" for tier, p in self.quality)


def uses_quality(table: RoutingTable) -> bool:
    """Whether some rule reads the learned tier classifier's scores."""
    return any(r.match.min_predicted_quality is not None for r in table.spec.rules)


def choose_tier(
    table: RoutingTable,
    request: RequestView,
    classifier: Classifier | None = None,
    quality: Mapping[str, float] | None = None,
) -> TierDecision:
    """The tier for ``request`` (see the module docstring); raises :class:`RoutingError`.

    ``quality``: the learned tier classifier's scores for this prompt, or None."""
    ctx = RuleContext(request, classifier, quality)
    pinned = _pinned_tier(table, request.model)
    winner: CompiledRule | None = None
    reason = ""
    shadows: list[tuple[CompiledRule, str]] = []
    for rule in table.rules:
        if winner is not None and not rule.shadow:
            continue
        if pinned is not None and not rule.shadow:
            continue
        matched = rule.evaluate(ctx)
        if matched is None:
            continue
        if rule.shadow:
            shadows.append((rule, matched))
        else:
            winner, reason = rule, matched
    if pinned is not None:
        tier, rule_name = pinned, RULE_MODEL_PIN
        reason = f"model {request.model!r} names tier {pinned!r}"
    elif winner is not None:
        tier, rule_name = winner.tier, winner.name
    else:
        tier, rule_name = table.default_tier, RULE_DEFAULT
        reason = f"no rule matched; defaultTier {tier!r}"
    final, note = _fit(table, tier, request)
    decision_shadow = tuple(_shadow(table, r, why, winner, pinned, request) for r, why in shadows)
    return TierDecision(
        final,
        rule_name,
        reason + note,
        decision_shadow,
        tier if final != tier else None,
        tuple(quality.items()) if quality else (),
    )


def _pinned_tier(table: RoutingTable, model: str) -> str | None:
    if model in table.aliases:
        return None
    pinning = table.spec.allow_tier_pinning
    if pinning and table.has_tier(model):
        return model
    tiers = [t.name for t in table.tiers] if pinning else []
    raise UnknownModelError(model, sorted(table.aliases) + tiers)


def _fit(table: RoutingTable, tier: str, request: RequestView) -> tuple[str, str]:
    """Escalate past tiers whose maxPromptTokens the prompt exceeds."""
    entry: TierEntry | None = table.tier(tier)
    last = entry
    while entry is not None:
        limit = entry.max_prompt_tokens
        if limit is None or request.prompt_tokens <= limit:
            if entry.name == tier:
                return tier, ""
            return entry.name, (
                f"; prompt ~{request.prompt_tokens} tokens exceeds maxPromptTokens of "
                f"{tier!r}, escalated to {entry.name!r}"
            )
        last = entry
        entry = table.next_tier(entry.name)
    assert last is not None
    assert last.max_prompt_tokens is not None
    raise PromptTooLongError(request.prompt_tokens, last.name, last.max_prompt_tokens)


def _shadow(
    table: RoutingTable,
    rule: CompiledRule,
    reason: str,
    winner: CompiledRule | None,
    pinned: str | None,
    request: RequestView,
) -> ShadowDecision:
    preempts = pinned is None and (winner is None or rule.index < winner.index)
    try:
        tier, note = _fit(table, rule.tier, request)
    except PromptTooLongError as exc:
        return ShadowDecision(rule.name, rule.tier, f"{reason}; {exc}", preempts)
    return ShadowDecision(rule.name, tier, reason + note, preempts)
