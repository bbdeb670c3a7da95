"""Accepted client keys (``spec.router.auth``): one per line, matched exactly as a
``Bearer`` token, kept only as digests, and never shown by a repr or an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierwise.api.routing_policy import ClientAuth
from tierwise.router.auth import AccessKeys, AuthConfigError, keys_file

KEYS = ["sk-alpha", "sk-ünïcødé-键", "k"]
# printable keys without surrounding whitespace and without line breaks
key_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=40
)


def _header(key: str) -> str:
    """What the HTTP layer hands over: header bytes (UTF-8 on the wire) decoded as latin-1."""
    return key.encode("utf-8").decode("latin-1")


@pytest.mark.parametrize(
    ("authorization", "accepted"),
    [
        (None, False),
        ("", False),
        ("Bearer", False),
        ("Bearer ", False),
        ("Bearer sk-alpha", True),
        ("bearer sk-alpha", True),
        ("BEARER   sk-alpha  ", True),
        ("Basic sk-alpha", False),
        ("sk-alpha", False),
        ("Bearer sk-alph", False),
        ("Bearer sk-alpha2", False),
        ("Bearer sk-alpha sk-alpha", False),
        (_header("Bearer sk-ünïcødé-键"), True),
        ("Bearer sk-ünïcødé-键", True),  # a caller that hands over text, not wire bytes
        (_header("Bearer sk-unicode-键"), False),
        ("Bearer k", True),
    ],
)
def test_only_an_exact_bearer_key_is_accepted(authorization: str | None, accepted: bool) -> None:
    assert AccessKeys(KEYS).accepts(authorization) is accepted


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("sk-a\n", 1),
        ("sk-a\r\nsk-b\r\n", 2),
        ("\n\n  sk-a  \n\t\nsk-b", 2),
        ("sk-a\nsk-a\n", 1),
        ("键\n", 1),
    ],
)
def test_key_file_lists_one_key_per_line(tmp_path: Path, text: str, count: int) -> None:
    path = tmp_path / "keys"
    path.write_text(text, encoding="utf-8")
    keys = AccessKeys.from_file(str(path))
    assert len(keys) == count
    for line in text.splitlines():
        if line.strip():
            assert keys.accepts(_header("Bearer " + line.strip()))


@pytest.mark.parametrize("text", ["", "\n", "  \n\t\n"])
def test_a_key_file_without_keys_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "keys"
    path.write_text(text)
    with pytest.raises(AuthConfigError, match="lists no key"):
        AccessKeys.from_file(str(path))


def test_an_unreadable_key_file_names_the_file_only(tmp_path: Path) -> None:
    bad = tmp_path / "binary"
    bad.write_bytes(b"sk-secret-\xff\xfe")
    with pytest.raises(AuthConfigError) as raised:
        AccessKeys.from_file(str(bad))
    assert str(bad) in str(raised.value)
    assert "sk-secret" not in str(raised.value)
    with pytest.raises(AuthConfigError, match="cannot read"):
        AccessKeys.from_file(str(tmp_path / "absent"))


@pytest.mark.parametrize(
    ("secrets_dir", "expected"),
    [("/var/run/secrets", "/var/run/secrets/clients/keys"), ("/s/", "/s/clients/keys")],
)
def test_keys_file_follows_the_mounted_secret_convention(secrets_dir: str, expected: str) -> None:
    auth = ClientAuth.model_validate({"apiKeysSecretRef": {"name": "clients", "key": "keys"}})
    assert keys_file(auth, secrets_dir) == expected
    with pytest.raises(AuthConfigError, match="secrets-dir"):
        keys_file(auth, None)


@given(st.lists(key_text, min_size=1, max_size=8, unique=True), key_text)
def test_any_listed_key_is_accepted_and_no_other(keys: list[str], probe: str) -> None:
    access = AccessKeys(keys)
    for key in keys:
        assert access.accepts(_header(f"Bearer {key}"))
    assert access.accepts(_header(f"Bearer {probe}")) is (probe in keys)
    shown = repr(access)
    assert all(key not in shown for key in keys if len(key) > 2)
