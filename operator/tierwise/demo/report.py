"""``tierwise demo --report PATH``: the run as one self-contained HTML page.

Why it exists: the charts a person would rather look at than read — replicas over time per
ModelDeployment against the traffic its tier got, cost over time per tier against the
all-frontier line, the routing decisions by kind — in a file that opens offline and can be
attached to an issue or a slide: inline SVG (:mod:`tierwise.demo.svg`) and CSS, no script,
no font, no CDN. Built from :class:`~tierwise.demo.summary.DemoSummary` only. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from tierwise.demo import svg
from tierwise.demo.summary import DemoSummary, DeploymentRow
from tierwise.demo.text import money, ms

TIER_COLORS = ("#2a9d8f", "#e9a23b", "#e76f51", "#6d597a", "#457b9d", "#8a8a8a")
PHASE_COLORS = {"steady": "#f4f7fb", "burst": "#fdf1e4", "quiet": "#eef7f0", "wake": "#f3eefa"}
DESIRED, READY, TRAFFIC = "#264653", "#2a9d8f", "#c9ced6"
WIDTH = 860

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;
max-width:900px;color:#1d2430;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 6px}
p.note{color:#5b6472;margin:2px 0 10px;font-size:13px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}
.card{border:1px solid #e3e6ea;border-radius:8px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px} .card span{color:#5b6472;font-size:12px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
td,th{border-bottom:1px solid #eceef1;padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{color:#5b6472;font-weight:600} .num{text-align:right}
.sim{background:#fff4d6;border:1px solid #f0d58a;border-radius:4px;padding:1px 6px;font-size:12px}
figure{margin:6px 0 14px} figcaption{font-size:12px;color:#5b6472}
h3{font-size:14px;margin:14px 0 0} h3 small{font-weight:400;color:#5b6472;font-size:12px}
"""


def tier_colors(tiers: Sequence[str]) -> dict[str, str]:
    return {t: TIER_COLORS[min(i, len(TIER_COLORS) - 1)] for i, t in enumerate(tiers)}


def render_report(summary: DemoSummary) -> str:
    """The whole page."""
    colors = tier_colors(summary.tier_order)
    sections = [
        _header(summary),
        "<h2>Replicas over time</h2><p class='note'>Desired replicas (what the operator's "
        "autoscaler set, dashed) and ready replicas (filled) of each ModelDeployment, over the "
        "requests per second its tier received (grey, right axis). Dots are the operator's "
        "scale events; hover for the reason.</p>",
        *(_replicas_chart(summary, row) for row in summary.deployments),
        "<h2>Cost over time</h2><p class='note'>Cumulative cost per tier as the router counts "
        "it, their total, and what the same tokens would have cost on the frontier tier.</p>",
        _cost_chart(summary, colors),
        "<h2>Routing decisions by kind of request</h2><p class='note'>Which tier answered each "
        "kind (from the x-tierwise-tier header).</p>",
        _decisions_chart(summary, colors),
        _tables(summary),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<title>tierwise demo report</title><style>"
        + CSS
        + "</style></head><body>"
        + "".join(sections)
        + "</body></html>\n"
    )


def _header(s: DemoSummary) -> str:
    policy = s.policy
    ready = f"{policy.name}: Ready={policy.ready}" if policy else "no policy"
    cards = [
        (f"{s.saving_fraction:.0%}", "saved vs all-frontier"),
        (f"{money(s.cost_dollars)}", f"cost, vs {money(s.baseline_dollars)}"),
        (f"{s.requests - s.failed}/{s.requests}", "requests answered"),
        (f"{s.wall_s:.0f}s", f"traffic ({s.total_s:.0f}s with start-up)"),
        (ready, "RoutingPolicy"),
    ]
    if s.wake is not None:
        held = "held, " if s.wake.held else ""
        cards.append(
            (
                f"{s.wake.latency_s:.1f}s",
                f"wake-up of {s.wake.model_deployment} ({held}answered {s.wake.status})",
            )
        )
    return (
        "<h1>tierwise demo</h1><p class='note'><span class='sim'>simulated</span> engines, "
        "latencies and costs are simulated; the operator, the router and the Kubernetes API "
        "calls are real (an emulated API server).</p><div class='cards'>"
        + "".join(
            f"<div class='card'><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in cards
        )
        + "</div>"
    )


