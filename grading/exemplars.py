"""The exemplars a batch's jobs are graded with: its template's exemplar set and its reviewers'.

The runner's main thread reads them (provider threads never touch the
database) and keeps them for a few seconds per batch, so a claim of many jobs
costs one query per batch, and an exemplar ticked during a run reaches the
next claims soon after.
"""

from __future__ import annotations

import time

from django.db.models import Q

from grading.models import Exemplar as ExemplarRow
from grading.providers import Exemplar

# Exemplars handed to a provider at most: enough to learn a teacher's scale, few
# enough to keep a prompt and a fit small.
MAX_EXEMPLARS = 200
KEEP_S = 10.0


def batch_exemplars(batch_id: int) -> tuple[tuple[int, Exemplar], ...]:
    """(document id, Exemplar) for the batch's own exemplars and, unless the batch sets its own
    rubric, its template's, oldest first."""
    # The template's exemplars are graded on the template's rubric: a batch that sets a rubric of
    # its own (settings.rubric) is on another scale, and learns only from its own exemplars.
    of_the_template = Q(template__batches__id=batch_id, template__batches__settings__rubric__isnull=True)
    rows = (
        ExemplarRow.objects.filter(Q(batch_id=batch_id) | of_the_template)
        .exclude(document__text="")
        .order_by("created_at", "id")
        .values_list("document_id", "document__text", "score", "criteria")[:MAX_EXEMPLARS]
    )
    return tuple(
        (document_id, Exemplar(text=text, score=float(score), criteria=dict(criteria or {})))
        for document_id, text, score, criteria in rows
    )


class ExemplarCache:
    """Each batch's exemplars, read again once they are older than KEEP_S."""

    def __init__(self, keep_s: float = KEEP_S):
        self.keep_s = keep_s
        self._by_batch: dict[int, tuple[float, tuple]] = {}

    def for_batch(self, batch_id: int | None) -> tuple:
        if batch_id is None:
            return ()
        now = time.monotonic()
        cached = self._by_batch.get(batch_id)
        if cached is None or now - cached[0] > self.keep_s:
            cached = (now, batch_exemplars(batch_id))
            self._by_batch[batch_id] = cached
        return cached[1]


def for_document(exemplars: tuple, document_id: int | None) -> tuple[Exemplar, ...]:
    """The exemplars to grade a document with: never the document itself (it would grade its own answer)."""
    return tuple(exemplar for exemplar_document, exemplar in exemplars if exemplar_document != document_id)
