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
    """A duration people read: "< 0.1 s", "0.4 s", "12 s", "2.5 min" (never "0.0 s")."""
    if milliseconds is None:
        return "—"
    value = milliseconds / 1000
    if value < 0.1:
        return "< 0.1 s"
    if value < 10:
        return f"{value:.1f} s"
    return f"{value:.0f} s" if value < 60 else f"{value / 60:.1f} min"


# Below this wall time a rate says more about the clock than about the batch.
MIN_RATE_WALL_S = 1.0


@register.filter
def throughput(processing: dict[str, Any] | None) -> str:
    """Jobs per minute, or per second when over 60 a minute; none for a batch that ran under a second."""
    if not processing or processing.get("jobs_per_minute") is None:
        return "—"
    if (processing.get("wall_time_s") or 0) < MIN_RATE_WALL_S:
        return "all within a second"
    per_minute = processing["jobs_per_minute"]
    if per_minute > 60:
        return f"{_sig(per_minute / 60)} jobs/s"
    if per_minute < 0.1:
        return f"{_sig(per_minute * 60)} jobs/h"
    return f"{_sig(per_minute)} jobs/min"


def _sig(value: float) -> str:
    """Two significant figures or whole numbers: 0.42, 4.2, 42, 420."""
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"


@register.filter
def intcomma_plain(value: int | None) -> str:
    """12345 -> "12,345", without loading django.contrib.humanize."""
    return "—" if value is None else f"{int(value):,}"


@register.filter
def grades_with(estimate: dict[str, Any] | None, provider: str) -> bool:
    """Whether any of an estimate's models is of this provider kind (say "builtin costs nothing" only then)."""
    rows = (estimate or {}).get("by_model") or []
    return any((model.get("kind") or model.get("provider")) == provider for model in rows)
