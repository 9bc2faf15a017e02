"""Inline SVG charts, rendered on the server: no JavaScript library, no build step."""

from __future__ import annotations

import math

from markupsafe import Markup

from .throughput import Rate

WIDTH = 240
HEIGHT = 48
PAD = 2


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2 or 5 times 10^k at or above `value` (an axis that reads well)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _points(rates: list[Rate], values: list[float], top: float) -> str:
    start, end = rates[0].at, rates[-1].at
    span = (end - start) or 1.0
    points = []
    for rate, value in zip(rates, values, strict=True):
        x = PAD + (rate.at - start) / span * (WIDTH - 2 * PAD)
        y = HEIGHT - PAD - value / top * (HEIGHT - 2 * PAD)
        points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points)


def throughput_chart(rates: list[Rate]) -> Markup:
    """Messages processed (solid) and enqueued (dashed) per second, oldest on the left."""
    if not rates:
        return Markup(
            f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="collecting samples"><text x="{PAD}" y="{HEIGHT // 2}" '
            'class="muted">collecting samples…</text></svg>'
        )
    if len(rates) == 1:  # one interval: a level line across the chart
        rates = [Rate(rates[0].at - 1.0, rates[0].processed, rates[0].enqueued), rates[0]]
    done = [r.processed for r in rates]
    new = [r.enqueued for r in rates]
    top = nice_ceiling(max(*done, *new))
    last = rates[-1]
    label = f"{last.processed:.1f} processed/s, {last.enqueued:.1f} enqueued/s now"
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}">'
        f"<title>{label}</title>"
        f'<line x1="0" y1="{HEIGHT - PAD}" x2="{WIDTH}" y2="{HEIGHT - PAD}" class="axis"/>'
        f'<polyline class="enqueued" fill="none" points="{_points(rates, new, top)}"/>'
        f'<polyline class="processed" fill="none" points="{_points(rates, done, top)}"/>'
        f'<text x="{PAD}" y="10" class="scale">{top:g}/s</text>'
        "</svg>"
    )
