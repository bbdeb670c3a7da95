"""A dependency-free SVG line chart: panels of quality against strong-call share.

Why it exists: the tier-quality benchmark commits its plot beside its table; drawing a
few polylines by hand keeps plotting libraries out of every install (benchmark or not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

W, H, PAD = 330, 300, 44
COLORS = ("#1f77b4", "#7f7f7f", "#2ca02c", "#d62728", "#9467bd")


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    """(x, y), both in 0..1 of the panel's axes."""
    marker_only: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    series: Sequence[Series]
    y_low: float
    y_high: float
    guide_y: float | None = None
    """A dashed horizontal line (the 95% target)."""


def _xy(x: float, y: float, panel: Panel, left: float) -> tuple[float, float]:
    span = panel.y_high - panel.y_low or 1.0
    px = left + PAD + x * (W - 1.5 * PAD)
    py = PAD + (1 - (y - panel.y_low) / span) * (H - 2 * PAD)
    return px, py


def render(panels: Sequence[Panel], x_label: str, y_label: str) -> str:
    width = W * len(panels)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H + 30}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{H + 30}" fill="white"/>',
    ]
    for i, panel in enumerate(panels):
        out.extend(_panel(panel, i * W, x_label, y_label if i == 0 else ""))
    out.extend(_legend(panels[0].series, H + 10))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _panel(panel: Panel, left: float, x_label: str, y_label: str) -> list[str]:
    x0, y0 = _xy(0, panel.y_low, panel, left)
    x1, y1 = _xy(1, panel.y_high, panel, left)
    out = [
        f'<rect x="{x0:.1f}" y="{y1:.1f}" width="{x1 - x0:.1f}" height="{y0 - y1:.1f}" '
        'fill="none" stroke="#333"/>',
        f'<text x="{(x0 + x1) / 2:.1f}" y="{PAD - 12}" text-anchor="middle" '
        f'font-weight="bold">{escape(panel.title)}</text>',
        f'<text x="{(x0 + x1) / 2:.1f}" y="{H - 8}" text-anchor="middle">{escape(x_label)}</text>',
    ]
    for k in range(6):
        fx = k / 5
        px, _ = _xy(fx, panel.y_low, panel, left)
        out.append(f'<text x="{px:.1f}" y="{y0 + 14:.1f}" text-anchor="middle">{fx:.0%}</text>')
        fy = panel.y_low + k * (panel.y_high - panel.y_low) / 5
        _, py = _xy(0, fy, panel, left)
        out.append(f'<text x="{x0 - 4:.1f}" y="{py + 4:.1f}" text-anchor="end">{fy:.0%}</text>')
    if y_label:
        out.append(
            f'<text transform="translate(12 {H / 2}) rotate(-90)" text-anchor="middle">'
            f"{escape(y_label)}</text>"
        )
    if panel.guide_y is not None:
        _, gy = _xy(0, panel.guide_y, panel, left)
        out.append(
            f'<line x1="{x0:.1f}" y1="{gy:.1f}" x2="{x1:.1f}" y2="{gy:.1f}" '
            'stroke="#999" stroke-dasharray="4 3"/>'
        )
    for color, s in zip(COLORS, panel.series, strict=False):
        pts = [_xy(x, y, panel, left) for x, y in s.points]
        if s.marker_only:
            out.extend(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{color}"/>' for px, py in pts
            )
        else:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.6"/>'
            )
    return out


def _legend(series: Sequence[Series], y: float) -> list[str]:
    out = []
    for i, (color, s) in enumerate(zip(COLORS, series, strict=False)):
        x = PAD + i * 190
        out.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{x + 16}" y="{y + 10}">{escape(s.label)}</text>')
    return out
