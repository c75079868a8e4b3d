"""Who sees which batches, jobs, documents and results: owners, those shared with, nobody else."""

import pytest
from django.contrib.auth.models import AnonymousUser, Group

from batches.models import JobBatch
from core.permissions import Level, can_change, can_view, share, unshare
from grading.models import Document, GradingJob, GradingResult
from tests.conftest import make_batch, make_document


def _result(job: GradingJob) -> GradingResult:
    return GradingResult.objects.create(job=job, provider="builtin", model="builtin", score=7, max_score=10)


@pytest.fixture
def shared_batch(owner, colleague, essay_template) -> JobBatch:
    batch = make_batch(owner, essay_template, name="Shared essays")
    share(batch, colleague, Level.VIEW)
    return batch


@pytest.fixture
def private_batch(owner, essay_template) -> JobBatch:
    return make_batch(owner, essay_template, name="Private essays")


def test_the_owner_sees_every_batch_they_own(owner, shared_batch, private_batch):
    assert set(JobBatch.objects.visible_to(owner)) == {shared_batch, private_batch}


def test_a_colleague_sees_only_the_batches_shared_with_them(colleague, shared_batch, private_batch):
    assert list(JobBatch.objects.visible_to(colleague)) == [shared_batch]


def test_a_stranger_sees_no_batch(stranger, shared_batch, private_batch):
    assert not JobBatch.objects.visible_to(stranger).exists()


def test_anonymous_sees_nothing_at_all(shared_batch):
    anonymous = AnonymousUser()

    assert not JobBatch.objects.visible_to(anonymous).exists()
    assert not GradingJob.objects.visible_to(anonymous).exists()
    assert not Document.objects.visible_to(anonymous).exists()
    assert not GradingResult.objects.visible_to(anonymous).exists()


def test_a_staff_member_who_is_not_a_superuser_sees_only_what_is_shared(staff_admin, shared_batch):
    assert not JobBatch.objects.visible_to(staff_admin).exists()

    share(shared_batch, staff_admin, Level.VIEW)
    assert list(JobBatch.objects.visible_to(staff_admin)) == [shared_batch]


def test_a_superuser_sees_everything(superuser, shared_batch, private_batch):
    assert JobBatch.objects.visible_to(superuser).count() == 2
    assert GradingJob.objects.visible_to(superuser).count() == 4


def test_a_batch_shared_both_directly_and_through_a_group_is_listed_once(colleague, shared_batch):
    group = Group.objects.create(name="markers")
    colleague.groups.add(group)
    share(shared_batch, group, Level.CHANGE)

    assert JobBatch.objects.visible_to(colleague).count() == 1
    assert JobBatch.objects.changeable_by(colleague).count() == 1


def test_change_and_manage_lists_narrow_the_view_list(colleague, shared_batch, private_batch):
    share(private_batch, colleague, Level.MANAGE)

    assert set(JobBatch.objects.visible_to(colleague)) == {shared_batch, private_batch}
    assert list(JobBatch.objects.changeable_by(colleague)) == [private_batch]
    assert list(JobBatch.objects.manageable_by(colleague)) == [private_batch]


def test_sharing_a_batch_covers_its_jobs_documents_and_results(colleague, shared_batch, private_batch):
    job = shared_batch.jobs.first()
    _result(job)
    _result(private_batch.jobs.first())

    assert set(GradingJob.objects.visible_to(colleague)) == set(shared_batch.jobs.all())
    assert set(Document.objects.visible_to(colleague)) == {j.document for j in shared_batch.jobs.all()}
    assert list(GradingResult.objects.visible_to(colleague)) == [job.result]


def test_view_on_a_batch_does_not_allow_changing_its_jobs_change_does(colleague, shared_batch):
    job = shared_batch.jobs.first()
    assert can_view(colleague, job) and not can_change(colleague, job)
    assert not GradingJob.objects.changeable_by(colleague).exists()

    share(shared_batch, colleague, Level.CHANGE)
    assert can_change(colleague, job) and can_change(colleague, job.document)


def test_unsharing_a_batch_hides_its_jobs_again(colleague, shared_batch):
    unshare(shared_batch, colleague, Level.VIEW)

    assert not GradingJob.objects.visible_to(colleague).exists()
    assert not Document.objects.visible_to(colleague).exists()


def test_what_one_uploaded_into_a_batch_follows_the_batch_after_an_unshare(owner, colleague, shared_batch):
    # A colleague with change who uploaded into the batch held it through the batch only.
    share(shared_batch, colleague, Level.CHANGE)
    shared_batch.add_documents([make_document(colleague, "colins-essay.txt")], owner=colleague)
    uploaded = GradingJob.objects.get(document__original_name="colins-essay.txt")
    _result(uploaded)

    unshare(shared_batch, colleague, Level.VIEW)

    assert not Document.objects.visible_to(colleague).exists()
    assert not GradingJob.objects.visible_to(colleague).exists()
    assert not GradingResult.objects.visible_to(colleague).exists()
    assert uploaded in GradingJob.objects.changeable_by(owner)


