"""The template editor's form: a template's fields, its rubric as rows, and the errors on them.

The rubric is a list of criterion rows, each with its level rows. Their
fields are named by position (`criterion-2-points`, `criterion-2-level-1-label`)
and the form learns how many rows there are from the counts posted with them
(`criteria_count`, `criterion-2-levels`), so rows can be added, removed and
moved without JavaScript: each such button posts the form back, and the page
comes back with the rows changed and everything typed kept
(`TemplateForm.after`). static/js/template_editor.js does the same in place.

Nothing is checked twice: the form converts what was typed (numbers, lists)
and asks for what a row needs to be a row at all; the template serializer, and
through it the settings schema (grading/schema.py), checks the rest, and
`add_template_errors` puts each of its errors on the field it came from
("rubric.criteria.2.levels.1.descriptor" on that level's description).
"""

import re
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.http import QueryDict

from batches.forms import ModelsField, ProviderChoiceField
from grading.schema import GradingSettings, Processing
from templates_app.models import BatchTemplate, TemplateCategory

# More rows than the schema allows (20 criteria, 10 levels), so its own message
# says so; past these a post is refused before any field is built.
MAX_CRITERIA_ROWS = 30
MAX_LEVEL_ROWS = 15
# Blank criterion rows offered: a new template gets a few, an edited one one more.
BLANK_ROWS_NEW = 3
BLANK_ROWS_EDIT = 1

CRITERION_PARTS = ("key", "name", "points", "description", "keywords")
LEVEL_PARTS = ("label", "points", "descriptor")

# Settings fields on the form, by dotted path in the settings schema; processing
# rules and the job structure are the template's other two objects.
SETTINGS_FIELDS = {
    "provider": "provider",
    "model": "model",
    "models": "compare_models",
    "temperature": "temperature",
    "max_output_tokens": "max_output_tokens",
    "instructions": "instructions",
}
PROCESSING_FIELDS = (
    "max_attempts",
    "concurrency",
    "requests_per_minute",
    "stagger_ms",
    "timeout_s",
    "backoff_base_s",
    "backoff_max_s",
    "auto_start",
)
STRUCTURE_FIELDS = ("naming", "per_model", "student_pattern")


class RowsRefused(ValueError):
    """A post with more rows than the editor takes, or counts that are not numbers."""


def criterion_name(index: int | str, part: str) -> str:
    return f"criterion-{index}-{part}"


def level_name(index: int | str, level: int | str, part: str) -> str:
    return f"criterion-{index}-level-{level}-{part}"


def levels_name(index: int | str) -> str:
    return f"criterion-{index}-levels"


# --- rows ----------------------------------------------------------------------------------------


def rows_of_template(template: BatchTemplate | None) -> list[dict[str, Any]]:
    """A template's criteria as editor rows: every value as a field shows it."""
    criteria = (((template.default_settings if template else {}) or {}).get("rubric") or {}).get("criteria")
    rows = []
    for criterion in criteria or []:
        rows.append(
            {
                "key": criterion.get("key", ""),
                "name": criterion.get("name", ""),
                "points": _shown(criterion.get("points")),
                "description": criterion.get("description", ""),
                "keywords": ", ".join(criterion.get("keywords") or []),
                "levels": [
                    {
                        "label": level.get("label", ""),
                        "points": _shown(level.get("points")),
                        "descriptor": level.get("descriptor", ""),
                    }
                    for level in criterion.get("levels") or []
                ],
            }
        )
    return rows


def rows_of_post(data: QueryDict) -> list[dict[str, Any]]:
    """The rows a post holds, as typed, in their order."""
    rows = []
    for index in range(_count(data.get("criteria_count"), MAX_CRITERIA_ROWS)):
        row = {part: data.get(criterion_name(index, part), "") for part in CRITERION_PARTS}
        row["levels"] = [
            {part: data.get(level_name(index, level, part), "") for part in LEVEL_PARTS}
            for level in range(_count(data.get(levels_name(index)), MAX_LEVEL_ROWS))
        ]
        rows.append(row)
    return rows


