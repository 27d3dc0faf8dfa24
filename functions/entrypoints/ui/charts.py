"""The gate's evidence drawn as inline SVG: no script, no external asset, readable without colour.

Two charts: the champion's and the challenger's metric side by side, and the improvement (positive:
the challenger is better) with its paired-bootstrap intervals at every reported level, against the
policy's threshold. Each has a <title> and a <desc> that say in words what it shows; the page also
gives the numbers as a table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from markupsafe import Markup, escape

WIDTH = 640
LEFT, RIGHT = 120, 150  # room for row labels and the interval's numbers
ROW = 26
CLEARS, MISSES, INK, MUTED = "#116329", "#a40e26", "#1f2328", "#57606a"


def metric_bars(chart_id: str, metric: str, champion: float | None, challenger: float) -> Markup:
    """Horizontal bars from zero: the champion's metric (if there is one) and the challenger's."""
    rows = [("challenger", challenger)] if champion is None else [("champion", champion), ("challenger", challenger)]
    top = max(abs(value) for _, value in rows) or 1.0
    height = 16 + ROW * len(rows)
    span = WIDTH - LEFT - RIGHT
    parts = []
    for index, (label, value) in enumerate(rows):
        y = 8 + index * ROW
        width = max(1.0, span * abs(value) / top)
        fill = MUTED if label == "champion" else INK
        parts.append(
            f'<text x="{LEFT - 8}" y="{y + 15}" text-anchor="end" class="label">{label}</text>'
            f'<rect x="{LEFT}" y="{y + 3}" width="{width:.1f}" height="{ROW - 8}" fill="{fill}"/>'
            f'<text x="{LEFT + width + 6:.1f}" y="{y + 15}" class="value">{number(value)}</text>'
        )
    said = ", ".join(f"{label} {metric} {number(value)}" for label, value in rows)
    return _svg(chart_id, height, f"{metric}: champion and challenger", said, "".join(parts))


def difference_plot(
    chart_id: str,
    metric: str,
    improvement: float,
    intervals: Mapping[str, tuple[float, float]],
    threshold: float,
    gate_level: str,
) -> Markup:
    """One row per interval level (widest last): the interval as a bar, green when its lower end clears
    the threshold; the estimate as a dot; a dashed line at zero and a solid one at the threshold."""
    levels = sorted(intervals, key=float)
    values = [improvement, threshold, 0.0, *(bound for level in levels for bound in intervals[level])]
    low, high = _padded(min(values), max(values))
    span = WIDTH - LEFT - RIGHT
    rows_top = 24
    height = rows_top + ROW * len(levels) + 34

    def x(value: float) -> float:
        return LEFT + span * (value - low) / (high - low)

    parts = []
    bottom = rows_top + ROW * len(levels)
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{rows_top - 4}" x2="{x(tick):.1f}" y2="{bottom}" class="grid"/>'
            f'<text x="{x(tick):.1f}" y="{bottom + 16}" text-anchor="middle" class="tick">{number(tick)}</text>'
        )
    parts.append(f'<line x1="{x(0):.1f}" y1="{rows_top - 8}" x2="{x(0):.1f}" y2="{bottom}" class="zero"/>')
    parts.append(
        f'<line x1="{x(threshold):.1f}" y1="{rows_top - 8}" x2="{x(threshold):.1f}" y2="{bottom}" class="threshold"/>'
        f'<text x="{x(threshold):.1f}" y="{rows_top - 11}" text-anchor="middle" class="label">'
        f"threshold {number(threshold, signed=True)}</text>"
    )
    words = []
    for index, level in enumerate(levels):
        lo, hi = intervals[level]
        y = rows_top + index * ROW + ROW / 2
        clears = lo > threshold
        colour = CLEARS if clears else MISSES
        name = f"{float(level):.0%}"
        strong = ' font-weight="bold"' if level == gate_level else ""
        suffix = " (the gate's)" if level == gate_level else ""
        parts.append(
            f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" class="label"{strong}>{name}{suffix}</text>'
            f'<line x1="{x(lo):.1f}" y1="{y:.1f}" x2="{x(hi):.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="6"/>'
            f'<circle cx="{x(improvement):.1f}" cy="{y:.1f}" r="4" fill="{INK}"/>'
            f'<text x="{WIDTH - RIGHT + 8}" y="{y + 4:.1f}" class="value"{strong}>'
            f"[{number(lo, signed=True)}, {number(hi, signed=True)}]</text>"
        )
        words.append(f"{name} interval {number(lo, signed=True)} to {number(hi, signed=True)}"
                     f" {'clears' if clears else 'does not clear'} it")  # fmt: skip
    parts.append(
        f'<text x="{LEFT + span / 2:.1f}" y="{bottom + 30}" text-anchor="middle" class="tick">'
        f"improvement in {escape(metric)} (positive: the challenger is better)</text>"
    )
    said = (f"Improvement in {metric} {number(improvement, signed=True)}; threshold {number(threshold, signed=True)}; "
            + "; ".join(words) + ".")  # fmt: skip
    return _svg(chart_id, height, f"{metric} improvement with its intervals", said, "".join(parts))


def _svg(chart_id: str, height: float, title: str, description: str, body: str) -> Markup:
    chart = escape(chart_id)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="100%" role="img" aria-labelledby="{chart}-title {chart}-desc" id="{chart}">'
        f'<title id="{chart}-title">{escape(title)}</title><desc id="{chart}-desc">{escape(description)}</desc>'
        f"{body}</svg>"
    )


def _padded(low: float, high: float) -> tuple[float, float]:
    if math.isclose(low, high):
        low, high = low - 1.0, high + 1.0
    pad = (high - low) * 0.08
    return low - pad, high + pad


def _ticks(low: float, high: float, wanted: int = 5) -> Iterable[float]:
    raw = (high - low) / wanted
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    tick = math.ceil(low / step) * step
    while tick <= high:
        yield 0.0 if math.isclose(tick, 0.0, abs_tol=step / 1e6) else tick
        tick += step


def number(value: float, *, signed: bool = False) -> str:
    """A number as the page shows it: four significant digits, a real minus sign."""
    text = f"{value:+.4g}" if signed else f"{value:.4g}"
    return text.replace("-", "\u2212")  # a real minus sign reads better than a hyphen
