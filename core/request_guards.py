"""Input no view should see: refused before any view, session or database touches it.

A NUL character (``%00``) in a URL is never meaningful here, and PostgreSQL
refuses it in any text it is given ("A string literal cannot contain NUL
characters"), so a view handing a query parameter to the database answered
500. The middleware answers instead, everywhere, before any view runs:

- a NUL in a query parameter (name or value) is a 400: under /api/ the API's
  error body ``{"detail", "code": "invalid_query"}``, elsewhere the 400 page;
- a NUL in the path is a 404, as any other address naming nothing is (under
  /api/ ``{"detail", "code": "not_found"}``): no object's address holds one.

And a body over the upload limit, sent to a page's upload form, is refused
from its Content-Length before anything parses it (RefuseOversizedBodyMiddleware;
the API's side is core.upload_limit.SessionAuthentication).
"""

from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils.datastructures import MultiValueDict
from django.views.defaults import bad_request, page_not_found, permission_denied

from core.api_errors import not_found
from core.upload_limit import upload_body_problem

NUL = "\x00"


def invalid_parameter(request: HttpRequest) -> str | None:
    """A sentence naming the query parameter that holds a NUL, or None."""
    for key, values in request.GET.lists():
        if NUL in key or any(NUL in value for value in values):
            return f"The query parameter “{key.replace(NUL, '')[:60]}” may not contain NUL (%00) characters."
    return None


class RejectInvalidQueryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if NUL in request.path:
            return not_found(request, Http404("No address holds a NUL character."))
        problem = invalid_parameter(request)
        if problem is None:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": problem, "code": "invalid_query"}, status=400)
        return bad_request(request, ValueError(problem))


Refusal = Callable[..., HttpResponse]


def refuses_oversized_body(refusal: Refusal) -> Callable:
    """Mark a page's upload view: a POST over the upload limit is answered by `refusal` instead.

    `refusal(request, problem, *args, **kwargs)` gets the view's arguments and
    the sentence; request.POST and request.FILES are empty for it (the body is
    never read), and it runs before the CSRF check, so it must change nothing.
    """

    def mark(view: Callable) -> Callable:
        view.oversized_body_refusal = refusal
        return view

    return mark


class RefuseOversizedBodyMiddleware:
    """Answer an upload over the limit from its Content-Length, before the body is parsed.

    CsrfViewMiddleware reads request.POST for the form's token, which makes
    Django parse the whole multipart body into temporary files (up to the
    upload limit on disk, and beyond it for a lying client) before the view
    could refuse it. This runs its `process_view` first (it sits before
    CsrfViewMiddleware), for views marked with `refuses_oversized_body` only.
    Skipping the CSRF check costs nothing: the refusal changes no state. A
    refusal that finds the batch hidden or not the user's to change raises
    Http404 or PermissionDenied, answered with the app's pages as a view's are.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        refusal = getattr(view_func, "oversized_body_refusal", None)
        if refusal is None or request.method != "POST":
            return None
        problem = upload_body_problem(request.META.get("CONTENT_LENGTH"))
        if problem is None:
            return None
        # The refused form reads as empty (a page redrawn keeps nothing typed), so that
        # nothing the refusal renders can make Django parse the body after all.
        request._post, request._files = QueryDict(), MultiValueDict()
        try:
            return refusal(request, problem, *view_args, **view_kwargs)
        except Http404 as exc:
            return page_not_found(request, exc)
        except PermissionDenied as exc:
            return permission_denied(request, exc)
