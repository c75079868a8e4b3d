"""The review queue: which of a batch's jobs want a person's eye, and in what order.

A teacher reviews a batch by walking through a filtered, sorted list of its
jobs ("not reviewed", "failed", "low confidence"; by score, status or how far
the models differ). The batch page's jobs table, the job page's previous and
next, accept-and-next and the API's job list all read that list from here, so
they never disagree about what comes next.

"Low confidence" is defined once, in `low_confidence_reasons`: the models that
graded the same document differ by more than SPREAD_THRESHOLD points of the
maximum, or the grade was calibrated by a map whose agreement with the
teacher (leave-one-out QWK) is below UNCERTAIN_QWK, or the grade lies within
BOUNDARY_MARGIN points of a grade boundary. Each reason is a sentence shown
beside the job.

The list is computed from one narrow query over the batch's jobs (ids,
statuses and scores): the spread needs every model's grade of a document, and
a batch of thousands of jobs is a few thousand small rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from batches.memo import BatchState, batch_state, remembered
from grading.models import GradingJob, JobStatus

# Points of the maximum (percentage points) between a document's highest and lowest model grade.
SPREAD_THRESHOLD = 15.0
# A calibrated grade whose model agrees with the teacher less than this (leave-one-out QWK).
UNCERTAIN_QWK = 0.6
# Grade boundaries, in percent of the maximum (F/D/C/B/A), and how close counts as "near".
BOUNDARIES = (50.0, 60.0, 70.0, 80.0, 90.0)
BOUNDARY_MARGIN = 2.0

# The rule in one sentence, shown beside the filters.
LOW_CONFIDENCE_RULE = (
    f"Low confidence: the models differ by more than {SPREAD_THRESHOLD:g} points of the maximum, "
    f"the calibration agrees with your grades below {UNCERTAIN_QWK:g} (QWK), or the AI's grade is "
    f"within {BOUNDARY_MARGIN:g} points of a grade boundary ({', '.join(f'{b:g}' for b in BOUNDARIES)} %)."
)

FILTERS = {
    "not_reviewed": "Not reviewed",
    "failed": "Failed",
    "low_confidence": "Low confidence",
}
ORDERINGS = {
    "": "Upload order",
    "score": "Score, lowest first",
    "-score": "Score, highest first",
    "status": "Status",
    "-spread": "Models differ most first",
    "spread": "Models agree most first",
}
# Failures first: they are what a reviewer acts on; then work still to come, then the done.
STATUS_ORDER = [
    JobStatus.FAILED,
    JobStatus.PROCESSING,
    JobStatus.QUEUED,
    JobStatus.PENDING,
    JobStatus.COMPLETED,
    JobStatus.CANCELLED,
]


class QueueRefused(ValueError):
    """A filter or sort the queue does not know; the message names the value and the choices."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class QueueQuery:
    """What the reviewer asked for: filters (all must hold) and one ordering."""

    show: tuple[str, ...] = ()
    ordering: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> QueueQuery:
        """From a request's GET (or query_params); raises QueueRefused naming a bad value."""
        values = params.getlist("show") if hasattr(params, "getlist") else params.get("show") or []
        if isinstance(values, str):
            values = [values]
        show = []
        for part in (piece.strip() for value in values for piece in str(value).split(",")):
            if not part:
                continue
            if part not in FILTERS:
                raise QueueRefused(
                    "show", f"“{part[:40]}” is not a filter of jobs; choose from {', '.join(FILTERS)}."
                )
            if part not in show:
                show.append(part)
        ordering = (params.get("ordering") or "").strip()
        if ordering not in ORDERINGS:
            choices = ", ".join(key for key in ORDERINGS if key)
            raise QueueRefused(
                "ordering", f"“{ordering[:40]}” is not a way to sort jobs; choose from {choices}."
            )
        return cls(tuple(sorted(show, key=list(FILTERS).index)), ordering)

    @property
    def is_default(self) -> bool:
        return not self.show and not self.ordering

    def params(self) -> list[tuple[str, str]]:
        return [("show", value) for value in self.show] + (
            [("ordering", self.ordering)] if self.ordering else []
        )

    def querystring(self, **extra: Any) -> str:
        """'?show=…&ordering=…' (empty when nothing is asked), for links that keep the queue."""
        pairs = self.params() + [(key, str(value)) for key, value in extra.items() if value]
        return f"?{urlencode(pairs)}" if pairs else ""

    def describe(self) -> str:
        """“Not reviewed, low confidence”, or “All jobs”."""
        if not self.show:
            return "All jobs"
        return ", ".join(FILTERS[value] for value in self.show).capitalize()


