"""Forms of the inbox, assignment-rule and start-from-scratch pages.

A rule form checks what the API checks (AssignmentRule.problems(), which
knows whose access counts: the rule's owner's) and puts each problem on its
field. A batch from scratch gets its settings from the form itself, stored as
the batch's own settings since it has no template.
"""

import re
from typing import Any

from django import forms
from django.db.models import Q
from django.utils import timezone

from batches.forms import DeadlineField, DeliveryField, ProviderChoiceField, TagsField
from batches.models import BatchStatus, JobBatch
from batches.rule_models import AssignmentRule, DocumentKind, NamePatternKind
from batches.rules import clean_extensions
from grading.schema import economy_problem, target_problems
from templates_app.models import BatchTemplate

KB = 1024
AUTO_START_CHOICES = [("", "As the batch's settings say"), ("yes", "Always start"), ("no", "Never start")]
CRITERIA_ROWS = 8


def _listed(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


class RuleForm(forms.Form):
    name = forms.CharField(max_length=200)
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    is_fallback = forms.BooleanField(
        required=False,
        label="Fallback",
        help_text="Takes every document no other rule took (leave the conditions empty).",
    )
    # conditions
    extensions = forms.CharField(required=False, max_length=300, help_text="e.g. .pdf, .docx")
    content_types = forms.CharField(
        required=False,
        max_length=500,
        label="Content types",
        help_text="Detected from the file, e.g. application/pdf, text/*",
    )
    name_pattern = forms.CharField(required=False, max_length=200, label="File name pattern")
    name_pattern_kind = forms.ChoiceField(choices=NamePatternKind.choices, label="Pattern is a")
    min_size_kb = forms.IntegerField(required=False, min_value=0, max_value=10**9, label="Smallest (KB)")
    max_size_kb = forms.IntegerField(required=False, min_value=0, max_value=10**9, label="Largest (KB)")
    contains = forms.CharField(
        required=False,
        max_length=200,
        label="Contains",
        help_text="A word or phrase near the start of the text.",
    )
    document_kind = forms.ChoiceField(
        required=False, choices=[("", "Any kind"), *DocumentKind.choices], label="Kind of document"
    )
    # target
    target_batch = forms.ModelChoiceField(
        queryset=JobBatch.objects.none(),
        required=False,
        label="Into the batch",
        empty_label="— a new batch —",
    )
    template = forms.ModelChoiceField(
        queryset=BatchTemplate.objects.none(), required=False, label="Or new batches from the template"
    )
    batch_name = forms.CharField(
        required=False,
        max_length=200,
        label="New batches' name",
        help_text="{template}, {group}, {date}, {rule}; e.g. {template} – {group} – {date}",
    )
    group_by = forms.CharField(
        required=False,
        max_length=200,
        label="One batch per group of",
        help_text=r"A regular expression on the file name, e.g. ^(\w+)_",
    )
    priority = forms.IntegerField(min_value=1, max_value=10, initial=5)
    tags = TagsField()
    deadline_days = forms.IntegerField(required=False, min_value=1, max_value=365, label="Due after (days)")
    auto_start = forms.ChoiceField(choices=AUTO_START_CHOICES, required=False, label="Start grading")

    FIELD_OF = {"min_size": "min_size_kb", "max_size": "max_size_kb"}

    def __init__(self, *args: Any, user, rule: AssignmentRule | None = None, **kwargs: Any):
        self.user, self.rule = user, rule
        owner = rule.owner if rule is not None else user
        if rule is not None and "initial" not in kwargs:
            kwargs["initial"] = self._initial(rule)
        super().__init__(*args, **kwargs)
        targets = JobBatch.objects.changeable_by(owner).exclude(status=BatchStatus.ARCHIVED)
        templates = BatchTemplate.objects.visible_to(owner)
        if owner.pk != user.pk:
            # Someone else's rule (shared, or a superuser's visit): its choices are the owner's
            # and the user's at once, so the page names no batch or template the user may not see.
            # The rule's current target stays selectable, unnamed when the user may not see it.
            targets = self._also_seen(targets, JobBatch.objects.visible_to(user), rule.target_batch_id)
            templates = self._also_seen(templates, BatchTemplate.objects.visible_to(user), rule.template_id)
            self._unnamed(self.fields["target_batch"], JobBatch, user, rule.target_batch_id, owner)
            self._unnamed(self.fields["template"], BatchTemplate, user, rule.template_id, owner)
        self.fields["target_batch"].queryset = targets.order_by("-created_at", "-id")
        self.fields["template"].queryset = templates.order_by("category", "name")

    @staticmethod
    def _also_seen(choices, seen, current: int | None):
        return choices.filter(Q(pk__in=seen.values("pk")) | Q(pk=current or 0))

    @staticmethod
    def _unnamed(field: forms.ModelChoiceField, model, user, current: int | None, owner) -> None:
        if current and not model.objects.visible_to(user).filter(pk=current).exists():
            noun = model._meta.verbose_name
            field.label_from_instance = lambda obj: (
                f"a {noun} of {owner.get_username()}'s" if obj.pk == current else str(obj)
            )

    @staticmethod
    def _initial(rule: AssignmentRule) -> dict[str, Any]:
        return {
            **{name: getattr(rule, name) for name in ("name", "is_active", "is_fallback", "name_pattern")},
            **{name: getattr(rule, name) for name in ("name_pattern_kind", "contains", "document_kind")},
            "extensions": ", ".join(rule.extensions or []),
            "content_types": ", ".join(rule.content_types or []),
            "min_size_kb": rule.min_size // KB if rule.min_size is not None else None,
            "max_size_kb": rule.max_size // KB if rule.max_size is not None else None,
            "target_batch": rule.target_batch_id,
            "template": rule.template_id,
            "batch_name": rule.batch_name,
            "group_by": rule.group_by,
            "priority": rule.priority,
            "tags": rule.tags,
            "deadline_days": rule.deadline_days,
            "auto_start": {None: "", True: "yes", False: "no"}[rule.auto_start],
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        rule = self.rule or AssignmentRule(owner=self.user)
        for name, value in self._values(data).items():
            setattr(rule, name, value)
        for field, messages in rule.problems().items():
            target = self.FIELD_OF.get(field, field)
            for message in messages:
                self.add_error(target if target in self.fields else None, message)
        self.built = rule
        return data

    def _values(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": data["name"],
            "is_active": data["is_active"],
            "is_fallback": data["is_fallback"],
            "extensions": clean_extensions(_listed(data["extensions"])),
            "content_types": [value.lower() for value in _listed(data["content_types"])],
            "name_pattern": data["name_pattern"],
            "name_pattern_kind": data["name_pattern_kind"],
            "min_size": data["min_size_kb"] * KB if data["min_size_kb"] is not None else None,
            "max_size": data["max_size_kb"] * KB if data["max_size_kb"] is not None else None,
            "contains": data["contains"],
            "document_kind": data["document_kind"],
            "target_batch": data["target_batch"],
            "template": data["template"],
            "batch_name": data["batch_name"],
            "group_by": data["group_by"],
            "priority": data["priority"],
            "tags": data["tags"],
            "deadline_days": data["deadline_days"],
            "auto_start": {"": None, "yes": True, "no": False}[data["auto_start"] or ""],
        }

    def save(self) -> AssignmentRule:
        rule = self.built
        if rule.pk is None:
            last = AssignmentRule.objects.filter(owner=rule.owner).order_by("-position").first()
            rule.position = (last.position + 1) if last else 1
        rule.save()
        return rule


class AssignForm(forms.Form):
    batch = forms.ModelChoiceField(queryset=JobBatch.objects.none(), label="Add to the batch")
    documents = forms.TypedMultipleChoiceField(coerce=int, required=False)

    def __init__(self, *args: Any, user, documents: list, **kwargs: Any):
        super().__init__(*args, **kwargs)
        accepting = JobBatch.objects.changeable_by(user).filter(
            status__in=[BatchStatus.DRAFT, BatchStatus.PAUSED]
        )
        self.fields["batch"].queryset = accepting.order_by("-created_at", "-id")
        self.fields["documents"].choices = [(document.pk, document.original_name) for document in documents]


# --- a batch from scratch ---------------------------------------------------------------------


class ScratchBatchForm(forms.Form):
    """A batch without a template: its provider, model, instructions and rubric are typed here."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    priority = forms.IntegerField(
        min_value=1, max_value=10, initial=5, help_text="1 (lowest) to 10 (highest)."
    )
    tags = TagsField()
    deadline = DeadlineField()
    provider = ProviderChoiceField(required=True, initial="builtin")
    model = forms.CharField(max_length=200, initial="builtin-v1")
    instructions = forms.CharField(
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the grader should know: the assignment, the level, what matters most.",
    )
    auto_start = forms.BooleanField(required=False, label="Start grading as soon as documents are uploaded")
    delivery = DeliveryField(required=False, initial="auto")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for index in range(1, CRITERIA_ROWS + 1):
            required = index == 1
            self.fields[f"criterion_{index}_name"] = forms.CharField(
                required=required, max_length=200, label=f"Criterion {index}"
            )
            self.fields[f"criterion_{index}_points"] = forms.FloatField(
                required=required, min_value=0.5, max_value=1000, label=f"Points for criterion {index}"
            )
            self.fields[f"criterion_{index}_description"] = forms.CharField(
                required=False, max_length=4000, label=f"What criterion {index} looks for"
            )

    def criterion_rows(self) -> list[tuple[forms.BoundField, forms.BoundField, forms.BoundField]]:
        return [
            (self[f"criterion_{i}_name"], self[f"criterion_{i}_points"], self[f"criterion_{i}_description"])
            for i in range(1, CRITERIA_ROWS + 1)
        ]

    def clean_deadline(self):
        deadline = self.cleaned_data.get("deadline")
        if deadline is not None and deadline <= timezone.now():
            raise forms.ValidationError("The deadline must be in the future.")
        return deadline

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        criteria, keys = [], set()
        self.row_of_criterion: list[int] = []
        for index in range(1, CRITERIA_ROWS + 1):
            name = (data.get(f"criterion_{index}_name") or "").strip()
            points = data.get(f"criterion_{index}_points")
            if not name and points is None:
                continue
            if not name:
                self.add_error(f"criterion_{index}_name", "Name the criterion, or clear its points.")
                continue
            if points is None:
                self.add_error(f"criterion_{index}_points", "How many points is it worth?")
                continue
            key = _key(name, index, keys)
            self.row_of_criterion.append(index)
            criteria.append(
                {
                    "key": key,
                    "name": name,
                    "points": points,
                    "description": data.get(f"criterion_{index}_description") or "",
                }
            )
        data["criteria"] = criteria
        return data

    def settings(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "provider": data["provider"],
            "model": data["model"],
            "instructions": data["instructions"],
            "rubric": {"criteria": data["criteria"]},
            "processing": {"auto_start": data["auto_start"], "delivery": data["delivery"] or "auto"},
        }

    def batch_fields(self) -> dict[str, Any]:
        return {
            name: self.cleaned_data[name] for name in ("name", "description", "priority", "tags", "deadline")
        }

    def provider_problems(self) -> list[str]:
        """Why the provider and model typed so far could not grade here (the start's own check), for the page."""
        self.is_valid()  # cleans each field; the rubric's rows need not be filled in yet
        if "provider" in self.errors or "model" in self.errors:
            return []
        provider = self.cleaned_data["provider"]
        problems = target_problems([(provider, self.cleaned_data["model"])])
        if self.cleaned_data.get("delivery") == "economy":
            problems += [problem for problem in [economy_problem(provider)] if problem]
        return problems

    def add_settings_errors(self, errors: dict[str, list[str]]) -> None:
        for path, messages in errors.items():
            field = self._settings_field(path)
            for message in messages:
                self.add_error(
                    field if field in self.fields else None, message if field else f"{path}: {message}"
                )

    def _settings_field(self, path: str) -> str | None:
        """The form field a settings error's dotted path came from ("rubric.criteria.0.points" -> a row)."""
        parts = path.split(".")
        if parts[0] in ("provider", "model", "instructions"):
            return parts[0]
        if parts == ["processing", "delivery"]:
            return "delivery"
        if parts[:2] == ["rubric", "criteria"] and len(parts) >= 4 and parts[2].isdigit():
            rows = getattr(self, "row_of_criterion", [])
            position = int(parts[2])
            if position < len(rows):
                return f"criterion_{rows[position]}_{'points' if parts[3] == 'points' else 'name'}"
        return None


def _key(name: str, index: int, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:50] or f"criterion_{index}"
    key, suffix = base, 2
    while key in taken:
        key, suffix = f"{base}_{suffix}", suffix + 1
    taken.add(key)
    return key
