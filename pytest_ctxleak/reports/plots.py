"""Small line plots as inline SVG, drawn in Python.

The HTML report must open offline and stay small, so it carries no plotting
library: each plot is an ``<svg>`` element with one polyline per worker and one
circle per test, whose ``<title>`` names the test and its value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import NamedTuple

WIDTH = 560
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 34, 36
# Worker colors, distinguishable with the common color vision deficiencies.
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#000000",
)
LEAK_COLOR = "#d62728"


class Point(NamedTuple):
    """One test's value."""

    x: int  # the test's number in the run, from 1
    y: float
    label: str  # the tooltip: the test and its value
    leaked: bool  # drawn larger and red


class Series(NamedTuple):
    """The points of one worker, in run order."""

    name: str
    points: list[Point]


def nice_max(value: float) -> float:
    """Round ``value`` up to 1, 2, 4, 6 or 8 times a power of ten, at least 2.

    Each of these has a whole half, so the middle tick of a count is a count too.
    """
    if value <= 2:
        return 2.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 6, 8):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def number(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value:.3g}"


def line_plot(
    metric: str, title: str, series: Sequence[Series], x_max: int, empty_text: str
) -> str:
    """Return an SVG plot of the series, showing ``empty_text`` if it has no point."""
    points = [point for one in series for point in one.points]
    head = (
        f'<svg class="plot" data-metric="{escape(metric)}" '
        f'data-points="{len(points)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    )
    parts = [head, f'<text class="title" x="{LEFT}" y="18">{escape(title)}</text>']
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    bottom = TOP + plot_height
    parts.append(
        f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{plot_width}" '
        f'height="{plot_height}"/>'
    )
    if not points:
        parts.append(
            f'<text class="empty" x="{LEFT + plot_width / 2}" '
            f'y="{TOP + plot_height / 2}" text-anchor="middle">'
            f"{escape(empty_text)}</text></svg>"
        )
        return "".join(parts)
    y_max = nice_max(max(point.y for point in points))
    x_span = max(x_max - 1, 1)

    def x_of(x: int) -> float:
        return round(LEFT + (x - 1) / x_span * plot_width, 1)

    def y_of(y: float) -> float:
        return round(bottom - y / y_max * plot_height, 1)

    for fraction in (0.0, 0.5, 1.0):
        y = y_of(y_max * fraction)
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y}" x2="{LEFT + plot_width}" '
            f'y2="{y}"/><text class="tick" x="{LEFT - 6}" y="{y + 4}" '
            f'text-anchor="end">{number(y_max * fraction)}</text>'
        )
    for x in sorted({1, x_max}):
        parts.append(
            f'<text class="tick" x="{x_of(x)}" y="{bottom + 16}" '
            f'text-anchor="middle">{x}</text>'
        )
    parts.append(
        f'<text class="axis" x="{LEFT + plot_width / 2}" y="{HEIGHT - 4}" '
        'text-anchor="middle">test, in the order the run finished them</text>'
    )
    for index, one in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        coordinates = " ".join(f"{x_of(p.x)},{y_of(p.y)}" for p in one.points)
        parts.append(
            f'<polyline class="series" points="{coordinates}" stroke="{color}" '
            f'data-series="{escape(one.name)}"/>'
        )
        for point in one.points:
            fill = LEAK_COLOR if point.leaked else color
            radius = 4.5 if point.leaked else 2.5
            css = "point leaked" if point.leaked else "point"
            parts.append(
                f'<circle class="{css}" cx="{x_of(point.x)}" cy="{y_of(point.y)}" '
                f'r="{radius}" fill="{fill}"><title>{escape(point.label)}</title>'
                "</circle>"
            )
        if len(series) > 1:
            legend_x = LEFT + plot_width - 70 * (len(series) - index)
            parts.append(
                f'<circle class="key" cx="{legend_x}" cy="14" r="4" '
                f'fill="{color}"/><text class="legend" x="{legend_x + 8}" y="18">'
                f"{escape(one.name)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
