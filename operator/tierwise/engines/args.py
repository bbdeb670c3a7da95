"""Engine command lines as ordered flag groups, so user args override rather than duplicate.

``spec.engine.args`` is appended after the flags Tierwise sets. Appending alone would leave
two ``--max-model-len`` flags on the line: argparse keeps the last ``store`` value, but
flags with ``nargs="+"`` or ``append`` actions would silently combine, and a reviewer of
the rendered manifest cannot tell which one wins. So both lists are split into *groups* (a
flag and the values that follow it) keyed by a canonical flag name; a user group replaces
every default group with the same key, and user groups keep their order at the end.

Canonical names: ``--max_model_len`` and ``--max-model-len`` are one flag (vLLM accepts
both spellings), engine-specific aliases map to one name (``--tp-size`` -> ``--tp``), and
for engines with ``argparse.BooleanOptionalAction`` flags ``--no-X`` is the same setting as
``--X``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FlagGroup:
    """One flag with its values (or one positional argument) as written."""

    key: str
    """Canonical flag name, or ``#N`` for the N-th positional token (never overridden)."""
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class FlagSyntax:
    """How an engine spells its flags: aliases and boolean negation."""

    aliases: Mapping[str, str]
    """Alternative spelling -> canonical spelling, both with leading dashes."""
    negation_prefix: str | None = None
    """``--no-`` for engines whose booleans are ``argparse.BooleanOptionalAction``."""

    def canonical(self, flag: str) -> str:
        name = flag.split("=", 1)[0]
        if name.startswith("--"):
            name = "--" + name[2:].replace("_", "-")
        name = self.aliases.get(name, name)
        prefix = self.negation_prefix
        if prefix and name.startswith(prefix) and len(name) > len(prefix):
            name = self.aliases.get("--" + name[len(prefix) :], "--" + name[len(prefix) :])
        return name


def is_flag(token: str) -> bool:
    """``-x``/``--x`` are flags; ``-1`` or ``-0.5`` are (negative number) values."""
    if len(token) < 2 or not token.startswith("-"):
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False


def split_groups(tokens: Iterable[str], syntax: FlagSyntax) -> list[FlagGroup]:
    """Group ``tokens``: a flag takes the non-flag tokens after it (``--a=1`` takes none)."""
    groups: list[FlagGroup] = []
    open_flag = False
    for position, token in enumerate(tokens):
        if is_flag(token):
            groups.append(FlagGroup(syntax.canonical(token), (token,)))
            open_flag = "=" not in token
        elif open_flag:
            last = groups[-1]
            groups[-1] = FlagGroup(last.key, (*last.tokens, token))
        else:
            groups.append(FlagGroup(f"#{position}", (token,)))
    return groups


def groups_from(pairs: Sequence[tuple[str, ...]], syntax: FlagSyntax) -> list[FlagGroup]:
    """Default groups built by an engine module: each tuple is one flag and its values."""
    out: list[FlagGroup] = []
    for position, tokens in enumerate(pairs):
        head = tokens[0]
        key = syntax.canonical(head) if is_flag(head) else f"#default{position}"
        out.append(FlagGroup(key, tuple(tokens)))
    return out


def merge(defaults: Sequence[FlagGroup], user: Sequence[FlagGroup]) -> list[str]:
    """Defaults not overridden, in their order, then every user group in the user's order."""
    overridden = {g.key for g in user if not g.key.startswith("#")}
    kept = [t for g in defaults if g.key not in overridden for t in g.tokens]
    return kept + [t for g in user for t in g.tokens]
