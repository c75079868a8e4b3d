"""The review queue driven from the keyboard in Chromium, and the comparison matrix at every width.

A teacher opens the first job in “Not reviewed”, presses `a` to accept the AI
grade and lands on the next job; `j` and `k` move along the queue, and keys
typed into a field stay in the field. The matrix fits a phone (scrolling
inside its card, not the page) and a desktop, and axe-core finds nothing.
"""

import re

import pytest
from playwright.sync_api import expect

from grading.models import GradingResult
from tests.browser.conftest import sign_in
from tests.browser.test_pages_fit_and_are_accessible import axe_violations, overflow
from tests.review_support import comparison_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def job_url(batch, job, query="") -> re.Pattern:
    return re.compile(rf".*/batches/{batch.pk}/jobs/{job.pk}{re.escape(query)}$")


def test_a_teacher_walks_the_not_reviewed_queue_from_the_keyboard(web, owner, artifacts):
    batch, jobs = comparison_batch(owner)
    queue = [
        jobs[key]
        for key in (
            ("alpha.txt", "builtin"),
            ("bravo.txt", "builtin"),
            ("bravo.txt", "openai"),
            ("charlie.txt", "builtin"),
        )
    ]
    sign_in(web, "olivia", "pw-olivia")
    web.goto(f"/batches/{batch.pk}")
    web.get_by_role("checkbox", name="Not reviewed").check()
    web.get_by_role("button", name="Apply").click()
    web.wait_for_url(re.compile(r".*\?show=not_reviewed.*"))
    web.locator("#batch-jobs table a").first.click()
    web.wait_for_url(job_url(batch, queue[0], "?show=not_reviewed"))
    expect(web.locator("#key-legend")).to_be_visible()
    expect(web.locator(".job-nav")).to_contain_text("1 of 6 · Not reviewed")

    web.keyboard.press("a")
    web.wait_for_url(job_url(batch, queue[1], "?show=not_reviewed"))
    expect(web.get_by_text("Accepted the AI's 75 / 100 for “alpha.txt”.")).to_be_visible()
    assert GradingResult.objects.get(job=queue[0]).reviewed_score == 75

    web.keyboard.press("j")
    web.wait_for_url(job_url(batch, queue[2], "?show=not_reviewed"))
    web.keyboard.press("k")
    web.wait_for_url(job_url(batch, queue[1], "?show=not_reviewed"))
    web.keyboard.press("j")
    web.wait_for_url(job_url(batch, queue[2], "?show=not_reviewed"))

    # Typed into the comment, the keys are letters of the comment.
    comment = web.get_by_label("Comment")
    comment.fill("")
    comment.press_sequentially("jak")
    expect(comment).to_have_value("jak")
    assert web.url.endswith(f"/jobs/{queue[2].pk}?show=not_reviewed")
    assert GradingResult.objects.get(job=queue[2]).reviewed_score is None
    web.screenshot(path=str(artifacts / "review-queue-job.png"), full_page=True)


def test_the_comparison_matrix_fits_every_width_and_passes_axe(web, owner, artifacts):
    batch, _ = comparison_batch(owner, name="Week 6 essays compared by two models")
    sign_in(web, "olivia", "pw-olivia")
    problems = []
    for width in (390, 1280, 1920):
        web.set_viewport_size({"width": width, "height": 900})
        web.goto(f"/batches/{batch.pk}/compare?ordering=-spread")
        expect(web.locator("main h1")).to_have_text("Models compared")
        found = overflow(web)
        if found["page"] > 0:
            problems.append(f"at {width}px the page scrolls sideways by {found['page']}px")
        if found["tables"]:
            problems.append(f"at {width}px a table is wider than its card: {found['tables']}")
        inner = web.evaluate(
            "() => { const box = document.getElementById('matrix-scroll'); "
            "return box.scrollWidth - box.clientWidth; }"
        )
        if width >= 1280 and inner > 1:
            problems.append(f"at {width}px the matrix scrolls inside its card by {inner}px")
        problems += [f"at {width}px: {violation}" for violation in axe_violations(web)]
        web.screenshot(path=str(artifacts / f"compare-{width}.png"), full_page=True)
    assert not problems, "\n".join(problems)


def test_the_batch_page_with_the_queue_filters_fits_and_passes_axe(web, owner):
    batch, _ = comparison_batch(owner)
    sign_in(web, "olivia", "pw-olivia")
    problems = []
    for width in (390, 1280, 1920):
        web.set_viewport_size({"width": width, "height": 900})
        web.goto(f"/batches/{batch.pk}?show=low_confidence&ordering=-spread")
        found = overflow(web)
        if found["page"] > 0 or found["tables"]:
            problems.append(f"at {width}px: {found}")
        problems += [f"at {width}px: {violation}" for violation in axe_violations(web)]
    assert not problems, "\n".join(problems)
