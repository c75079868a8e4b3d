"""A grader's whole day in a real browser: sign in, create, upload (grading starts), watch, review, export."""

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from batches.models import BatchStatus, JobBatch
from tests.browser.conftest import GRADERS, sign_in
from tests.conftest import make_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEMO = Path(__file__).resolve().parents[2] / "batches" / "demo"
ESSAYS = ["strong_essay.txt", "average_essay.txt", "weak_essay.txt"]
GRADING_TIMEOUT_MS = 90_000


def drop_files(page, selector: str, files: dict[str, str]) -> None:
    """Drop files onto an element as a person dragging them from the desktop would."""
    page.evaluate(
        """([selector, files]) => {
            const transfer = new DataTransfer();
            for (const [name, text] of Object.entries(files)) {
                transfer.items.add(new File([text], name, {type: "text/plain"}));
            }
            const zone = document.querySelector(selector);
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: transfer}));
            }
        }""",
        [selector, files],
    )


@pytest.mark.parametrize("graders", GRADERS, indirect=True)
def test_a_grader_creates_a_batch_uploads_starts_watches_reviews_and_exports(
    web, owner, essay_template, graders, artifacts, tmp_path
):
    sign_in(web, "olivia", "pw-olivia")
    expect(web.get_by_role("heading", name="No batches yet")).to_be_visible()
    web.get_by_role("link", name="Create your first batch").click()

    # Step 1: the template, its description and rubric, and the batch's details.
    expect(web.get_by_label("Academic Essay Grading")).to_be_checked()
    preview = web.locator("#template-preview")
    expect(preview).to_contain_text("Thesis and argument")
    web.get_by_label("Business Report Review").check()
    expect(preview).to_contain_text("Executive summary")
    web.get_by_label("Academic Essay Grading").check()
    expect(preview).to_contain_text("Thesis and argument")
    web.get_by_label("Name").fill("Week 5 essays")
    web.get_by_label("Priority").fill("7")
    web.get_by_label("Tags", exact=True).fill("english, week-5")
    web.get_by_role("button", name="Create batch and add documents").click()

    # Step 2: a refused upload explains itself; three essays dropped onto the zone go in.
    expect(web.get_by_role("heading", name="Upload documents")).to_be_visible()
    expect(web.locator("#auto-start-note")).to_contain_text("Grading starts by itself")
    web.locator("#id_files").set_input_files(
        [{"name": "notes.exe", "mimeType": "application/octet-stream", "buffer": b"MZ"}]
    )
    web.get_by_role("button", name="Upload", exact=True).click()
    expect(web.get_by_role("alert")).to_contain_text("notes.exe")
    drop_files(web, "[data-dropzone]", {name: (DEMO / name).read_text() for name in ESSAYS})
    expect(web.locator("#chosen-files li")).to_have_count(3)
    web.get_by_role("button", name="Upload", exact=True).click()
    expect(web.get_by_role("status").first).to_contain_text("Uploaded 3 documents: 3 jobs added.")

    # Step 3: the essay template's rules start grading once the upload is in; watch the bar
    # reach 100% and the scores appear.
    expect(web.get_by_role("status").first).to_contain_text("Grading has started")
    web.get_by_role("link", name="Back to the batch").click()
    batch = JobBatch.objects.get(name="Week 5 essays")
    web.wait_for_url(f"**/batches/{batch.pk}")
    progress = web.locator("#batch-progress [role=progressbar]")
    expect(progress).to_have_attribute("aria-valuenow", "100", timeout=GRADING_TIMEOUT_MS)
    expect(web.locator("#batch-status")).to_contain_text("Completed", timeout=GRADING_TIMEOUT_MS)
    scores = web.locator("#batch-jobs td.num strong")
    expect(scores).to_have_count(3)
    for text in scores.all_inner_texts():
        assert re.fullmatch(r"\d+(\.\d+)? / 100", text)
    expect(web.locator("#analytics svg[aria-labelledby^='chart-scores']")).to_be_visible()
    web.screenshot(path=str(artifacts / "batch-detail.png"), full_page=True)

    # Open one job: the document beside the AI's grade, then a review.
    web.get_by_role("link", name="strong_essay.txt").click()
    expect(web.get_by_role("heading", name="AI grade")).to_be_visible()
    expect(web.locator(".document-text")).to_contain_text((DEMO / "strong_essay.txt").read_text().split()[0])
    expect(web.locator(".criterion")).to_have_count(5)
    web.get_by_label("Total score").fill("150")
    web.get_by_role("button", name="Save review").click()
    expect(web.locator("#id_score_error")).to_contain_text("between 0 and 100")
    web.get_by_label("Total score").fill("88")
    web.get_by_label("Comment").fill("Checked by hand: the evidence is stronger than the AI thought.")
    reviewed_page = web.url
    web.get_by_role("button", name="Save review").click()
    # Saving moves on to the next job (or, after the last, back to the batch's jobs), saying so.
    expect(web.get_by_role("status").first).to_contain_text("Review saved")
    assert web.url != reviewed_page
    web.goto(reviewed_page)
    expect(web.locator(".score-reviewed")).to_contain_text("88 / 100")

    # Download the export and read the gradebook in it.
    web.get_by_role("link", name=batch.name).click()
    with web.expect_download() as download:
        web.get_by_role("button", name="Download results (ZIP)").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert re.fullmatch(r"week-5-essays-\d{8}T\d{6}Z\.zip", saved.name)
    with zipfile.ZipFile(saved) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("gradebook.csv").decode("utf-8-sig"))))
        assert any(name.startswith("feedback/") for name in archive.namelist())
    # The same export without the students' feedback sheets, for a quicker download.
    web.get_by_label("Leave out the feedback sheets").check()
    with web.expect_download() as download:
        web.get_by_role("button", name="Download results (ZIP)").click()
    without = tmp_path / f"without-{download.value.suggested_filename}"
    download.value.save_as(without)
    with zipfile.ZipFile(without) as archive:
        assert "gradebook.csv" in archive.namelist()
        assert not [name for name in archive.namelist() if name.startswith("feedback/")]
    assert len(rows) == 3
    assert sorted(row["file_name"] for row in rows) == sorted(ESSAYS)
    reviewed = next(row for row in rows if row["file_name"] == "strong_essay.txt")
    assert float(reviewed["final_score"]) == 88

    web.goto("/batches")
    expect(web.locator(f"#batch-row-{batch.pk}")).to_contain_text("Completed")
    web.screenshot(path=str(artifacts / "batch-list.png"), full_page=True)


