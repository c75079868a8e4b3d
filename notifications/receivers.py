"""Notifications hear about batches through the signals batches/signals.py sends."""

from django.dispatch import receiver

from batches.signals import batch_finished, batch_paused_for_provider, batch_progressed
from notifications.events import announce_finished, announce_provider_outage, check_progress


@receiver(batch_finished, dispatch_uid="notifications.batch_finished")
def on_batch_finished(sender, batch, **kwargs) -> None:
    announce_finished(batch)


@receiver(batch_progressed, dispatch_uid="notifications.batch_progressed")
def on_batch_progressed(sender, batch, counts=None, **kwargs) -> None:
    check_progress(batch, counts)


@receiver(batch_paused_for_provider, dispatch_uid="notifications.batch_paused_for_provider")
def on_batch_paused_for_provider(sender, batch, provider, reason, since, **kwargs) -> None:
    announce_provider_outage(batch, provider, reason, since)
