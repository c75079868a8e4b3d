"""Filters and ordering for /api/batch-templates (django-filter): an unknown ordering is a 400."""

import django_filters

from templates_app.models import BatchTemplate


class BatchTemplateFilter(django_filters.FilterSet):
    # Popular templates first with ?ordering=-usage_count; the name breaks ties.
    ordering = django_filters.OrderingFilter(
        fields=(("name", "name"), ("usage_count", "usage_count"), ("created_at", "created_at")),
    )

    class Meta:
        model = BatchTemplate
        fields = ["category", "is_public"]
