"""Ownership and sharing of batches and templates (django-guardian).

Every shareable model has an `owner` foreign key and guardian's direct
foreign-key permission tables (`<Model>UserObjectPermission`,
`<Model>GroupObjectPermission`), so "what may this user see" is a subquery on
two small indexed tables instead of the generic table's text object ids.

Sharing levels nest: view < change < manage. Sharing at a level grants its
permission and every lower one; unsharing a level removes it and every higher
one, so removing `view` removes everything. Checks accept any permission at or
above the level asked for, so rows granted one by one (the admin, a shell)
still read coherently: a lone `change` row lets its holder see the object.

The owner is whoever the `owner` field names. Ownership is read from that
field, never from permission rows, so no unsharing, no admin edit and no lost
row can lock an owner out; sharing and unsharing refuse to touch the owner.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.db import models, transaction
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

UserLike = AbstractBaseUser | AnonymousUser


class Level(models.TextChoices):
    """Sharing levels, lowest first; each includes the ones before it."""

    VIEW = "view", "View"
    CHANGE = "change", "Change"
    MANAGE = "manage", "Manage (change and re-share)"

    @property
    def rank(self) -> int:
        return list(Level).index(self)

    def and_below(self) -> list[Level]:
        return [level for level in Level if level.rank <= self.rank]

    def and_above(self) -> list[Level]:
        return [level for level in Level if level.rank >= self.rank]

    def at_most(self, ceiling: Level) -> Level:
        return self if self.rank <= ceiling.rank else ceiling

    @property
    def verb(self) -> str:
        """What the level lets one do, to end a refusal: "you may view this but not change it"."""
        return {"view": "see it", "change": "change it", "manage": "share it"}[self.value]


class SharingError(ValueError):
    """A share or unshare that cannot be done, with a sentence saying why."""


def codenames(model: type[models.Model]) -> dict[str, str]:
    name = model._meta.model_name
    return {
        "view": f"view_{name}",
        "change": f"change_{name}",
        "delete": f"delete_{name}",
        "manage": f"manage_{name}",
    }


def level_codenames(model: type[models.Model], levels: list[Level]) -> list[str]:
    return [f"{level.value}_{model._meta.model_name}" for level in levels]


@functools.cache
def permission_models(model: type[models.Model]) -> tuple[type[models.Model], type[models.Model]]:
    """The model's direct foreign-key user and group permission tables.

    Found from the model's relations, without guardian's lookup, which falls
    back to its generic tables silently (every visibility query would then
    compare text object ids) and asks the database for content types.
    """
    tables = {}
    for relation in model._meta.related_objects:
        table = relation.related_model
        if relation.field.name != "content_object":
            continue
        for base in (UserObjectPermissionBase, GroupObjectPermissionBase):
            if issubclass(table, base):
                tables[base] = table
    if len(tables) != 2:
        raise LookupError(f"{model.__name__} has no direct foreign-key permission tables.")
    return tables[UserObjectPermissionBase], tables[GroupObjectPermissionBase]


@functools.cache
def is_shareable(model: type[models.Model]) -> bool:
    try:
        permission_models(model)
    except LookupError:
        return False
    return True


def is_signed_in(user: UserLike) -> bool:
    return bool(user.is_authenticated and user.is_active)


def is_superuser(user: UserLike) -> bool:
    return is_signed_in(user) and user.is_superuser


# --- visibility ---------------------------------------------------------------


def accessible_ids(model: type[models.Model], user: UserLike, level: Level) -> models.QuerySet:
    """Ids of the objects the user owns or holds `level` on, directly or through a group.

    One UNION of three index scans (owned; shared with the user; shared with
    a group of the user), used as `pk IN (...)`. PostgreSQL then joins the
    handful of ids to the table by primary key. The obvious
    `owner = u OR pk IN (shared)` cannot use an index for the OR and scans
    every row, many times slower for a user seeing few of many batches
    (bench/visibility.py; README, the visibility benchmark, has the figures).
    """
    user_table, group_table = permission_models(model)
    names = level_codenames(model, level.and_above())
    owned = model._default_manager.filter(owner=user).order_by().values("pk")
    by_user = user_table.objects.filter(user=user, permission__codename__in=names).values("content_object_id")
    by_group = group_table.objects.filter(group__user=user, permission__codename__in=names).values(
        "content_object_id"
    )
    return owned.union(by_user, by_group)


def filter_accessible(queryset: models.QuerySet, user: UserLike, level: Level) -> models.QuerySet:
    """Owned and shared objects of a shareable model; everything for a superuser, nothing for anonymous."""
    if not is_signed_in(user):
        return queryset.none()
    if is_superuser(user):
        return queryset
    return queryset.filter(pk__in=accessible_ids(queryset.model, user, level))


# --- checks on one object -------------------------------------------------------


def level_of(user: UserLike, obj: models.Model) -> Level | None:
    """The highest level the user holds on a shareable object (owner and superuser: manage). One query."""
    if not is_signed_in(user):
        return None
    if is_superuser(user) or obj.owner_id == user.pk:
        return Level.MANAGE
    user_table, group_table = permission_models(type(obj))
    held = set(
        user_table.objects.filter(user=user, content_object=obj)
        .values_list("permission__codename", flat=True)
        .union(
            group_table.objects.filter(group__user=user, content_object=obj).values_list(
                "permission__codename", flat=True
            )
        )
    )
    name = type(obj)._meta.model_name
    granted = [level for level in Level if f"{level.value}_{name}" in held]
    if not granted and getattr(obj, "is_public", False):
        return Level.VIEW
    return max(granted, key=lambda level: level.rank, default=None)


def has_level(user: UserLike, obj: models.Model, level: Level) -> bool:
    """Whether the user holds `level` on the object. One query at most.

    Documents, jobs and results are not shared themselves: their querysets'
    `accessible_to` says who reaches them, through their batch (a job in no
    batch: its owner; a document no job grades yet: its uploader).
    """
    model = type(obj)
    if not is_shareable(model):
        return model._default_manager.accessible_to(user, level).filter(pk=obj.pk).exists()
    held = level_of(user, obj)
    return held is not None and held.rank >= level.rank


def can_view(user: UserLike, obj: models.Model) -> bool:
    return has_level(user, obj, Level.VIEW)


def can_change(user: UserLike, obj: models.Model) -> bool:
    return has_level(user, obj, Level.CHANGE)


def can_share(user: UserLike, obj: models.Model) -> bool:
    """Owners and holders of `manage` may share and unshare."""
    return has_level(user, obj, Level.MANAGE)


def can_delete(user: UserLike, obj: models.Model) -> bool:
    """Deleting is the owner's (or a superuser's): sharing, even at `manage`, never grants it."""
    if not is_signed_in(user):
        return False
    if is_superuser(user) or obj.owner_id == user.pk:
        return True
    user_table, group_table = permission_models(type(obj))
    codename = codenames(type(obj))["delete"]
    return (
        user_table.objects.filter(user=user, content_object=obj, permission__codename=codename).exists()
        or group_table.objects.filter(
            group__user=user, content_object=obj, permission__codename=codename
        ).exists()
    )


# --- granting --------------------------------------------------------------------


def _permissions(model: type[models.Model], names: list[str]) -> list[Permission]:
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_model(model)
    found = list(Permission.objects.filter(content_type=content_type, codename__in=names))
    if len(found) != len(set(names)):
        missing = set(names) - {permission.codename for permission in found}
        raise LookupError(f"Permissions {sorted(missing)} do not exist; run migrate.")
    return found


def _grant(obj: models.Model, principal: AbstractBaseUser | Group, names: list[str]) -> None:
    user_table, group_table = permission_models(type(obj))
    if isinstance(principal, Group):
        table, key = group_table, "group"
    else:
        table, key = user_table, "user"
    rows = [
        table(**{key: principal}, permission=permission, content_object=obj)
        for permission in _permissions(type(obj), names)
    ]
    # The unique (principal, permission, object) constraint makes a repeated
    # grant a no-op instead of an error, also under concurrent shares.
    table.objects.bulk_create(rows, ignore_conflicts=True)


def grant_owner_permissions(owner: AbstractBaseUser, obj: models.Model) -> None:
    """The creator of an object receives every object permission on it (two queries)."""
    _grant(obj, owner, list(codenames(type(obj)).values()))


def _principal_name(principal: AbstractBaseUser | Group) -> str:
    return principal.name if isinstance(principal, Group) else principal.get_username()


def _refuse_owner(obj: models.Model, principal: AbstractBaseUser | Group, verb: str) -> None:
    if not isinstance(principal, Group) and principal.pk == obj.owner_id:
        raise SharingError(
            f"{_principal_name(principal)} owns this {type(obj)._meta.verbose_name} and always keeps "
            f"full control; it cannot be {verb}."
        )


def share(obj: models.Model, principal: AbstractBaseUser | Group, level: Level | str) -> None:
    """Grant `level` and every lower level to a user or a group. Granting what is held changes nothing."""
    level = Level(level)
    _refuse_owner(obj, principal, "shared with its owner")
    _grant(obj, principal, level_codenames(type(obj), level.and_below()))


def unshare(obj: models.Model, principal: AbstractBaseUser | Group, level: Level | str) -> int:
    """Take `level` and every higher level away from a user or a group; returns the rows removed.

    Unsharing `change` leaves `view`; unsharing `view` leaves nothing. The
    owner is refused: its control comes from ownership, not from a share.
    """
    level = Level(level)
    _refuse_owner(obj, principal, "unshared from its owner")
    user_table, group_table = permission_models(type(obj))
    names = level_codenames(type(obj), level.and_above())
    if isinstance(principal, Group):
        rows = group_table.objects.filter(group=principal, content_object=obj, permission__codename__in=names)
    else:
        rows = user_table.objects.filter(user=principal, content_object=obj, permission__codename__in=names)
    with transaction.atomic():
        deleted, _ = rows.delete()
    return deleted


# --- listing ---------------------------------------------------------------------


@dataclass
class Grant:
    name: str
    permission: Level
    permissions: list[str] = field(default_factory=list)

    def as_dict(self, key: str) -> dict[str, Any]:
        return {key: self.name, "permission": self.permission.value, "permissions": self.permissions}


@dataclass
class Sharing:
    owner: str | None
    users: list[Grant]
    groups: list[Grant]

    def as_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "users": [grant.as_dict("user") for grant in self.users],
            "groups": [grant.as_dict("group") for grant in self.groups],
        }


def _grants(rows: list[tuple[str, str]], model_name: str) -> list[Grant]:
    held: dict[str, set[str]] = {}
    for name, codename in rows:
        held.setdefault(name, set()).add(codename.removesuffix(f"_{model_name}"))
    grants = []
    for name in sorted(held):
        levels = [level for level in Level if level.value in held[name]]
        if levels:
            top = max(levels, key=lambda level: level.rank)
            grants.append(Grant(name, top, [level.value for level in levels]))
    return grants


def permissions_of(obj: models.Model) -> Sharing:
    """Who holds what on a shareable object, the owner apart: three queries however many grants."""
    model = type(obj)
    user_table, group_table = permission_models(model)
    owner = (
        model._meta.get_field("owner")
        .related_model.objects.filter(pk=obj.owner_id)
        .values_list("username", flat=True)
        .first()
        if obj.owner_id
        else None
    )
    user_rows = (
        user_table.objects.filter(content_object=obj)
        .exclude(user_id=obj.owner_id)
        .values_list("user__username", "permission__codename")
    )
    group_rows = group_table.objects.filter(content_object=obj).values_list(
        "group__name", "permission__codename"
    )
    name = model._meta.model_name
    return Sharing(owner, _grants(list(user_rows), name), _grants(list(group_rows), name))


def keep_owner_permissions(instance: models.Model, created: bool, update_fields: Any) -> None:
    """post_save hook: a new object's owner gets every permission, and so does a new owner.

    Control never depends on these rows (ownership is read from the field),
    but guardian's own checks and the admin's permission pages read them.
    Saves that name their fields without `owner` (every state transition)
    cost nothing here.
    """
    if instance.owner_id is None:
        return
    if created or update_fields is None or "owner" in update_fields:
        grant_owner_permissions(instance.owner, instance)


def level_held_by(obj: models.Model, principal: AbstractBaseUser | Group) -> Level | None:
    """The level a user (by direct shares only) or a group holds on the object. One query."""
    user_table, group_table = permission_models(type(obj))
    if isinstance(principal, Group):
        rows = group_table.objects.filter(group=principal, content_object=obj)
    else:
        rows = user_table.objects.filter(user=principal, content_object=obj)
    held = {codename.split("_", 1)[0] for codename in rows.values_list("permission__codename", flat=True)}
    granted = [level for level in Level if level.value in held]
    return max(granted, key=lambda level: level.rank, default=None)


def set_level(obj: models.Model, principal: AbstractBaseUser | Group, level: Level | str | None) -> None:
    """Make `level` exactly what a user or group holds (None: nothing), in one transaction."""
    with transaction.atomic():
        if level is None or level == "":
            unshare(obj, principal, Level.VIEW)
            return
        level = Level(level)
        share(obj, principal, level)
        above = [other for other in Level if other.rank == level.rank + 1]
        if above:
            unshare(obj, principal, above[0])
