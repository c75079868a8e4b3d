"""Refusals answer with the app's own pages under `make run` (DEBUG on) too, log quietly, and /favicon.ico answers."""

import logging

import pytest
from django.test import override_settings

from core.quiet_logs import QuietRefusals
from tests.web_support import share_for_viewing

pytestmark = pytest.mark.django_db

DJANGO_DEBUG_PAGE = ("Django tried these URL patterns", "Using the URLconf", "Traceback")


def django_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name.startswith("django")]


@override_settings(DEBUG=True)
def test_a_batch_not_shared_is_the_apps_404_page_in_debug(client, stranger, batch, caplog):
    client.force_login(stranger)
    with caplog.at_level(logging.DEBUG):
        response = client.get(f"/batches/{batch.pk}")
    assert response.status_code == 404
    html = response.content.decode()
    assert "There is nothing here, or it is not shared with you." in html
    assert not any(text in html for text in DJANGO_DEBUG_PAGE)
    assert django_records(caplog) == []


@override_settings(DEBUG=True)
@pytest.mark.parametrize("path", ["/no-such-page", "/batches/12/nothing", "/batches/not-a-number"])
def test_an_unknown_address_is_the_apps_404_page_in_debug(client, owner, path):
    client.force_login(owner)
    response = client.get(path)
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Not found</h1>" in html and 'href="/account"' in html
    assert not any(text in html for text in DJANGO_DEBUG_PAGE)


@override_settings(DEBUG=True)
def test_the_api_keeps_its_json_404s_in_debug(client, owner, stranger, batch):
    client.force_login(owner)
    unknown = client.get("/api/no-such-endpoint")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "Not found.", "code": "not_found"}
    client.force_login(stranger)
    hidden = client.get(f"/api/batches/{batch.pk}")
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"


@override_settings(DEBUG=True)
def test_a_refused_change_is_the_apps_403_page_without_a_traceback(client, owner, colleague, batch, caplog):
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    with caplog.at_level(logging.DEBUG):
        response = client.post(f"/batches/{batch.pk}/start")
    assert response.status_code == 403
    html = response.content.decode()
    assert "<h1>Not allowed</h1>" in html and "You can view this batch but not" in html
    records = django_records(caplog)
    assert len(records) <= 1
    assert all(record.exc_info is None and "\n" not in record.getMessage() for record in records)


def test_the_same_pages_without_debug(client, stranger, batch):
    client.force_login(stranger)
    assert "There is nothing here" in client.get(f"/batches/{batch.pk}").content.decode()
    assert "There is nothing here" in client.get("/no-such-page").content.decode()
    assert client.get("/api/no-such-endpoint").json()["code"] == "not_found"


@pytest.mark.parametrize("debug", [True, False])
def test_favicon_ico_answers_with_the_icon(client, debug):
    with override_settings(DEBUG=debug):
        response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert b"".join(response).startswith(b"<svg")
    assert "max-age" in response["Cache-Control"]


def test_every_page_links_the_icon(client):
    assert 'rel="icon" href="/static/favicon.svg"' in client.get("/accounts/login/").content.decode()


def record(status: int | None, exc_info=None) -> logging.LogRecord:
    entry = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "%s", ("x",), exc_info)
    if status is not None:
        entry.status_code = status
    return entry


def test_the_log_filter_drops_refusals_and_tracebacks_of_other_client_errors():
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    quiet = QuietRefusals()
    assert quiet.filter(record(403, exc_info)) is False
    assert quiet.filter(record(404)) is False
    kept = record(405, exc_info)
    assert quiet.filter(kept) is True and kept.exc_info is None
    error = record(500, exc_info)
    assert quiet.filter(error) is True and error.exc_info is not None
    assert quiet.filter(record(None, exc_info)) is True
