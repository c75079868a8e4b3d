"""Bulk actions on the list, in Chromium: tick rows and pause them, select every batch a filter matches and archive them.

The list with a selection, and the confirmation page of a bulk delete, fit a
phone (390 px) and the desktop widths without sideways scrolling and pass
axe-core's WCAG 2.1 A/AA rules. Screenshots: test-artifacts/list-bulk-390.png,
list-bulk-1280.png, list-bulk-1920.png and bulk-delete-390.png.
"""

import pytest
from playwright.sync_api import expect

from batches.models import BatchStatus, JobBatch
from grading.models import JobStatus
from tests.browser.conftest import sign_in
from tests.browser.test_pages_fit_and_are_accessible import axe_violations, overflow
from tests.conftest import make_batch, set_status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_grader_ticks_two_rows_and_pauses_them(web, owner, tasks_inline):
    first, second, third = (
        set_status(make_batch(owner, name=f"Essay set {i}"), BatchStatus.PROCESSING, JobStatus.QUEUED)
        for i in (1, 2, 3)
    )
    sign_in(web, "olivia", "pw-olivia")
    web.get_by_label("Select “Essay set 1”").check()
    web.get_by_label("Select “Essay set 2”").check()
    expect(web.locator("[data-selected-count]")).to_have_text("2 selected.")
    web.get_by_label("Action").select_option(label="Pause")
    web.get_by_role("button", name="Apply to selected").click()

    expect(web.get_by_role("status").first).to_have_text("Paused 2 batches.")
    expect(web.locator(f"#batch-row-{first.pk}")).to_contain_text("Paused")
    expect(web.locator(f"#batch-row-{second.pk}")).to_contain_text("Paused")
    expect(web.locator(f"#batch-row-{third.pk}")).to_contain_text("Processing")
    statuses = dict(JobBatch.objects.values_list("name", "status"))
    assert statuses == {
        "Essay set 1": BatchStatus.PAUSED,
        "Essay set 2": BatchStatus.PAUSED,
        "Essay set 3": BatchStatus.PROCESSING,
    }


def test_a_grader_selects_every_batch_a_filter_matches_and_archives_them(web, owner):
    for index in range(23):  # more than a page (20)
        set_status(
            make_batch(owner, name=f"Term 1 – {index:02d}", jobs=0, tags=["term-1"]), BatchStatus.COMPLETED
        )
    set_status(make_batch(owner, name="Term 2", jobs=0, tags=["term-2"]), BatchStatus.COMPLETED)
    sign_in(web, "olivia", "pw-olivia")
    web.goto("/batches?tags=term-1")
    expect(web.locator("input.row-select")).to_have_count(20)
    web.get_by_label("Select all 23 batches matching the filters").check()
    expect(web.locator("[data-selected-count]")).to_have_text("All 23 matching selected, on every page.")
    web.get_by_label("Action").select_option(label="Archive")
    web.get_by_role("button", name="Apply to selected").click()

    expect(web.get_by_role("status").first).to_have_text("Archived 23 batches.")
    expect(web.get_by_role("heading", name="No batch matches these filters")).to_be_visible()
    assert JobBatch.objects.filter(status=BatchStatus.ARCHIVED).count() == 23
    assert JobBatch.objects.get(name="Term 2").status == BatchStatus.COMPLETED


def test_the_list_with_a_selection_fits_every_width_and_passes_axe(web, owner, artifacts):
    for index in range(4):
        make_batch(
            owner,
            name=f"Week {index + 5} essays — English literature, seminar group B",
            tags=["english", f"week-{index + 5}", "seminar-b"],
        )
    sign_in(web, "olivia", "pw-olivia")
    problems = []
    for width in (390, 1280, 1920):
        web.set_viewport_size({"width": width, "height": 900})
        web.goto("/batches")
        web.get_by_label("Select all on this page").check()
        expect(web.locator("[data-selected-count]")).to_have_text("4 selected.")
        found = overflow(web)
        if found["page"] > 0 or found["tables"] or found["captions"]:
            problems.append(f"list at {width}px: {found}")
        web.screenshot(path=str(artifacts / f"list-bulk-{width}.png"), full_page=True)
        if width == 390:
            problems += [f"list at 390px: {violation}" for violation in axe_violations(web)]

    web.set_viewport_size({"width": 390, "height": 900})
    web.goto("/batches")
    web.get_by_label("Select all on this page").check()
    web.get_by_label("Action").select_option(label="Delete")
    web.get_by_role("button", name="Apply to selected").click()
    expect(web.get_by_role("heading", name="Delete 4 batches?")).to_be_visible()
    found = overflow(web)
    if found["page"] > 0:
        problems.append(f"bulk delete at 390px: {found}")
    problems += [f"bulk delete at 390px: {violation}" for violation in axe_violations(web)]
    web.screenshot(path=str(artifacts / "bulk-delete-390.png"), full_page=True)
    assert not problems, "\n".join(problems)
    assert JobBatch.objects.count() == 4  # asked, not yet deleted
