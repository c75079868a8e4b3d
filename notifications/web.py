"""The notifications page: the signed-in user's in-app list and their channel choices."""

from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from notifications.models import Channel, Event, Notification, NotificationPreference, batch_id_from

PAGE_SIZE = 25


def unread_notifications(request: HttpRequest) -> dict:
    """Template context: the unread count for the navigation, counted only when a page shows it."""
    if not request.user.is_authenticated:
        return {}
    return {"unread_notifications": lambda: Notification.objects.in_app_for(request.user).unread().count()}


@login_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    """One entry per batch, its newest notice with the earlier ones folded under it; ?batch= for one batch's."""
    try:
        batch_id = batch_id_from(request.GET.get("batch"))
    except ValueError as error:
        return render(request, "400.html", {"reason": str(error)}, status=400)
    only_unread = request.GET.get("unread") == "1"
    notifications = Notification.objects.in_app_for(request.user).select_related("batch")
    if only_unread:
        notifications = notifications.unread()
    if batch_id is not None:
        entries = notifications.of_batch(batch_id)
    else:
        entries = notifications.latest_per_batch()
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    grid = NotificationPreference.objects.grid_for([request.user])[request.user.pk]
    context = {
        "page": page,
        "only_unread": only_unread,
        "batch_id": batch_id,
        "batch_name": page.object_list[0].batch.name if batch_id is not None and page.object_list else "",
        "entries": _entries(notifications, page.object_list, grouped=batch_id is None),
        "preference_rows": [
            (event, label, [(channel, grid[channel][event]) for channel in Channel.personal()])
            for event, label in Event.choices
        ],
        "channels": [Channel(channel).label for channel in Channel.personal()],
    }
    return render(request, "notifications/list.html", context)


@dataclass
class Entry:
    """A row of the list: a notice and, when it heads its batch's group, the earlier ones."""

    notice: Notification
    unread: int
    earlier: list[Notification] = field(default_factory=list)
    grouped: bool = False


def _entries(notifications, shown, grouped: bool) -> list[Entry]:
    if not grouped:
        return [Entry(notice, unread=int(notice.read_at is None)) for notice in shown]
    entries = [Entry(head, unread=head.group_unread, grouped=True) for head in shown]
    # The earlier notices of every group on the page, in one query, newest first.
    by_batch = {entry.notice.batch_id: entry for entry in entries if entry.notice.group_size > 1}
    if by_batch:
        rows = (
            notifications.filter(batch_id__in=list(by_batch))
            .exclude(pk__in=[entry.notice.pk for entry in by_batch.values()])
            .select_related(None)
            .only("id", "batch_id", "title", "created_at", "read_at")
        )
        for row in rows:
            by_batch[row.batch_id].earlier.append(row)
    return entries


@login_required
@require_POST
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one notice read, or with group=1 the group it heads (it and the earlier ones of its batch)."""
    notification = get_object_or_404(Notification.objects.in_app_for(request.user), pk=pk)
    if request.POST.get("group") == "1":
        notification.mark_group_read()
    else:
        notification.mark_read()
    return redirect(_back(request))


@login_required
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    marked = Notification.objects.in_app_for(request.user).mark_read()
    messages.success(request, f"Marked {marked} notification{'s' if marked != 1 else ''} read.")
    return redirect(_back(request))


@login_required
@require_POST
def save_preferences(request: HttpRequest) -> HttpResponse:
    """Each (channel, event) box on the form: ticked is on, absent is off."""
    chosen = set(request.POST.getlist("on"))
    grid = {
        channel: {event: f"{channel}:{event}" in chosen for event in Event.values}
        for channel in Channel.personal()
    }
    NotificationPreference.objects.set_grid(request.user, grid)
    messages.success(request, "Saved your notification choices.")
    return redirect("notifications:inbox")


def _back(request: HttpRequest) -> str:
    # Only a path on this site: never an address someone put in the form.
    target = request.POST.get("next", "")
    return target if target.startswith("/notifications") else "/notifications"