def _count(raw: str | None, most: int) -> int:
    try:
        count = int(raw or 0)
    except ValueError:
        raise RowsRefused("The rubric's row counts must be whole numbers.") from None
    if not 0 <= count <= most:
        raise RowsRefused(f"The editor takes at most {most} rows here.")
    return count


def blank_criterion() -> dict[str, Any]:
    return {**dict.fromkeys(CRITERION_PARTS, ""), "levels": []}


def blank_level() -> dict[str, str]:
    return dict.fromkeys(LEVEL_PARTS, "")


def is_blank(row: dict[str, Any]) -> bool:
    """Nothing typed in a criterion row (its key aside) or a level row: it is left out."""
    typed = [str(row.get(part) or "").strip() for part in row if part not in ("key", "levels")]
    return not any(typed) and all(is_blank(level) for level in row.get("levels", []))


# Buttons that change the rows: "add-criterion", "add-level:2", "remove-criterion:2",
# "remove-level:2:1", "up:2", "down:2", "level-up:2:1", "level-down:2:1".
OP = re.compile(
    r"^(add-criterion|add-level|remove-criterion|remove-level|up|down|level-up|level-down)((?::\d+){0,2})$"
)


@dataclass
class RowsChange:
    """What a row button did: the rows after it, a sentence for the page, the field to take the focus."""

    rows: list[dict[str, Any]]
    said: str
    focus: str | None = None


def apply_op(rows: list[dict[str, Any]], op: str) -> RowsChange | None:
    """The rows with one button's change applied; None for a button the editor does not have."""
    match = OP.match(op)
    if not match:
        return None
    name, numbers = match.group(1), [int(n) for n in match.group(2).split(":")[1:]]
    rows = [{**row, "levels": list(row["levels"])} for row in rows]
    if name == "add-criterion":
        if len(rows) >= MAX_CRITERIA_ROWS:
            return RowsChange(rows, f"The editor takes at most {MAX_CRITERIA_ROWS} criterion rows.")
        rows.append(blank_criterion())
        return RowsChange(rows, f"Added criterion {len(rows)}.", criterion_name(len(rows) - 1, "name"))
    if not numbers or not 0 <= numbers[0] < len(rows):
        return None
    index = numbers[0]
    levels = rows[index]["levels"]
    if name == "add-level":
        if len(levels) >= MAX_LEVEL_ROWS:
            return RowsChange(rows, f"The editor takes at most {MAX_LEVEL_ROWS} level rows per criterion.")
        levels.append(blank_level())
        said = f"Added level {len(levels)} to criterion {index + 1}."
        return RowsChange(rows, said, level_name(index, len(levels) - 1, "label"))
    if name == "remove-criterion":
        rows.pop(index)
        return RowsChange(rows, f"Removed criterion {index + 1}.")
    if name in ("up", "down"):
        target, said = _move(rows, index, -1 if name == "up" else 1, f"Criterion {index + 1}")
        return RowsChange(rows, said, criterion_name(target, "name"))
    if len(numbers) != 2 or not 0 <= numbers[1] < len(levels):
        return None
    level = numbers[1]
    if name == "remove-level":
        levels.pop(level)
        return RowsChange(rows, f"Removed level {level + 1} of criterion {index + 1}.")
    step = -1 if name == "level-up" else 1
    target, said = _move(levels, level, step, f"Level {level + 1} of criterion {index + 1}")
    return RowsChange(rows, said, level_name(index, target, "label"))


def _move(items: list, index: int, step: int, what: str) -> tuple[int, str]:
    """Swap an item with its neighbour in place; its place after, and a sentence."""
    target = index + step
    if not 0 <= target < len(items):
        return index, f"{what} is already {'first' if step < 0 else 'last'}."
    items[index], items[target] = items[target], items[index]
    return target, f"{what} moved {'up' if step < 0 else 'down'}: it is now number {target + 1}."