def test_what_one_uploaded_into_a_batch_is_read_only_after_a_downgrade(colleague, shared_batch):
    share(shared_batch, colleague, Level.CHANGE)
    shared_batch.add_documents([make_document(colleague, "colins-essay.txt")], owner=colleague)
    uploaded = GradingJob.objects.get(document__original_name="colins-essay.txt")
    _result(uploaded)

    unshare(shared_batch, colleague, Level.CHANGE)

    assert can_view(colleague, uploaded) and not can_change(colleague, uploaded)
    assert not can_change(colleague, uploaded.document) and not can_change(colleague, uploaded.result)
    assert uploaded.document in Document.objects.visible_to(colleague)


def test_a_fresh_upload_is_its_uploaders_until_a_job_grades_it(owner, colleague, private_batch):
    document = make_document(colleague, "fresh.txt")
    assert can_change(colleague, document) and not can_view(owner, document)

    private_batch.add_documents([document])

    assert not can_view(colleague, document)
    assert can_change(owner, document)


def test_a_document_is_reached_through_any_batch_that_grades_it(
    owner, colleague, shared_batch, essay_template
):
    document = shared_batch.jobs.first().document
    other = make_batch(owner, essay_template, jobs=0, name="Second look")
    other.add_documents([document])
    share(other, colleague, Level.CHANGE)

    assert can_change(colleague, document)
    unshare(other, colleague, Level.VIEW)
    assert can_view(colleague, document) and not can_change(colleague, document)


def test_a_document_graded_in_two_batches_is_listed_once(owner, colleague, shared_batch, essay_template):
    document = shared_batch.jobs.first().document
    other = make_batch(owner, essay_template, jobs=0, name="Second look")
    other.add_documents([document])
    share(other, colleague, Level.VIEW)

    assert Document.objects.visible_to(colleague).filter(pk=document.pk).count() == 1


def test_a_job_outside_any_batch_is_its_owners_alone(owner, colleague, shared_batch):
    loose = GradingJob.objects.create(name="Loose", document=make_document(owner, "loose.txt"), owner=owner)
    _result(loose)

    assert loose in GradingJob.objects.changeable_by(owner)
    assert loose.document in Document.objects.changeable_by(owner)
    assert loose.result in GradingResult.objects.changeable_by(owner)
    assert loose not in GradingJob.objects.visible_to(colleague)
    assert loose.document not in Document.objects.visible_to(colleague)


def test_a_job_taken_out_of_a_batch_stays_with_the_batchs_owner(owner, colleague, shared_batch):
    share(shared_batch, colleague, Level.CHANGE)
    shared_batch.add_documents([make_document(colleague, "colins-essay.txt")], owner=colleague)
    uploaded = GradingJob.objects.get(document__original_name="colins-essay.txt")

    shared_batch.remove_job(uploaded)

    uploaded.refresh_from_db()
    assert uploaded.batch_id is None and uploaded.owner == owner
    assert can_change(owner, uploaded) and can_change(owner, uploaded.document)
    assert not can_view(colleague, uploaded) and not can_view(colleague, uploaded.document)


def test_listing_visible_jobs_documents_and_results_is_one_query(
    colleague, owner, essay_template, django_assert_num_queries
):
    group = Group.objects.create(name="markers")
    colleague.groups.add(group)
    for i in range(6):
        batch = make_batch(owner, essay_template, jobs=2, name=f"Essays {i}")
        share(batch, group if i % 2 else colleague, Level.VIEW)
        _result(batch.jobs.first())
    GradingJob.objects.create(name="Loose", document=make_document(colleague, "loose.txt"), owner=colleague)
    make_document(colleague, "fresh.txt")

    for model, count in ((GradingJob, 13), (Document, 14), (GradingResult, 6)):
        with django_assert_num_queries(1):
            assert len(list(model.objects.visible_to(colleague))) == count


def test_listing_visible_batches_is_one_query_however_much_is_shared(
    colleague, owner, essay_template, django_assert_num_queries
):
    group = Group.objects.create(name="markers")
    colleague.groups.add(group)
    for i in range(12):
        batch = make_batch(owner, essay_template, jobs=1, name=f"Essays {i}")
        share(batch, group if i % 2 else colleague, Level.VIEW)

    with django_assert_num_queries(1):
        rows = list(JobBatch.objects.visible_to(colleague).with_progress())

    assert len(rows) == 12
    assert all(row.jobs_total == 1 and row.jobs_pending == 1 for row in rows)
