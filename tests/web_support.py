"""Helpers for the web page tests."""

from django.contrib.messages import get_messages

from batches.models import JobBatch
from core.permissions import Level, share


def share_for_viewing(batch: JobBatch, user) -> None:
    share(batch, user, Level.VIEW)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]
