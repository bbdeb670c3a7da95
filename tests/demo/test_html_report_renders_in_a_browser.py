"""``tierwise demo --report`` writes one self-contained page — no script, no stylesheet or
image fetched, nothing from a CDN — with a replicas chart per ModelDeployment (desired and
ready steps, its tier's traffic, the scale events with their reasons), the cost of each
tier against the all-frontier line, and the routing decisions by kind; names are escaped.
Real headless Chromium loads it with no console error and takes a screenshot (kept in the
test's folder); a page that does log an error is caught, so the check can fail. About
5 s with Chromium."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from headless_browser import load

from tierwise.demo.observe import ScaleEvent
from tierwise.demo.player import PhaseRun
from tierwise.demo.report import render_report
from tierwise.demo.script import Phase
from tierwise.demo.summary import (
    BackendView,
    DemoSummary,
    DeploymentRow,
    PolicyView,
    TierRow,
    TierView,
    WakeView,
)

EVAL = """JSON.stringify({
  svgs: [...document.querySelectorAll('svg')].map(s => {
    const r = s.getBoundingClientRect(); return [s.getAttribute('aria-label'), r.width, r.height];
  }),
  title: document.title,
  steps: document.querySelectorAll('path[stroke-dasharray="6 4"]').length,
  dots: document.querySelectorAll('circle title').length,
})"""


def summary(tier: str = "small") -> DemoSummary:
    up = ScaleEvent(10.4, "small-llm", 1, 3, "QueueDepth", "ScaledUp", "QueueDepth 5/replica")
    down = ScaleEvent(23.0, "small-llm", 3, 1, "QueueDepth", "ScaledDown", "window passed")
    zero = ScaleEvent(25.6, "mid-llm", 1, 0, "Idle", "ScaledToZero", "no traffic for 6s")
    wake = ScaleEvent(33.0, "mid-llm", 0, 1, "Activation", "ScaledFromZero", "holds 1 <req>")
    rows = (
        DeploymentRow("small-llm", "vllm", "qwen", 1, 1, "Ready", tier, (), 1, 3,
                      ((0.0, 1, 1), (10.4, 3, 1), (12.0, 3, 3), (23.0, 1, 1), (40.0, 1, 1)),
                      (up, down), 11.0),
        DeploymentRow("mid-llm", "sglang", "m", 1, 1, "Ready", "mid", (), 0, 2,
                      ((0.0, 0, 0), (1.0, 1, 0), (1.5, 1, 1), (25.6, 0, 0), (33.0, 1, 0),
                       (34.5, 1, 1), (40.0, 1, 1)), (zero, wake), 2.0),
    )
    tiers = tuple(TierRow(t, 10, 0, 0.2, 0.4, 0.5, 1000, 100, 500, c)
                  for t, c in ((tier, 0.01), ("mid", 0.15), ("frontier", 0.01)))
    phases = tuple(PhaseRun(p, f"what {p} shows", s, e, 10)
                   for p, s, e in ((Phase.STEADY, 0, 10), (Phase.BURST, 10, 20),
                                   (Phase.QUIET, 20, 32), (Phase.WAKE, 32, 40)))
    policy = PolicyView("demo", "True", "RouterReady", "", "abc", "3/3", "2/2",
                        (TierView(tier, True, (BackendView("small-llm", True, 1),)),))
    costs = tuple((float(t), {tier: t * 0.001, "mid": t * 0.004, "frontier": t * 0.0003},
                   t * 0.016) for t in range(41))
    traffic = tuple((float(t), 20.0 if 10 <= t < 20 else 5.0) for t in range(41))
    return DemoSummary(
        deployments=rows, tiers=tiers,
        decisions=(("chat", tier, "default", 250), ("code", "mid", "code", 40),
                   ("agentic", "mid", "long-prompts", 80), ("reasoning", "frontier", "hard", 30)),
        requests=400, failed=0, wall_s=40.0, cost_dollars=0.17, baseline_dollars=0.64,
        affinity={"hit": 300.0}, fallbacks={}, policy=policy, phases=phases,
        wake=WakeView("mid-llm", "wake-up-agent-0-t0", "agentic", "mid", 200, 32.0, 3.1, True,
                      True),
        traffic=traffic, traffic_by_tier={tier: traffic, "mid": traffic}, cost_timeline=costs,
        total_s=47.0)  # fmt: skip


def test_the_page_is_self_contained() -> None:
    page = render_report(summary())
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "<link" not in page
    assert "@import" not in page
    assert "url(" not in page
    fetched = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", page)
    assert fetched == []
    assert set(re.findall(r"https?://[^\"'\s<>]+", page)) == {"http://www.w3.org/2000/svg"}


def test_the_page_holds_every_chart_and_every_scale_event() -> None:
    page = render_report(summary())
    labels = re.findall(r'aria-label="([^"]+)"', page)
    assert labels == ["replicas of small-llm over time", "replicas of mid-llm over time",
                      "cost over time per tier", "routing decisions by kind"]
    for text in ("ScaledUp 1 -&gt; 3 (QueueDepth): QueueDepth 5/replica",
                 "ScaledToZero 1 -&gt; 0 (Idle)", "holds 1 &lt;req&gt;", "all-frontier",
                 "73.4% saved", "wake-up of mid-llm (held, answered 200)"):
        assert text in page


def test_names_are_escaped() -> None:
    page = render_report(summary(tier="<b>tier</b>"))
    assert "<b>tier</b>" not in page
    assert "&lt;b&gt;tier&lt;/b&gt;" in page


async def test_chromium_loads_it_without_errors_and_draws_the_charts(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text(render_report(summary()), encoding="utf-8")
    page = await load(report, evaluate=EVAL, size=(1000, 2400))
    assert page.errors == []
    import json

    shown = json.loads(page.value)
    assert shown["title"] == "tierwise demo report"
    assert [label for label, _, _ in shown["svgs"]] == [
        "replicas of small-llm over time", "replicas of mid-llm over time",
        "cost over time per tier", "routing decisions by kind"]
    assert all(width > 500 and height > 100 for _, width, height in shown["svgs"])
    assert shown["steps"] == 2  # one desired line per ModelDeployment
    assert shown["dots"] == 4  # one per scale event, each with its reason
    shot = tmp_path / "report.png"
    shot.write_bytes(page.screenshot)
    assert page.screenshot[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", page.screenshot[16:24])
    assert width >= 900
    assert height >= 1600  # the whole page, not just the window
    assert len(page.screenshot) > 50_000  # drawn charts, not a blank page


@pytest.mark.parametrize("script", [
    "console.error('broken ☹')",
    "throw new Error('uncaught ☹')",
])
async def test_a_page_with_an_error_is_caught(tmp_path: Path, script: str) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text(f"<!DOCTYPE html><html><body><p>x</p><script>{script}</script></body></html>",
                      encoding="utf-8")
    page = await load(broken)
    assert len(page.errors) == 1
    assert "☹" in page.errors[0]