def rows_as_data(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows as the form's field values, numbered by their place."""
    data: dict[str, Any] = {"criteria_count": len(rows)}
    for index, row in enumerate(rows):
        data[levels_name(index)] = len(row["levels"])
        for part in CRITERION_PARTS:
            data[criterion_name(index, part)] = row.get(part, "")
        for number, level in enumerate(row["levels"]):
            for part in LEVEL_PARTS:
                data[level_name(index, number, part)] = level.get(part, "")
    return data


def _shown(value: Any) -> str:
    """A number as a field shows it: 20.0 -> "20"."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- the form ------------------------------------------------------------------------------------


@dataclass
class LevelRow:
    """A level's fields; index and number are "__L__" and "__M__" in the markup the script copies."""

    index: int | str
    number: int | str
    label: forms.BoundField
    points: forms.BoundField
    descriptor: forms.BoundField


@dataclass
class CriterionRow:
    """A criterion's fields and its levels; index and number are "__C__" and "__N__" in the copied markup."""

    index: int | str
    number: int | str
    key: forms.BoundField
    name: forms.BoundField
    points: forms.BoundField
    description: forms.BoundField
    keywords: forms.BoundField
    count: forms.BoundField
    levels: list[LevelRow] = field(default_factory=list)


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=200, label="Template name")
    slug = forms.SlugField(
        max_length=100,
        required=False,
        label="Short name",
        help_text="Names the template in the API and in manage.py grade --template; made from the name when left blank.",
    )
    description = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2}))
    category = forms.ChoiceField(
        choices=TemplateCategory.choices, initial=TemplateCategory.OTHER, label="Document type"
    )
    instructions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What the grader should know: the assignment, the level, what matters most.",
    )
    words_min = forms.IntegerField(required=False, label="Expected words, at least")
    words_max = forms.IntegerField(required=False, label="Expected words, at most")
    provider = ProviderChoiceField(required=True, initial="builtin", label="Default provider")
    model = forms.CharField(required=False, max_length=200, label="Default model")
    compare_models = ModelsField(
        label="Compare models",
        help_text=(
            "Optional: several models, separated by commas; each document is graded by each. "
            "Write provider:model (anthropic:claude-haiku-4-5) for another provider's model."
        ),
    )
    temperature = forms.FloatField(required=False)
    max_output_tokens = forms.IntegerField(required=False, label="Max output tokens")
    max_attempts = forms.IntegerField(required=False, label="Attempts per job")
    concurrency = forms.IntegerField(required=False, label="Calls in flight")
    requests_per_minute = forms.IntegerField(
        required=False, label="Requests per minute", help_text="Blank: no limit of the template's own."
    )
    stagger_ms = forms.IntegerField(required=False, label="Pause between calls (ms)")
    timeout_s = forms.FloatField(required=False, label="Time allowed per call (s)")
    backoff_base_s = forms.FloatField(required=False, label="First retry after (s)")
    backoff_max_s = forms.FloatField(required=False, label="Longest wait between retries (s)")
    auto_start = forms.BooleanField(required=False, label="Start grading as soon as documents are uploaded")
    naming = forms.CharField(
        required=False,
        max_length=200,
        label="Job names",
        help_text="Placeholders: {batch}, {filename}, {model}, {provider}, {index}.",
    )
    per_model = forms.BooleanField(
        required=False, label="One job per model when several models are compared", initial=True
    )
    student_pattern = forms.CharField(
        required=False,
        max_length=200,
        label="Student names in file names",
        help_text="canvas, moodle, or a pattern such as {student_id}_{last}_{first}.*; blank reads no names.",
    )
    criteria_count = forms.IntegerField(widget=forms.HiddenInput, min_value=0, required=False)
    # When the template was last saved as the editor opened it: a save over a later one is asked about.
    version = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, rows: list[dict[str, Any]], **kwargs: Any):
        """`rows` gives the shape (how many criteria, how many levels each); an unbound form also its values."""
        super().__init__(*args, **kwargs)
        self.shape = [len(row["levels"]) for row in rows]
        if not self.is_bound:
            self.initial.update(rows_as_data(rows))
        for name, path in (("temperature", "temperature"), ("max_output_tokens", "max_output_tokens")):
            self.fields[name].widget.attrs["placeholder"] = _shown(GradingSettings.model_fields[path].default)
        self.fields["model"].widget.attrs["placeholder"] = GradingSettings.model_fields["model"].default
        for name in PROCESSING_FIELDS:
            default = Processing.model_fields[name].default
            if name != "auto_start" and default is not None:
                self.fields[name].widget.attrs["placeholder"] = _shown(default)
        for name in ("temperature", "timeout_s", "backoff_base_s", "backoff_max_s"):
            self.fields[name].widget.attrs["step"] = "any"
        for index, levels in enumerate(self.shape):
            self._add_criterion_fields(index, levels)

    def _add_criterion_fields(self, index: int, levels: int) -> None:
        self.fields[criterion_name(index, "key")] = forms.CharField(required=False, widget=forms.HiddenInput)
        self.fields[criterion_name(index, "name")] = forms.CharField(
            required=False, max_length=200, label="Name"
        )
        self.fields[criterion_name(index, "points")] = forms.FloatField(
            required=False, label="Points", widget=forms.NumberInput(attrs={"step": "any"})
        )
        self.fields[criterion_name(index, "description")] = forms.CharField(
            required=False, label="What it looks for", widget=forms.Textarea(attrs={"rows": 2})
        )
        self.fields[criterion_name(index, "keywords")] = forms.CharField(
            required=False,
            label="Keywords",
            help_text="Separate with commas; the offline grader looks for them.",
        )
        self.fields[levels_name(index)] = forms.IntegerField(required=False, widget=forms.HiddenInput)
        for level in range(levels):
            self.fields[level_name(index, level, "label")] = forms.CharField(
                required=False, max_length=80, label="Label"
            )
            self.fields[level_name(index, level, "points")] = forms.FloatField(
                required=False, label="Score", widget=forms.NumberInput(attrs={"step": "any"})
            )
            self.fields[level_name(index, level, "descriptor")] = forms.CharField(
                required=False, label="Description", widget=forms.Textarea(attrs={"rows": 2})
            )

    @classmethod
    def of_template(cls, template: BatchTemplate | None, blank_rows: int) -> "TemplateForm":
        """The unbound form showing a template (or nothing, for a new one), with blank criterion rows after."""
        rows = rows_of_template(template) + [blank_criterion() for _ in range(blank_rows)]
        return cls(rows=rows, initial=initial_of(template) if template else {})

    @classmethod
    def after(cls, data: QueryDict, op: str) -> tuple["TemplateForm", str] | None:
        """The unbound form after a row button ("add-level:2", …): the rows changed, all else as typed.

        Unbound, so a half-typed row is not flagged before the teacher saves.
        None for a button the editor does not have.
        """
        change = apply_op(rows_of_post(data), op)
        if change is None:
            return None
        typed = {}
        for name, base_field in cls.base_fields.items():
            if isinstance(base_field, forms.BooleanField):
                typed[name] = name in data
            elif name != "criteria_count":
                typed[name] = data.get(name, "")
        form = cls(rows=change.rows, initial=typed)
        if change.focus in form.fields:
            # Without a script the page reloads: the changed row's field takes the focus, and the view.
            form.fields[change.focus].widget.attrs["autofocus"] = True
        return form, change.said

    def criterion_rows(self) -> list[CriterionRow]:
        rows = []
        for index, levels in enumerate(self.shape):
            rows.append(
                CriterionRow(
                    index,
                    index + 1,
                    *(self[criterion_name(index, part)] for part in CRITERION_PARTS),
                    count=self[levels_name(index)],
                    levels=[
                        LevelRow(
                            level, level + 1, *(self[level_name(index, level, part)] for part in LEVEL_PARTS)
                        )
                        for level in range(levels)
                    ],
                )
            )
        return rows

    def blank_row(self) -> CriterionRow:
        """The markup the script copies for a new criterion or level: names hold __C__ and __L__."""
        blank = TemplateForm(rows=[])
        blank.fields = {}
        blank._add_criterion_fields("__C__", 1)  # type: ignore[arg-type]
        for name in list(blank.fields):
            blank.fields[name.replace("level-0-", "level-__L__-")] = blank.fields.pop(name)
        return CriterionRow(
            "__C__",
            "__N__",
            *(blank[criterion_name("__C__", part)] for part in CRITERION_PARTS),
            count=blank[levels_name("__C__")],
            levels=[
                LevelRow(
                    "__L__", "__M__", *(blank[level_name("__C__", "__L__", part)] for part in LEVEL_PARTS)
                )
            ],
        )

    # --- cleaning -----------------------------------------------------------------------------

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # Which row each criterion (and level) sent to the schema came from, to put its errors back.
        self.criterion_rows_used: list[tuple[int, list[int]]] = []
        criteria = []
        for index, levels in enumerate(self.shape):
            row = self._criterion(data, index, levels)
            if row is not None:
                criteria.append(row)
        if not criteria:
            self.add_error("criteria_count", "Add at least one criterion: name it and give its points.")
        data["criteria"] = _with_keys(criteria)
        low, high = data.get("words_min"), data.get("words_max")
        if (low is None) != (high is None):
            missing = "words_max" if high is None else "words_min"
            self.add_error(missing, "Give both ends of the expected length, or neither.")
        return data

    def _criterion(self, data: dict[str, Any], index: int, levels: int) -> dict[str, Any] | None:
        raw = {part: data.get(criterion_name(index, part)) for part in CRITERION_PARTS}
        raw["levels"] = [
            {part: data.get(level_name(index, level, part)) for part in LEVEL_PARTS}
            for level in range(levels)
        ]
        if is_blank(raw) and not self._row_has_errors(index):
            return None
        name = (raw["name"] or "").strip()
        if not name:
            self.add_error(criterion_name(index, "name"), "Name the criterion, or clear the whole row.")
        if raw["points"] is None and criterion_name(index, "points") not in self.errors:
            self.add_error(criterion_name(index, "points"), "Give the criterion its points.")
        kept_levels, used = [], []
        for level, values in enumerate(raw["levels"]):
            if is_blank(values):
                continue
            label = (values["label"] or "").strip()
            if not label:
                self.add_error(level_name(index, level, "label"), "Name the level (Excellent, Good, …).")
            if values["points"] is None and level_name(index, level, "points") not in self.errors:
                self.add_error(level_name(index, level, "points"), "Give the level its score.")
            used.append(level)
            kept_levels.append(
                {
                    "label": label,
                    "points": values["points"],
                    "descriptor": (values["descriptor"] or "").strip(),
                }
            )
        self.criterion_rows_used.append((index, used))
        return {
            "key": (raw["key"] or "").strip(),
            "name": name,
            "points": raw["points"],
            "description": (raw["description"] or "").strip(),
            "keywords": list(
                dict.fromkeys(k.strip() for k in (raw["keywords"] or "").split(",") if k.strip())
            ),
            "levels": kept_levels,
        }

    def _row_has_errors(self, index: int) -> bool:
        return any(name.startswith(f"criterion-{index}-") for name in self.errors)

    def template_data(self) -> dict[str, Any]:
        """What the template serializer takes: the API's fields, from what was typed."""
        data = self.cleaned_data
        settings: dict[str, Any] = {"provider": data["provider"], "instructions": data["instructions"]}
        for path, name in SETTINGS_FIELDS.items():
            value = data.get(name)
            if value not in (None, "", []) and path not in settings:
                settings[path] = value
        if data.get("words_min") is not None and data.get("words_max") is not None:
            settings["expected_words"] = {"min": data["words_min"], "max": data["words_max"]}
        settings["rubric"] = {"criteria": data["criteria"]}
        processing = {name: data[name] for name in PROCESSING_FIELDS if data.get(name) is not None}
        structure = {"per_model": data["per_model"]}
        for name in ("naming", "student_pattern"):
            if data.get(name):
                structure[name] = data[name].strip()
        fields = {
            "name": data["name"],
            "description": data["description"],
            "category": data["category"],
            "default_settings": settings,
            "processing_rules": processing,
            "job_structure": structure,
        }
        if data.get("slug"):
            fields["slug"] = data["slug"]
        return fields

    # --- the serializer's errors on their fields --------------------------------------------

    def add_template_errors(self, errors: dict[str, Any]) -> None:
        for name, problems in errors.items():
            if isinstance(problems, dict):
                for path, messages in problems.items():
                    self._add(self._field_of(name, str(path)), messages, path)
            else:
                self._add(name if name in self.fields else None, problems, name)

    def _add(self, field_name: str | None, messages: Any, path: str) -> None:
        for message in messages if isinstance(messages, list) else [messages]:
            if field_name:
                self.add_error(field_name, str(message))
            else:
                self.add_error(None, f"{path}: {message}")

    def _field_of(self, part: str, path: str) -> str | None:
        """The form field a settings error's dotted path came from, or None for the page's own list."""
        if part == "processing_rules":
            return path if path in PROCESSING_FIELDS else None
        if part == "job_structure":
            return path if path in STRUCTURE_FIELDS else None
        if part != "default_settings":
            return None
        steps = path.split(".")
        if steps[0] in SETTINGS_FIELDS:
            return SETTINGS_FIELDS[steps[0]]
        if steps[0] == "expected_words":
            return "words_min" if steps[1:2] == ["min"] else "words_max"
        if steps[0] == "processing" and len(steps) > 1 and steps[1] in PROCESSING_FIELDS:
            return steps[1]
        if steps[:2] == ["rubric", "criteria"] and len(steps) > 2 and steps[2].isdigit():
            return self._rubric_field(steps[2:])
        if steps[0] == "rubric":
            return "criteria_count"
        return None

    def _rubric_field(self, steps: list[str]) -> str:
        """ "2.levels.1.descriptor" -> the field of the level's row; a whole criterion's error -> its points."""
        position = int(steps[0])
        used = getattr(self, "criterion_rows_used", [])
        if position >= len(used):
            return "criteria_count"
        index, levels = used[position]
        part = steps[1] if len(steps) > 1 else "points"
        if part == "levels" and len(steps) > 2 and steps[2].isdigit() and int(steps[2]) < len(levels):
            level = levels[int(steps[2])]
            level_part = steps[3] if len(steps) > 3 and steps[3] in LEVEL_PARTS else "label"
            return level_name(index, level, level_part)
        if part == "levels":
            return levels_name(index)
        return criterion_name(index, part if part in CRITERION_PARTS and part != "key" else "name")


