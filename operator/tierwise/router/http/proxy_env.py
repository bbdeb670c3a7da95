"""Which forward proxy an external API is reached through, from the usual environment.

Why it exists: a router inside a corporate network reaches an external provider only
through its egress proxy, configured the way every HTTP client reads it: ``HTTPS_PROXY``
for ``https://`` upstreams, ``HTTP_PROXY`` for ``http://`` ones, ``NO_PROXY`` for the
exceptions (lower-case names too; the upper-case one wins when both are set, as in curl
for ``HTTPS_PROXY``). The router applies them to external tiers only: self-hosted replicas
and their ``/metrics`` are in-cluster and always reached directly.

``NO_PROXY``: a comma-separated list; ``*`` matches every host; ``example.com`` and
``.example.com`` match that domain and its subdomains; an IP address or a CIDR block
(``10.0.0.0/8``) matches addresses; ``host:port`` matches that port only.

A proxy URL may carry ``user:password@``: it is sent as ``Proxy-Authorization: Basic``
and never shown (:class:`ProxyRoute`'s repr leaves it out).
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """A forward proxy to connect through (part of the pool key)."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)
    """``Proxy-Authorization`` value; holds credentials, never log it."""


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The proxies of the environment (see the module docstring)."""

    https: ProxyRoute | None = None
    http: ProxyRoute | None = None
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProxyConfig:
        def var(name: str) -> str:
            return env.get(name) or env.get(name.lower()) or ""

        entries = tuple(e.strip().lower() for e in var("NO_PROXY").split(",") if e.strip())
        return cls(_route(var("HTTPS_PROXY")), _route(var("HTTP_PROXY")), entries)

    def route(self, scheme: str, host: str, port: int) -> ProxyRoute | None:
        """The proxy for ``scheme://host:port``, or None to connect directly."""
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or _bypassed(self.no_proxy, host.lower(), port):
            return None
        return proxy


def _route(url: str) -> ProxyRoute | None:
    if not url:
        return None
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"proxy URL scheme {parts.scheme!r} is not supported (use http://)")
    if not parts.hostname:
        raise ValueError("a proxy URL needs a host")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return ProxyRoute(parts.hostname, parts.port or 80, authorization)


def _bypassed(entries: tuple[str, ...], host: str, port: int) -> bool:
    address = _address(host)
    for entry in entries:
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        if "/" in name:
            if address is None:
                continue
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip(".").strip("[]")
        if host == name or host.endswith("." + name):
            return True
    return False


def _has_port(entry: str) -> bool:
    """``host:port`` (not a bare IPv6 address, whose colons are not a port)."""
    head, sep, tail = entry.rpartition(":")
    return bool(sep) and tail.isdigit() and (":" not in head or head.endswith("]"))


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
