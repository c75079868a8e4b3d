"""Forms of the grader's web pages.

They turn what a person typed into the arguments of the model methods and map
the settings schema's field errors back onto the fields they came from.
"""

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.text import format_lazy

from batches.actions import ACTIONS
from batches.bulk import EDIT_LABELS, EDIT_NEEDS, OPERATIONS
from batches.filters import BatchFilter, Statuses, unless_archived_asked
from batches.models import BatchStatus, JobBatch
from core.permissions import Level
from grading.merge import merge_into
from grading.providers.readiness import connections_readiness
from grading.schema import GradingSettings, Processing, SettingsError, validate_settings
from templates_app.models import BatchTemplate

MAX_TAGS = 20
MAX_TAG_LENGTH = 40


class TagsField(forms.CharField):
    """Comma-separated tags in, a list of distinct short strings out."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 1000)
        kwargs.setdefault("help_text", "Separate tags with commas.")
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value) or ""
        tags = list(dict.fromkeys(tag.strip() for tag in text.split(",") if tag.strip()))
        if len(tags) > MAX_TAGS:
            raise forms.ValidationError(f"Use at most {MAX_TAGS} tags.")
        too_long = [tag for tag in tags if len(tag) > MAX_TAG_LENGTH]
        if too_long:
            raise forms.ValidationError(
                f"Tags must be at most {MAX_TAG_LENGTH} characters: {', '.join(too_long)[:200]}"
            )
        return tags


class ModelsField(forms.CharField):
    """Comma-separated model names for a model comparison."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 2000)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value) or ""
        return list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))


_current_zone_name = lazy(timezone.get_current_timezone_name, str)


class DeadlineField(forms.DateTimeField):
    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        # The zone of the request (accounts' middleware activates the user's); the field reads input in it.
        kwargs.setdefault("help_text", format_lazy("In {} time.", _current_zone_name()))
        super().__init__(**kwargs)


# The names a person reads on the list's filters, for its error messages.
FILTER_LABELS = {
    "status": "Status",
    "priority_min": "Lowest priority",
    "priority_max": "Highest priority",
    "tags": "Tags",
    "search": "Search",
    "ordering": "Sort",
    "template": "Template",
    "owner": "Owner",
    "created_after": "Created after",
    "created_before": "Created before",
    "deadline_before": "Deadline before",
}


class BatchFilterForm(forms.Form):
    """The base form of the list's filters: the range check a person needs spelled out."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for name, label in FILTER_LABELS.items():
            if name in self.fields:
                self.fields[name].label = label

    def labelled_errors(self) -> list[tuple[str, str]]:
        """(label, message) per error, the label empty for the form's own: what the page lists."""
        return [
            ("" if field == "__all__" else self.fields[field].label if field in self.fields else field, error)
            for field, errors in self.errors.items()
            for error in errors
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        low, high = data.get("priority_min"), data.get("priority_max")
        if low is not None and high is not None and low > high:
            self.add_error("priority_max", "The highest priority must not be below the lowest.")
        return data


# The orders the list offers, as the API's `ordering` values.
LIST_ORDERS = [
    ("", "Newest first"),
    ("created_at", "Oldest first"),
    ("-priority", "Highest priority"),
    ("priority", "Lowest priority"),
    ("deadline", "Nearest deadline"),
    ("name", "Name"),
]


class PageBatchFilter(BatchFilter):
    """The API's filters (same names, same meaning), with widgets for the page."""

    status = Statuses(choices=BatchStatus.choices, widget=forms.CheckboxSelectMultiple)

    class Meta(BatchFilter.Meta):
        form = BatchFilterForm

    def filtered(self):
        """The filtered batches in the chosen order (newest first by default).

        All of them, newest first, when a filter is invalid (the page says so).
        Archived batches only when the status filter asks for them, as in the API.
        """
        valid = self.is_bound and self.is_valid()
        batches = self.qs if valid else self.queryset
        if not (valid and self.form.cleaned_data.get("ordering")):
            batches = batches.order_by("-created_at", "-id")
        return unless_archived_asked(batches, self.form.cleaned_data.get("status") if valid else None)

    @property
    def is_filtered(self) -> bool:
        return self.is_bound and self.is_valid() and any(self.form.cleaned_data.values())


class BatchIdsField(forms.Field):
    """Batch ids from repeated fields (`batch=3&batch=7`): whole numbers, each once, in the order given."""

    widget = forms.MultipleHiddenInput

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, value: Any) -> list[int]:
        ids = []
        for item in value or []:
            text = str(item).strip()
            if not (text.isascii() and text.isdigit() and 0 < int(text) < 2**63):
                raise forms.ValidationError("Batch ids must be whole numbers.")
            ids.append(int(text))
        return list(dict.fromkeys(ids))