def version_of(template: BatchTemplate) -> str:
    """The template's last save, as the editor carries it to tell whether someone saved since."""
    return template.updated_at.isoformat()


def initial_of(template: BatchTemplate) -> dict[str, Any]:
    """The form's initial values for a template's own fields and settings (its rubric comes as rows)."""
    settings = template.default_settings or {}
    processing = template.processing_rules or {}
    structure = template.job_structure or {}
    words = settings.get("expected_words") or {}
    initial = {
        "name": template.name,
        "slug": template.slug,
        "description": template.description,
        "category": template.category,
        "words_min": words.get("min"),
        "words_max": words.get("max"),
        "per_model": structure.get("per_model", True),
        "naming": structure.get("naming", ""),
        "student_pattern": structure.get("student_pattern", ""),
        "version": version_of(template),
    }
    for path, name in SETTINGS_FIELDS.items():
        initial[name] = settings.get(path)
    initial["provider"] = settings.get("provider") or "builtin"
    for name in PROCESSING_FIELDS:
        initial[name] = processing.get(name)
    return {name: value for name, value in initial.items() if value is not None}


def _with_keys(criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every criterion with its key: the one it had (exemplars and grades refer to it), else one from its name."""
    taken = {criterion["key"] for criterion in criteria if criterion["key"]}
    for position, criterion in enumerate(criteria, start=1):
        if not criterion["key"]:
            base = (
                re.sub(r"[^a-z0-9]+", "_", criterion["name"].lower()).strip("_")[:50]
                or f"criterion_{position}"
            )
            key, suffix = base, 2
            while key in taken:
                key, suffix = f"{base}_{suffix}", suffix + 1
            taken.add(key)
            criterion["key"] = key
    return criteria
