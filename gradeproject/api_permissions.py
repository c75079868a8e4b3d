"""Object permissions for the API, shared by every viewset (batches, templates, jobs).

Visibility is the queryset's job: viewsets fetch objects through
`visible_to(user)`, so an object the user may not view is simply not found
(404) and never reveals that it exists. What is left here is the second
question, asked only about objects the user can already see: may they change
it? The owner always may; others need guardian's `change_<model>` object
permission, given to them directly or through a group.
"""

from django.db import models
from django.db.models import Q
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model
from rest_framework.permissions import SAFE_METHODS, BasePermission

from gradeproject.permissions import codenames

CHANGE_DENIED = "You may view this but not change it."


def permission_target(obj: models.Model) -> models.Model | None:
    """The object whose permissions govern obj: a job in a batch follows its batch."""
    if getattr(obj, "_meta", None) and obj._meta.label == "grading.GradingJob":
        return obj.batch if obj.batch_id else None
    return obj


def can_change(user, obj: models.Model) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    target = permission_target(obj)
    if target is None:  # a stand-alone job: only its owner
        return obj.owner_id == user.pk
    if getattr(target, "owner_id", None) == user.pk:
        return True
    codename = codenames(type(target))["change"]
    return user.has_perm(f"{target._meta.app_label}.{codename}", target)


def changeable(user, queryset: models.QuerySet, action: str = "change") -> models.QuerySet:
    """The rows of queryset the user may change, in one query (for bulk operations).

    Subqueries on guardian's direct-foreign-key tables, as in `visible_to`, so
    checking 500 ids costs one query instead of one per object.
    """
    if user.is_superuser:
        return queryset
    model = queryset.model
    codename = codenames(model)[action]
    by_user = (
        get_user_obj_perms_model(model)
        .objects.filter(user=user, permission__codename=codename)
        .values("content_object_id")
    )
    by_group = (
        get_group_obj_perms_model(model)
        .objects.filter(group__user=user, permission__codename=codename)
        .values("content_object_id")
    )
    return queryset.filter(Q(owner=user) | Q(pk__in=by_user) | Q(pk__in=by_group))


class ObjectPermission(BasePermission):
    """Reading needs view, which the visible queryset already guarantees; anything else needs change.

    Actions (start, pause, upload, jobs, settings, delete, duplicate …) are
    POST/PUT/PATCH/DELETE requests, so they all need change. Viewsets must
    fetch objects through `visible_to(user)` for the read half to hold.
    """

    message = CHANGE_DENIED

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return can_change(request.user, obj)
