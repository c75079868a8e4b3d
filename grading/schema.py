"""The one schema for grading settings.

Effective settings are template defaults <- batch settings <- job overrides
(see grading.merge.deep_merge); they are validated here when saved, so a worker
never discovers bad settings halfway through a batch.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import DomainError
from grading.naming import MAX_PATTERN, pattern_problem
from grading.providers import available_providers, get_provider, provider_class


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Level(_Strict):
    points: float = Field(ge=0)
    label: str = Field(min_length=1, max_length=80)
    descriptor: str = Field(default="", max_length=2000)


class Criterion(_Strict):
    key: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9_]+$")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    points: float = Field(gt=0, le=1000)
    keywords: list[str] = Field(default_factory=list, max_length=100)
    levels: list[Level] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def levels_within_points(self) -> "Criterion":
        for level in self.levels:
            if level.points > self.points:
                raise ValueError(
                    f"level {level.label!r} gives {level.points:g} points, more than the criterion's {self.points:g}"
                )
        return self


class Rubric(_Strict):
    criteria: list[Criterion] = Field(min_length=1, max_length=20)

    @field_validator("criteria")
    @classmethod
    def unique_keys(cls, criteria: list[Criterion]) -> list[Criterion]:
        keys = [criterion.key for criterion in criteria]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"criterion keys must be unique; repeated: {', '.join(duplicates)}")
        return criteria


class ExpectedWords(_Strict):
    min: int = Field(ge=0, le=1_000_000)
    max: int = Field(ge=1, le=1_000_000)

    @model_validator(mode="after")
    def min_below_max(self) -> "ExpectedWords":
        if self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class Processing(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_base_s: float = Field(default=2.0, ge=0, le=3600)
    backoff_max_s: float = Field(default=300.0, ge=0, le=86400)
    concurrency: int = Field(default=8, ge=1, le=512)
    stagger_ms: int = Field(default=0, ge=0, le=60_000)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    auto_start: bool = False
    # realtime: one call per job; economy: the provider's batch API, at half price within its
    # window (24 h); auto: economy when the deadline leaves the window and a margin, else realtime
    # (grading.economy.decide).
    delivery: Literal["realtime", "economy", "auto"] = "auto"


class JobStructure(_Strict):
    naming: str = Field(default="{batch} – {filename}", min_length=1, max_length=200)
    per_model: bool = True
    # How a document's file name says who wrote it (grading/naming.py); "" reads no names.
    student_pattern: str = Field(default="", max_length=MAX_PATTERN)

    @field_validator("student_pattern")
    @classmethod
    def known_student_placeholders(cls, pattern: str) -> str:
        problem = pattern_problem(pattern) if pattern else None
        if problem:
            raise ValueError(problem)
        return pattern

    @field_validator("naming")
    @classmethod
    def known_placeholders(cls, naming: str) -> str:
        try:
            naming.format(batch="b", filename="f", model="m", index=1, provider="p")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"unknown placeholder {exc}; use {{batch}}, {{filename}}, {{model}}, {{provider}}, {{index}}"
            ) from None
        return naming


class GradingSettings(_Strict):
    provider: str = "builtin"
    model: str = Field(default="builtin-v1", min_length=1, max_length=200)
    models: list[str] = Field(default_factory=list, max_length=10)
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_output_tokens: int = Field(default=1024, ge=1, le=100_000)
    instructions: str = Field(default="", max_length=20_000)
    rubric: Rubric
    expected_words: ExpectedWords | None = None
    processing: Processing = Field(default_factory=Processing)

    @field_validator("provider")
    @classmethod
    def provider_known(cls, provider: str) -> str:
        known = available_providers()
        if provider not in known:
            raise ValueError(f"unknown provider {provider!r}; choose one of: {', '.join(known)}")
        return provider

    @field_validator("models")
    @classmethod
    def models_named(cls, models: list[str]) -> list[str]:
        for entry in models:
            provider, model = split_target(entry, "")
            if not model.strip() or len(model) > 200:
                raise ValueError(
                    f"{entry!r} names no model; write a model name, or provider:model to grade with "
                    "another provider"
                )
        return models

    def grading_models(self) -> list[str]:
        """The `models` entries (or the one model) each document is graded by, as written."""
        return list(dict.fromkeys(self.models)) if self.models else [self.model]

    def grading_targets(self) -> list[tuple[str, str]]:
        """(provider, model) for each grading of a document: several for a model comparison.

        A `models` entry `provider:model` whose prefix is a registered provider grades with
        that provider (a comparison across providers); any other entry is a model of the
        batch's own provider (so `llama3.1:8b` stays one Ollama model name).
        """
        return list(dict.fromkeys(split_target(entry, self.provider) for entry in self.grading_models()))

    def problems(self) -> list[str]:
        """Why the providers cannot grade with these settings on this server (no key, another provider's model)."""
        found = target_problems(self.grading_targets())
        if self.processing.delivery == "economy":
            found += [economy_problem(provider) for provider, _ in self.grading_targets()]
        return list(dict.fromkeys(problem for problem in found if problem))


def target_problems(targets) -> list[str]:
    """Why these (provider, model) pairs cannot grade on this server, each sentence once."""
    found = (provider_class(provider).problem(model) for provider, model in targets)
    return list(dict.fromkeys(problem for problem in found if problem))


def economy_problem(provider: str) -> str | None:
    """Why economy delivery cannot be used with `provider` here; None when it can."""
    if get_provider(provider).supports_batch_api():
        return None
    return (
        f"The {provider} provider has no batch API on this server, so economy delivery cannot be used: "
        "choose realtime or auto delivery."
    )


def split_target(entry: str, provider: str) -> tuple[str, str]:
    """A `models` entry as (provider, model): `name:model` names a provider or connection, else `provider`'s model."""
    prefix, colon, model = entry.partition(":")
    if colon and prefix in available_providers():
        return prefix, model
    return provider, entry


class SettingsError(DomainError):
    """Invalid settings, with field-level messages keyed by dotted path (a 400 under `settings`)."""

    code = "invalid_settings"

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items()))

    def as_dict(self) -> dict:
        return {"settings": self.errors}


def validate_settings(data: dict[str, Any]) -> GradingSettings:
    if not isinstance(data, dict):
        raise SettingsError({"settings": ["Settings must be a JSON object."]})
    try:
        return GradingSettings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_field_errors(exc)) from None


def validate_processing(data: dict[str, Any]) -> Processing:
    try:
        return Processing.model_validate(data or {})
    except ValidationError as exc:
        raise SettingsError(_field_errors(exc)) from None


def validate_job_structure(data: dict[str, Any]) -> JobStructure:
    try:
        return JobStructure.model_validate(data or {})
    except ValidationError as exc:
        raise SettingsError(_field_errors(exc)) from None


def _field_errors(exc: ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "Unknown setting."
        elif error["type"] == "missing":
            message = "This setting is required."
        errors.setdefault(field, []).append(message)
    return errors
