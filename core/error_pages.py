"""The app's own 403 and 404 pages, also with DEBUG on, and the favicon.

With DEBUG on (`make run`), Django answers a view's Http404, and a URL no
pattern matches, with its technical page (the URL patterns, in yellow); its
403 page is the app's already, but logged with a traceback. Refusals are part
of how the app works (a batch not shared with you is a 404, a change you may
not make a 403), so every mode answers them the same way: with the app's
`404.html` or `403.html` for a page, with the JSON body of the API's error
contract under /api/ (the API's views answer their own refusals; an unmatched
/api/ URL gets `handler404`, which knows both). Their log lines are trimmed by
`core.quiet_logs`.
"""

from functools import cache

from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, get_resolver, get_urlconf, resolve
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found, permission_denied

API_PREFIX = "/api/"


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


class ErrorPagesMiddleware:
    """Refusals as the app's pages: for a view's Http404 or PermissionDenied, and for unmatched URLs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404 as exc:
            # What Django does without DEBUG; with DEBUG it would draw the URL patterns instead.
            return get_resolver(get_urlconf()).resolve_error_handler(404)(request, exc)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_api(request):
            return None
        if isinstance(exception, Http404):
            return page_not_found(request, exception)
        if isinstance(exception, PermissionDenied):
            return permission_denied(request, exception)
        return None


@cache
def _favicon() -> bytes:
    path = finders.find("favicon.svg")
    if not path:
        raise Http404("No favicon.")
    with open(path, "rb") as icon:
        return icon.read()


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers and tools ask for whatever the pages link: the SVG icon."""
    response = HttpResponse(_favicon(), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response
