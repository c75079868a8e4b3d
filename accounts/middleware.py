"""Each request shows and reads times in its user's zone (accounts/zones.py says which).

Templates' `date` filter and the forms' date-time fields follow the active
zone: a deadline typed as 09:00 by a user in America/New_York is stored as
13:00 or 14:00 UTC, and shown back as 09:00. The API is left in UTC: its
timestamps carry their offset and are the same for every client.
"""

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import UserProfile
from accounts.zones import zone_for
from core.error_pages import is_api


class TimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api(request):
            return self.get_response(request)
        with timezone.override(zone_for(request, UserProfile.chosen_zone(request.user))):
            return self.get_response(request)
