"""Helpers for the web page tests."""

from django.contrib.messages import get_messages
from guardian.shortcuts import assign_perm

from batches.models import JobBatch


def share_for_viewing(batch: JobBatch, user) -> None:
    assign_perm("view_jobbatch", user, batch)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]