def test_a_grader_pauses_and_resumes_a_running_batch(web, owner, essay_template):
    # No worker runs in this test: the batch stays processing, with its jobs queued, for as long as it takes.
    batch = make_batch(owner, essay_template, jobs=3, name="Running essays")
    batch.start_batch()
    batch.mark_processing()
    sign_in(web, "olivia", "pw-olivia")
    web.goto(f"/batches/{batch.pk}")
    expect(web.locator("#batch-status")).to_contain_text("Processing")
    web.get_by_role("button", name="Pause").click()
    expect(web.get_by_role("status").first).to_contain_text("Paused “Running essays”")
    expect(web.locator("#batch-status")).to_contain_text("Paused")
    expect(web.get_by_role("button", name="Pause")).to_have_count(0)
    web.get_by_role("button", name="Resume").click()
    expect(web.locator("#batch-status")).to_contain_text("Processing")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PROCESSING
    expect(web.get_by_role("button", name="Pause")).to_be_visible()


def test_a_grader_filters_the_list(web, owner, essay_template):
    make_batch(owner, essay_template, jobs=0, name="History drafts", tags=["history"], priority=2)
    make_batch(owner, essay_template, jobs=0, name="Maths drafts", tags=["maths"], priority=3)
    finished = make_batch(owner, essay_template, jobs=1, name="History finals", tags=["history"], priority=8)
    JobBatch.objects.filter(pk=finished.pk).update(status=BatchStatus.COMPLETED)
    sign_in(web, "olivia", "pw-olivia")
    rows = web.locator("tbody tr .batch-link")
    expect(rows).to_have_count(3)

    web.get_by_label("Draft", exact=True).check()
    web.get_by_label("Tags", exact=True).fill("history")
    web.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_text(["History drafts"])
    expect(web.get_by_label("Draft", exact=True)).to_be_checked()
    expect(web.get_by_label("Tags", exact=True)).to_have_value("history")

    web.get_by_label("Draft", exact=True).uncheck()
    web.get_by_label("Lowest priority", exact=True).fill("5")
    web.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_text(["History finals"])

    web.get_by_label("Search").fill("nothing like this")
    web.get_by_role("button", name="Apply filters").click()
    expect(web.get_by_role("heading", name="No batch matches these filters")).to_be_visible()
    web.get_by_role("link", name="Clear the filters").click()
    expect(rows).to_have_count(3)


def finish_jobs(batch) -> None:
    """Finish a batch's jobs as a worker would, behind the browser's back."""
    from grading.models import GradingJob, GradingResult, JobStatus

    for job in GradingJob.objects.in_batch(batch):
        GradingResult.objects.create(job=job, provider="builtin", model="builtin-v1", score=70, max_score=100)
    GradingJob.objects.in_batch(batch).update(status=JobStatus.COMPLETED)
    batch.finalize()


def test_the_list_and_the_batch_page_follow_a_running_batch_without_a_reload(web, owner, essay_template):
    watched = make_batch(owner, essay_template, jobs=2, name="Watched on the list")
    opened = make_batch(owner, essay_template, jobs=2, name="Watched on its page")
    for batch in (watched, opened):
        batch.start_batch()
        batch.mark_processing()
    sign_in(web, "olivia", "pw-olivia")
    row = web.locator(f"#batch-row-{watched.pk}")
    expect(row).to_contain_text("Processing")
    web.evaluate("window.notReloaded = true")
    finish_jobs(watched)
    expect(row).to_contain_text("Completed", timeout=10_000)
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    assert web.evaluate("window.notReloaded") is True

    web.goto(f"/batches/{opened.pk}")
    score_chart = web.locator("#analytics svg[aria-labelledby^='chart-scores']")
    expect(score_chart).to_have_count(0)
    finish_jobs(opened)
    expect(web.locator("#batch-status")).to_contain_text("Completed", timeout=10_000)
    expect(web.locator("#batch-jobs")).to_contain_text("70 / 100")
    # Once the batch has ended the page reloads itself once, to draw the results.
    expect(score_chart).to_be_visible(timeout=10_000)
