"""What the API schema needs told about the kit's own classes (drf-spectacular extensions).

Imported when the app is ready (core/apps.py): an extension takes effect by being defined.
"""

from drf_spectacular.authentication import SessionScheme


class UploadLimitSessionScheme(SessionScheme):
    """The session sign-in (cookieAuth): DRF's, whose CSRF check leaves a body over the limit unread."""

    target_class = "core.upload_limit.SessionAuthentication"