def _bands(frame: svg.Frame, s: DemoSummary) -> list[str]:
    out = []
    for phase in s.phases:
        x1, x2 = frame.x(phase.start_s), frame.x(phase.end_s)
        color = PHASE_COLORS.get(phase.phase.value, "#f6f6f6")
        out.append(
            f'<rect x="{x1}" y="{frame.top}" width="{max(x2 - x1, 0)}" '
            f'height="{frame.floor - frame.top}" fill="{color}"><title>'
            f"{escape(phase.phase.value)}: {escape(phase.title)}</title></rect>"
        )
        out.append(svg.text(x1 + 4, frame.top - 6, phase.phase.value, fill="#5b6472"))
    return out


def _replicas_chart(s: DemoSummary, row: DeploymentRow) -> str:
    top = max([row.max_replicas, 1, *(p[1] for p in row.timeline), *(p[2] for p in row.timeline)])
    traffic = s.traffic_by_tier.get(row.tier, s.traffic)
    traffic_top = svg.nice_max(max([v for _, v in traffic] or [1.0]))
    frame = svg.Frame(WIDTH, 220, x_max=max(s.wall_s, 1.0), y_max=float(top))
    desired = svg.step_path(frame, [(t, float(d)) for t, d, _ in row.timeline])
    ready = svg.step_path(frame, [(t, float(r)) for t, _, r in row.timeline])
    body = [
        *_bands(frame, s),
        *svg.y_axis(frame, [float(v) for v in range(top + 1)], "{:.0f}"),
        *svg.y_axis(frame, svg.ticks(traffic_top), "{:.0f}/s", right=True, top=traffic_top),
        f'<path d="{svg.area(frame, svg.line_path(frame, traffic, traffic_top), s.wall_s)}" '
        f'fill="{TRAFFIC}" fill-opacity="0.45"/>',
        f'<path d="{svg.area(frame, ready, s.wall_s)}" fill="{READY}" fill-opacity="0.18"/>',
        f'<path d="{ready}" fill="none" stroke="{READY}" stroke-width="2"/>',
        f'<path d="{desired}" fill="none" stroke="{DESIRED}" stroke-width="2" '
        'stroke-dasharray="6 4"/>',
        *svg.x_axis(frame, _every(s.wall_s)),
        *_event_dots(frame, row),
        *svg.legend(
            [
                ("desired", DESIRED, "6 4"),
                ("ready", READY, ""),
                (f"{row.tier or 'all'} req/s", TRAFFIC, ""),
            ],
            frame.left + 300,
            14,
        ),
    ]
    title = (
        f"{row.engine}, tier {row.tier or '-'}, replicas {row.min_replicas}-{row.max_replicas}; "
        f"peak queue {row.peak_queue:.0f}; {row.replica_seconds:.0f} replica-seconds"
    )
    chart = svg.svg(frame, body, label=f"replicas of {row.name} over time")
    return f"<h3>{escape(row.name)} <small>{escape(title)}</small></h3><figure>{chart}</figure>"


def _event_dots(frame: svg.Frame, row: DeploymentRow) -> list[str]:
    out = []
    for e in row.scale_events:
        x, y = frame.x(e.time_s), frame.y(float(e.to_replicas))
        tip = f"{e.time_s:.1f}s {e.event} {e.from_replicas} -> {e.to_replicas} ({e.reason}): "
        out.append(
            f'<circle cx="{x}" cy="{y}" r="4.5" fill="#fff" stroke="{DESIRED}" stroke-width="2">'
            f"<title>{escape(tip + e.message)}</title></circle>"
        )
        below = y < frame.top + 16  # no room above: the label goes under the dot
        label_y = y + 16 if below else y - 6
        out.append(
            svg.text(x + 6, label_y, f"{e.event} ({e.reason})", fill=DESIRED, font_size="10")
        )
    return out


def _every(span: float) -> float:
    for step in (5.0, 10.0, 15.0, 30.0, 60.0):
        if span / step <= 12:
            return step
    return 120.0


