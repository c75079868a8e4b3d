"""Small pieces of the queue, inbox and rule pages: places in the queue, estimates, sizes."""

from django import template
from django.template.defaultfilters import date
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from batches.autostart import auto_start_wanted

register = template.Library()


@register.filter
def ordinal(number: int | None) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th", 23 -> "23rd"."""
    if number is None:
        return ""
    number = int(number)
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


@register.filter
def ahead_text(entry) -> str:
    """What waits before a batch in the queue: "2 other batches, 6 jobs ahead"."""
    batches, jobs = entry.ahead_batches, entry.ahead_jobs
    if not batches:
        return "next to be served"
    noun = "batch" if batches == 1 else "batches"
    return f"{batches} other {noun}, {jobs} job{'' if jobs == 1 else 's'} ahead"


@register.filter
def kilobytes(size: int | None) -> str:
    if size is None:
        return "—"
    return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} B"


@register.filter
def starts_by_itself(batch) -> bool:
    """Whether an upload into this draft starts it (its effective settings say auto_start)."""
    return batch.status == "draft" and auto_start_wanted(batch)


@register.filter
def when(value: str | None) -> str:
    """An ISO 8601 time from the queue's answer, as the pages write times: "Nov 30, 14:05"."""
    moment = parse_datetime(value) if value else None
    return date(timezone.localtime(moment), "M j, H:i") if moment else ""
