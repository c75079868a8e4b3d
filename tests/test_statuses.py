"""The status vocabulary is defined once, in grading.statuses, and batches uses that very one."""

import batches.models
import grading.models
from grading import statuses


def test_batches_uses_the_vocabulary_of_grading_statuses():
    assert batches.models.BatchStatus is statuses.BatchStatus
    assert grading.models.JobStatus is batches.models.JobStatus is statuses.JobStatus


def test_the_claiming_batch_states_are_the_active_batch_states_by_construction():
    assert grading.models.CLAIMING_BATCH_STATES is statuses.CLAIMING_BATCH_STATES
    assert tuple(batches.models.BatchStatus.active()) == statuses.CLAIMING_BATCH_STATES
    assert statuses.CLAIMING_BATCH_STATES == ("pending", "processing")
    # Plain strings, as the claim's SQL parameters.
    assert all(type(state) is str for state in statuses.CLAIMING_BATCH_STATES)


def test_the_batch_statuses_keep_their_values_and_labels():
    # Part of the migrations' state (choices, the status check constraint).
    assert statuses.BatchStatus.choices == [
        ("draft", "Draft"),
        ("pending", "Pending"),
        ("processing", "Processing"),
        ("paused", "Paused"),
        ("completed", "Completed"),
        ("completed_with_errors", "Completed with errors"),
        ("failed", "Failed"),
        ("cancelled", "Cancelled"),
        ("archived", "Archived"),
    ]
    assert statuses.BatchStatus("draft").settings_editable
