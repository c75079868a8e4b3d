"""The inbox in a real browser: files dropped on the page, where each one went, and the queue.

No grader runs here (neither a cluster nor sync mode): a batch the upload
starts waits in the queue, which is what the queue page is asked to show.
"""

import pytest
from playwright.sync_api import expect

from batches.models import BatchStatus, InboxItem, JobBatch
from tests.browser.conftest import sign_in
from tests.browser.test_grading_in_the_browser import drop_files
from tests.browser.test_pages_fit_and_are_accessible import axe_violations, overflow
from tests.conftest import make_batch, prebuilt
from tests.inbox_support import ESSAY, REPORT, rule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOPPING = "Milk, bread, eggs.\n"


@pytest.fixture
def rules(owner):
    """Essays into one new batch per class (started at once); reports into a draft; nothing else."""
    reports = make_batch(
        owner,
        prebuilt("business-report"),
        jobs=0,
        name="Q3 reports",
        settings={"processing": {"auto_start": False}},
    )
    rule(owner, "Reports", 1, document_kind="report", target_batch=reports)
    rule(
        owner,
        "Essays by class",
        2,
        document_kind="essay",
        template=prebuilt("academic-essay"),
        group_by=r"^(\w+?)_",
        batch_name="Essays {group}",
        auto_start=True,
    )
    return reports


def test_files_dropped_on_the_inbox_go_where_the_rules_say_and_the_queue_shows_the_batch(
    web, owner, rules, artifacts
):
    sign_in(web, "olivia", "pw-olivia")
    web.get_by_role("link", name="Inbox").first.click()
    expect(web.get_by_role("heading", name="Inbox", exact=True)).to_be_visible()

    files = {"7a_ada.txt": ESSAY, "7a_bob.txt": ESSAY, "north.txt": REPORT, "shopping.txt": SHOPPING}
    drop_files(web, "[data-dropzone]", files)
    # The drop filled the real file input, and the page lists what was chosen.
    chosen = web.locator("#chosen-files li")
    expect(chosen).to_have_count(4)
    assert web.locator("#id_files").evaluate("input => input.files.length") == 4
    web.get_by_role("button", name="Upload").click()

    went = web.locator("section", has=web.get_by_role("heading", name="Where each document went"))
    expect(went).to_be_visible()
    rows = {
        row.locator("td").first.inner_text().split(" ")[0]: row.inner_text()
        for row in went.locator("tbody tr").all()
    }
    assert set(rows) == set(files)
    assert "Essays 7a" in rows["7a_ada.txt"] and "Essays 7a" in rows["7a_bob.txt"]
    assert "grading started" in rows["7a_ada.txt"]
    assert "Q3 reports" in rows["north.txt"]
    assert "Kept in the inbox" in rows["shopping.txt"]
    waiting = web.locator("#waiting")
    expect(waiting).to_contain_text("shopping.txt")
    # The answer fits a phone and a wide desktop, and axe-core finds nothing on it.
    for width in (390, 1280, 1920):
        web.set_viewport_size({"width": width, "height": 900})
        assert overflow(web) == {"page": 0, "tables": [], "captions": [], "words": []}, width
        web.screenshot(path=str(artifacts / f"inbox-after-drop-{width}.png"), full_page=True)
    assert axe_violations(web) == []

    made = JobBatch.objects.get(name="Essays 7a")
    assert made.jobs.count() == 2 and made.status in (BatchStatus.PENDING, BatchStatus.PROCESSING)
    assert rules.jobs.count() == 1
    assert InboxItem.objects.of(owner).get().document.original_name == "shopping.txt"

    web.get_by_role("link", name="Queue").first.click()
    expect(web.get_by_role("heading", name="Processing queue")).to_be_visible()
    row = web.locator("tr", has=web.get_by_role("link", name="Essays 7a"))
    expect(row.locator("td")).to_have_count(9)
    cells = row.locator("td")
    expect(cells.nth(0)).to_have_text("1st")  # served first
    expect(cells.nth(4)).to_have_text("2")  # both essays waiting
    expect(web.get_by_role("link", name="Q3 reports")).to_have_count(0)  # a draft is not in the queue
    web.screenshot(path=str(artifacts / "queue-after-drop.png"), full_page=True)


def test_the_file_picker_uploads_the_same_way_without_dragging(web, owner, rules, tmp_path):
    essay = tmp_path / "8b_cy.txt"
    essay.write_text(ESSAY)
    sign_in(web, "olivia", "pw-olivia")
    web.goto("/inbox")
    web.locator("#id_files").set_input_files([str(essay)])
    expect(web.locator("#chosen-files li")).to_have_text(["8b_cy.txt"])
    web.get_by_role("button", name="Upload").click()
    went = web.locator("section", has=web.get_by_role("heading", name="Where each document went"))
    expect(went).to_contain_text("Essays 8b")


def test_a_file_dropped_beside_the_zone_does_not_take_the_browser_away_from_the_page(web, owner, rules):
    # A browser opens a file dropped where no page handler takes it, leaving the inbox (and, on the
    # batch page, what was being typed). Dropped beside the zone, the page keeps it from doing so.
    sign_in(web, "olivia", "pw-olivia")
    web.goto("/inbox")

    kept = web.evaluate(
        """() => {
            const transfer = new DataTransfer();
            transfer.items.add(new File(["An essay."], "essay.txt", {type: "text/plain"}));
            const beside = document.querySelector("main h1");
            const outcomes = ["dragover", "drop"].map(type => {
                const event = new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: transfer});
                beside.dispatchEvent(event);
                return event.defaultPrevented;
            });
            return outcomes;
        }"""
    )

    assert kept == [True, True]
    assert web.locator("#id_files").evaluate("input => input.files.length") == 0
