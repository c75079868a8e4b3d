"""Charts for the batch page, drawn as SVG by the server from batch_analytics().

No script and no chart library: each function returns a small <svg> with a
<title> and a <desc> that says in words what it shows, so a screen reader
gets the figures and the page works with scripts off. Text is escaped.
"""

import math
from collections.abc import Iterable
from typing import Any

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from grading.models import JobStatus

INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
BAR = "#2f5bd3"
BAR_SOFT = "#9db9f8"
STATUS_COLOURS = {
    JobStatus.COMPLETED: "#22a05a",
    JobStatus.FAILED: "#e0533d",
    JobStatus.CANCELLED: "#9ca3af",
    JobStatus.PROCESSING: "#7aa2f7",
    JobStatus.QUEUED: "#c7d2fe",
    JobStatus.PENDING: "#e5e7eb",
}


def _svg(chart_id: str, width: int, height: int, title: str, desc: str, body: Iterable[str]) -> SafeString:
    return format_html(
        '<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-labelledby="{id}-t {id}-d" '
        'xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{title}</title><desc id="{id}-d">{desc}</desc>'
        "{body}</svg>",
        w=width,
        h=height,
        id=chart_id,
        title=title,
        desc=desc,
        body=mark_safe("".join(body)),
    )


def _text(x: float, y: float, text: Any, anchor: str = "start", colour: str = MUTED, weight: str = "") -> str:
    bold = ' font-weight="600"' if weight else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="12" fill="{colour}"{bold}>'
        f"{escape(text)}</text>"
    )


def _rect(
    x: float, y: float, width: float, height: float, colour: str, tip: str = "", radius: int = 2
) -> str:
    title = f"<title>{escape(tip)}</title>" if tip else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" height="{max(height, 0):.1f}" '
        f'rx="{radius}" fill="{colour}">{title}</rect>'
    )


def _nice_ceiling(value: float) -> int:
    """The axis top: the next of 1, 2, 5 × a power of ten at or above the value."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return int(step * power) if step * power >= 1 else 1
    return int(10 * power)


def score_histogram(histogram: list[dict[str, Any]]) -> SafeString:
    """Documents per 10-point band of the final score, as vertical bars."""
    width, height, left, bottom, top = 560, 220, 36, 30, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    counts = [bucket["count"] for bucket in histogram]
    ceiling = _nice_ceiling(max(counts, default=0))
    slot = plot_w / max(len(histogram), 1)
    body = []
    # Counts are whole documents: no half-way tick on an odd axis.
    for tick in (0, ceiling // 2, ceiling) if ceiling % 2 == 0 else (0, ceiling):
        y = top + plot_h - plot_h * tick / ceiling
        body.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y + 4, f"{tick:g}", anchor="end"))
    for index, bucket in enumerate(histogram):
        bar_h = plot_h * bucket["count"] / ceiling
        x = left + index * slot + slot * 0.12
        tip = f"{_band(index, len(histogram))}: {bucket['count']} document(s)"
        body.append(_rect(x, top + plot_h - bar_h, slot * 0.76, bar_h, BAR, tip))
        if bucket["count"]:
            body.append(_text(x + slot * 0.38, top + plot_h - bar_h - 4, bucket["count"], "middle", INK))
        band = _band(index, len(histogram), unit="")
        body.append(_text(left + index * slot + slot / 2, height - bottom + 16, band, "middle"))
    body.append(_text(width - 8, height - 2, "score %", "end"))
    described = ", ".join(f"{_band(i, len(histogram))}: {b['count']}" for i, b in enumerate(histogram))
    return _svg(
        "chart-scores", width, height, "Score distribution", f"Documents per score band. {described}.", body
    )


def _band(index: int, count: int, unit: str = " %") -> str:
    """A histogram bar's range of scores, "70–80 %": both edges, not the lower one alone."""
    width = 100 / max(count, 1)
    return f"{index * width:g}–{(index + 1) * width:g}{unit}"