@dataclass
class Entry:
    """One job as the queue sees it."""

    job_id: int
    document_id: int
    provider: str
    model: str
    status: str
    column: str = ""  # the job's provider:model, a column of the comparison matrix
    graded: bool = False
    score: float | None = None  # the AI's (possibly calibrated) score
    max_score: float | None = None
    ai_percent: float | None = None  # the AI's (possibly calibrated) score, in % of the maximum
    final_percent: float | None = None  # the review's, else the AI's
    reviewed: bool = False
    calibrated: bool = False
    spread: float | None = None  # points between the document's highest and lowest model grade
    reasons: list[str] = field(default_factory=list)

    @property
    def low_confidence(self) -> bool:
        return bool(self.reasons)

    @property
    def wide_spread(self) -> bool:
        return self.spread is not None and self.spread > SPREAD_THRESHOLD

    def matches(self, query: QueueQuery) -> bool:
        return all(MATCHERS[name](self) for name in query.show)


MATCHERS = {
    "not_reviewed": lambda entry: entry.graded and not entry.reviewed,
    "failed": lambda entry: entry.status == JobStatus.FAILED,
    "low_confidence": lambda entry: entry.low_confidence,
}


def low_confidence_reasons(entry: Entry, calibration: Mapping[str, Any] | None) -> list[str]:
    """Why the AI's grade of this job deserves a second look, as sentences; empty when none.

    The one definition of "low confidence": models differ, the calibration is
    uncertain, or the grade sits near a grade boundary.
    """
    if not entry.graded or entry.ai_percent is None:
        return []
    reasons = []
    if entry.wide_spread:
        reasons.append(f"models differ by {entry.spread:.0f} %")
    qwk = _uncertain_calibration(entry, calibration)
    if qwk is not False:
        reasons.append(
            "calibration uncertain: too few exemplars to measure it"
            if qwk is None
            else f"calibration uncertain: it agrees with your grades at {qwk:.2f} (QWK)"
        )
    boundary = near_boundary(entry.ai_percent)
    if boundary is not None:
        reasons.append(
            f"{entry.ai_percent:.1f} % is within {BOUNDARY_MARGIN:g} points of the {boundary:g} % boundary"
        )
    return reasons


def near_boundary(percent: float) -> float | None:
    """The grade boundary within BOUNDARY_MARGIN points of a percentage, if any."""
    for boundary in BOUNDARIES:
        if abs(percent - boundary) <= BOUNDARY_MARGIN + 1e-9:
            return boundary
    return None


def _uncertain_calibration(entry: Entry, calibration: Mapping[str, Any] | None) -> float | None | bool:
    """The QWK of the map that calibrated this grade when it is too low (None: not measurable); else False."""
    if not entry.calibrated or not calibration:
        return False
    for group in calibration.get("models") or []:
        if (
            group.get("provider") == entry.provider
            and group.get("model") == entry.model
            and group.get("method")
        ):
            qwk = group.get("qwk_after")
            return qwk if qwk is None or qwk < UNCERTAIN_QWK else False
    return False


# --- the batch's list ------------------------------------------------------------------


def entries_for(batch, state: BatchState | None = None) -> list[Entry]:
    """Every job of the batch in upload order, with its spread and low-confidence reasons.

    Computed once per state of the batch (batches.memo): the live refresh polls
    every 2 s, and between polls a batch of thousands of jobs has usually not
    changed. A page that has read the state passes it. The entries are shared:
    read them, never change them.
    """
    return remembered(state or batch_state(batch), "entries", lambda: _entries(batch))


def _entries(batch) -> list[Entry]:
    rows = (
        GradingJob.objects.in_batch(batch)
        .order_by("created_at", "id")
        .values_list(
            "pk",
            "document_id",
            "provider",
            "model",
            "status",
            "result__provider",
            "result__model",
            "result__score",
            "result__max_score",
            "result__reviewed_score",
            "result__raw_score",
        )
    )
    entries = [_entry(row) for row in rows]
    for entry in _with_spread(entries):
        entry.reasons = low_confidence_reasons(entry, batch.calibration)
    return entries


def _entry(row: tuple) -> Entry:
    pk, document_id, provider, model, status, r_provider, r_model, score, maximum, reviewed, raw = row
    column = f"{provider}:{model}" if provider else ""
    entry = Entry(pk, document_id, r_provider or provider, r_model or model, status, column)
    if score is not None and maximum:
        entry.graded, entry.score, entry.max_score = True, score, maximum
        entry.ai_percent = 100 * score / maximum
        entry.reviewed = reviewed is not None
        entry.final_percent = 100 * (reviewed if reviewed is not None else score) / maximum
        entry.calibrated = raw is not None
    return entry


