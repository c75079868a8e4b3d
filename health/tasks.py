import os
import socket

from django.utils import timezone

from health.models import Heartbeat


def heartbeat() -> str:
    """Scheduled every minute: record that a worker on this node ran a task."""
    node = socket.gethostname()
    Heartbeat.objects.update_or_create(node=node, defaults={"seen_at": timezone.now(), "pid": os.getpid()})
    return node
