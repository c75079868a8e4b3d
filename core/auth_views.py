"""Signing out, saying so."""

from django.contrib import messages
from django.contrib.auth.views import LogoutView


class SignOutView(LogoutView):
    """Django's LogoutView (a POST), with a note on the sign-in page it leads to."""

    def post(self, request, *args, **kwargs):
        was_signed_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_signed_in:
            # Added after the session is flushed, so the note reaches the next page.
            messages.info(request, "You are signed out.")
        return response
