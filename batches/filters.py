"""Filters and ordering for /api/batches (django-filter)."""

import django_filters
from django import forms
from django.db.models import F, Q, QuerySet

from batches.models import BatchStatus, JobBatch

ORDERING_FIELDS = ("priority", "created_at", "deadline", "name")


class StatusField(django_filters.fields.MultipleChoiceField):
    def clean(self, value):
        if value:
            value = [part.strip() for item in value for part in str(item).split(",") if part.strip()]
        return super().clean(value)


class Statuses(django_filters.MultipleChoiceFilter):
    field_class = StatusField


class TagsField(django_filters.fields.MultipleChoiceField):
    """Free-text tags: any value is a valid choice, comma-separated or repeated."""

    def valid_value(self, value) -> bool:
        return True

    def clean(self, value):
        if value:
            value = [part.strip() for item in value for part in str(item).split(",") if part.strip()]
        value = super().clean(value)
        if any("\x00" in tag for tag in value):
            raise forms.ValidationError("Tags may not contain NUL characters.")
        if len(value) > 20:
            raise forms.ValidationError("Give at most 20 tags.")
        return value


class Tags(django_filters.MultipleChoiceFilter):
    field_class = TagsField


class Priority(django_filters.NumberFilter):
    field_class = forms.IntegerField


class NullsLastOrdering(django_filters.OrderingFilter):
    """Batches without a deadline sort after those with one, on every database,
    and ties break on the id so that pages never overlap."""

    def filter(self, qs: QuerySet, value: list[str]) -> QuerySet:
        if not value:
            return qs
        ordering = []
        for param in value:
            field = self.get_ordering_value(param)
            descending = field.startswith("-")
            expression = F(field.lstrip("-"))
            ordering.append(
                expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
            )
        return qs.order_by(*ordering, "-id")


def unless_archived_asked(queryset: QuerySet, statuses: list[str] | None) -> QuerySet:
    """Archived batches leave the lists: they are listed only when a status filter names them."""
    if statuses:
        return queryset  # the status filter itself decides, archived among them or not
    return queryset.exclude(status=BatchStatus.ARCHIVED)


class BatchFilter(django_filters.FilterSet):
    status = Statuses(
        choices=BatchStatus.choices,
        help_text="One or more statuses (repeat or comma-separate). Archived batches are listed only "
        "when asked for: status=archived.",
    )
    priority_min = Priority(field_name="priority", lookup_expr="gte", min_value=1, max_value=10)
    priority_max = Priority(field_name="priority", lookup_expr="lte", min_value=1, max_value=10)
    tags = Tags(
        method="filter_tags", help_text="Batches carrying all of these tags (repeat or comma-separate)."
    )
    template = django_filters.CharFilter(method="filter_template", help_text="Template id or slug.")
    owner = django_filters.CharFilter(method="filter_owner", help_text="Owner's user id or username.")
    search = django_filters.CharFilter(
        method="filter_search", help_text="Words in name, description or tags."
    )
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")
    deadline_before = django_filters.IsoDateTimeFilter(field_name="deadline", lookup_expr="lte")
    ordering = NullsLastOrdering(fields=ORDERING_FIELDS)

    class Meta:
        model = JobBatch
        fields: list[str] = []

    def filter_tags(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        return queryset.tagged(*value) if value else queryset

    def filter_template(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(_id_or(value, "template", "template__slug"))

    def filter_owner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(_id_or(value, "owner", "owner__username"))

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        for word in value.split()[:10]:
            queryset = queryset.filter(
                Q(name__icontains=word) | Q(description__icontains=word) | Q(tags__icontains=word)
            )
        return queryset


def _id_or(value: str, id_field: str, text_field: str) -> Q:
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) < 19:
        return Q(**{id_field: int(value)})
    return Q(**{text_field: value})
