"""Client authentication: the API keys a router accepts (``spec.router.auth``).

Why it exists: a router reachable from outside the cluster spends real money on external
tiers, so a policy may name a Secret key listing the client API keys it accepts, one per
line; clients send one as ``Authorization: Bearer KEY`` (what every OpenAI SDK does with
``api_key=``). The Secret is mounted as a file, ``{secrets_dir}/{secretName}/{key}``, the
same convention as external tiers' key files, and is read again with every table load
(the router also reloads when the file changes).

Keys are kept only as SHA-256 digests: a request's token is hashed and looked up in a
set, so no comparison runs over the key's bytes (nothing to time) and a memory dump or a
repr shows no key. Nothing here logs, echoes or counts a key; errors name the file only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from tierwise.api.router_spec import ClientAuth

_BEARER = "bearer "
_SPACE = " \t\r\n\f\v"  # ASCII only: str.strip() would also eat bytes 0x85 and 0xa0


class AuthConfigError(ValueError):
    """The accepted-keys file is missing, unreadable or empty (the message names the file)."""


def keys_file(auth: ClientAuth, secrets_dir: str | None) -> str:
    """Where the Secret named by ``auth`` is mounted; raises without a secrets folder."""
    if not secrets_dir:
        raise AuthConfigError(
            "spec.router.auth is set but the router has no --secrets-dir to read "
            f"Secret {auth.api_keys_secret_ref.name!r} from"
        )
    ref = auth.api_keys_secret_ref
    return f"{secrets_dir.rstrip('/')}/{ref.name}/{ref.key}"


class AccessKeys:
    """The accepted client keys, as digests. ``accepts`` is the per-request check."""

    __slots__ = ("_digests", "source")

    def __init__(self, keys: Iterable[str], source: str = "") -> None:
        self._digests = frozenset(_digest(k) for k in keys if k)
        self.source = source
        """The file the keys came from (a path, never a key)."""

    @classmethod
    def from_file(cls, path: str) -> AccessKeys:
        """Read one key per line (surrounding ASCII whitespace and blank lines ignored)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise AuthConfigError(f"cannot read client API keys file {path}: {reason}") from None
        keys = cls((line.strip(_SPACE) for line in text.split("\n")), path)
        if not keys:
            raise AuthConfigError(f"client API keys file {path} lists no key")
        return keys

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"AccessKeys({len(self._digests)} keys from {self.source or 'memory'})"

    def accepts(self, authorization: str | None) -> bool:
        """True when ``authorization`` is ``Bearer KEY`` with an accepted KEY."""
        if authorization is None or authorization[:7].lower() != _BEARER:
            return False
        token = authorization[7:].strip(_SPACE)
        if not token:
            return False
        try:  # the HTTP layer decodes header bytes as latin-1: undo it to get the raw bytes
            raw = token.encode("latin-1")
        except UnicodeEncodeError:
            raw = token.encode("utf-8")
        return hashlib.sha256(raw).digest() in self._digests


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()
