"""POST /api/auth/token: a username and password buy a token; the token signs requests in."""

import pytest
from rest_framework.test import APIClient

from tests.conftest import make_batch

pytestmark = pytest.mark.django_db


def test_a_token_is_issued_for_a_good_password_and_signs_requests_in(owner):
    make_batch(owner)
    client = APIClient()
    response = client.post("/api/auth/token", {"username": "olivia", "password": "pw-olivia"}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/batches").json()["count"] == 1
    again = APIClient().post("/api/auth/token", {"username": "olivia", "password": "pw-olivia"})
    assert again.json()["token"] == token


@pytest.mark.parametrize(
    "body",
    [
        {"username": "olivia", "password": "wrong"},
        {"username": "nobody", "password": "pw-olivia"},
        {"username": "olivia"},
        {},
        {"username": "oli\x00via", "password": "pw-olivia"},
        {"username": "olivia", "password": "pw-olivia", "otp": "123"},
    ],
)
def test_bad_credentials_get_a_400_and_no_token(owner, body):
    response = APIClient().post("/api/auth/token", body, format="json")
    assert response.status_code == 400
    assert "token" not in response.json()


def test_a_bad_token_is_a_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/batches")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_session_signs_the_browsable_api_in(owner, client):
    client.force_login(owner)
    assert client.get("/api/batches").status_code == 200
