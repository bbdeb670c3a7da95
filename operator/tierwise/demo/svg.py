"""Just enough SVG for the demo's report: a plotting frame, axes, step lines, areas, bars.

Why it exists: the report must work offline, from a file, with no script and no CDN, so
its charts are SVG written out here, a few hundred bytes each. Everything returns markup
strings; text is escaped. Pure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"


def attr(value: object) -> str:
    return escape(str(value), quote=True)


NICE = (
    (1.0, 5),
    (1.2, 4),
    (1.5, 3),
    (2.0, 4),
    (2.5, 5),
    (3.0, 3),
    (4.0, 4),
    (5.0, 5),
    (6.0, 3),
    (8.0, 4),
    (10.0, 5),
)
"""Axis tops (times a power of ten) and how many steps divide each into round values."""


def nice_max(value: float) -> float:
    """A round axis top at or above ``value`` (see :data:`NICE`)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    top = next(step for step, _ in NICE if value <= step * power + 1e-12)
    return float(round(top * power, 12))


def ticks(top: float) -> list[float]:
    """Round tick values from 0 to a :func:`nice_max` top."""
    power = 10 ** math.floor(math.log10(top)) if top > 0 else 1.0
    steps = next((n for step, n in NICE if abs(step * power - top) < 1e-9 * top), 4)
    return [round(top * i / steps, 12) for i in range(steps + 1)]


@dataclass(frozen=True, slots=True)
class Frame:
    """A plotting area inside a ``width`` x ``height`` SVG, with the data ranges."""

    width: int
    height: int
    x_max: float
    y_max: float
    left: int = 56
    right: int = 56
    top: int = 40
    bottom: int = 34

    def x(self, value: float) -> float:
        span = self.width - self.left - self.right
        return round(self.left + span * min(max(value, 0.0), self.x_max) / self.x_max, 1)

    def y(self, value: float, top: float | None = None) -> float:
        span = self.height - self.top - self.bottom
        scale = self.y_max if top is None else top
        return round(self.top + span * (1 - min(max(value, 0.0), scale) / scale), 1)

    @property
    def floor(self) -> float:
        return float(self.height - self.bottom)


def svg(frame: Frame, body: Iterable[str], *, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} {frame.height}" '
        f'width="{frame.width}" height="{frame.height}" role="img" aria-label="{attr(label)}" '
        f'style="{FONT};font-size:11px">' + "".join(body) + "</svg>"
    )


def text(x: float, y: float, content: str, **style: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{attr(v)}"' for k, v in style.items())
    return f'<text x="{x}" y="{y}"{extra}>{escape(content)}</text>'


def x_axis(frame: Frame, every: float, unit: str = "s") -> list[str]:
    out = [
        f'<line x1="{frame.left}" y1="{frame.floor}" x2="{frame.width - frame.right}" '
        f'y2="{frame.floor}" stroke="#999"/>'
    ]
    t = 0.0
    while t <= frame.x_max + 1e-9:
        x = frame.x(t)
        out.append(
            f'<line x1="{x}" y1="{frame.floor}" x2="{x}" y2="{frame.floor + 4}" stroke="#999"/>'
        )
        out.append(text(x, frame.floor + 16, f"{t:g}{unit}", text_anchor="middle", fill="#555"))
        t += every
    return out


def y_axis(
    frame: Frame,
    values: Sequence[float],
    fmt: str,
    *,
    right: bool = False,
    top: float | None = None,
) -> list[str]:
    """Grid lines and labels (on the right for a second scale ``top``)."""
    out = []
    for value in values:
        y = frame.y(value, top)
        if not right:
            out.append(
                f'<line x1="{frame.left}" y1="{y}" x2="{frame.width - frame.right}" '
                f'y2="{y}" stroke="#eee"/>'
            )
        x = frame.width - frame.right + 6 if right else frame.left - 6
        anchor = "start" if right else "end"
        out.append(text(x, y + 4, fmt.format(value), text_anchor=anchor, fill="#555"))
    return out


def step_path(frame: Frame, points: Sequence[tuple[float, float]], top: float | None = None) -> str:
    """A step line: each value holds until the next point's time."""
    if not points:
        return ""
    parts = [f"M{frame.x(points[0][0])},{frame.y(points[0][1], top)}"]
    for (_, before), (t, value) in itertools.pairwise(points):
        parts.append(f"H{frame.x(t)}")
        if value != before:
            parts.append(f"V{frame.y(value, top)}")
    return "".join(parts)


def area(frame: Frame, path: str, end: float) -> str:
    """Close a step or line path down to the floor, to fill it."""
    if not path:
        return ""
    start = path[1:].split(",", 1)[0]
    return f"{path}H{frame.x(end)}V{frame.floor}H{start}Z"


def line_path(frame: Frame, points: Sequence[tuple[float, float]], top: float | None = None) -> str:
    return "".join(
        f"{'M' if i == 0 else 'L'}{frame.x(t)},{frame.y(v, top)}" for i, (t, v) in enumerate(points)
    )


def legend(items: Sequence[tuple[str, str, str]], x: float, y: float) -> list[str]:
    """``(label, color, dash)`` entries in a row at (x, y)."""
    out = []
    for label, color, dash in items:
        out.append(
            f'<line x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}" stroke="{color}" '
            f'stroke-width="3" stroke-dasharray="{dash}"/>'
        )
        out.append(text(x + 22, y, label, fill="#333"))
        x += 30 + 6.5 * len(label)
    return out
