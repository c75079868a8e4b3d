"""Object permissions shared by batches and templates (django-guardian)."""

from django.db import models
from guardian.shortcuts import assign_perm


def codenames(model: type[models.Model]) -> dict[str, str]:
    name = model._meta.model_name
    return {
        "view": f"view_{name}",
        "change": f"change_{name}",
        "delete": f"delete_{name}",
        "manage": f"manage_{name}",
    }


def grant_owner_permissions(owner, obj: models.Model) -> None:
    """The creator of an object receives every object permission on it."""
    for codename in codenames(type(obj)).values():
        assign_perm(codename, owner, obj)
