"""Signing in and out: the sign-in forms, and signing out, saying so."""

from django.contrib import messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LogoutView
from django.core.validators import MaxLengthValidator


class _UsernameLengthChecked:
    """A username longer than any account's is refused by the form, before anyone authenticates it.

    AuthenticationForm sets its username field's max_length after making the
    field, so no validator checks it: a username of thousands of characters
    reached `authenticate`, and django-axes, recording the failed sign-in in its
    255-character column, made the sign-in page a 500 on PostgreSQL.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))


class SignInForm(_UsernameLengthChecked, AuthenticationForm):
    pass


class AdminSignInForm(_UsernameLengthChecked, AdminAuthenticationForm):
    pass


class SignOutView(LogoutView):
    """Django's LogoutView (a POST), with a note on the sign-in page it leads to."""

    def post(self, request, *args, **kwargs):
        was_signed_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_signed_in:
            # Added after the session is flushed, so the note reaches the next page.
            messages.info(request, "You are signed out.")
        return response