# What the list's bulk bar offers: every batch action of the table, then the edits.
BULK_CHOICES = [
    *((action.name, action.label) for action in ACTIONS),
    *((name, label) for name, label in EDIT_LABELS.items() if name in OPERATIONS),
]


class BulkForm(forms.Form):
    """The list's bulk bar: an action over the ticked rows, the whole page, or every batch the filters match."""

    action = forms.ChoiceField(
        choices=BULK_CHOICES,
        error_messages={"required": "Choose what to do with the selected batches."},
    )
    batch = BatchIdsField()
    # The ids of the rows on the page, sent with "Select all on this page".
    page_batch = BatchIdsField()
    whole_page = forms.BooleanField(required=False)
    # Every batch the filters in `query` match, on every page.
    matching = forms.BooleanField(required=False)
    query = forms.CharField(required=False, max_length=4000)
    priority = forms.IntegerField(
        required=False, min_value=1, max_value=10, error_messages={"invalid": "Give a priority from 1 to 10."}
    )
    tags = TagsField(label="Tags")
    confirmed = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        needs = EDIT_NEEDS.get(data.get("action"))
        if needs and not data.get(needs) and needs not in self.errors:
            what = "a priority from 1 to 10" if needs == "priority" else "one or more tags"
            self.add_error(needs, f"Give {what} for “{dict(BULK_CHOICES)[data['action']]}”.")
        return data

    def params(self) -> dict[str, Any]:
        """What the bulk operation needs besides the action and the batches."""
        needs = EDIT_NEEDS.get(self.cleaned_data["action"])
        return {needs: self.cleaned_data[needs]} if needs else {}

    def chosen_ids(self) -> list[int]:
        """The rows ticked, and the page's rows when "Select all on this page" is ticked."""
        data = self.cleaned_data
        ids = data["batch"] + (data["page_batch"] if data["whole_page"] else [])
        return list(dict.fromkeys(ids))


class SettingsErrorsMixin:
    """Puts a SettingsError's dotted paths on the form fields they came from."""

    settings_fields: dict[str, str] = {}

    def add_settings_errors(self, errors: dict[str, list[str]]) -> None:
        for path, messages in errors.items():
            field = next(
                (
                    name
                    for prefix, name in self.settings_fields.items()
                    if path == prefix or path.startswith(prefix + ".")
                ),
                None,
            )
            for message in messages:
                if field in self.fields:
                    self.add_error(field, message)
                else:
                    self.add_error(None, f"{path}: {message}")


def provider_choices() -> list[tuple[str, str]]:
    """Every connection by name, read when a form is made: one that is not ready says so."""
    return [
        (item.name, item.name if item.ready else f"{item.name} (not ready)")
        for item in connections_readiness()
    ]


# The fields that say who grades, and how (economy needs a batch API): a choice among them is
# checked as it is made.
PROVIDER_FIELDS = {
    "provider": "provider",
    "model": "model",
    "models": "compare_models",
    "processing.delivery": "delivery",
}


