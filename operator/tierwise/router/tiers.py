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

Conditions (all set ones must hold; evaluated cheapest first, stopping at the first miss)
    ``models`` exact names; ``headers`` by lower-cased name: present / exact value /
    ``regex`` searched in the value; ``min/maxPromptTokens`` on the estimate of
    :mod:`tierwise.router.features`; ``keywords`` case-insensitive, a keyword whose edge is
    a word character must sit on a word boundary there ("def" does not match "define",
    "def " matches "def f(x)"; scripts written without spaces, from U+3000 up (CJK, kana),
    match anywhere), whitespace inside a keyword matches any run of whitespace ("stack
    trace" matches "stack\\n trace"), and the first keyword of the list that is found is
    reported; keywords are found with ``str.find`` on the case-folded prompt (C speed: about
    40 µs for four keywords over a 2k-token prompt, where one regex alternation took 2 ms);
    ``regex`` Python ``re`` searched in the prompt text, compiled once per table (its cost
    is the user's regex over the whole prompt); ``category`` the classifier's answer;
    ``minPredictedQuality`` the learned tier classifier's probability that the rule's tier
    answers well (scores computed by the caller, off the event loop; none given, as after
    a timeout, and the condition does not hold, so the policy's default decision applies).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tierwise.router.classifier import Classification, Classifier

if TYPE_CHECKING:
    from tierwise.api.routing_policy import HeaderMatch, RoutingPolicySpec, Rule
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


@dataclass(slots=True)
class _Context:
    request: RequestView
    classifier: Classifier | None
    quality: Mapping[str, float] | None = None
    _classified: bool = False
    _class: Classification | None = None

    def classification(self) -> Classification | None:
        if not self._classified:
            self._classified = True
            if self.classifier is not None:
                self._class = self.classifier.classify(self.request.prompt_text)
        return self._class


Check = Callable[[_Context], str | None]
"""A condition: the reason fragment when it holds, None when it does not."""


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    tier: str
    shadow: bool
    index: int
    checks: tuple[Check, ...]

    def evaluate(self, ctx: _Context) -> str | None:
        parts: list[str] = []
        for check in self.checks:
            part = check(ctx)
            if part is None:
                return None
            parts.append(part)
        return f"rule {self.name!r} matched " + ", ".join(parts)


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


def compile_rules(spec: RoutingPolicySpec) -> tuple[CompiledRule, ...]:
    """Rules of ``spec`` with regexes compiled (called once per table)."""
    return tuple(_compile(i, rule) for i, rule in enumerate(spec.rules))


def _compile(index: int, rule: Rule) -> CompiledRule:
    m = rule.match
    checks: list[Check] = []
    if m.models:
        checks.append(_models_check(frozenset(m.models)))
    checks.extend(_header_check(h) for h in m.headers)
    if m.min_prompt_tokens is not None or m.max_prompt_tokens is not None:
        checks.append(_tokens_check(m.min_prompt_tokens, m.max_prompt_tokens))
    if m.keywords:
        checks.append(_keywords_check(m.keywords))
    if m.regex is not None:
        checks.append(_regex_check(m.regex))
    if m.category is not None:
        checks.append(_category_check(m.category))
    if m.min_predicted_quality is not None:
        checks.append(_quality_check(rule.tier, m.min_predicted_quality))
    return CompiledRule(rule.name, rule.tier, rule.shadow, index, tuple(checks))


def _models_check(models: frozenset[str]) -> Check:
    def check(ctx: _Context) -> str | None:
        model = ctx.request.model
        return f"model {model!r}" if model in models else None

    return check


def _header_check(h: HeaderMatch) -> Check:
    name = h.name.lower()
    pattern = re.compile(h.regex) if h.regex is not None else None
    value = h.value

    def check(ctx: _Context) -> str | None:
        got = ctx.request.headers.get(name)
        if got is None:
            return None
        if value is not None:
            return f"header {name}={value!r}" if got == value else None
        if pattern is not None:
            return f"header {name}~/{pattern.pattern}/" if pattern.search(got) else None
        return f"header {name} present"

    return check


def _tokens_check(low: int | None, high: int | None) -> Check:
    def check(ctx: _Context) -> str | None:
        tokens = ctx.request.prompt_tokens
        if low is not None and tokens < low:
            return None
        if high is not None and tokens > high:
            return None
        bounds = [f">= {low}" if low is not None else "", f"<= {high}" if high is not None else ""]
        return f"prompt ~{tokens} tokens " + " and ".join(b for b in bounds if b)

    return check


def _spaced_word_char(char: str) -> bool:
    """A word character of a script that separates words with spaces (below U+3000)."""
    return ord(char) < 0x3000 and (char.isalnum() or char == "_")


@dataclass(frozen=True, slots=True)
class _Keyword:
    """One keyword, found with ``str.find`` on case-folded text (C speed, no regex scan);
    a candidate position is then checked for the whole phrase and its word boundaries."""

    keyword: str
    head: str
    phrase: re.Pattern[str]
    bound_left: bool
    bound_right: bool

    @classmethod
    def of(cls, keyword: str) -> _Keyword:
        folded = keyword.casefold()
        pieces = folded.split()
        body = r"\s+".join(re.escape(p) for p in pieces) if pieces else ""
        if folded[:1].isspace():
            body = r"\s" + body if pieces else r"\s"
        if folded[-1:].isspace() and pieces:
            body += r"\s"
        left = bool(pieces) and not folded[0].isspace() and _spaced_word_char(folded[0])
        right = bool(pieces) and not folded[-1].isspace() and _spaced_word_char(folded[-1])
        head = pieces[0] if pieces and not folded[0].isspace() else ""
        return cls(keyword, head, re.compile(body), left, right)

    def found_in(self, text: str) -> bool:
        if not self.head:  # starts with whitespace: rare, plain regex search
            return any(self._bounded(text, m) for m in self.phrase.finditer(text))
        find, phrase = text.find, self.phrase
        pos = find(self.head)
        while pos >= 0:
            m = phrase.match(text, pos)
            if m is not None and self._bounded(text, m):
                return True
            pos = find(self.head, pos + 1)
        return False

    def _bounded(self, text: str, m: re.Match[str]) -> bool:
        start, end = m.span()
        if self.bound_left and start > 0 and _is_word(text[start - 1]):
            return False
        return not (self.bound_right and end < len(text) and _is_word(text[end]))


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _keywords_check(keywords: list[str]) -> Check:
    matchers = [_Keyword.of(k) for k in keywords]

    def check(ctx: _Context) -> str | None:
        text = ctx.request.prompt_lower
        for matcher in matchers:
            if matcher.found_in(text):
                return f"keyword {matcher.keyword!r}"
        return None

    return check


def _regex_check(expression: str) -> Check:
    pattern = re.compile(expression)

    def check(ctx: _Context) -> str | None:
        found = pattern.search(ctx.request.prompt_text)
        return f"regex /{expression}/ at {found.group(0)[:40]!r}" if found else None

    return check


def _category_check(category: str) -> Check:
    def check(ctx: _Context) -> str | None:
        got = ctx.classification()
        if got is None or got.category != category:
            return None
        return f"category {category!r} (similarity {got.score:.2f})"

    return check


def _quality_check(tier: str, minimum: float) -> Check:
    def check(ctx: _Context) -> str | None:
        scores = ctx.quality
        p = scores.get(tier) if scores is not None else None
        if p is None or p < minimum:
            return None
        return f"predicted quality of {tier!r} {p:.3f} >= {minimum:.3f}"

    return check


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
    ctx = _Context(request, classifier, quality)
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
