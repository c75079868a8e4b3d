from django.db.models.signals import post_save
from django.dispatch import receiver

from gradeproject.permissions import grant_owner_permissions
from templates_app.models import BatchTemplate


@receiver(post_save, sender=BatchTemplate)
def owner_gets_every_permission(sender, instance: BatchTemplate, created: bool, **kwargs) -> None:
    if created and instance.owner_id:
        grant_owner_permissions(instance.owner, instance)