def _cost_chart(s: DemoSummary, colors: dict[str, str]) -> str:
    points = s.cost_timeline
    top = svg.nice_max(max([b for _, _, b in points] or [s.baseline_dollars or 1e-6]))
    frame = svg.Frame(WIDTH, 260, x_max=max(s.wall_s, 1.0), y_max=top, left=70)
    lines = []
    for tier in s.tier_order:
        series = [(t, c.get(tier, 0.0)) for t, c, _ in points]
        lines.append(
            f'<path d="{svg.line_path(frame, series)}" fill="none" '
            f'stroke="{colors[tier]}" stroke-width="2"/>'
        )
    total = [(t, sum(c.values())) for t, c, _ in points]
    baseline = [(t, b) for t, _, b in points]
    body = [
        *_bands(frame, s),
        *svg.y_axis(frame, svg.ticks(top), "${:.3g}"),
        *lines,
        f'<path d="{svg.line_path(frame, total)}" fill="none" stroke="#1d2430" '
        'stroke-width="2.5"/>',
        f'<path d="{svg.line_path(frame, baseline)}" fill="none" stroke="#c0392b" '
        'stroke-width="2.5" stroke-dasharray="7 4"/>',
        *svg.x_axis(frame, _every(s.wall_s)),
        *svg.legend(
            [
                *((t, colors[t], "") for t in s.tier_order),
                ("all tiers", "#1d2430", ""),
                ("all-frontier", "#c0392b", "7 4"),
            ],
            frame.left + 160,
            14,
        ),
    ]
    caption = (
        f"{money(s.cost_dollars)} with tier routing vs {money(s.baseline_dollars)} all-frontier: "
        f"{s.saving_fraction:.1%} saved (simulated prices and tokens)"
    )
    chart = svg.svg(frame, body, label="cost over time per tier")
    return f"<figure>{chart}<figcaption>{escape(caption)}</figcaption></figure>"


def _decisions_chart(s: DemoSummary, colors: dict[str, str]) -> str:
    kinds: dict[str, dict[str, int]] = {}
    for kind, tier, _, count in s.decisions:
        kinds.setdefault(kind, {})
        kinds[kind][tier] = kinds[kind].get(tier, 0) + count
    most = max([sum(v.values()) for v in kinds.values()] or [1])
    height = 40 + 30 * len(kinds)
    frame = svg.Frame(WIDTH, height, x_max=float(most), y_max=1.0, left=90, top=30, bottom=10)
    body: list[str] = []
    for i, (kind, tiers) in enumerate(kinds.items()):
        y, x = frame.top + 30 * i, float(frame.left)
        body.append(svg.text(frame.left - 8, y + 15, kind, text_anchor="end", fill="#333"))
        for tier, count in sorted(
            tiers.items(), key=lambda kv: s.tier_order.index(kv[0]) if kv[0] in s.tier_order else 99
        ):
            width = frame.x(float(count)) - frame.left
            color = colors.get(tier, TIER_COLORS[-1])
            body.append(
                f'<rect x="{x}" y="{y}" width="{width}" height="22" fill="{color}">'
                f"<title>{escape(f'{kind} -> {tier}: {count}')}</title></rect>"
            )
            if width > 60:
                body.append(svg.text(x + 6, y + 15, f"{tier} {count}", fill="#fff"))
            x += width
    body += svg.legend([(t, colors[t], "") for t in s.tier_order], frame.left, 16)
    return f"<figure>{svg.svg(frame, body, label='routing decisions by kind')}</figure>"


def _tables(s: DemoSummary) -> str:
    tiers = "".join(
        f"<tr><td>{escape(t.tier)}</td><td class='num'>{t.requests}</td><td class='num'>"
        f"{t.failed}</td><td class='num'>{ms(t.latency_p50_s)}</td><td class='num'>"
        f"{ms(t.latency_p95_s)}</td><td class='num'>"
        f"{'-' if t.cache_hit_rate is None else f'{t.cache_hit_rate:.0%}'}</td>"
        f"<td class='num'>{money(t.cost_dollars)}</td></tr>"
        for t in s.tiers
    )
    events = "".join(
        f"<tr><td class='num'>{e.time_s:.1f}s</td><td>{escape(e.model_deployment)}</td><td>"
        f"{escape(e.event)} {e.from_replicas} &rarr; {e.to_replicas}</td><td>"
        f"{escape(e.reason)}</td><td>{escape(e.message)}</td></tr>"
        for row in s.deployments
        for e in row.scale_events
    )
    phases = "".join(
        f"<tr><td>{escape(p.phase.value)}</td><td class='num'>{p.start_s:.1f}-{p.end_s:.1f}s"
        f"</td><td class='num'>{p.requests}</td><td>{escape(p.title)}</td></tr>"
        for p in s.phases
    )
    return (
        "<h2>Per tier</h2><table><tr><th>tier</th><th>requests</th><th>failed</th><th>p50</th>"
        "<th>p95</th><th>prompt cached</th><th>cost</th></tr>" + tiers + "</table>"
        "<h2>Scale events</h2><table><tr><th>time</th><th>ModelDeployment</th><th>change</th>"
        "<th>reason</th><th>message</th></tr>"
        + (events or "<tr><td>none</td></tr>")
        + "</table><h2>Phases</h2><table><tr><th>phase</th><th>when</th><th>requests</th>"
        "<th>what it shows</th></tr>" + phases + "</table>"
    )
