"""Time zone names: which are real, which a person picks from, and the one a request uses.

A user's zone is the one they chose on /account; until they choose, the one
their browser reports (static/js/app.js puts `Intl.DateTimeFormat().resolvedOptions().timeZone`
in the `tz` cookie on every page, the sign-in page included); without either,
settings.TIME_ZONE. Times are stored in UTC whatever the zone.
"""

from functools import cache
from itertools import groupby
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.http import HttpRequest

BROWSER_COOKIE = "tz"
# The regions of the IANA database a person looks for their city in; the
# other names (US/Eastern, Etc/GMT+5, EST5EDT …) are aliases, still accepted.
REGIONS = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")


@cache
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def is_zone(name: str | None) -> bool:
    return bool(name) and name in known_zones()


@cache
def grouped_choices() -> list:
    """UTC, then the cities of each region, for a <select> with <optgroup>s."""
    cities = sorted(name for name in known_zones() if name.split("/")[0] in REGIONS)
    groups = [
        (region, [(name, name.split("/", 1)[1].replace("_", " ")) for name in names])
        for region, names in groupby(cities, key=lambda name: name.split("/")[0])
    ]
    return [("UTC", "UTC"), *groups]


def browser_zone(request: HttpRequest) -> str | None:
    zone = request.COOKIES.get(BROWSER_COOKIE)
    return zone if is_zone(zone) else None


def default_zone() -> str:
    return settings.TIME_ZONE


def zone_for(request: HttpRequest, chosen: str | None) -> ZoneInfo:
    """The zone a request shows and reads times in: the user's choice, else the browser's, else the default."""
    for name in (chosen, browser_zone(request), default_zone()):
        if is_zone(name):
            return ZoneInfo(name)
    return ZoneInfo("UTC")
