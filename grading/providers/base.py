"""The one interface every grading provider implements, and the errors it may raise."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class Exemplar:
    """A document the teacher graded: its total on the rubric's scale and, where given, the
    score of each criterion by key. A provider that learns may fit itself to these."""

    text: str
    score: float
    criteria: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GradeRequest:
    text: str
    rubric: dict
    settings: dict
    model: str
    document_name: str = ""
    timeout_s: float = 60.0
    exemplars: tuple[Exemplar, ...] = ()


@dataclass
class CriterionGrade:
    key: str
    name: str
    score: float
    max_score: float
    feedback: str


@dataclass
class Grade:
    score: float
    max_score: float
    criteria: list[CriterionGrade]
    feedback: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    raw: dict = field(default_factory=dict)
    model: str = ""

    def as_criteria_json(self) -> list[dict]:
        return [asdict(criterion) for criterion in self.criteria]


class ProviderError(Exception):
    """A grading call that did not produce a grade.

    `transient` tells the engine whether trying again later may succeed; `retry_after` is the
    provider's own hint in seconds, which takes precedence over computed backoff.
    """

    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status_code = status_code


class TransientProviderError(ProviderError):
    transient = True


class PermanentProviderError(ProviderError):
    transient = False


class Provider(ABC):
    """Grades one document against a rubric.

    Instances are shared across the engine's worker threads, so `grade` must not keep
    per-call state on `self`.
    """

    name: str

    @abstractmethod
    def grade(self, request: GradeRequest) -> Grade:
        """Return the grade, or raise a ProviderError subclass."""


def criteria_of(rubric: dict) -> list[dict]:
    """The rubric's criteria, refusing a rubric the provider could not grade against."""
    criteria = rubric.get("criteria") if isinstance(rubric, dict) else None
    if not criteria:
        raise PermanentProviderError("The rubric has no criteria to grade against.")
    return criteria


def require_text(request: GradeRequest) -> None:
    if not request.text or not request.text.strip():
        name = f" “{request.document_name}”" if request.document_name else ""
        raise PermanentProviderError(f"The document{name} has no text to grade.")
