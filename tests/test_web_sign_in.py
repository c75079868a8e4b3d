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
