"""Resolved credentials say when to resolve them again: before the token's own expiry (a
JWT's ``exp``, an exec plugin's ``expirationTimestamp``), and within ten minutes anyway, so
a token file rewritten in place is picked up even when nothing announces it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from tierwise.controller.credentials import EXPIRY_SKEW, MAX_AGE, KubeConfig, expiry, jwt_expiry

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _jwt(payload: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(payload)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("token", "plugin", "expected"),
    [
        (None, None, NOW + MAX_AGE),
        ("opaque-token", None, NOW + MAX_AGE),
        (_jwt({"exp": int((NOW + timedelta(minutes=5)).timestamp())}), None,
         NOW + timedelta(minutes=5) - EXPIRY_SKEW),
        (_jwt({"exp": int((NOW + timedelta(days=365)).timestamp())}), None, NOW + MAX_AGE),
        (None, NOW + timedelta(minutes=3), NOW + timedelta(minutes=3) - EXPIRY_SKEW),
        (None, (NOW + timedelta(minutes=3)).replace(tzinfo=None),
         NOW + timedelta(minutes=3) - EXPIRY_SKEW),
        (None, NOW - timedelta(minutes=1), NOW),
    ],
    ids=["nothing", "opaque", "jwt-soon", "jwt-a-year", "plugin", "plugin-naive", "past"],
)  # fmt: skip
def test_expiry_is_the_earliest_hint_minus_a_skew(
    token: str | None, plugin: datetime | None, expected: datetime
) -> None:
    assert expiry(token, plugin, now=NOW) == expected


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c", "a.e30.c", _jwt({"exp": "soon"}), "ü.ö.ä", _jwt({"sub": "x"})],
)
def test_anything_but_a_jwt_with_exp_has_no_jwt_expiry(token: str) -> None:
    assert jwt_expiry(token) is None


def test_a_config_resolves_itself_again_until_it_cannot() -> None:
    calls: list[int] = []

    def reload() -> KubeConfig:
        calls.append(1)
        return KubeConfig(server="http://x", token=f"token-{len(calls)}", reload=reload)

    first = KubeConfig(server="http://x", token="token-0", expires_at=NOW, reload=reload)
    assert first.expired(NOW)
    assert not first.expired(NOW - timedelta(seconds=1))
    second = first.refreshed()
    assert (second.token, second.refreshed().token) == ("token-1", "token-2")
    static = KubeConfig(server="http://x", token="one")
    assert static.refreshed() is static
    assert not static.expired()
