import pytest

pytestmark = pytest.mark.django_db


def test_the_root_redirects_to_the_batches():
    from django.test import Client

    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/batches"


@pytest.mark.parametrize(
    "path", ["/batches", "/batches/new", "/batches/1", "/batches/1/jobs/1", "/batches/live?id=1"]
)
def test_every_page_sends_an_anonymous_visitor_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_the_sign_in_page_has_labelled_fields_and_a_csrf_token(client):
    response = client.get("/accounts/login/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html
    assert "csrfmiddlewaretoken" in html


def test_signing_in_lands_on_the_batches(client, owner):
    response = client.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia"})
    assert response.status_code == 302
    assert response["Location"] == "/batches"


def test_a_wrong_password_says_so_on_the_page(client, owner):
    response = client.post("/accounts/login/", {"username": "olivia", "password": "nope"})
    assert response.status_code == 200
    assert "enter a correct username and password" in response.content.decode()


def test_signing_out_needs_a_post_and_ends_the_session(client, owner):
    client.force_login(owner)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/batches").status_code == 302


def test_a_form_posted_without_its_csrf_token_gets_a_readable_page(owner):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post("/batches/new", {"name": "x"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


def test_a_poll_after_the_session_ended_sends_the_page_to_sign_in(client):
    response = client.get(
        "/batches/live?id=1",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/batches?status=processing"},
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Fbatches%3Fstatus%3Dprocessing"
    response = client.get(
        "/batches/3/live", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/batches/3"}
    )
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Fbatches%2F3"


def test_the_11th_wrong_password_gets_the_lockout_page_and_the_right_one_waits(client, owner, settings):
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.db.models import F

    settings.AXES_ENABLED = True
    for _ in range(10):
        response = client.post("/accounts/login/", {"username": "olivia", "password": "nope"})
        assert response.status_code == 200
        assert "enter a correct username and password" in response.content.decode()
    locked = client.post("/accounts/login/", {"username": "olivia", "password": "nope"})
    assert locked.status_code == 429
    assert "Too many sign-in attempts" in locked.content.decode()
    assert "locked for 15 minutes" in locked.content.decode()
    still = client.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia"})
    assert still.status_code == 429
    assert client.get("/batches").status_code == 302  # not signed in
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    response = client.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia"})
    assert response.status_code == 302
    assert response["Location"] == "/batches"


def test_a_right_password_before_the_limit_clears_the_failures(client, owner, settings):
    from axes.models import AccessAttempt

    settings.AXES_ENABLED = True
    for _ in range(9):
        client.post("/accounts/login/", {"username": "olivia", "password": "nope"})
    assert client.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia"}).status_code == 302
    assert not AccessAttempt.objects.exists()


@pytest.mark.parametrize("variable", ["SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"])
def test_cookies_are_secure_unless_debug_or_turned_off(variable):
    from tests.test_configuration import settings_load_value

    assert settings_load_value(variable, DEBUG="0", SECRET_KEY="k") == "True"
    assert settings_load_value(variable, DEBUG="1") == "False"
    assert settings_load_value(variable, DEBUG="0", SECRET_KEY="k", **{variable: "0"}) == "False"


def test_the_sign_in_cookies_are_sent_secure(client, owner, settings):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    page = client.get("/accounts/login/")
    assert page.cookies["csrftoken"]["secure"] is True
    response = client.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia"})
    assert response.cookies["sessionid"]["secure"] is True
    assert client.get("/batches").status_code == 200  # the test client still sends them


@pytest.mark.parametrize("page", ["/accounts/login/", "/admin/login/"])
def test_a_username_longer_than_any_account_is_refused_on_the_form_and_not_counted(
    client, owner, settings, page
):
    # django-axes records a failed sign-in's username in a 255-character column:
    # on PostgreSQL a longer one made the page a 500.
    from axes.models import AccessAttempt

    settings.AXES_ENABLED = True
    response = client.post(page, {"username": "x" * 10_000, "password": "nope"})

    assert response.status_code == 200
    assert "at most 150 characters" in response.content.decode()
    assert not AccessAttempt.objects.exists()
