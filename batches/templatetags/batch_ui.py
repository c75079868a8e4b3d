"""Small pieces of the batch pages: status badges, progress bars, deadline flags."""

from typing import Any

from django import template
from django.utils.html import format_html

from batches.models import BatchStatus
from grading.models import JobStatus
from grading.progress import Progress

register = template.Library()

STANDING_LABELS = {"on_track": "On track", "at_risk": "At risk", "late": "Late"}


@register.simple_tag
def status_badge(status: str, kind: str = "batch") -> str:
    choices = BatchStatus if kind == "batch" else JobStatus
    try:
        label = choices(status).label
    except ValueError:
        label = status
    return format_html('<span class="badge badge-{}">{}</span>', status, label)


@register.simple_tag
def standing_badge(standing: str | None) -> str:
    if not standing:
        return ""
    return format_html(
        '<span class="flag flag-{}">{}</span>', standing.replace("_", "-"), STANDING_LABELS[standing]
    )


@register.inclusion_tag("batches/_progress.html")
def progress_bar(counts: dict[str, Any], label: str, size: str = "") -> dict[str, Any]:
    """A bar stacked from completed, failed and cancelled jobs, with the text beside it."""
    progress = Progress.from_counts(counts)
    total = progress.total or 0

    def share(status: str) -> float:
        return round(100 * progress.count(status) / total, 2) if total else 0

    return {
        "counts": counts,
        "label": label,
        "size": size,
        "total": total,
        "done": progress.done,
        "percent": progress.percent,
        "segments": [
            ("completed", share(JobStatus.COMPLETED)),
            ("failed", share(JobStatus.FAILED)),
            ("cancelled", share(JobStatus.CANCELLED)),
            ("processing", share(JobStatus.PROCESSING)),
        ],
    }


@register.filter
def score_text(result) -> str:
    if result is None:
        return "—"
    return f"{result.final_score:g} / {result.max_score:g}"


@register.filter
def percent(value: float | None, total: float | None) -> float:
    if not total or value is None:
        return 0
    return round(100 * value / total, 1)


@register.filter
def rubric_total(rubric) -> float:
    """Points of a rubric, whether a validated schema object or the template's JSON."""
    criteria = rubric.get("criteria", []) if isinstance(rubric, dict) else rubric.criteria
    return sum(c["points"] if isinstance(c, dict) else c.points for c in criteria)


@register.filter
def num(value: float | None) -> str:
    """A score as people write it: 12, 12.5, 12.75 — never 12.00."""
    if value is None or value == "":
        return "—"
    return f"{round(float(value), 2):g}"


@register.filter
def as_percent(ratio: float | None) -> str:
    """0.8125 -> "81%"."""
    if ratio is None:
        return "—"
    return f"{round(100 * ratio):g}%"


@register.filter
def seconds(milliseconds: float | None) -> str:
    if milliseconds is None:
        return "—"
    value = milliseconds / 1000
    return f"{value:.1f} s" if value < 60 else f"{value / 60:.1f} min"


@register.filter
def intcomma_plain(value: int | None) -> str:
    """12345 -> "12,345", without loading django.contrib.humanize."""
    return "—" if value is None else f"{int(value):,}"
