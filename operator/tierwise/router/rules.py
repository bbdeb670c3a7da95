"""Routing rule conditions, compiled once per table: a rule becomes a tuple of checks.

Why it exists: the routing table compiles its policy's rules when it is built (regexes,
keyword matchers), and tier selection (:mod:`tierwise.router.tiers`) evaluates them per
request. Keeping the compiled form here, apart from both, lets the table depend on it
without depending on tier selection (which reads the table). Pure: no I/O, no clock.

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

if TYPE_CHECKING:
    from tierwise.api.routing_policy import HeaderMatch, RoutingPolicySpec, Rule
    from tierwise.router.classifier import Classification, Classifier
    from tierwise.router.features import RequestView


@dataclass(slots=True)
class RuleContext:
    """What a rule's checks read for one request (the classification computed once)."""

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


Check = Callable[[RuleContext], str | None]
"""A condition: the reason fragment when it holds, None when it does not."""


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    tier: str
    shadow: bool
    index: int
    checks: tuple[Check, ...]

    def evaluate(self, ctx: RuleContext) -> str | None:
        parts: list[str] = []
        for check in self.checks:
            part = check(ctx)
            if part is None:
                return None
            parts.append(part)
        return f"rule {self.name!r} matched " + ", ".join(parts)


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
    def check(ctx: RuleContext) -> str | None:
        model = ctx.request.model
        return f"model {model!r}" if model in models else None

    return check


def _header_check(h: HeaderMatch) -> Check:
    name = h.name.lower()
    pattern = re.compile(h.regex) if h.regex is not None else None
    value = h.value

    def check(ctx: RuleContext) -> str | None:
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
    def check(ctx: RuleContext) -> str | None:
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

    def check(ctx: RuleContext) -> str | None:
        text = ctx.request.prompt_lower
        for matcher in matchers:
            if matcher.found_in(text):
                return f"keyword {matcher.keyword!r}"
        return None

    return check


def _regex_check(expression: str) -> Check:
    pattern = re.compile(expression)

    def check(ctx: RuleContext) -> str | None:
        found = pattern.search(ctx.request.prompt_text)
        return f"regex /{expression}/ at {found.group(0)[:40]!r}" if found else None

    return check


def _category_check(category: str) -> Check:
    def check(ctx: RuleContext) -> str | None:
        got = ctx.classification()
        if got is None or got.category != category:
            return None
        return f"category {category!r} (similarity {got.score:.2f})"

    return check


def _quality_check(tier: str, minimum: float) -> Check:
    def check(ctx: RuleContext) -> str | None:
        scores = ctx.quality
        p = scores.get(tier) if scores is not None else None
        if p is None or p < minimum:
            return None
        return f"predicted quality of {tier!r} {p:.3f} >= {minimum:.3f}"

    return check