def criterion_means(criteria: list[dict[str, Any]]) -> SafeString:
    """Each criterion's mean as a share of its points, as horizontal bars."""
    row, label_w, width = 34, 210, 560
    height = max(len(criteria), 1) * row + 8
    bar_w = width - label_w - 90
    body = []
    for index, criterion in enumerate(criteria):
        y = 4 + index * row
        percent = criterion.get("mean_percent") or 0
        name = criterion.get("name") or criterion.get("key", "")
        body.append(_text(0, y + 17, _clip(name, 30), colour=INK))
        body.append(_rect(label_w, y + 6, bar_w, 16, GRID, radius=8))
        tip = f"{name}: mean {_num(criterion.get('mean'))} of {_num(criterion.get('max_score'))}"
        body.append(_rect(label_w, y + 6, bar_w * min(percent, 100) / 100, 16, BAR, tip, radius=8))
        label = f"{_num(criterion.get('mean'))} / {_num(criterion.get('max_score'))}"
        body.append(_text(width, y + 18, label, "end", INK, "bold"))
    described = "; ".join(
        f"{c.get('name') or c.get('key')}: {_num(c.get('mean'))} of {_num(c.get('max_score'))}"
        for c in criteria
    )
    return _svg(
        "chart-criteria", width, height, "Mean score per criterion", described or "No grades yet.", body
    )


def status_breakdown(by_status: dict[str, int]) -> SafeString:
    """Jobs per status as a ring, with a legend beside it."""
    width, height, cx, cy, radius, stroke = 560, 180, 90, 90, 62, 26
    total = sum(by_status.values())
    circumference = 2 * math.pi * radius
    body = [f'<circle cx="{cx}" cy="{cy}" r="{radius}" fill="none" stroke="{GRID}" stroke-width="{stroke}"/>']
    offset = 0.0
    shown = [(status, by_status.get(status, 0)) for status in STATUS_COLOURS if by_status.get(status, 0)]
    for status, count in shown:
        length = circumference * count / total
        body.append(
            f'<circle cx="{cx}" cy="{cy}" r="{radius}" fill="none" stroke="{STATUS_COLOURS[status]}" '
            f'stroke-width="{stroke}" stroke-dasharray="{length:.2f} {circumference - length:.2f}" '
            f'stroke-dashoffset="{-offset:.2f}" transform="rotate(-90 {cx} {cy})">'
            f"<title>{escape(JobStatus(status).label)}: {count}</title></circle>"
        )
        offset += length
    body.append(
        f'<text x="{cx}" y="{cy + 2}" text-anchor="middle" font-size="22" font-weight="700" fill="{INK}">{total}</text>'
    )
    body.append(_text(cx, cy + 20, "jobs", "middle"))
    for index, status in enumerate(STATUS_COLOURS):
        y = 28 + index * 24
        body.append(_rect(200, y - 10, 12, 12, STATUS_COLOURS[status], radius=3))
        body.append(_text(220, y, JobStatus(status).label, colour=INK))
        body.append(_text(340, y, by_status.get(status, 0), "end", INK, "bold"))
    described = ", ".join(f"{JobStatus(s).label}: {by_status.get(s, 0)}" for s in STATUS_COLOURS)
    return _svg("chart-status", width, height, "Jobs by status", f"{total} jobs. {described}.", body)


def model_scores(by_model: list[dict[str, Any]]) -> SafeString:
    """Each model's mean score (AI's), as horizontal bars: the model comparison at a glance."""
    row, label_w, width = 34, 210, 560
    height = max(len(by_model), 1) * row + 8
    bar_w = width - label_w - 70
    body = []
    for index, model in enumerate(by_model):
        y = 4 + index * row
        label = f"{model['provider']} · {model['model']}"
        percent = model.get("mean_score_percent")
        body.append(_text(0, y + 17, _clip(label, 30), colour=INK))
        body.append(_rect(label_w, y + 6, bar_w, 16, GRID, radius=8))
        if percent is not None:
            tip = f"{label}: mean {percent:g}% over {model['completed']} graded job(s)"
            body.append(
                _rect(
                    label_w,
                    y + 6,
                    bar_w * min(percent, 100) / 100,
                    16,
                    BAR_SOFT if index % 2 else BAR,
                    tip,
                    8,
                )
            )
        body.append(_text(width, y + 18, f"{percent:g}%" if percent is not None else "—", "end", INK, "bold"))
    described = "; ".join(
        f"{m['provider']} {m['model']}: {m['mean_score_percent'] if m.get('mean_score_percent') is not None else 'no'} percent"
        for m in by_model
    )
    return _svg("chart-models", width, height, "Mean score per model", described, body)


def _num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{round(float(value), 2):g}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def charts_for(analytics: dict[str, Any]) -> dict[str, SafeString]:
    """The charts a batch's page shows, keyed by name; model scores only when several models graded."""
    charts = {"status": status_breakdown(analytics["jobs"]["by_status"])}
    if analytics["scores"]["graded"]:
        charts["scores"] = score_histogram(analytics["scores"]["histogram"])
        charts["criteria"] = criterion_means(analytics["criteria"])
    if len(analytics["by_model"]) > 1:
        charts["models"] = model_scores(analytics["by_model"])
    return charts
