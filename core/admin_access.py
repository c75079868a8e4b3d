"""Ownership and sharing in the admin.

Access to batches, templates, documents, jobs and results is per object, so
the model-wide permissions of django.contrib.auth do not decide it here: a
staff member who is not a superuser sees in the admin exactly the rows they
may view (the models' `visible_to`), may edit only what they may change, and
manages sharing only where they may share. Superusers see and do everything.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import models
from django.shortcuts import get_object_or_404
from guardian.admin import GuardedModelAdminMixin

from core.permissions import (
    Level,
    SharingError,
    can_change,
    can_delete,
    can_share,
    can_view,
    is_shareable,
    is_signed_in,
    is_superuser,
    level_held_by,
    set_level,
)


def is_staff(request) -> bool:
    return is_signed_in(request.user) and request.user.is_staff


class ObjectAccessAdminMixin:
    """Lists, pages, edits and deletions limited to what the signed-in staff member may reach.

    `related_levels` names, per foreign key, the level needed on the object
    it points to: a job may be put only into a batch its editor may change.
    Other foreign keys to models with `accessible_to` offer what may be seen.
    """

    related_levels: dict[str, Level] = {}

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def has_module_permission(self, request) -> bool:
        return is_staff(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_staff(request) and (obj is None or can_view(request.user, obj))

    def has_change_permission(self, request, obj=None) -> bool:
        return is_staff(request) and (obj is None or can_change(request.user, obj))

    def has_delete_permission(self, request, obj=None) -> bool:
        if not is_staff(request) or obj is None:
            return is_staff(request)
        if is_shareable(type(obj)):
            return can_delete(request.user, obj)
        return can_change(request.user, obj)

    def has_add_permission(self, request) -> bool:
        # Whoever adds becomes the owner (save_model), so adding reveals nothing.
        return is_staff(request)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # Only a superuser hands an object to someone else.
        if not is_superuser(request.user) and "owner" not in fields and self._has_field("owner"):
            fields.append("owner")
        return fields

    def save_model(self, request, obj, form, change) -> None:
        if not change and self._has_field("owner") and (not is_superuser(request.user) or not obj.owner_id):
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if hasattr(related._default_manager.all(), "accessible_to") and "queryset" not in kwargs:
            level = self.related_levels.get(db_field.name, Level.VIEW)
            kwargs["queryset"] = related._default_manager.accessible_to(request.user, level)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _has_field(self, name: str) -> bool:
        return any(field.name == name for field in self.model._meta.fields)


class ThroughParentInlineMixin:
    """An inline shown with its parent, read-only unless the parent may be changed."""

    def has_view_permission(self, request, obj=None) -> bool:
        return is_staff(request) and (obj is None or can_view(request.user, obj))

    def has_change_permission(self, request, obj=None) -> bool:
        return is_staff(request) and (obj is None or can_change(request.user, obj))


class _LevelForm(forms.Form):
    """Guardian's per-user and per-group page, as one sharing level instead of raw permissions.

    Saving goes through `set_level`, so levels stay nested (change brings
    view) and the owner cannot be edited out.
    """

    permission = forms.ChoiceField(
        label="Shared at",
        required=False,
        choices=[("", "Not shared"), *Level.choices],
        help_text="View: see the object. Change: also edit it and run its actions. "
        "Manage: also share it with others.",
    )

    def __init__(self, principal, obj: models.Model, *args, **kwargs) -> None:
        self.principal, self.obj = principal, obj
        super().__init__(*args, **kwargs)
        held = level_held_by(obj, principal)
        self.fields["permission"].initial = held.value if held else ""

    def clean(self):
        cleaned = super().clean()
        if not isinstance(self.principal, Group) and self.principal.pk == self.obj.owner_id:
            raise forms.ValidationError(
                f"{self.principal} owns this {self.obj._meta.verbose_name} and always keeps full control."
            )
        return cleaned

    def save_obj_perms(self) -> None:
        try:
            set_level(self.obj, self.principal, self.cleaned_data["permission"] or None)
        except SharingError as exc:  # a concurrent change of owner
            raise PermissionDenied(str(exc))


class SharingAdminMixin(ObjectAccessAdminMixin, GuardedModelAdminMixin):
    """Guardian's object-permission pages for shareable models, open only to those who may share."""

    def _shareable_or_deny(self, request, object_pk) -> None:
        # Invisible objects answer 404 as everywhere; visible but not shareable, 403.
        obj = get_object_or_404(self.get_queryset(request), pk=object_pk)
        if not can_share(request.user, obj):
            raise PermissionDenied("Only the owner and those it is shared with at 'manage' may share it.")

    def obj_perms_manage_view(self, request, object_pk):
        self._shareable_or_deny(request, object_pk)
        return super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        self._shareable_or_deny(request, object_pk)
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        self._shareable_or_deny(request, object_pk)
        return super().obj_perms_manage_group_view(request, object_pk, group_id)

    def get_obj_perms_manage_user_form(self, request):
        return _LevelForm

    def get_obj_perms_manage_group_form(self, request):
        return _LevelForm


class SharingModelAdmin(SharingAdminMixin, admin.ModelAdmin):
    pass
