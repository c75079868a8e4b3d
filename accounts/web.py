"""/account: the signed-in user's time zone."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.models import UserProfile
from accounts.zones import browser_zone, default_zone, grouped_choices, is_zone


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(label="Show times in", required=False)

    def __init__(self, *args, browser: str | None, chosen: str, **kwargs):
        super().__init__(*args, **kwargs)
        follow = f"This browser’s zone ({browser or 'not known yet: ' + default_zone()})"
        choices = [("", follow), *grouped_choices()]
        if chosen and not any(chosen == value for value, _ in _flat(choices)):
            choices.append((chosen, chosen))  # an alias chosen before stays selectable
        field = self.fields["time_zone"]
        field.choices = choices
        field.initial = chosen
        field.help_text = (
            "Times on every page are shown, and deadlines read, in this zone; they are stored in UTC."
        )

    def clean_time_zone(self) -> str:
        zone = self.cleaned_data["time_zone"]
        if zone and not is_zone(zone):
            raise forms.ValidationError("Choose a time zone from the list.")
        return zone


def _flat(choices):
    for value, label in choices:
        if isinstance(label, list | tuple):
            yield from label
        else:
            yield value, label


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    chosen = UserProfile.chosen_zone(request.user)
    browser = browser_zone(request)
    form = TimeZoneForm(request.POST or None, browser=browser, chosen=chosen)
    if request.method == "POST" and form.is_valid():
        zone = form.cleaned_data["time_zone"]
        UserProfile.choose_zone(request.user, zone)
        if zone:
            messages.success(request, f"Times are now shown in {zone}.")
        else:
            messages.success(request, f"Times now follow this browser’s zone ({browser or default_zone()}).")
        return redirect("accounts:account")
    context = {
        "form": form,
        "chosen": chosen,
        "browser": browser,
        "now": timezone.now(),
    }
    return render(request, "accounts/account.html", context, status=400 if form.errors else 200)
