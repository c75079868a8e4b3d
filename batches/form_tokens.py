"""One-time form tokens: a create form clicked twice makes one object.

"New batch", "New batch from scratch" and "New template" carry a fresh token in a
hidden field. The view claims the token in the same transaction that makes the
object and records the object's id under it. The same token posted again — a
double click, or the back button and a resubmit — finds that id and is sent to
the object the first post made, instead of making a second one.

The claim is a row with a unique (owner, kind, token), not a session entry: two
posts of a double click arrive together, before the first response has saved any
session, and only the database's unique index makes the second wait for the
first and then see what it made.
"""

import secrets
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.http import HttpRequest
from django.utils import timezone

FIELD = "form_token"
# Long enough for a page left open over a weekend; older claims are pruned as new ones come.
KEPT_FOR = timedelta(days=7)


class FormKind(models.TextChoices):
    BATCH = "batch", "Batch"
    TEMPLATE = "template", "Template"


class FormToken(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=FormKind.choices)
    token = models.CharField(max_length=64)
    # Null while the first post is still making its object (its transaction holds the row).
    object_id = models.PositiveBigIntegerField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "kind", "token"], name="form_token_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.token}"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_of(request: HttpRequest) -> str:
    """The token a page should carry: the posted one when the form comes back, else a fresh one."""
    posted = request.POST.get(FIELD, "") if request.method == "POST" else ""
    return posted if _well_formed(posted) else new_token()


def _well_formed(token: str) -> bool:
    return 16 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()


def made_before(request: HttpRequest, kind: str) -> int | None:
    """The id of the object an earlier post of this form's token made, if there was one."""
    token = request.POST.get(FIELD, "")
    if not _well_formed(token):
        return None
    found = FormToken.objects.filter(owner=request.user, kind=kind, token=token).first()
    return found.object_id if found else None


def create_once(
    request: HttpRequest, kind: str, make: Callable[[], models.Model]
) -> tuple[models.Model | int, bool]:
    """Run `make` unless this form's token already made something: (the object or its id, made now).

    A post without a token (an API client, a page from before tokens) just makes the object.
    """
    token = request.POST.get(FIELD, "")
    if not _well_formed(token):
        return make(), True
    try:
        with transaction.atomic():
            # The insert waits on a concurrent post of the same token until it commits,
            # then fails on the unique constraint: that post made the object.
            claim = FormToken.objects.create(owner=request.user, kind=kind, token=token)
            made = make()
            FormToken.objects.filter(pk=claim.pk).update(object_id=made.pk)
    except IntegrityError:
        earlier = made_before(request, kind)
        if earlier is None:
            raise
        return earlier, False
    _prune(request.user)
    return made, True


def _prune(user) -> None:
    FormToken.objects.filter(owner=user, created_at__lt=timezone.now() - KEPT_FOR).delete()
