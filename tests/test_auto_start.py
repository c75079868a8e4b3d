"""Processing that starts by itself: a draft whose rules say auto_start starts once uploads add jobs, exactly once."""

import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

import batches.uploads
from batches.autostart import start_if_auto
from batches.exceptions import InvalidTransition
from batches.models import BatchStatus, JobBatch
from batches.uploads import Upload, add_upload, store_upload
from grading.models import GradingJob, JobStatus
from templates_app.models import BatchTemplate
from tests.conftest import make_batch, prebuilt
from tests.inbox_support import ESSAY, text_file

AUTO_START = {"academic-essay": True, "business-report": True, "research-paper": False}


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def starts(monkeypatch) -> list[int]:
    """Every draft -> pending transition that succeeded."""
    started: list[int] = []
    start = JobBatch.start_batch

    def counting(self):
        outcome = start(self)
        started.append(self.pk)
        return outcome

    monkeypatch.setattr(JobBatch, "start_batch", counting)
    return started


@pytest.fixture
def handed(monkeypatch) -> list[int]:
    """Every batch handed to the workers after its start committed."""
    handed: list[int] = []
    monkeypatch.setattr("batches.models.enqueue_processing", lambda batch_id, **kw: handed.append(batch_id))
    return handed


@pytest.mark.django_db
def test_the_prebuilt_templates_start_by_themselves_where_a_teacher_expects_it():
    for slug, expected in AUTO_START.items():
        assert prebuilt(slug).processing_rules["auto_start"] is expected, slug


@pytest.mark.django_db(transaction=True)
def test_the_data_migration_turns_auto_start_on_in_installed_rows():
    prebuilt()  # a transactional test may have flushed the rows: install them
    try:
        call_command("migrate", "templates_app", "0002", verbosity=0)
        rules = {t.slug: t.processing_rules for t in BatchTemplate.objects.filter(slug__in=AUTO_START)}
    finally:
        # Every app forward again: going back also unapplied the other apps' migrations that
        # depend on the templates', and later tests share this database.
        call_command("migrate", verbosity=0)
    assert all(rule["auto_start"] is False for rule in rules.values())
    after = {t.slug: t.processing_rules for t in BatchTemplate.objects.filter(slug__in=AUTO_START)}
    assert {slug: rule["auto_start"] for slug, rule in after.items()} == AUTO_START
    # Nothing else in the rules changed.
    for slug, rule in after.items():
        assert {k: v for k, v in rule.items() if k != "auto_start"} == {
            k: v for k, v in rules[slug].items() if k != "auto_start"
        }


@pytest.mark.django_db
def test_an_upload_into_an_auto_start_draft_starts_it_and_queues_every_job(owner, starts):
    draft = make_batch(owner, prebuilt("academic-essay"), jobs=0)
    added = add_upload(draft, owner, lambda: [text_file("a.txt"), text_file("b.txt")])
    assert added.started is True
    draft.refresh_from_db()
    assert draft.status == BatchStatus.PENDING
    assert set(draft.jobs.values_list("status", flat=True)) == {JobStatus.QUEUED}
    assert starts == [draft.pk]


@pytest.mark.django_db
def test_an_upload_into_a_draft_without_auto_start_leaves_it_a_draft(owner, starts):
    draft = make_batch(owner, prebuilt("research-paper"), jobs=0)
    assert add_upload(draft, owner, lambda: [text_file("a.txt")]).started is False
    assert JobBatch.objects.get(pk=draft.pk).status == BatchStatus.DRAFT
    assert starts == []


@pytest.mark.django_db
def test_a_batchs_own_settings_can_turn_auto_start_on_or_off(owner, starts):
    off = make_batch(
        owner, prebuilt("academic-essay"), jobs=0, settings={"processing": {"auto_start": False}}
    )
    on = make_batch(owner, prebuilt("research-paper"), jobs=0, settings={"processing": {"auto_start": True}})
    assert add_upload(off, owner, lambda: [text_file("a.txt")]).started is False
    assert add_upload(on, owner, lambda: [text_file("a.txt")]).started is True
    assert starts == [on.pk]


