from django.db.models.signals import post_save
from django.dispatch import receiver

from batches.models import JobBatch
from gradeproject.permissions import grant_owner_permissions


@receiver(post_save, sender=JobBatch)
def owner_gets_every_permission(sender, instance: JobBatch, created: bool, **kwargs) -> None:
    if created:
        grant_owner_permissions(instance.owner, instance)