def _with_spread(entries: list[Entry]) -> list[Entry]:
    """Each graded job's spread: the highest minus the lowest model grade of its document."""
    by_document: dict[int, list[float]] = defaultdict(list)
    for entry in entries:
        if entry.graded:
            by_document[entry.document_id].append(entry.ai_percent)
    for entry in entries:
        grades = by_document.get(entry.document_id, [])
        if entry.graded and len(grades) > 1:
            entry.spread = max(grades) - min(grades)
    return entries


def ordered(entries: Iterable[Entry], ordering: str) -> list[Entry]:
    """Entries in the asked order; upload order breaks ties, and jobs without the value go last."""
    entries = list(entries)  # already in upload order: sorted() is stable
    if ordering in ("score", "-score"):
        return _by_value(entries, lambda e: e.final_percent, descending=ordering == "-score")
    if ordering in ("spread", "-spread"):
        return _by_value(entries, lambda e: e.spread, descending=ordering == "-spread")
    if ordering == "status":
        rank = {status: index for index, status in enumerate(STATUS_ORDER)}
        return sorted(entries, key=lambda e: rank.get(e.status, len(rank)))
    return entries


def _by_value(entries: list[Entry], value, descending: bool) -> list[Entry]:
    known = [entry for entry in entries if value(entry) is not None]
    unknown = [entry for entry in entries if value(entry) is None]
    return sorted(known, key=value, reverse=descending) + unknown


def queue(batch, query: QueueQuery, among: set[int] | None = None) -> list[Entry]:
    """The batch's jobs that match the query, in its order (`among`: only these job ids)."""
    return select(entries_for(batch), query, among)


def select(entries: Iterable[Entry], query: QueueQuery, among: set[int] | None = None) -> list[Entry]:
    """The entries that match the query, in its order (`among`: only these job ids)."""
    return [
        entry
        for entry in ordered(entries, query.ordering)
        if entry.matches(query) and (among is None or entry.job_id in among)
    ]


@dataclass(frozen=True)
class Neighbours:
    previous_id: int | None
    next_id: int | None
    position: int | None  # the job's place in the queue, None when it does not match the filter
    count: int


def neighbours(entries: Iterable[Entry], query: QueueQuery, job_id: int) -> Neighbours:
    """The jobs before and after this one in the queue, from the batch's entries (`entries_for`).

    The job itself need not match (a job just reviewed has left "not
    reviewed"): its neighbours are then the matching jobs nearest to where it
    stands in the order.
    """
    everything = ordered(entries, query.ordering)
    index = next((i for i, entry in enumerate(everything) if entry.job_id == job_id), None)
    matching = [entry.matches(query) for entry in everything]
    count = sum(matching)
    if index is None:
        return Neighbours(None, None, None, count)
    before = [e.job_id for e, hit in zip(everything[:index], matching[:index], strict=True) if hit]
    after = [e.job_id for e, hit in zip(everything[index + 1 :], matching[index + 1 :], strict=True) if hit]
    position = len(before) + 1 if matching[index] else None
    return Neighbours(before[-1] if before else None, after[0] if after else None, position, count)


# --- the comparison matrix ----------------------------------------------------------------

MATRIX_ORDERINGS = {"": "Upload order", "-spread": "Largest spread first", "spread": "Smallest spread first"}


@dataclass
class MatrixRow:
    """One document: its job under each model (None where that model has no job for it)."""

    document_id: int
    cells: list[Entry | None]
    spread: float | None
    name: str = ""

    @property
    def wide(self) -> bool:
        return self.spread is not None and self.spread > SPREAD_THRESHOLD


def comparison_columns(entries: Iterable[Entry]) -> list[str]:
    """The batch's models (provider:model), in the order their first jobs were made."""
    return list(dict.fromkeys(entry.column for entry in entries if entry.column))


def comparison(batch, ordering: str = "") -> tuple[list[str], list[MatrixRow]]:
    """The models as columns and one row per document, in the asked order (see MATRIX_ORDERINGS)."""
    if ordering not in MATRIX_ORDERINGS:
        choices = ", ".join(key for key in MATRIX_ORDERINGS if key)
        raise QueueRefused(
            "ordering", f"“{ordering[:40]}” is not a way to sort the matrix; choose from {choices}."
        )
    entries = entries_for(batch)
    columns = comparison_columns(entries)
    by_document: dict[int, dict[str, Entry]] = {}
    for entry in entries:
        by_document.setdefault(entry.document_id, {}).setdefault(entry.column, entry)
    rows = []
    for document_id, cells in by_document.items():
        spreads = [entry.spread for entry in cells.values() if entry.spread is not None]
        rows.append(
            MatrixRow(
                document_id, [cells.get(column) for column in columns], max(spreads) if spreads else None
            )
        )
    if ordering:
        known = [row for row in rows if row.spread is not None]
        unknown = [row for row in rows if row.spread is None]
        rows = sorted(known, key=lambda row: row.spread, reverse=ordering == "-spread") + unknown
    return columns, rows
