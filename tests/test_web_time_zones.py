"""Times on the pages are in each user's zone: the one they chose on /account, else their browser's.

The database holds UTC whatever the zone; the API stays in UTC.
"""

from datetime import UTC, datetime

import pytest

from accounts.models import UserProfile
from batches.models import JobBatch
from tests.conftest import make_batch
from tests.web_support import messages_of

pytestmark = pytest.mark.django_db

# 14:30 UTC on 15 January 2031: 09:30 in New York (EST, UTC-5), 23:30 in Tokyo.
DEADLINE = datetime(2031, 1, 15, 14, 30, tzinfo=UTC)


@pytest.fixture
def new_yorker(owner):
    UserProfile.choose_zone(owner, "America/New_York")
    return owner


def test_a_user_in_new_york_sees_the_deadline_in_new_york_time(client, new_yorker, essay_template):
    batch = make_batch(new_yorker, essay_template, jobs=0, deadline=DEADLINE)
    client.force_login(new_yorker)

    page = client.get(f"/batches/{batch.pk}").content.decode()
    assert "Jan 15, 2031 09:30" in page
    assert 'datetime="2031-01-15T09:30:00-05:00"' in page
    assert "Times in" in page and "America/New_York" in page
    assert "14:30" not in page

    listed = client.get("/batches").content.decode()
    assert "Jan 15, 09:30" in listed and "America/New_York" in listed

    edit = client.get(f"/batches/{batch.pk}/edit").content.decode()
    assert 'value="2031-01-15T09:30"' in edit
    assert "In America/New_York time." in edit


def test_a_deadline_entered_in_new_york_time_is_stored_in_utc(client, new_yorker, essay_template):
    client.force_login(new_yorker)
    form = client.get("/batches/new").content.decode()
    assert "In America/New_York time." in form
    response = client.post(
        "/batches/new",
        {
            "template": essay_template.pk,
            "name": "Due at half past nine",
            "description": "",
            "priority": "5",
            "tags": "",
            "deadline": "2031-01-15T09:30",
            "provider": "",
            "model": "",
            "compare_models": "",
        },
    )
    assert response.status_code == 302
    stored = JobBatch.objects.get(name="Due at half past nine").deadline
    assert stored == DEADLINE
    assert stored.utcoffset().total_seconds() == 0


def test_the_edit_page_reads_a_summer_deadline_with_daylight_saving(client, new_yorker, batch):
    client.force_login(new_yorker)
    response = client.post(
        f"/batches/{batch.pk}/edit",
        {
            "part": "details",
            "name": batch.name,
            "description": "",
            "priority": "5",
            "tags": "",
            "deadline": "2031-07-01T09:30",
        },
    )
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.deadline == datetime(2031, 7, 1, 13, 30, tzinfo=UTC)  # EDT is UTC-4


def test_without_a_choice_the_browsers_zone_is_used(client, owner, essay_template):
    batch = make_batch(owner, essay_template, jobs=0, deadline=DEADLINE)
    client.force_login(owner)
    client.cookies["tz"] = "Asia/Tokyo"
    page = client.get(f"/batches/{batch.pk}").content.decode()
    assert "Jan 15, 2031 23:30" in page and "Asia/Tokyo" in page


def test_a_chosen_zone_wins_over_the_browsers(client, new_yorker, essay_template):
    batch = make_batch(new_yorker, essay_template, jobs=0, deadline=DEADLINE)
    client.force_login(new_yorker)
    client.cookies["tz"] = "Asia/Tokyo"
    assert "Jan 15, 2031 09:30" in client.get(f"/batches/{batch.pk}").content.decode()


@pytest.mark.parametrize("cookie", ["Not/AZone", "../../etc/passwd", ""])
def test_a_zone_the_server_does_not_know_falls_back_to_the_default(client, owner, essay_template, cookie):
    batch = make_batch(owner, essay_template, jobs=0, deadline=DEADLINE)
    client.force_login(owner)
    client.cookies["tz"] = cookie
    page = client.get(f"/batches/{batch.pk}").content.decode()
    assert "Jan 15, 2031 14:30" in page and "Times in" in page and ">UTC<" in page


def test_the_api_keeps_utc_whatever_the_users_zone(client, new_yorker, essay_template):
    batch = make_batch(new_yorker, essay_template, jobs=0, deadline=DEADLINE)
    client.force_login(new_yorker)
    client.cookies["tz"] = "Asia/Tokyo"
    deadline = client.get(f"/api/batches/{batch.pk}").json()["deadline"]
    assert datetime.fromisoformat(deadline.replace("Z", "+00:00")) == DEADLINE
    assert deadline.endswith(("Z", "+00:00"))


def test_the_account_page_sets_and_clears_the_zone(client, owner):
    client.force_login(owner)
    client.cookies["tz"] = "Europe/Paris"
    page = client.get("/account").content.decode()
    assert "This browser’s zone (Europe/Paris)" in page
    assert '<option value="America/New_York">New York</option>' in page

    response = client.post("/account", {"time_zone": "America/New_York"})
    assert response.status_code == 302
    assert messages_of(response) == ["Times are now shown in America/New_York."]
    assert UserProfile.objects.get(user=owner).time_zone == "America/New_York"
    page = client.get("/account").content.decode()
    assert '<option value="America/New_York" selected>New York</option>' in page

    response = client.post("/account", {"time_zone": ""})
    assert messages_of(response) == ["Times now follow this browser’s zone (Europe/Paris)."]
    assert UserProfile.objects.get(user=owner).time_zone == ""
    assert "Times in" in client.get("/notifications").content.decode()


def test_the_account_page_refuses_a_zone_not_on_its_list(client, owner):
    client.force_login(owner)
    response = client.post("/account", {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not UserProfile.objects.filter(user=owner).exists()


def test_the_account_page_asks_to_sign_in(client):
    response = client.get("/account")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_the_navigation_links_the_account_page(client, owner):
    client.force_login(owner)
    assert 'href="/account"' in client.get("/batches").content.decode()
