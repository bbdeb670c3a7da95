"""HTTPS_PROXY / HTTP_PROXY / NO_PROXY are read as HTTP clients read them: per scheme,
upper case before lower case, NO_PROXY by host, domain suffix, CIDR block, port and ``*``;
proxy credentials become a Basic Proxy-Authorization value that no repr shows."""

from __future__ import annotations

import base64

import pytest

from tierwise.router.http.proxy_env import ProxyConfig, ProxyRoute


def test_each_scheme_has_its_proxy() -> None:
    config = ProxyConfig.from_env(
        {"HTTPS_PROXY": "http://egress:3128", "http_proxy": "plain-proxy:8080"}
    )
    assert config.route("https", "api.openai.com", 443) == ProxyRoute("egress", 3128)
    assert config.route("http", "api.local", 80) == ProxyRoute("plain-proxy", 8080)
    assert ProxyConfig.from_env({}).route("https", "api.openai.com", 443) is None


def test_upper_case_wins() -> None:
    config = ProxyConfig.from_env(
        {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"}
    )
    assert config.route("https", "x", 443) == ProxyRoute("upper", 1)


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypassed"),
    [
        ("*", "api.openai.com", 443, True),
        ("openai.com", "api.openai.com", 443, True),
        (".openai.com", "api.openai.com", 443, True),
        ("openai.com", "openai.com", 443, True),
        ("openai.com", "notopenai.com", 443, False),
        ("api.openai.com:8443", "api.openai.com", 443, False),
        ("api.openai.com:443", "api.openai.com", 443, True),
        ("10.0.0.0/8, 192.168.1.1", "10.2.3.4", 443, True),
        ("10.0.0.0/8, 192.168.1.1", "192.168.1.1", 443, True),
        ("10.0.0.0/8", "11.0.0.1", 443, False),
        ("10.0.0.0/8", "tenzero.example", 443, False),
        ("::1", "::1", 443, True),
        ("[::1]:443", "::1", 443, True),
        ("", "api.openai.com", 443, False),
    ],
)
def test_no_proxy(no_proxy: str, host: str, port: int, bypassed: bool) -> None:
    config = ProxyConfig.from_env({"HTTPS_PROXY": "http://egress:3128", "NO_PROXY": no_proxy})
    assert (config.route("https", host, port) is None) is bypassed


def test_credentials_become_basic_auth_and_stay_hidden() -> None:
    config = ProxyConfig.from_env({"HTTPS_PROXY": "http://user%40corp:p%3Ass@egress:3128"})
    route = config.route("https", "x", 443)
    assert route is not None
    assert route.authorization == "Basic " + base64.b64encode(b"user@corp:p:ss").decode()
    assert "p:ss" not in repr(route)
    assert base64.b64encode(b"user@corp:p:ss").decode() not in repr(config)


def test_an_https_proxy_url_is_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        ProxyConfig.from_env({"HTTPS_PROXY": "https://egress:3128"})
