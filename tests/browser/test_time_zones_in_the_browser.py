"""A grader's browser says where they are; the pages show and read times there until they pick a zone."""

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from accounts.models import UserProfile
from batches.models import JobBatch
from tests.browser.conftest import browser_tab, sign_in
from tests.conftest import make_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# 14:30 UTC on 15 January 2031: 23:30 in Tokyo, 09:30 in New York.
DEADLINE = datetime(2031, 1, 15, 14, 30, tzinfo=UTC)


def test_times_follow_the_browsers_zone_until_the_grader_picks_one(
    chromium, live_server, owner, essay_template
):
    batch = make_batch(owner, essay_template, jobs=1, name="Essays due in January", deadline=DEADLINE)
    with browser_tab(chromium, live_server.url, timezone_id="Asia/Tokyo") as web:
        # The sign-in page already tells the server the browser's zone: the first page shows it.
        sign_in(web, "olivia", "pw-olivia")
        expect(web.locator(f"#batch-row-{batch.pk} .col-deadline")).to_contain_text("Jan 15, 23:30")
        expect(web.locator(".zone-note")).to_have_text("Times in Asia/Tokyo")
        web.goto(f"/batches/{batch.pk}/edit")
        expect(web.get_by_label("Deadline")).to_have_value("2031-01-15T23:30")
        expect(web.get_by_text("In Asia/Tokyo time.")).to_be_visible()

        # The grader picks New York from the account page, linked from the navigation.
        web.get_by_role("link", name="olivia").click()
        expect(web.get_by_role("heading", name="Your account")).to_be_visible()
        select = web.get_by_label("Show times in")
        expect(select).to_have_value("")
        expect(select.locator("option").first).to_have_text("This browser’s zone (Asia/Tokyo)")
        select.select_option("America/New_York")
        web.get_by_role("button", name="Save time zone").click()
        expect(web.get_by_role("status").first).to_contain_text("Times are now shown in America/New_York.")
        assert UserProfile.objects.get(user=owner).time_zone == "America/New_York"

        # Shown and entered in New York time, stored in UTC.
        web.goto(f"/batches/{batch.pk}")
        expect(web.locator(".zone-note")).to_have_text("Times in America/New_York")
        expect(web.locator("time").filter(has_text="Jan 15, 2031")).to_have_text("Jan 15, 2031 09:30")
        web.goto(f"/batches/{batch.pk}/edit")
        deadline = web.get_by_label("Deadline")
        expect(deadline).to_have_value("2031-01-15T09:30")
        deadline.fill("2031-01-20T17:00")
        web.get_by_role("button", name="Save details").click()
        web.wait_for_url(f"**/batches/{batch.pk}")
        assert JobBatch.objects.get(pk=batch.pk).deadline == datetime(2031, 1, 20, 22, 0, tzinfo=UTC)
        expect(web.locator("time").filter(has_text="Jan 20, 2031")).to_have_text("Jan 20, 2031 17:00")
