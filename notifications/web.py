"""The notifications page: the signed-in user's in-app list and their channel choices."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from notifications.models import Channel, Event, Notification, NotificationPreference

PAGE_SIZE = 25


def unread_notifications(request: HttpRequest) -> dict:
    """Template context: the unread count for the navigation, counted only when a page shows it."""
    if not request.user.is_authenticated:
        return {}
    return {"unread_notifications": lambda: Notification.objects.in_app_for(request.user).unread().count()}


@login_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    only_unread = request.GET.get("unread") == "1"
    notifications = Notification.objects.in_app_for(request.user).select_related("batch")
    if only_unread:
        notifications = notifications.unread()
    grid = NotificationPreference.objects.grid_for([request.user])[request.user.pk]
    context = {
        "page": Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page")),
        "only_unread": only_unread,
        "preference_rows": [
            (event, label, [(channel, grid[channel][event]) for channel in Channel.personal()])
            for event, label in Event.choices
        ],
        "channels": [Channel(channel).label for channel in Channel.personal()],
    }
    return render(request, "notifications/list.html", context)


@login_required
@require_POST
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(Notification.objects.in_app_for(request.user), pk=pk).mark_read()
    return redirect(_back(request))


@login_required
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    marked = Notification.objects.in_app_for(request.user).unread().update(read_at=timezone.now())
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
