"""Helpers for API tests: clients signed in as a persona, and sharing by guardian grant."""

from django.contrib.auth.models import User
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from core.permissions import codenames


def client_for(user: User | None) -> APIClient:
    """A client authenticated as user (by force, no password round trip), or anonymous."""
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def share(obj, user: User, *levels: str) -> None:
    """Grant user the object permissions named by levels ("view", "change", ...)."""
    names = codenames(type(obj))
    for level in levels:
        assign_perm(names[level], user, obj)
