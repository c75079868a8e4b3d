"""The workers' heartbeat, which /healthz reads to tell whether a cluster runs tasks."""

from django.db import models
from django.utils import timezone


class Heartbeat(models.Model):
    """When a worker on this node last ran the scheduled heartbeat task.

    With the ORM broker django-q2 keeps its cluster statistics in the process's
    cache, which the web processes cannot see; a row written by a real task is
    the one proof, visible to every process, that a scheduler enqueued work and
    a worker ran it.
    """

    node = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField(default=timezone.now)
    pid = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self) -> str:
        return f"{self.node} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
