"""An economy batch's page (its provider batches), the list (its expected finish) and a draft's two prices fit every width and pass axe-core."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from grading.economy_engine import tick
from tests.browser.conftest import sign_in
from tests.browser.test_pages_fit_and_are_accessible import FIT_WIDTHS, SHOT_WIDTHS, axe_violations, overflow
from tests.conftest import make_batch
from tests.support.economy import economy_batch
from tests.support.engine import OPENAI

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def economy_pages(owner, settings, standin):
    settings.OPENAI_BATCH_API = True
    standin.configure(batch_hold=True)
    running = economy_batch(owner, jobs=4, name="Year 11 persuasive essays — economy, due next week")
    tick()
    draft = make_batch(
        owner,
        jobs=3,
        settings=OPENAI,
        name="Draft due in three days",
        deadline=timezone.now() + timedelta(days=3),
    )
    return {
        "economy-batch": f"/batches/{running.pk}",
        "economy-draft": f"/batches/{draft.pk}/documents",
        "economy-list": "/batches",
    }


def test_economy_pages_fit_every_width_and_pass_axe_core(web, owner, economy_pages, artifacts):
    sign_in(web, "olivia", "pw-olivia")
    problems = []
    for name, url in economy_pages.items():
        web.set_viewport_size({"width": 1280, "height": 900})
        web.goto(url)
        expect(web.locator("main h1")).to_be_visible()
        if name == "economy-batch":
            expect(web.locator("[data-provider-batches]")).to_contain_text("0 of 4 finished")
            expect(web.locator(".eta-provider-batch")).to_contain_text("(provider batch)")
        elif name == "economy-list":
            expect(web.locator(".eta-provider-batch").first).to_contain_text("Expected by")
        else:
            expect(web.locator("[data-delivery]")).to_contain_text("economy")
        for width in FIT_WIDTHS:
            web.set_viewport_size({"width": width, "height": 900})
            found = overflow(web)
            if found["page"] > 0:
                problems.append(f"{name} at {width}px: the page scrolls sideways by {found['page']}px")
            if width in SHOT_WIDTHS:
                web.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
            if width in (390, 1280):
                problems += [f"{name} at {width}px: {violation}" for violation in axe_violations(web)]
    assert not problems, "\n".join(problems)
