from django.db.models.signals import post_save
from django.dispatch import receiver

from core.permissions import keep_owner_permissions
from templates_app.models import BatchTemplate


@receiver(post_save, sender=BatchTemplate)
def owner_gets_every_permission(
    sender, instance: BatchTemplate, created: bool, update_fields, **kwargs
) -> None:
    keep_owner_permissions(instance, created, update_fields)
