"""``tierwise operator --dcgm-url``: where the GPU signal comes from in scrape mode, per node
(``NODE=URL``) or for every node (a bare URL); anything else is refused with the fix."""

from __future__ import annotations

import pytest

from tierwise.cli import build_parser
from tierwise.controller.cli import autoscaler_settings


def settings_for(*argv: str) -> tuple[dict[str, str], tuple[str, ...]]:
    args = build_parser().parse_args(["operator", *argv])
    settings = autoscaler_settings(args)
    assert settings is not None
    return dict(settings.dcgm_urls), settings.dcgm_shared_urls


def test_without_the_flag_no_exporter_is_read() -> None:
    assert settings_for() == ({}, ())


def test_node_urls_and_shared_urls_are_told_apart() -> None:
    got = settings_for(
        "--dcgm-url",
        "gpu-node-1=http://10.0.0.5:9400/metrics",
        "--dcgm-url",
        "http://dcgm.gpu-operator:9400/metrics?collect=all",
        "--dcgm-url",
        "ip-10-0-0-6.ec2.internal=https://10.0.0.6:9400/metrics",
    )
    assert got == (
        {
            "gpu-node-1": "http://10.0.0.5:9400/metrics",
            "ip-10-0-0-6.ec2.internal": "https://10.0.0.6:9400/metrics",
        },
        ("http://dcgm.gpu-operator:9400/metrics?collect=all",),
    )


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("10.0.0.5:9400/metrics", "is not an http(s) URL; give URL or NODE=URL"),
        ("node=ftp://x/metrics", "is not an http(s) URL"),
        ("=http://x/metrics", "the node name before '=' is empty"),
    ],
)
def test_a_bad_value_is_refused_with_the_fix(
    value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        settings_for("--dcgm-url", value)
    assert says in capsys.readouterr().err
