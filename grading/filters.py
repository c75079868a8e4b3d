"""Filters for job lists (django-filter)."""

import django_filters
from django import forms
from rest_framework.exceptions import ValidationError

from grading.models import GradingJob, JobStatus


class JobStatusField(django_filters.fields.MultipleChoiceField):
    def clean(self, value):
        if value:
            value = [part.strip() for item in value for part in str(item).split(",") if part.strip()]
        return super().clean(value)


class JobStatuses(django_filters.MultipleChoiceFilter):
    field_class = JobStatusField


class IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class JobFilter(django_filters.FilterSet):
    batch = IdFilter(field_name="batch", min_value=1, max_value=2**63 - 1)
    status = JobStatuses(
        choices=JobStatus.choices, help_text="One or more statuses (repeat or comma-separate)."
    )
    provider = django_filters.CharFilter()
    model = django_filters.CharFilter()

    class Meta:
        model = GradingJob
        fields: list[str] = []


def filtered(filterset_class: type[django_filters.FilterSet], request, queryset):
    """Apply a filterset outside a list view (a nested list), with the same 400 on bad values."""
    filterset = filterset_class(request.query_params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs
