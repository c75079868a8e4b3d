"""Input no view should see: refused before any view, session or database touches it.

A NUL character (``%00``) in a URL is never meaningful here, and PostgreSQL
refuses it in any text it is given ("A string literal cannot contain NUL
characters"), so a view handing a query parameter to the database answered
500. The middleware answers instead, everywhere, before any view runs:

- a NUL in a query parameter (name or value) is a 400: under /api/ the API's
  error body ``{"detail", "code": "invalid_query"}``, elsewhere the 400 page;
- a NUL in the path is a 404, as any other address naming nothing is (under
  /api/ ``{"detail", "code": "not_found"}``): no object's address holds one.
"""

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import bad_request

from core.api_errors import not_found

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