@pytest.mark.django_db
def test_a_draft_whose_provider_cannot_work_stays_a_draft(owner, starts):
    # The openai provider does not serve the builtin grader's model: the page says what to set.
    draft = make_batch(owner, prebuilt("academic-essay"), jobs=0, settings={"provider": "openai"})
    assert add_upload(draft, owner, lambda: [text_file("a.txt")]).started is False
    assert JobBatch.objects.get(pk=draft.pk).status == BatchStatus.DRAFT
    assert starts == []


@pytest.mark.django_db
def test_two_uploads_one_after_the_other_start_the_batch_once(owner, starts):
    """Both uploads' jobs are in before either asks to start: the first starts it, the second finds it started."""
    draft = make_batch(owner, prebuilt("academic-essay"), jobs=0)
    store_upload(draft, owner, [Upload("a.txt", ESSAY.encode())])
    store_upload(draft, owner, [Upload("b.txt", ESSAY.encode())])
    assert [start_if_auto(draft), start_if_auto(JobBatch.objects.get(pk=draft.pk))] == [True, False]
    assert starts == [draft.pk]
    assert draft.jobs.filter(status=JobStatus.QUEUED).count() == 2
    # A third upload finds the batch running and is refused, storing nothing.
    with pytest.raises(InvalidTransition):
        add_upload(JobBatch.objects.get(pk=draft.pk), owner, lambda: [text_file("c.txt")])
    assert draft.jobs.count() == 2


def _upload_in_thread(batch_id, owner, name, outcomes, errors):
    try:
        batch = JobBatch.objects.get(pk=batch_id)
        outcomes.append(add_upload(batch, owner, lambda: [text_file(name)]).started)
    except InvalidTransition:
        outcomes.append("refused")
    except Exception as exc:  # reported by the test, not lost in the thread
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_racing_uploads_start_the_batch_exactly_once(owner, starts, handed, monkeypatch):
    """Both store their jobs, then both ask to start at the same moment: the row lock lets one start it."""
    draft = make_batch(owner, prebuilt("academic-essay"), jobs=0)
    barrier = threading.Barrier(2)
    store = batches.uploads.store_upload

    def store_then_wait(*args, **kwargs):
        stored = store(*args, **kwargs)
        barrier.wait(timeout=20)  # both uploads committed: now both ask to start together
        return stored

    monkeypatch.setattr(batches.uploads, "store_upload", store_then_wait)
    outcomes, errors = [], []
    threads = [
        threading.Thread(target=_upload_in_thread, args=(draft.pk, owner, f"{name}.txt", outcomes, errors))
        for name in ("ada", "bo")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(outcomes) == [False, True]
    assert starts == [draft.pk] and handed == [draft.pk]
    draft.refresh_from_db()
    assert draft.status == BatchStatus.PENDING
    # Both uploads' jobs were taken by the one start.
    assert list(draft.jobs.values_list("status", flat=True)) == [JobStatus.QUEUED, JobStatus.QUEUED]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_uploads_racing_freely_never_start_twice_nor_leave_a_job_behind(owner, starts, handed):
    draft = make_batch(owner, prebuilt("academic-essay"), jobs=0)
    outcomes, errors = [], []
    threads = [
        threading.Thread(target=_upload_in_thread, args=(draft.pk, owner, f"doc-{i}.txt", outcomes, errors))
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert outcomes.count(True) == 1 and starts == [draft.pk] and handed == [draft.pk]
    # An upload that came after the start was refused whole; every stored job is queued, none pending.
    assert not GradingJob.objects.filter(batch=draft, status=JobStatus.PENDING).exists()
    assert draft.jobs.count() == 4 - outcomes.count("refused")