class ProviderCheckMixin:
    """Why the provider and models chosen so far could not grade on this server, for the page to flag.

    The form is bound to what the page holds now (htmx sends it as the choice
    changes); the check asks the same question as the start (GradingSettings.problems),
    so a choice flagged here is one the start would refuse. A choice that does not
    validate yet is left to the form's own errors on saving.
    """

    def settings_chosen(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def provider_problems(self) -> list[str]:
        self.is_valid()  # runs the fields' cleaning; other fields' errors do not matter here
        if any(name in self.errors for name in PROVIDER_FIELDS.values()):
            return []
        chosen = self.settings_chosen()
        if chosen is None:
            return []
        try:
            return validate_settings(chosen).problems()
        except SettingsError:
            return []

    def _chosen_overrides(self, settings: dict[str, Any]) -> dict[str, Any]:
        """`settings` with the provider, model, models and delivery as chosen (blank: the template's)."""
        for path, name in PROVIDER_FIELDS.items():
            value = self.cleaned_data.get(name)
            if value in (None, "", []):
                _discard(settings, path)
            else:
                _put(settings, path, value)
        return settings


class ProviderChoiceField(forms.ChoiceField):
    """The connection to grade with; the list under it (batches/_connections.html) says what each is."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("choices", provider_choices)
        super().__init__(**kwargs)

    def connections(self) -> list:
        """Each connection with its kind, endpoint and whether it is ready (never its key)."""
        return connections_readiness()


DELIVERY_CHOICES = [
    ("auto", "Auto: economy when the deadline allows, else real time"),
    ("economy", "Economy: the provider's batch API, half price, within 24 h"),
    ("realtime", "Real time: full price, graded at once"),
]
DELIVERY_HELP = (
    "Auto grades at half price through the provider's batch API when the deadline is more than "
    "30 h away and the provider offers one; the estimate shows both prices."
)


class DeliveryField(forms.TypedChoiceField):
    """The `delivery` processing rule; where it may be left blank, blank is None (the template's)."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("empty_value", None)
        kwargs.setdefault("choices", DELIVERY_CHOICES)
        kwargs.setdefault("label", "Delivery")
        kwargs.setdefault("help_text", DELIVERY_HELP)
        super().__init__(**kwargs)


class NewBatchForm(ProviderCheckMixin, SettingsErrorsMixin, forms.Form):
    settings_fields = {
        "provider": "provider",
        "models": "compare_models",
        "model": "model",
        "processing.delivery": "delivery",
    }

    template = forms.ModelChoiceField(
        queryset=BatchTemplate.objects.none(), widget=forms.RadioSelect, empty_label=None
    )
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    priority = forms.IntegerField(
        min_value=1, max_value=10, initial=5, help_text="1 (lowest) to 10 (highest)."
    )
    tags = TagsField()
    deadline = DeadlineField()
    provider = ProviderChoiceField(label="Provider")
    model = forms.CharField(required=False, max_length=200, label="Model")
    compare_models = ModelsField(
        label="Compare models",
        help_text=(
            "Optional: several models, separated by commas; each document is graded by each. "
            "Write connection:model (anthropic:claude-haiku-4-5, local:llama3) for another connection's model."
        ),
    )
    delivery = DeliveryField(
        required=False, choices=[("", "As the template says (auto unless it sets one)"), *DELIVERY_CHOICES]
    )

    def __init__(self, *args: Any, user, **kwargs: Any):
        super().__init__(*args, **kwargs)
        templates = BatchTemplate.objects.visible_to(user).order_by("category", "name")
        self.fields["template"].queryset = templates
        self.fields["provider"].choices = [("", "As the template says"), *self.fields["provider"].choices]

    def clean_deadline(self):
        deadline = self.cleaned_data.get("deadline")
        if deadline is not None and deadline <= timezone.now():
            raise forms.ValidationError("The deadline must be in the future.")
        return deadline

    def overrides(self) -> dict[str, Any]:
        data = self.cleaned_data
        settings: dict[str, Any] = {}
        if data["provider"]:
            settings["provider"] = data["provider"]
        if data["model"]:
            settings["model"] = data["model"]
        if data["compare_models"]:
            settings["models"] = data["compare_models"]
        if data.get("delivery"):
            settings["processing"] = {"delivery": data["delivery"]}
        return settings

    def settings_chosen(self) -> dict[str, Any] | None:
        template = self.cleaned_data.get("template")
        if template is None:
            return None
        return merge_into(template.settings_layer(), self._chosen_overrides({}))

    def batch_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        fields = ("name", "template", "description", "priority", "tags", "deadline")
        return {name: data[name] for name in fields}


class BatchDetailsForm(forms.Form):
    """What may change at any time before archive."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    priority = forms.IntegerField(min_value=1, max_value=10, help_text="1 (lowest) to 10 (highest).")
    tags = TagsField()
    deadline = DeadlineField()

    def __init__(self, *args: Any, batch: JobBatch, **kwargs: Any):
        self.batch = batch
        kwargs.setdefault("initial", {name: getattr(batch, name) for name in self.base_fields})
        super().__init__(*args, **kwargs)

    def changes(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


# Settings a grader may edit on the page, by dotted path in the settings schema.
EDITABLE_SETTINGS = {
    "provider": "provider",
    "model": "model",
    "models": "compare_models",
    "temperature": "temperature",
    "max_output_tokens": "max_output_tokens",
    "instructions": "instructions",
    "processing.max_attempts": "max_attempts",
    "processing.concurrency": "concurrency",
    "processing.delivery": "delivery",
}


class BatchSettingsForm(ProviderCheckMixin, SettingsErrorsMixin, forms.Form):
    """The grading settings of a draft or paused batch.

    Shown with the effective values (the template's, or the schema's default
    where the template sets none); saved as overrides of the template's: a
    value equal to the template's is not stored, so later template edits still
    reach this batch for everything the grader did not change. A field left
    blank means the template's value, shown as its placeholder; saving the form
    untouched stores nothing new.
    """

    settings_fields = EDITABLE_SETTINGS

    provider = ProviderChoiceField(required=True)
    model = forms.CharField(max_length=200, required=False)
    compare_models = ModelsField(
        label="Compare models",
        help_text=(
            "Optional: several models, separated by commas; each new document is graded by each. "
            "Write connection:model (anthropic:claude-haiku-4-5, local:llama3) for another connection's model."
        ),
    )
    temperature = forms.FloatField(min_value=0, max_value=2, required=False)
    max_output_tokens = forms.IntegerField(
        min_value=1, max_value=100_000, label="Max output tokens", required=False
    )
    instructions = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))
    max_attempts = forms.IntegerField(min_value=1, max_value=20, label="Attempts per job", required=False)
    concurrency = forms.IntegerField(min_value=1, max_value=512, label="Calls in flight", required=False)
    delivery = DeliveryField(
        required=False, choices=[("", "As the template says"), *DELIVERY_CHOICES], label="Delivery"
    )

    # Fields where blank means "the template's value" (the others have their own empty value).
    BLANK_IS_TEMPLATE = ("model", "temperature", "max_output_tokens", "max_attempts", "concurrency")

    def __init__(self, *args: Any, batch: JobBatch, **kwargs: Any):
        self.batch = batch
        self.template_layer = batch.template.settings_layer() if batch.template_id else {}
        effective = batch.effective_settings()
        initial = {}
        for path, name in EDITABLE_SETTINGS.items():
            value = _at(effective, path)
            initial[name] = value if value is not None else _baseline(self.template_layer, path)
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        for path, name in EDITABLE_SETTINGS.items():
            if name in self.BLANK_IS_TEMPLATE:
                baseline = _baseline(self.template_layer, path)
                self.fields[name].widget.attrs["placeholder"] = (
                    f"{baseline:g}" if isinstance(baseline, float) else str(baseline)
                )
                if not self.fields[name].help_text:
                    self.fields[name].help_text = "Blank: the template's value."

    def changes(self) -> dict[str, Any]:
        return {"settings": self.overrides()}

    def settings_chosen(self) -> dict[str, Any]:
        template_layer = self.batch.template.settings_layer() if self.batch.template_id else {}
        return merge_into(template_layer, self._chosen_overrides(_copy(self.batch.settings)))

    def overrides(self) -> dict[str, Any]:
        """The batch's settings overrides with this form's values applied (blank: the template's)."""
        settings = _copy(self.batch.settings)
        for path, name in EDITABLE_SETTINGS.items():
            value = self.cleaned_data[name]
            blank = value is None or (name in self.BLANK_IS_TEMPLATE and value == "")
            if blank or value == _baseline(self.template_layer, path):
                _discard(settings, path)
            else:
                _put(settings, path, value)
        _prune(settings)
        return settings


def _baseline(template_layer: dict[str, Any], path: str) -> Any:
    """What the batch gets for `path` without an override: the template's value, else the schema's default."""
    value = _at(template_layer, path)
    if value is not None:
        return value
    *parents, last = path.split(".")
    schema = Processing if parents == ["processing"] else GradingSettings
    return schema.model_fields[last].get_default(call_default_factory=True)


def _at(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = value


def _discard(data: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data.get(part)
        if not isinstance(data, dict):
            return
    data.pop(last, None)


def _prune(data: dict[str, Any]) -> None:
    """Drop sections left empty by _discard ({"processing": {}}), so an untouched form stores nothing."""
    for key in [key for key, value in data.items() if isinstance(value, dict)]:
        _prune(data[key])
        if not data[key]:
            del data[key]


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    return {key: _copy(value) if isinstance(value, dict) else value for key, value in data.items()}


class ReviewForm(forms.Form):
    """A reviewer's grade: a score per criterion, a total, and a comment.

    Each criterion starts at the score that stands now (the reviewer's, where
    there is a review, else the AI's); changing some and leaving the others is
    a review of those, the others keeping that score. The total follows the
    criteria when left empty (the sum shows as its placeholder); a total typed
    in is the reviewer's own, and it starts filled in only when an earlier
    review set one apart from the criteria. Every criterion out of range is
    named on its field; GradingResult.record_review checks the rest (a typed
    total against criteria all changed), its ReviewError on the field it names.
    """

    score = forms.FloatField(required=False, label="Total score")
    comment = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 4}))
    exemplar = forms.BooleanField(
        required=False,
        label="Use as an exemplar",
        help_text="The grader learns your scale from this grade: calibration and later grading use it.",
    )

    def __init__(self, *args: Any, result, **kwargs: Any):
        self.result = result
        super().__init__(*args, **kwargs)
        self.ai_scores = {item["key"]: item.get("score") for item in result.criteria if item.get("key")}
        reviewed = {item.get("key"): item.get("score") for item in result.reviewed_criteria or []}
        # What stands now for each criterion: the reviewer's score, else the AI's.
        self.standing = {key: reviewed.get(key, ai) for key, ai in self.ai_scores.items()}
        for criterion in result.criteria:
            key, maximum = criterion["key"], criterion.get("max_score") or 0
            self.fields[f"criterion_{key}"] = forms.FloatField(
                required=False,
                label=criterion.get("name") or key,
                initial=_plain(self.standing.get(key)),
                help_text=f"Out of {maximum:g}; the AI gave {_points(criterion.get('score'))}.",
                widget=forms.NumberInput(attrs={"step": "any", "min": "0", "max": f"{maximum:g}"}),
            )
        criteria_sum = sum(score or 0 for score in self.standing.values())
        total = self.fields["score"]
        total.widget.attrs.update(min="0", max=f"{result.max_score:g}", step="any")
        if self.standing:
            total.widget.attrs["placeholder"] = f"{criteria_sum:g}"
            total.help_text = f"Out of {result.max_score:g}. Leave empty to add up the criteria."
        else:
            total.help_text = f"Out of {result.max_score:g}."
        if result.is_reviewed:
            # A total set apart from the criteria was deliberate: keep it; one equal to their sum follows them.
            if not self.standing or abs(result.reviewed_score - criteria_sum) > 1e-6:
                total.initial = _plain(result.reviewed_score)
            self.fields["comment"].initial = result.review_comment
            self.fields["exemplar"].initial = result.is_exemplar

    def criterion_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("criterion_")]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # Every criterion out of its range, each on its own field, by its name.
        for criterion in self.result.criteria:
            name = f"criterion_{criterion['key']}"
            value, maximum = data.get(name), criterion.get("max_score") or 0
            if value is not None and not 0 <= value <= maximum:
                label = criterion.get("name") or criterion["key"]
                self.add_error(name, f"Give “{label}” a score between 0 and {maximum:g}.")
        return data

    def review(self) -> dict[str, Any]:
        """The arguments of GradingResult.record_review.

        Without a total: every criterion, as typed or else as it stands, so the
        total is their sum. With a total: the criteria that differ from the
        AI's (changed now or in an earlier review), which the total goes with.
        """
        data = self.cleaned_data
        scores = {}
        for key, standing in self.standing.items():
            typed = data.get(f"criterion_{key}")
            scores[key] = typed if typed is not None else standing
        if data["score"] is None:
            criteria = [{"key": key, "score": score} for key, score in scores.items() if score is not None]
        else:
            criteria = [
                {"key": key, "score": score}
                for key, score in scores.items()
                if score is not None
                and self.ai_scores.get(key) is not None
                and abs(score - self.ai_scores[key]) > 1e-9
            ]
        return {
            "score": data["score"],
            "criteria": criteria,
            "comment": data["comment"],
            "exemplar": data["exemplar"],
        }

    def add_review_error(self, field: str, message: str) -> None:
        self.add_error(field if field in self.fields else None, message)


def _plain(value: float | None) -> float | int | None:
    """16.0 -> 16, so a field shows "16" rather than "16.0"."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _points(value: Any) -> str:
    return "—" if value is None else f"{round(float(value), 2):g}"


class ShareForm(forms.Form):
    """Give a user or a group exactly one level of access to a batch."""

    kind = forms.ChoiceField(
        choices=[("user", "User"), ("group", "Group")],
        initial="user",
        widget=forms.RadioSelect,
        label="Share with a",
        error_messages={
            "required": "Say whether it is a user or a group.",
            "invalid_choice": "Say whether it is a user or a group, not “%(value)s”.",
        },
    )
    name = forms.CharField(
        max_length=150,
        label="Username or group name",
        error_messages={"required": "Give the username or group name."},
    )
    permission = forms.ChoiceField(choices=Level.choices, initial=Level.VIEW, label="Access")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind, name = data.get("kind"), data.get("name")
        if kind and name:
            model = Group if kind == "group" else get_user_model()
            lookup = {"name": name} if kind == "group" else {"username": name}
            data["principal"] = model.objects.filter(**lookup).first()
            if data["principal"] is None:
                self.add_error("name", f"No {kind} is called “{name}”.")
        return data

    @classmethod
    def for_removal(cls, data) -> "ShareForm":
        """The form an unshare posts: who, at no particular level (unsharing takes every level)."""
        return cls({**data.dict(), "permission": Level.VIEW})

    def problem(self) -> str:
        """The first thing wrong, as one sentence: a forged post may break several fields at once."""
        for name in self.fields:
            if name in self.errors:
                return self.errors[name][0]
        return " ".join(self.non_field_errors())
