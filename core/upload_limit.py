"""The upload limit on a request's body, checked from its Content-Length before anything parses it.

Django parses a multipart body whole (into temporary files) the first time
request.POST or request.FILES is read, and the CSRF check reads request.POST for
a form's token. So an upload over MAX_UPLOAD_MB is refused from the header
alone: by the API's upload views (batches.uploads.refuse_oversized), by the
pages' upload views through core.request_guards.RefuseOversizedBodyMiddleware,
and, for the API signed in with a session, with a CSRF check that leaves the
body unread (SessionAuthentication below).
"""

from django.conf import settings
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from rest_framework import authentication

MIB = 1024 * 1024


def upload_body_problem(content_length: str | int | None) -> str | None:
    """The sentence refusing a request body over MAX_UPLOAD_MB, or None.

    A megabyte more is allowed for the multipart framing around the files. A
    missing or unreadable Content-Length is left to Django's own bounds.
    """
    try:
        length = int(content_length or 0)
    except ValueError:
        return None
    if length <= (settings.MAX_UPLOAD_MB + 1) * MIB:
        return None
    return f"The upload is {length / MIB:.0f} MB; the limit is {settings.MAX_UPLOAD_MB} MB."


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session sign-in, whose CSRF check leaves a body over the upload limit unread.

    The check reads request.POST for a form's token before the X-CSRFToken
    header, which parses the whole multipart body before the API's upload
    views can refuse it by its Content-Length. Over the limit, the token is
    taken from the header alone (a script's way of sending it): the check
    still runs, and the view then refuses the body without reading it.
    """

    def enforce_csrf(self, request) -> None:
        if upload_body_problem(request.META.get("CONTENT_LENGTH")) is None:
            return super().enforce_csrf(request)
        unread = request._request
        unread._post, unread._files = QueryDict(), MultiValueDict()
        return super().enforce_csrf(unread)
