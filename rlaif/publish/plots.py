"""Tiny inline-SVG plots for the dataset and training reports: histogram, scatter, horizontal bars and a line.

No dependency and no network: every function returns an `<svg>` string that an HTML page can
embed as is. All text that reaches the SVG (titles, labels) is escaped here. An empty input
draws the frame with a "no data" note instead of failing, so a version with no kept pairs
still gets a full report.
"""

from __future__ import annotations

import base64
import html
import math
import re
from html import escape

WIDTH, HEIGHT = 440, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 34, 44
COLORS = {"blue": "#3b6fb6", "orange": "#e07b39", "green": "#3f9b5a", "grey": "#888888", "red": "#c0392b"}


def bin_counts(values: list[float], bins: int, lo: float, hi: float) -> list[int]:
    """Counts of `values` in `bins` equal bins over [lo, hi]; the last bin includes hi; values outside are clipped.

    >>> bin_counts([0.0, 0.1, 0.5, 0.99, 1.0, 2.0], 2, 0.0, 1.0)
    [2, 4]
    """
    counts = [0] * bins
    width = (hi - lo) / bins or 1.0
    for value in values:
        index = int((value - lo) / width)
        counts[min(max(index, 0), bins - 1)] += 1
    return counts


def nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5 or 5 times a power of ten).

    >>> nice_max(7), nice_max(0.42), nice_max(130), nice_max(0)
    (10.0, 0.5, 200.0, 1.0)
    """
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12:
            return float(step * power)
    return float(10 * power)


def fmt_number(value: float) -> str:
    """Short axis label.

    >>> fmt_number(0.25), fmt_number(0.625), fmt_number(3.0), fmt_number(1500)
    ('0.25', '0.625', '3', '1500')
    """
    return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def tick_texts(values: list[float]) -> list[str]:
    """Labels for an axis's ticks: each one different and within 0.1% of the axis's span of its value, with the
    fewest digits that do it; scientific notation for very small or large numbers; -0 reads 0.

    >>> tick_texts([0, 1e-05, 2e-05, 3e-05]), tick_texts([0.001, 0.0012, 0.0014]), tick_texts([0, 0.25, 0.5])
    (['0', '1e-5', '2e-5', '3e-5'], ['0.001', '0.0012', '0.0014'], ['0', '0.25', '0.5'])
    >>> tick_texts([1, 2.75, 4.5, 6.25, 8])
    ['1', '2.75', '4.5', '6.25', '8']
    """
    biggest = max((abs(v) for v in values), default=0)
    span = (max(values) - min(values)) if values else 0
    scientific = 0 < biggest < 1e-3 or biggest >= 1e6
    texts: list[str] = []
    for digits in range(0, 10):
        texts = [_short(v, digits, scientific) for v in values]
        close = all(abs(float(t) - v) <= 0.001 * span for t, v in zip(texts, values))
        if len(set(texts)) == len(texts) and close:
            return texts
    return texts


def _short(value: float, digits: int, scientific: bool) -> str:
    """`value` with `digits` decimals (of the mantissa, when `scientific`), trailing zeros dropped."""
    if abs(value) < 1e-15:
        return "0"
    if scientific:
        mantissa, exponent = f"{value:.{digits}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
        return f"{mantissa}e{int(exponent)}"
    text = f"{value:.{digits}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


def integer_ticks(lo: float, hi: float, most: int = 5) -> list[float]:
    """Whole-number ticks from `lo` to `hi` (training steps), at most `most`, evenly stepped.

    >>> integer_ticks(1, 8), integer_ticks(0, 3), integer_ticks(1, 1)
    ([1, 3, 5, 7], [0, 1, 2, 3], [1])
    """
    step = max(1, math.ceil((hi - lo) / (most - 1)))
    return list(range(int(lo), int(hi) + 1, step))


def _frame(title: str, body: str, note: str = "", width: int = WIDTH, height: int = HEIGHT) -> str:
    caption = f'<text x="{LEFT}" y="{height - 6}" class="note">{escape(note)}</text>' if note else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>'
        f'<text x="{width / 2}" y="20" text-anchor="middle" class="title">{escape(title)}</text>{body}{caption}</svg>'
    )


def no_data(title: str, reason: str = "no data") -> str:
    """A plot frame that says why there is nothing to draw."""
    body = f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="nodata">{escape(reason)}</text>'
    return _frame(title, body)


def _axes(x_label: str, y_label: str, y_max: float, x_ticks: list[tuple[float, str]]) -> str:
    """Axes, y grid with 5 ticks from 0 to y_max, the given x ticks (positions in pixels) and labels."""
    bottom, plot_h = HEIGHT - BOTTOM, HEIGHT - BOTTOM - TOP
    parts = [f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" class="axis"/>']
    for i, text in enumerate(tick_texts([y_max * i / 5 for i in range(6)])):
        y = bottom - plot_h * i / 5
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">{text}</text>')
    for x, label in x_ticks:
        parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" class="tick">{escape(label)}</text>')
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 20}" text-anchor="middle" class="label">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="12" y="{(TOP + bottom) / 2}" text-anchor="middle" class="label" transform="rotate(-90 12 {(TOP + bottom) / 2})">{escape(y_label)}</text>'
    )
    return "".join(parts)


def histogram(
    values: list[float],
    title: str,
    x_label: str,
    lo: float = 0.0,
    hi: float = 1.0,
    bins: int = 20,
    color: str = "blue",
    note: str = "",
) -> str:
    """Histogram of `values` over [lo, hi]."""
    if not values:
        return no_data(title, "no data: no rows to plot")
    counts = bin_counts(values, bins, lo, hi)
    y_max = max(nice_max(max(counts)), 5.0)  # counts are whole: at least 0..5 keeps the ticks whole
    plot_w, plot_h, bottom = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM - TOP, HEIGHT - BOTTOM
    bar_w = plot_w / bins
    bars = []
    for i, count in enumerate(counts):
        h = plot_h * count / y_max
        start, end = lo + (hi - lo) * i / bins, lo + (hi - lo) * (i + 1) / bins
        bars.append(
            f'<rect x="{LEFT + i * bar_w + 0.5:.1f}" y="{bottom - h:.1f}" width="{max(bar_w - 1, 0.5):.1f}" height="{h:.1f}" '
            f'fill="{COLORS[color]}"><title>{fmt_number(start)}-{fmt_number(end)}: {count}</title></rect>'
        )
    ticks = list(
        zip([LEFT + plot_w * i / 4 for i in range(5)], tick_texts([lo + (hi - lo) * i / 4 for i in range(5)]))
    )
    return _frame(title, _axes(x_label, "rows", y_max, ticks) + "".join(bars), note or f"n = {len(values)}")


def scatter(points: list[tuple[float, float]], title: str, x_label: str, y_label: str, note: str = "") -> str:
    """Scatter plot on equal axes from 0, with the y = x diagonal (points above it: y larger)."""
    if not points:
        return no_data(title, "no data: no rows to plot")
    top = nice_max(max(max(x, y) for x, y in points))
    plot_w, plot_h, bottom = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM - TOP, HEIGHT - BOTTOM
    px = lambda x: LEFT + plot_w * x / top  # noqa: E731
    py = lambda y: bottom - plot_h * y / top  # noqa: E731
    dots = "".join(
        f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{COLORS["blue"]}" fill-opacity="0.6">'
        f"<title>{fmt_number(x)}, {fmt_number(y)}</title></circle>"
        for x, y in points
    )
    diagonal = f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(top):.1f}" y2="{py(top):.1f}" class="diag"/>'
    ticks = list(zip([px(top * i / 4) for i in range(5)], tick_texts([top * i / 4 for i in range(5)])))
    return _frame(
        title,
        _axes(x_label, y_label, top, ticks) + diagonal + dots,
        note or f"n = {len(points)}; dashed line: equal length",
    )


def bars(
    items: list[tuple[str, float]],
    title: str,
    max_value: float | None = None,
    value_fmt: str = "{:g}",
    colors: list[str] | None = None,
    note: str = "",
) -> str:
    """Horizontal bars, one per (label, value), colored by `colors` (default all blue); labels and values written beside each bar."""
    if not items:
        return no_data(title, "no data")
    height = max(HEIGHT, TOP + 26 * len(items) + 30)
    label_w, plot_w = 150, WIDTH - 150 - 70
    top = max_value if max_value is not None else nice_max(max(value for _, value in items))
    rows = []
    for i, (label, value) in enumerate(items):
        y = TOP + 8 + i * 26
        w = plot_w * min(value, top) / top if top else 0
        fill = COLORS[colors[i]] if colors and i < len(colors) else COLORS["blue"]
        rows.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" class="tick">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{max(w, 0.5):.1f}" height="18" fill="{fill}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" class="tick">{escape(value_fmt.format(value))}</text>'
        )
    axis = f'<line x1="{label_w}" y1="{TOP}" x2="{label_w}" y2="{TOP + 26 * len(items) + 8}" class="axis"/>'
    return _frame(title, axis + "".join(rows), note, height=height)


def _range(values: list[float]) -> tuple[float, float]:
    """A y range that holds `values`: from 0 when they are all positive, else padded around them.

    >>> _range([0.5, 0.7]), _range([-1.0, 2.0]), _range([3.0, 3.0]), _range([0.0, 0.0]), _range([-3e-08, -1e-07])
    ((0.0, 1.0), (-1.3, 2.3), (0.0, 5.0), (0.0, 1.0), (-1.07e-07, -2.3e-08))
    """
    lo, hi = min(values), max(values)
    if lo >= 0:
        return 0.0, nice_max(hi) or 1.0
    pad = (hi - lo) * 0.1 or abs(lo) * 0.1 or 1.0
    return float(f"{lo - pad:.6g}"), float(f"{hi + pad:.6g}")  # significant digits: tiny losses keep a range


TICK_CHAR_PX = 6.2  # the width of a tick label's character (10 px system-ui digits, a little over)
Y_LABEL_RIGHT = 20  # the rotated y-axis title ends here: tick labels start right of it


def y_axis_left(texts: list[str]) -> float:
    """Where the plot area starts: right of the widest y tick label (which ends 4 px before it) and the axis title,
    never left of LEFT. Long labels (-74.0383, 1.595e-05) then neither leave the picture nor cover the title.

    >>> y_axis_left(["0", "0.5", "1"]), y_axis_left(["-74.0383", "-74.0153"])
    (52, 73.6)
    """
    return max(LEFT, round(Y_LABEL_RIGHT + 4 + TICK_CHAR_PX * max(len(text) for text in texts), 1))


def line(
    points: list[tuple[float, float]], title: str, x_label: str, y_label: str, color: str = "blue", note: str = ""
) -> str:
    """A line of (x, y) points in x order (e.g. a metric against the training step), a dot on each point."""
    points = sorted((x, y) for x, y in points if math.isfinite(x) and math.isfinite(y))
    if not points:
        return no_data(title, "no data: nothing logged")
    lo, hi = _range([y for _, y in points])
    x_lo, x_hi = points[0][0], max(points[-1][0], points[0][0] + 1)
    y_texts = tick_texts([lo + (hi - lo) * i / 5 for i in range(6)])
    left = y_axis_left(y_texts)
    plot_w, plot_h, bottom = WIDTH - left - RIGHT, HEIGHT - BOTTOM - TOP, HEIGHT - BOTTOM
    px = lambda x: left + plot_w * (x - x_lo) / (x_hi - x_lo)  # noqa: E731
    py = lambda y: bottom - plot_h * (y - lo) / (hi - lo)  # noqa: E731
    parts = [f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" class="axis"/>']
    for i, text in enumerate(y_texts):
        y = bottom - plot_h * i / 5
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">{text}</text>')
    whole = all(float(x).is_integer() for x, _ in points)  # training steps: whole-number ticks only
    xs = integer_ticks(x_lo, x_hi) if whole else [x_lo + (x_hi - x_lo) * i / 4 for i in range(5)]
    for x, text in zip(xs, tick_texts(xs)):
        parts.append(f'<text x="{px(x):.1f}" y="{bottom + 14}" text-anchor="middle" class="tick">{text}</text>')
    parts.append(
        f'<text x="{(left + WIDTH - RIGHT) / 2}" y="{HEIGHT - 20}" text-anchor="middle" class="label">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="12" y="{(TOP + bottom) / 2}" text-anchor="middle" class="label" transform="rotate(-90 12 {(TOP + bottom) / 2})">{escape(y_label)}</text>'
    )
    path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{COLORS[color]}" stroke-width="1.5"/>')
    parts += [
        f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{COLORS[color]}"><title>{fmt_number(x)}: {y:.4g}</title></circle>'
        for x, y in points
    ]
    return _frame(title, "".join(parts), note or f"{len(points)} points; last {points[-1][1]:.4g}")


def markdown_image(svg: str) -> str:
    """A plot as a Markdown image (a Prefect artifact shows it): its title as the alt text, the SVG as a base64
    data URI, so no script of it runs and nothing is fetched.

    >>> markdown_image('<svg><title>loss [x]</title></svg>')[:40]
    '![loss (x)](data:image/svg+xml;base64,PH'
    """
    found = re.search(r"<title>(.*?)</title>", svg)
    title = html.unescape(found.group(1)) if found else "plot"
    alt = title.replace("[", "(").replace("]", ")")
    return f"![{alt}](data:image/svg+xml;base64,{base64.b64encode(svg.encode('utf-8')).decode('ascii')})"
