"""What a user sets for themselves, beside Django's User."""

from django.conf import settings
from django.db import models


class UserProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    # An IANA name ("Europe/Paris"); blank: follow the browser's zone.
    time_zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.time_zone or 'browser time zone'}"

    @classmethod
    def chosen_zone(cls, user) -> str:
        """The zone the user picked, or "" (one small query; no row until they pick one)."""
        if not user.is_authenticated:
            return ""
        return cls.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""

    @classmethod
    def choose_zone(cls, user, zone: str) -> None:
        cls.objects.update_or_create(user=user, defaults={"time_zone": zone})
