from django.db.models.signals import post_save
from django.dispatch import receiver

from batches.models import JobBatch
from gradeproject.permissions import keep_owner_permissions


@receiver(post_save, sender=JobBatch)
def owner_gets_every_permission(sender, instance: JobBatch, created: bool, update_fields, **kwargs) -> None:
    keep_owner_permissions(instance, created, update_fields)
